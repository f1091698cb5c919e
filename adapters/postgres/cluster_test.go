package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// The dev cluster starts from local binaries (as an unprivileged user when
// run as root), accepts the migrations and stops cleanly.
func TestStartCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	if _, err := postgres.FindBinDir(""); err != nil {
		services.Unavailable(t, "postgres", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "gpuaas-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Port: 55000 + os.Getpid()%1000})
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: c.URL(), Migrate: true})
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("migrations: %d, %v", n, err)
	}
	db.Close()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	// A second start reuses the initialised data directory.
	c2, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Port: 55000 + os.Getpid()%1000})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	c2.Stop()
}
