package postgres_test

import (
	"context"
	"testing"

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
