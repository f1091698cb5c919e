package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// NoTransactionMarker, as the first line of a migration file, makes the
// migrator run that file outside a transaction, one statement at a time:
// for statements PostgreSQL refuses inside a transaction block (CREATE INDEX
// CONCURRENTLY, ALTER TYPE … ADD VALUE before 12, VACUUM). Such a file must
// be safe to run again from the start (IF NOT EXISTS, and an invalid index
// left by a failed CONCURRENTLY build dropped first): a failure part-way
// leaves the statements before it applied and the migration unrecorded.
const NoTransactionMarker = "-- gpuaas:no-transaction"

// Migration is one numbered schema change with its up and down SQL.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
	// Checksum is the SHA-256 of the up file, recorded when the migration
	// is applied and compared at every start: an applied migration must
	// never change (write a new one instead).
	Checksum string
	// UpNoTx and DownNoTx say the file starts with NoTransactionMarker.
	UpNoTx, DownNoTx bool
}

// Migrations returns the embedded migrations in order. Files are named
// NNNN_name.up.sql and NNNN_name.down.sql.
func Migrations() ([]Migration, error) { return parseMigrations(migrationFS, "migrations") }

func parseMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
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
		body, err := fs.ReadFile(fsys, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		m := byVersion[v]
		if m == nil {
			m = &Migration{Version: v}
			byVersion[v] = m
		}
		noTx := strings.HasPrefix(string(body), NoTransactionMarker)
		switch {
		case strings.HasSuffix(rest, ".up.sql"):
			if m.Name != "" {
				return nil, fmt.Errorf("migration %d: two up files", v)
			}
			sum := sha256.Sum256(body)
			m.Name, m.Up, m.UpNoTx, m.Checksum = strings.TrimSuffix(rest, ".up.sql"), string(body), noTx, hex.EncodeToString(sum[:])
		case strings.HasSuffix(rest, ".down.sql"):
			m.Down, m.DownNoTx = string(body), noTx
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

// appliedMigration is a row of schema_migrations.
type appliedMigration struct {
	name     string
	checksum string // "" for rows written before checksums were recorded
}

// ErrMigrationChanged is returned (wrapped) when an applied migration's
// file differs from the one that was applied.
var ErrMigrationChanged = errors.New("an applied migration was changed")

// migrator holds one connection with the session-level migration lock for
// its whole run: transactions cannot hold it across a migration that runs
// outside one.
type migrator struct {
	conn *pgxpool.Conn
	ms   []Migration
}

func (db *DB) withMigrator(ctx context.Context, ms []Migration, fn func(m *migrator) error) error {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", redactErr(err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return err
	}
	defer func() {
		// A cancelled ctx must not keep the lock on a pooled connection.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text`); err != nil {
		return err
	}
	return fn(&migrator{conn: conn, ms: ms})
}

func (m *migrator) applied(ctx context.Context) (map[int]appliedMigration, error) {
	return readApplied(ctx, m.conn, true)
}

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readApplied reads schema_migrations; withChecksum says the checksum
// column exists.
func readApplied(ctx context.Context, q queryer, withChecksum bool) (map[int]appliedMigration, error) {
	sql := `SELECT version, name, '' FROM schema_migrations`
	if withChecksum {
		sql = `SELECT version, name, coalesce(checksum, '') FROM schema_migrations`
	}
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	done := map[int]appliedMigration{}
	for rows.Next() {
		var v int
		var a appliedMigration
		if err := rows.Scan(&v, &a.name, &a.checksum); err != nil {
			return nil, err
		}
		done[v] = a
	}
	return done, rows.Err()
}

// verify compares applied migrations with the known ones. Rows recorded
// before checksums existed get theirs now (the file in this binary is
// taken as what was applied); a different checksum is refused. Versions
// this binary does not know (a newer binary migrated first: a rolling
// deploy) are not an error.
func (m *migrator) verify(ctx context.Context, done map[int]appliedMigration) error {
	if err := checkApplied(m.ms, done); err != nil {
		return err
	}
	for _, mg := range m.ms {
		if a, ok := done[mg.Version]; ok && a.checksum == "" {
			if _, err := m.conn.Exec(ctx, `UPDATE schema_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL`,
				mg.Version, mg.Checksum); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkApplied is the comparison itself, without writes.
func checkApplied(ms []Migration, done map[int]appliedMigration) error {
	var changed []string
	for _, mg := range ms {
		a, ok := done[mg.Version]
		if !ok || a.checksum == "" {
			continue
		}
		if a.checksum != mg.Checksum {
			changed = append(changed, fmt.Sprintf("%04d_%s (applied %.12s…, file %.12s…)", mg.Version, mg.Name, a.checksum, mg.Checksum))
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("postgres: %w: %s; never edit an applied migration, add a new one (doc/runbook.md#migrations)",
			ErrMigrationChanged, strings.Join(changed, ", "))
	}
	return nil
}

// run executes one migration body in a transaction together with its
// bookkeeping, or — for a no-transaction file — statement by statement and
// then the bookkeeping.
func (m *migrator) run(ctx context.Context, body string, noTx bool, book func(pgx.Tx) error) error {
	if !noTx {
		return pgx.BeginFunc(ctx, m.conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, body); err != nil {
				return err
			}
			return book(tx)
		})
	}
	stmts, err := SplitStatements(body)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := m.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%w (statement: %.80s)", err, s)
		}
	}
	return pgx.BeginFunc(ctx, m.conn, book)
}

// MigrateUp verifies the applied migrations, then applies every pending
// one in order, each in its own transaction with its schema_migrations row
// (a no-transaction file runs outside one), and returns the versions
// applied. It refuses to do anything when an applied migration changed.
func (db *DB) MigrateUp(ctx context.Context) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	return db.migrateUp(ctx, ms)
}

