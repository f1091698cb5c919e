package s3_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/childproc"
	"github.com/gpuaas/gpuaas/adapters/s3"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// TestGatewayOwnsItsDirAndStopsLeftovers: one gateway per directory, and a
// versitygw a crashed owner left running on the directory is stopped by
// the next start (and by StopLeftoverGateway, which gpuaas dev down uses).
func TestGatewayOwnsItsDirAndStopsLeftovers(t *testing.T) {
	t.Parallel()
	bin, err := s3.LocateGateway()
	if err != nil {
		services.Unavailable(t, "versitygw", err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	g, err := s3.StartGateway(ctx, s3.GatewayConfig{Dir: dir, Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3.StartGateway(ctx, s3.GatewayConfig{Dir: dir, Binary: bin}); !errors.Is(err, childproc.ErrLocked) {
		t.Fatalf("a second gateway on the same dir: %v", err)
	}
	if _, err := s3.StopLeftoverGateway(ctx, dir); !errors.Is(err, childproc.ErrLocked) {
		t.Fatalf("StopLeftoverGateway while owned: %v", err)
	}
	access := g.AccessKey()
	if err := g.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// A leftover: a gateway on the dir's data with no owner (started here
	// without the parent-death signal, as a crashed owner's child lives on).
	leftover := exec.Command(bin, "--port", "127.0.0.1:0", "--quiet", "posix", filepath.Join(dir, "data"))
	leftover.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID=x", "ROOT_SECRET_ACCESS_KEY=y")
	if err := leftover.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = leftover.Wait(); close(exited) }()
	t.Cleanup(func() { _ = leftover.Process.Kill() })
	if err := os.WriteFile(filepath.Join(dir, "versitygw.pid"), []byte(strconv.Itoa(leftover.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitCmdline(t, leftover.Process.Pid)
	g2, err := s3.StartGateway(ctx, s3.GatewayConfig{Dir: dir, Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Stop(ctx)
	if g2.StoppedLeftover() != leftover.Process.Pid {
		t.Fatalf("StoppedLeftover = %d; want %d", g2.StoppedLeftover(), leftover.Process.Pid)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the leftover still runs")
	}
	if g2.AccessKey() != access {
		t.Fatal("a restart on the same dir changed the key pair")
	}
}

func waitCmdline(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if args, err := childproc.Cmdline(pid); err == nil && childproc.HasArgs(args, "posix") {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling /proc for the exec to land, not synchronising goroutines
	}
	t.Fatalf("process %d never showed its command line", pid)
}
