package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// Every migration must apply, revert and apply again cleanly.
func TestMigrationsUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: services.FreshDatabaseURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms, err := postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	up, err := db.MigrateUp(ctx)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	if len(up) != len(ms) {
		t.Fatalf("applied %d of %d migrations", len(up), len(ms))
	}
	if again, err := db.MigrateUp(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second up applied %v, err %v; want nothing", again, err)
	}
	down, err := db.MigrateDown(ctx, len(ms))
	if err != nil {
		t.Fatalf("down: %v", err)
	}
	if len(down) != len(ms) {
		t.Fatalf("reverted %d of %d", len(down), len(ms))
	}
	var tables int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_name <> 'schema_migrations'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("%d tables left after reverting everything", tables)
	}
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatalf("up after down: %v", err)
	}
	st, err := db.MigrateStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if !s.Applied {
			t.Fatalf("migration %d not applied", s.Version)
		}
	}
}

// An applied migration whose file changes refuses every start: Connect
// (with or without Migrate), MigrateUp and MigrateDown, and status says
// which one changed.
func TestEditedAppliedMigrationRefusesToStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := services.FreshDatabaseURL(t)
	db, err := postgres.Open(ctx, postgres.Config{URL: url, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Nothing changed: a plain start verifies and passes.
	db2, err := postgres.Open(ctx, postgres.Config{URL: url})
	if err != nil {
		t.Fatalf("start with unchanged migrations: %v", err)
	}
	db2.Close()

	// "Edit" migration 3 as the database sees it: the file in this binary
	// now differs from what was recorded when it was applied.
	if _, err := db.Pool.Exec(ctx, `UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 3`); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []postgres.Config{{URL: url}, {URL: url, Migrate: true}} {
		d, err := postgres.Open(ctx, cfg)
		if err == nil {
			d.Close()
			t.Fatalf("Open(Migrate=%v) started with an edited applied migration", cfg.Migrate)
		}
		if !errors.Is(err, postgres.ErrMigrationChanged) || !strings.Contains(err.Error(), "0003_ledger") {
			t.Fatalf("Open(Migrate=%v): %v; want ErrMigrationChanged naming 0003_ledger", cfg.Migrate, err)
		}
	}
	if _, err := db.MigrateDown(ctx, 1); !errors.Is(err, postgres.ErrMigrationChanged) {
		t.Fatalf("down with an edited migration: %v", err)
	}
	st, err := db.MigrateStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Changed != (s.Version == 3) {
			t.Fatalf("status of %d: changed=%v", s.Version, s.Changed)
		}
	}
	// The status-only path opens without the check.
	d, err := postgres.Open(ctx, postgres.Config{URL: url, SkipMigrationCheck: true})
	if err != nil {
		t.Fatalf("open for status: %v", err)
	}
	d.Close()
}

// Rows recorded before checksums existed get the current file's checksum
// on the next migrate; from then on an edit is caught.
func TestChecksumsBackfilledForOldRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: services.FreshDatabaseURL(t), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Pool.Exec(ctx, `UPDATE schema_migrations SET checksum = NULL`); err != nil {
		t.Fatal(err)
	}
	if err := db.VerifyMigrations(ctx); err != nil {
		t.Fatalf("verify with no recorded checksums: %v", err)
	}
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	var missing int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE checksum IS NULL`).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Fatalf("%d rows without a checksum after migrate up", missing)
	}
}

// A migration marked no-transaction runs statements PostgreSQL refuses in a
// transaction block (CREATE INDEX CONCURRENTLY), up and down; an ordinary
// one with the same statement fails and records nothing.
func TestNoTransactionMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: services.FreshDatabaseURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fsys := fstest.MapFS{
		"m/0001_table.up.sql":   {Data: []byte("CREATE TABLE things (id int PRIMARY KEY, name text);\nINSERT INTO things VALUES (1, 'a;b');\n")},
		"m/0001_table.down.sql": {Data: []byte("DROP TABLE things;")},
		"m/0002_index.up.sql": {Data: []byte(postgres.NoTransactionMarker + `
-- two statements, each outside a transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS things_name ON things (name);
CREATE INDEX CONCURRENTLY IF NOT EXISTS things_name_id ON things (name, id);
`)},
		"m/0002_index.down.sql": {Data: []byte(postgres.NoTransactionMarker + "\nDROP INDEX CONCURRENTLY IF EXISTS things_name_id;\nDROP INDEX CONCURRENTLY IF EXISTS things_name;\n")},
	}
	ms, err := postgres.ParseMigrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].UpNoTx || !ms[1].UpNoTx || !ms[1].DownNoTx {
		t.Fatalf("markers read wrong: %+v", ms)
	}
	did, err := db.MigrateUpWith(ctx, ms)
	if err != nil || len(did) != 2 {
		t.Fatalf("up: %v %v", did, err)
	}
	indexes := func() int {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'things' AND indexname LIKE 'things_name%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := indexes(); n != 2 {
		t.Fatalf("%d indexes after up; want 2", n)
	}
	if did, err := db.MigrateDownWith(ctx, ms, 1); err != nil || len(did) != 1 {
		t.Fatalf("down: %v %v", did, err)
	}
	if n := indexes(); n != 0 {
		t.Fatalf("%d indexes after down; want 0", n)
	}

	// Without the marker, the same statement is refused and not recorded.
	fsys["m/0002_index.up.sql"] = &fstest.MapFile{Data: []byte("CREATE INDEX CONCURRENTLY things_name ON things (name);\nCREATE INDEX x ON things (id);")}
	ms, err = postgres.ParseMigrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.MigrateUpWith(ctx, ms); err == nil || !strings.Contains(err.Error(), "0002_index") {
		t.Fatalf("CONCURRENTLY inside a transaction: %v; want a refusal naming 0002_index", err)
	}
	var recorded int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = 2`).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != 0 {
		t.Fatal("a failed migration was recorded")
	}
}

func TestSplitStatements(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"SELECT 1; SELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"SELECT 1", []string{"SELECT 1"}},
		{"-- only a comment; here\n", nil},
		{"SELECT 'a;b'; SELECT \"x;y\" FROM t;", []string{"SELECT 'a;b'", "SELECT \"x;y\" FROM t"}},
		{"SELECT 'it''s;'; SELECT 2", []string{"SELECT 'it''s;'", "SELECT 2"}},
		{"CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql; SELECT 3;",
			[]string{"CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql", "SELECT 3"}},
		{"DO $body$ BEGIN PERFORM 1; END $body$; SELECT $1;", []string{"DO $body$ BEGIN PERFORM 1; END $body$", "SELECT $1"}},
		{"/* a; /* nested; */ b; */ SELECT 1; -- tail;\nSELECT 2", []string{"/* a; /* nested; */ b; */ SELECT 1", "-- tail;\nSELECT 2"}},
	} {
		got, err := postgres.SplitStatements(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Fatalf("%q: got %q; want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"SELECT 'open", "SELECT $$ open", "/* open"} {
		if _, err := postgres.SplitStatements(bad); err == nil {
			t.Fatalf("%q: no error", bad)
		}
	}
}
