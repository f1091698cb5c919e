package linuxexec

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/terminal"
)

// TestMain lets the test binary double as `gpuaas-agent terminal-attach`:
// the real-executor test runs a copy of it as the account.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "terminal-attach" {
		if err := Attach(context.Background(), os.Getenv("GPUAAS_TEST_SOCKET"), os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// publicDir is a temporary directory other users can reach.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gpuaas-linuxexec-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// attachProc is the attach helper running as some uid, with the test
// speaking the session protocol on its stdin and stdout.
type attachProc struct {
	t      *testing.T
	in     io.WriteCloser
	frames *terminal.FrameReader
	out    strings.Builder
}

func startAttach(t *testing.T, helper, socket string, uid int) *attachProc {
	t.Helper()
	cmd := exec.Command(helper, "terminal-attach")
	cmd.Env = []string{"GPUAAS_TEST_SOCKET=" + socket}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &attachProc{t: t, in: in, frames: terminal.NewFrameReader(out)}
}

func (a *attachProc) hello(h terminal.Hello) {
	a.t.Helper()
	if err := terminal.WriteJSONFrame(a.in, terminal.FrameHello, h); err != nil {
		a.t.Fatal(err)
	}
}

func (a *attachProc) send(s string) {
	a.t.Helper()
	if err := terminal.WriteFrame(a.in, terminal.FrameData, []byte(s)); err != nil {
		a.t.Fatal(err)
	}
}

// waitFor reads frames until the output holds want (the reads are bounded
// by the session: a refused or ended one closes the stream).
func (a *attachProc) waitFor(want string) {
	a.t.Helper()
	done := make(chan error, 1)
	go func() {
		for !strings.Contains(a.out.String(), want) {
			typ, p, err := a.frames.Next()
			if err != nil {
				done <- err
				return
			}
			if typ == terminal.FrameData {
				a.out.Write(p)
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			a.t.Fatalf("%v before %q; output %q", err, want, a.out.String())
		}
	case <-time.After(15 * time.Second):
		a.t.Fatalf("no %q in %q", want, a.out.String())
	}
}

// processesOf lists the live processes of uid.
func processesOf(uid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil || strings.Contains(string(b), "State:\tZ") {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(strings.TrimPrefix(line, "Uid:")); strings.HasPrefix(line, "Uid:") && len(f) > 0 && f[0] == strconv.Itoa(uid) {
				out = append(out, pid)
			}
		}
	}
	return out
}
