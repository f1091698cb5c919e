package postgres_test

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/childproc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// The dev cluster starts from local binaries (as an unprivileged user when
// run as root), accepts the migrations and stops cleanly.
func TestStartCluster(t *testing.T) {
	ctx, dir, port := clusterTest(t, 90*time.Second)
	c, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Port: port})
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
	c2, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Port: port})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	c2.Stop()
}

// A second StartCluster on a directory in use is refused; a server left
// running by an owner that is gone (its lock dropped, its server not
// stopped) is stopped by the next StartCluster, which then starts its own,
// or by StopLeftoverCluster (`gpuaas dev down`).
func TestStartClusterLockAndLeftover(t *testing.T) {
	ctx, dir, port := clusterTest(t, 3*time.Minute)
	first, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Stop() })
	if first.StoppedLeftover() != 0 {
		t.Fatalf("a fresh directory had a leftover (pid %d)", first.StoppedLeftover())
	}
	if _, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Port: port}); !errors.Is(err, childproc.ErrLocked) {
		t.Fatalf("second StartCluster on a directory in use: %v, want ErrLocked", err)
	}
	if _, err := postgres.StopLeftoverCluster(ctx, dir); !errors.Is(err, childproc.ErrLocked) {
		t.Fatalf("StopLeftoverCluster on a directory in use: %v, want ErrLocked", err)
	}

	leftPID := first.AbandonForTest()
	second, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Port: port})
	if err != nil {
		t.Fatalf("start over a leftover server: %v", err)
	}
	t.Cleanup(func() { second.Stop() })
	if second.StoppedLeftover() != leftPID {
		t.Fatalf("StoppedLeftover = %d, want the first server's pid %d", second.StoppedLeftover(), leftPID)
	}
	if childproc.Running(leftPID) {
		t.Fatalf("the leftover server (pid %d) still runs", leftPID)
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: second.URL()})
	if err != nil {
		t.Fatalf("the new server does not answer: %v", err)
	}
	db.Close()

	leftPID = second.AbandonForTest()
	if pid, err := postgres.StopLeftoverCluster(ctx, dir); err != nil || pid != leftPID {
		t.Fatalf("StopLeftoverCluster = %d, %v; want %d", pid, err, leftPID)
	}
	if pid, err := postgres.StopLeftoverCluster(ctx, dir); err != nil || pid != 0 {
		t.Fatalf("StopLeftoverCluster with nothing left = %d, %v", pid, err)
	}

	// A port held by something else is named as such.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Port: l.Addr().(*net.TCPAddr).Port})
	if !errors.Is(err, postgres.ErrPortTaken) {
		t.Fatalf("start on a taken port: %v, want ErrPortTaken", err)
	}
}

// clusterTest skips in -short mode and where PostgreSQL's binaries are
// missing (fails under GPUAAS_REQUIRE_SERVICES), and gives a test of the
// dev cluster its context (cancelled at the test's end), an empty data
// directory and a free port.
func clusterTest(t *testing.T, timeout time.Duration) (context.Context, string, int) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL servers")
	}
	if _, err := postgres.FindBinDir(""); err != nil {
		services.Unavailable(t, "postgres", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	dir, err := os.MkdirTemp("", "gpuaas-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return ctx, dir, freeTCPPort(t)
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A database that goes away answers Unavailable — 503, which clients retry
// — from a read and from a transaction, not Internal; when the server is
// back the same pool serves again. A real server, stopped and started.
func TestDatabaseDownIsUnavailable(t *testing.T) {
	ctx, dir, port := clusterTest(t, 3*time.Minute)
	c, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	db, err := postgres.Open(ctx, postgres.Config{URL: c.URL(), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	nodes := postgres.NewNodeStore(db)
	const id = "0193aaaa-0000-7000-8000-00000000dead"
	if _, err := nodes.GetNode(ctx, id); fault.KindOf(err) != fault.KindNotFound {
		t.Fatalf("up: %v, want not found", err)
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.GetNode(ctx, id); fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("down, read: %v (kind %s), want unavailable", err, fault.KindOf(err))
	}
	if err := db.InTx(ctx, func(ctx context.Context) error { _, err := nodes.GetNode(ctx, id); return err }); fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("down, transaction: %v (kind %s), want unavailable", err, fault.KindOf(err))
	}

	if c, err = postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Port: port}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.GetNode(ctx, id); fault.KindOf(err) != fault.KindNotFound {
		t.Fatalf("back up: %v, want not found", err)
	}
}
