package temporal_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/adapters/temporal/temporaltest"
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