func (db *DB) migrateUp(ctx context.Context, ms []Migration) ([]int, error) {
	var did []int
	err := db.withMigrator(ctx, ms, func(m *migrator) error {
		done, err := m.applied(ctx)
		if err != nil {
			return err
		}
		if err := m.verify(ctx, done); err != nil {
			return err
		}
		for _, mg := range ms {
			if _, ok := done[mg.Version]; ok {
				continue
			}
			err := m.run(ctx, mg.Up, mg.UpNoTx, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
					mg.Version, mg.Name, mg.Checksum)
				return err
			})
			if err != nil {
				return fmt.Errorf("migration %04d_%s up: %w", mg.Version, mg.Name, err)
			}
			did = append(did, mg.Version)
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
	return db.migrateDown(ctx, ms, steps)
}

func (db *DB) migrateDown(ctx context.Context, ms []Migration, steps int) ([]int, error) {
	var did []int
	err := db.withMigrator(ctx, ms, func(m *migrator) error {
		done, err := m.applied(ctx)
		if err != nil {
			return err
		}
		if err := m.verify(ctx, done); err != nil {
			return err
		}
		for i := len(ms) - 1; i >= 0 && len(did) < steps; i-- {
			mg := ms[i]
			if _, ok := done[mg.Version]; !ok {
				continue
			}
			err := m.run(ctx, mg.Down, mg.DownNoTx, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, mg.Version)
				return err
			})
			if err != nil {
				return fmt.Errorf("migration %04d_%s down: %w", mg.Version, mg.Name, err)
			}
			did = append(did, mg.Version)
		}
		return nil
	})
	return did, err
}

// MigrationStatus is one migration and whether it is applied.
type MigrationStatus struct {
	Migration
	Applied bool
	// Changed: applied with another checksum than the file's.
	Changed bool
}

// MigrateStatus lists every known migration, whether it is applied and
// whether its file changed since. It only reads.
func (db *DB) MigrateStatus(ctx context.Context) ([]MigrationStatus, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	done, err := db.appliedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, 0, len(ms))
	for _, m := range ms {
		a, ok := done[m.Version]
		out = append(out, MigrationStatus{m, ok, ok && a.checksum != "" && a.checksum != m.Checksum})
	}
	return out, nil
}

// appliedMigrations reads schema_migrations without writing (no table: no
// migration applied; no checksum column: none recorded yet).
func (db *DB) appliedMigrations(ctx context.Context) (map[int]appliedMigration, error) {
	var hasTable, hasChecksum bool
	if err := db.Pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL,
		EXISTS (SELECT 1 FROM information_schema.columns
		        WHERE table_schema = current_schema() AND table_name = 'schema_migrations' AND column_name = 'checksum')`).
		Scan(&hasTable, &hasChecksum); err != nil {
		return nil, fmt.Errorf("postgres: read migrations: %w", redactErr(err))
	}
	if !hasTable {
		return map[int]appliedMigration{}, nil
	}
	return readApplied(ctx, db.Pool, hasChecksum)
}

// VerifyMigrations refuses a database whose applied migrations differ from
// this binary's files (ErrMigrationChanged). It only reads, so every
// process runs it at start (Connect) without the migration lock; pending
// migrations are not its business (`gpuaas migrate up`, the chart's
// pre-upgrade Job).
func (db *DB) VerifyMigrations(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	done, err := db.appliedMigrations(ctx)
	if err != nil {
		return err
	}
	return checkApplied(ms, done)
}

// SplitStatements splits SQL into its statements at top-level semicolons,
// leaving those inside quotes, quoted identifiers, dollar-quoted bodies and
// comments alone. Empty statements (comments only) are dropped.
func SplitStatements(sql string) ([]string, error) {
	var out []string
	start := 0
	hasCode := false
	emit := func(end int) {
		if hasCode {
			out = append(out, strings.TrimSpace(sql[start:end]))
		}
		start, hasCode = end+1, false
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			nl := strings.IndexByte(sql[i:], '\n')
			if nl < 0 {
				i = len(sql)
			} else {
				i += nl + 1
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			depth, j := 1, i+2
			for j < len(sql) && depth > 0 {
				switch {
				case strings.HasPrefix(sql[j:], "/*"):
					depth, j = depth+1, j+2
				case strings.HasPrefix(sql[j:], "*/"):
					depth, j = depth-1, j+2
				default:
					j++
				}
			}
			if depth > 0 {
				return nil, errors.New("postgres: unterminated block comment")
			}
			i = j
		case c == '\'' || c == '"':
			j := i + 1
			for {
				k := strings.IndexByte(sql[j:], c)
				if k < 0 {
					return nil, fmt.Errorf("postgres: unterminated %c quote", c)
				}
				j += k + 1
				if j < len(sql) && sql[j] == c { // doubled quote: escaped
					j++
					continue
				}
				break
			}
			hasCode, i = true, j
		case c == '$':
			tag, ok := dollarTag(sql[i:])
			if !ok {
				hasCode, i = true, i+1
				continue
			}
			k := strings.Index(sql[i+len(tag):], tag)
			if k < 0 {
				return nil, fmt.Errorf("postgres: unterminated %s body", tag)
			}
			hasCode, i = true, i+len(tag)+k+len(tag)
		case c == ';':
			emit(i)
			i++
		default:
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				hasCode = true
			}
			i++
		}
	}
	if start < len(sql) {
		emit(len(sql))
	}
	return out, nil
}

// dollarTag returns the opening $tag$ at the start of s, if there is one.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1], true
		}
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 1 && c >= '0' && c <= '9') {
			return "", false
		}
	}
	return "", false
}
