package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one numbered schema change with its up and down SQL.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// Migrations returns the embedded migrations in order. Files are named
// NNNN_name.up.sql and NNNN_name.down.sql.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("migration %q: want NNNN_name.(up|down).sql", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %q: bad version", name)
		}
		body, err := fs.ReadFile(migrationFS, "migrations/"+name)
		if err != nil {
			return nil, err
		}
		m := byVersion[v]
		if m == nil {
			m = &Migration{Version: v}
			byVersion[v] = m
		}
		switch {
		case strings.HasSuffix(rest, ".up.sql"):
			m.Name, m.Up = strings.TrimSuffix(rest, ".up.sql"), string(body)
		case strings.HasSuffix(rest, ".down.sql"):
			m.Down = string(body)
		default:
			return nil, fmt.Errorf("migration %q: want .up.sql or .down.sql", name)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("migration %d: needs both up and down", m.Version)
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// migrationLock serialises migrators across processes.
const migrationLock = 72_6575_1234

func (db *DB) withMigrationLock(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		return fn(tx)
	})
}

func applied(ctx context.Context, tx pgx.Tx) (map[int]bool, error) {
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	done := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		done[v] = true
	}
	return done, rows.Err()
}

// MigrateUp applies every pending migration in one transaction and returns
// the versions applied.
func (db *DB) MigrateUp(ctx context.Context) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	var did []int
	err = db.withMigrationLock(ctx, func(tx pgx.Tx) error {
		done, err := applied(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if done[m.Version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.Up); err != nil {
				return fmt.Errorf("migration %04d_%s up: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return err
			}
			did = append(did, m.Version)
		}
		return nil
	})
	return did, err
}

// MigrateDown reverts the newest applied migrations, steps of them.
func (db *DB) MigrateDown(ctx context.Context, steps int) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	var did []int
	err = db.withMigrationLock(ctx, func(tx pgx.Tx) error {
		done, err := applied(ctx, tx)
		if err != nil {
			return err
		}
		for i := len(ms) - 1; i >= 0 && len(did) < steps; i-- {
			m := ms[i]
			if !done[m.Version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.Down); err != nil {
				return fmt.Errorf("migration %04d_%s down: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, m.Version); err != nil {
				return err
			}
			did = append(did, m.Version)
		}
		return nil
	})
	return did, err
}

// MigrationStatus is one migration and whether it is applied.
type MigrationStatus struct {
	Migration
	Applied bool
}

// MigrateStatus lists every known migration and whether it is applied.
func (db *DB) MigrateStatus(ctx context.Context) ([]MigrationStatus, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	var out []MigrationStatus
	err = db.withMigrationLock(ctx, func(tx pgx.Tx) error {
		done, err := applied(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range ms {
			out = append(out, MigrationStatus{m, done[m.Version]})
		}
		return nil
	})
	return out, err
}
