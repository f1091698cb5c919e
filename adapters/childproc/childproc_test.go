package childproc_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/childproc"
)

func TestLockFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "dir.lock")
	l, err := childproc.LockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file, so a second open in the same
	// process is refused as another process would be.
	_, err = childproc.LockFile(path)
	var held *childproc.HeldError
	if !errors.Is(err, childproc.ErrLocked) || !errors.As(err, &held) || held.PID != os.Getpid() {
		t.Fatalf("second lock: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("lock file mode: %v %v", st.Mode(), err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := childproc.LockFile(path)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l2.Unlock()
}

func TestStopEscalates(t *testing.T) {
	t.Parallel()
	// A process that ignores SIGINT (exec keeps the ignored disposition).
	cmd := exec.Command("sh", "-c", `trap "" INT; exec sleep 60`)
	done, err := childproc.Start(cmd, syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	reaped := false
	t.Cleanup(func() {
		if !reaped {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	args := waitArgs(t, pid, "sleep")
	if !childproc.HasArgs(args, "sleep", "60") || childproc.HasArgs(args, "60", "sleep") {
		t.Fatalf("cmdline %q", args)
	}
	ctx := context.Background()
	if err := childproc.Stop(ctx, pid, 200*time.Millisecond, syscall.SIGINT); err == nil {
		t.Fatal("Stop with SIGINT alone reported a process that ignores it as stopped")
	}
	if !childproc.Running(pid) {
		t.Fatal("the process is gone after an ignored SIGINT")
	}
	if err := childproc.Stop(ctx, pid, time.Second, syscall.SIGINT, syscall.SIGKILL); err != nil {
		t.Fatalf("Stop with SIGKILL after SIGINT: %v", err)
	}
	// It has exited; as our child it stays a zombie until reaped, which
	// Running must not count as running.
	if childproc.Running(pid) {
		t.Fatal("Running after Stop")
	}
	<-done
	reaped = true
	if _, err := childproc.Cmdline(pid); !errors.Is(err, childproc.ErrNotRunning) {
		t.Fatalf("Cmdline of a reaped process: %v", err)
	}
}

func TestPIDFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if pid, err := childproc.ReadPIDFile(filepath.Join(dir, "none.pid")); pid != 0 || err != nil {
		t.Fatalf("missing file: %d %v", pid, err)
	}
	p := filepath.Join(dir, "x.pid")
	if err := childproc.WritePIDFile(p, 4242); err != nil {
		t.Fatal(err)
	}
	if pid, err := childproc.ReadPIDFile(p); pid != 4242 || err != nil {
		t.Fatalf("read back: %d %v", pid, err)
	}
	// postmaster.pid: the pid, then more lines.
	if err := os.WriteFile(p, []byte("77\n/data\n1700000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pid, err := childproc.ReadPIDFile(p); pid != 77 || err != nil {
		t.Fatalf("postmaster.pid style: %d %v", pid, err)
	}
	if err := os.WriteFile(p, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := childproc.ReadPIDFile(p); err == nil {
		t.Fatal("garbage accepted")
	}
}

// waitArgs waits until pid has exec'd name (a fresh child may still show the
// parent's command line for a moment).
func waitArgs(t *testing.T, pid int, name string) []string {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		args, err := childproc.Cmdline(pid)
		if err == nil && len(args) > 0 && filepath.Base(args[0]) == name {
			return args
		}
		select {
		case <-deadline:
			t.Fatalf("process %d never ran %s (%q, %v)", pid, name, args, err)
		case <-tick.C:
		}
	}
}
