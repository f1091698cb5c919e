package temporal_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/childproc"
	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/adapters/temporal/temporaltest"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func TestDevServerStopsCleanly(t *testing.T) {
	t.Parallel()
	srv := temporaltest.DevServer(t)
	host, _, err := net.SplitHostPort(srv.HostPort())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("dev server at %q, want 127.0.0.1", srv.HostPort())
	}
	if srv.UIURL() != "" {
		t.Fatalf("headless server has a UI at %s", srv.UIURL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", srv.HostPort(), time.Second); err == nil {
		c.Close()
		t.Fatal("the frontend still accepts connections after Stop")
	}
}

func TestDevServerConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []temporal.DevServerConfig{{}, {Dir: t.TempDir(), Port: -1, CLIPath: "/bin/true"}} {
		if err := c.CheckAndSetDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	// A binary that exits at once fails the start instead of hanging.
	_, err := temporal.StartDevServerWith(context.Background(), temporal.DevServerConfig{Dir: t.TempDir(), CLIPath: "/bin/false", ReadyTimeout: 20 * time.Second})
	if err == nil {
		t.Fatal("a CLI that exits was reported ready")
	}
}

// A second start on a directory in use is refused; a server an owner that
// is gone left running (its lock dropped, its server not stopped) is
// stopped by the next start, which then runs its own on the same database,
// or by StopLeftoverDevServer (`gpuaas dev down`).
func TestDevServerLockAndLeftover(t *testing.T) {
	t.Parallel()
	cli, err := temporaltest.CLIPath()
	if err != nil {
		services.Unavailable(t, "temporal_cli", fmt.Errorf("%w; install it with `make tools`", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := temporal.DevServerConfig{Dir: t.TempDir(), CLIPath: cli}
	first, err := temporal.StartDevServerWith(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Stop(context.Background()) })
	if _, err := temporal.StartDevServerWith(ctx, cfg); !errors.Is(err, childproc.ErrLocked) {
		t.Fatalf("second start on a directory in use: %v, want ErrLocked", err)
	}
	if _, err := temporal.StopLeftoverDevServer(ctx, cfg.Dir); !errors.Is(err, childproc.ErrLocked) {
		t.Fatalf("StopLeftoverDevServer on a directory in use: %v, want ErrLocked", err)
	}

	leftPID := first.AbandonForTest()
	second, err := temporal.StartDevServerWith(ctx, cfg)
	if err != nil {
		t.Fatalf("start over a leftover server: %v", err)
	}
	t.Cleanup(func() { _ = second.Stop(context.Background()) })
	if second.StoppedLeftover() != leftPID || childproc.Running(leftPID) {
		t.Fatalf("StoppedLeftover = %d (want %d), leftover running %v", second.StoppedLeftover(), leftPID, childproc.Running(leftPID))
	}

	leftPID = second.AbandonForTest()
	if pid, err := temporal.StopLeftoverDevServer(ctx, cfg.Dir); err != nil || pid != leftPID {
		t.Fatalf("StopLeftoverDevServer = %d, %v; want %d", pid, err, leftPID)
	}
	if pid, err := temporal.StopLeftoverDevServer(ctx, cfg.Dir); err != nil || pid != 0 {
		t.Fatalf("StopLeftoverDevServer with nothing left = %d, %v", pid, err)
	}
}
