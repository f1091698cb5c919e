package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/testkit/e2e"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

// lifecyclePlatform starts the platform with its data directory where
// other users can reach it, so a root test run gets sandbox nodes that
// switch to an OS user per allocation (as `gpuaas dev` does for root), and
// signs in a user with credit, an SSH key and an admin.
func lifecyclePlatform(ctx context.Context, t *testing.T) (user, admin *e2e.Client, o devOptions, db *postgres.DB) {
	t.Helper()
	dir, err := os.MkdirTemp("", "gpuaas-lifecycle-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	_, o, db = startTestPlatform(ctx, t, func(o *devOptions) { o.dataDir = filepath.Join(dir, "dev") })
	admin = e2e.New("http://" + o.httpAddr)
	if err := admin.Login(ctx, "admin", "admin"); err != nil {
		t.Fatal(err)
	}
	user = e2e.New("http://" + o.httpAddr)
	if err := user.Login(ctx, "alice", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := user.TopUp(ctx, 5000, "usd"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := user.AddSSHKey(ctx, "lifecycle"); err != nil {
		t.Fatal(err)
	}
	if _, err := waitForCapacity(ctx, user, o.nodeSKU); err != nil {
		t.Fatal(err)
	}
	return user, admin, o, db
}

func setPolicy(ctx context.Context, t *testing.T, admin *e2e.Client, key string, value int) {
	t.Helper()
	if err := admin.Call(ctx, "PUT", "/api/v1/admin/policies", map[string]string{"key": key, "value": strconv.Itoa(value)}, nil); err != nil {
		t.Fatalf("set %s: %v", key, err)
	}
}

func activeAllocation(ctx context.Context, t *testing.T, c *e2e.Client, sku string) e2e.Allocation {
	t.Helper()
	var a e2e.Allocation
	if err := c.Call(ctx, "POST", "/api/v1/allocations", map[string]any{"sku_id": sku}, &a); err != nil {
		t.Fatal(err)
	}
	a, err := c.WaitState(ctx, a.ID, "active")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// accountProcesses lists the live processes of an allocation's account on
// this machine (the sandbox nodes run here): those whose environment names
// the account (every process the sandbox starts for it carries USER=…
// and its process-set marker; the test's processes keep them).
func accountProcesses(account string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil || strings.Contains(string(st), "State:\tZ") {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == "USER="+account {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// TestReleaseIsBoundedAndBillingStopsAtTheRequest: a browser terminal runs
// `sleep 600` in the foreground after starting a nohup'd background loop
// that ignores SIGTERM. Release completes within the grace period + 5 s, no
// process of the account survives, and the usage record ends at the
// release request (± 1 s).
func TestReleaseIsBoundedAndBillingStopsAtTheRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole platform")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	user, admin, o, db := lifecyclePlatform(ctx, t)
	const grace = 3
	setPolicy(ctx, t, admin, "allocation.release_grace_seconds", grace)
	a := activeAllocation(ctx, t, user, o.nodeSKU)
	account := nodetask.UsernameFor(a.ID)

	term, err := user.OpenTerminal(ctx, a.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	if err := term.Send(`nohup sh -c 'trap "" TERM; while :; do sleep 1; done' >/dev/null 2>&1 & echo bg-$((40+2))` + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := term.WaitFor("bg-42", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := term.Send("sleep 600\n"); err != nil {
		t.Fatal(err)
	}
	var before []int
	poll.Until(t, 20*time.Second, "the shell, its sleep and the loop", func() bool {
		before = accountProcesses(account)
		return len(before) >= 4 // shell, sleep 600, the loop's sh and its sleep 1
	})

	asked := time.Now()
	if err := user.Call(ctx, "POST", "/api/v1/allocations/"+a.ID+"/release", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := user.WaitState(ctx, a.ID, "released"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(asked)
	t.Logf("release took %v (grace %d s)", took, grace)
	if took > (grace+5)*time.Second {
		t.Fatalf("release took %v; want within the %d s grace period + 5 s", took, grace)
	}
	if left := accountProcesses(account); len(left) != 0 {
		t.Fatalf("processes of %s survived the release: %v (of %v)", account, left, before)
	}
	if ce, err := term.Closed(10 * time.Second); err != nil || ce == nil || ce.Code != 4002 {
		t.Fatalf("the open terminal: close %v, %v; want 4002 (the session ended with the release)", ce, err)
	}

	var requested, ended time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT a.release_requested_at, u.ended_at FROM allocations a
		JOIN usage_records u ON u.allocation_id = a.id WHERE a.id = $1`, a.ID).Scan(&requested, &ended); err != nil {
		t.Fatal(err)
	}
	if d := ended.Sub(asked); d < -time.Second || d > time.Second {
		t.Fatalf("usage ended at %v, %v after the release request at %v; want within 1 s", ended, d, asked)
	}
	if !ended.Equal(requested) {
		t.Fatalf("usage ended at %v; the release was requested at %v", ended, requested)
	}
}

// TestTerminalSessionsSurviveTheBrowser: a browser that goes away
// mid-command reconnects within the window and sees the command's later
// output; one that waits past the window finds the session and its shell
// gone.
func TestTerminalSessionsSurviveTheBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole platform")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	user, admin, o, _ := lifecyclePlatform(ctx, t)
	const window = 3
	setPolicy(ctx, t, admin, "terminal.reconnect_window_seconds", window)
	a := activeAllocation(ctx, t, user, o.nodeSKU)
	account := nodetask.UsernameFor(a.ID)

	// Reconnect within the window.
	t1, err := user.OpenTerminal(ctx, a.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := t1.Send("sleep 1; echo la''ter-$((6*7))\n"); err != nil {
		t.Fatal(err)
	}
	_ = t1.Close() // mid-command
	t2, err := user.OpenTerminal(ctx, a.ID, t1.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if !t2.Resumed || t2.SessionID != t1.SessionID {
		t.Fatalf("second connection: session %s resumed %v; want %s resumed", t2.SessionID, t2.Resumed, t1.SessionID)
	}
	if err := t2.WaitFor("later-42", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// The typed line is echoed too — and may arrive on its own first, so the
	// wait is for what only the output holds: "pid-0" followed by digits
	// ($((0)) is not expanded in the echo).
	if err := t2.Send("echo pid-$((0))$$ end\n"); err != nil {
		t.Fatal(err)
	}
	pidLine := regexp.MustCompile(`pid-0([0-9]+) end`)
	poll.Until(t, 20*time.Second, "the shell's pid", func() bool { return pidLine.MatchString(t2.Output()) })
	out := t2.Output()
	shell, err := strconv.Atoi(pidLine.FindStringSubmatch(out)[1])
	if err != nil || shell <= 1 {
		t.Fatalf("no shell pid in %q", out)
	}

	// Wait past the window.
	_ = t2.Close()
	poll.Until(t, time.Duration(window+10)*time.Second, "the shell to end after the window", func() bool {
		for _, p := range accountProcesses(account) {
			if p == shell {
				return false
			}
		}
		return true
	})
	_, err = user.OpenTerminal(ctx, a.ID, t1.SessionID)
	var refusal *e2e.TerminalRefusal
	if !errorsAs(err, &refusal) || refusal.Status != 409 || refusal.Code != "terminal_session_ended" {
		t.Fatalf("resume after the window: %v; want 409 terminal_session_ended", err)
	}
	// A new session still works.
	t3, err := user.OpenTerminal(ctx, a.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	defer t3.Close()
	// The shell is the allocation's own user when the platform runs as root
	// (as here in CI), with an absolute HOME either way.
	if err := t3.Send("echo who-$(whoami)-in-$HOME-$((1))\n"); err != nil {
		t.Fatal(err)
	}
	want := "who-" + account + "-in-/"
	if os.Geteuid() != 0 {
		want = "-in-/"
	}
	if err := t3.WaitFor(want, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := t3.Send("exit 7\n"); err != nil {
		t.Fatal(err)
	}
	if ce, err := t3.Closed(20 * time.Second); err != nil || ce == nil || ce.Code != websocket.CloseNormalClosure || ce.Text != "exit status 7" {
		t.Fatalf("exit: close %v, %v; want 1000 exit status 7", ce, err)
	}
}

func errorsAs[T error](err error, target *T) bool { return errors.As(err, target) }
