package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gpuaas/gpuaas/adapters/childproc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/s3"
	"github.com/gpuaas/gpuaas/adapters/temporal"
)

// devLockFile is the lock a running `gpuaas dev` holds in its data dir.
const devLockFile = "dev.lock"

func devDataDir(getenv func(string) string) string {
	return envOr(getenv, "GPUAAS_DEV_DIR", ".gpuaas/dev")
}

// lockDevDir takes the data dir's lock, or says which gpuaas dev holds it.
func lockDevDir(dir string) (*childproc.Lock, error) {
	lock, err := childproc.LockFile(filepath.Join(dir, devLockFile))
	var held *childproc.HeldError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("another gpuaas dev (pid %d) is running on the data dir %s: stop it first (Ctrl-C where it runs, or `gpuaas dev down -data-dir %s`), or pass another -data-dir",
			held.PID, dir, dir)
	}
	return lock, err
}

// devDown stops what runs from a dev data dir: a `gpuaas dev` still running
// on it (SIGTERM: it stops in order, as on Ctrl-C), then a PostgreSQL
// cluster or Temporal dev server that a crashed one left behind. Since the
// children of gpuaas dev die with it on Linux and the next gpuaas dev stops
// leftovers itself, this is rarely needed; it is the tool for "stop
// everything" and for platforms without a parent-death signal.
func devDown(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("dev down", flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("data-dir", devDataDir(getenv), "data dir of the gpuaas dev to stop")
	wait := fs.Duration("wait", time.Minute, "how long a running gpuaas dev may take to stop before it is killed")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("dev down takes no arguments, got %q", fs.Args())}
	}
	if _, err := os.Stat(*dir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "%s does not exist: nothing to stop\n", *dir)
		return nil
	}
	lock, err := takeDevDir(ctx, *dir, *wait, out)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	stopped := false
	if pid, err := postgres.StopLeftoverCluster(ctx, filepath.Join(*dir, "postgres")); err != nil {
		return err
	} else if pid != 0 {
		fmt.Fprintf(out, "stopped the PostgreSQL server (pid %d) left running in %s\n", pid, filepath.Join(*dir, "postgres"))
		stopped = true
	}
	if pid, err := temporal.StopLeftoverDevServer(ctx, filepath.Join(*dir, "temporal")); err != nil {
		return err
	} else if pid != 0 {
		fmt.Fprintf(out, "stopped the Temporal dev server (pid %d) left running in %s\n", pid, filepath.Join(*dir, "temporal"))
		stopped = true
	}
	if pid, err := s3.StopLeftoverGateway(ctx, filepath.Join(*dir, "objects")); err != nil {
		return err
	} else if pid != 0 {
		fmt.Fprintf(out, "stopped the versitygw (pid %d) left running in %s\n", pid, filepath.Join(*dir, "objects"))
		stopped = true
	}
	if !stopped {
		fmt.Fprintf(out, "nothing left running from %s\n", *dir)
	}
	return nil
}

// takeDevDir takes the data dir's lock; while a gpuaas dev holds it, that
// one is asked to stop (SIGTERM), and killed if it is still there after
// wait (its children then get their parent-death signal, and the caller
// stops whatever is left).
func takeDevDir(ctx context.Context, dir string, wait time.Duration, out io.Writer) (*childproc.Lock, error) {
	path := filepath.Join(dir, devLockFile)
	lock, err := childproc.LockFile(path)
	var held *childproc.HeldError
	if !errors.As(err, &held) {
		return lock, err
	}
	pid := held.PID
	// The pid comes from the lock file; make sure it is a gpuaas dev before
	// signalling it.
	if args, err := childproc.Cmdline(pid); err != nil || !childproc.HasArgs(args, "dev") {
		return nil, fmt.Errorf("%s is held by process %d, which is not a gpuaas dev (%q); stop it yourself", path, pid, args)
	}
	fmt.Fprintf(out, "stopping gpuaas dev (pid %d) …\n", pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return nil, fmt.Errorf("stop gpuaas dev (pid %d): %w", pid, err)
	}
	killed := false
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	// The lock is released by the kernel when the process ends; flock has no
	// portable notification, so look every 100 ms.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		lock, err := childproc.LockFile(path)
		if !errors.Is(err, childproc.ErrLocked) {
			return lock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			if killed {
				return nil, fmt.Errorf("gpuaas dev (pid %d) still holds %s after SIGKILL", pid, path)
			}
			fmt.Fprintf(out, "gpuaas dev (pid %d) did not stop within %s; killing it\n", pid, wait)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = true
			deadline.Reset(10 * time.Second)
		case <-tick.C:
		}
	}
}
