package linuxexec

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

func TestCommands(t *testing.T) {
	t.Parallel()
	cfg := Config{}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		got    [][]string
		wanted [][]string
	}{
		{"new account with GPU group", ProvisionCommands(cfg, "ga_abcdefgh", "video", false), [][]string{
			{"useradd", "--create-home", "--user-group", "--shell", "/bin/bash", "--comment", "gpuaas allocation account", "ga_abcdefgh"},
			{"usermod", "--append", "--groups", "video", "ga_abcdefgh"},
		}},
		{"existing account without GPUs", ProvisionCommands(cfg, "ga_abcdefgh", "", true), nil},
		{"revoke", [][]string{LockCommand("ga_abcdefgh"), DeleteCommand("ga_abcdefgh")}, [][]string{
			{"usermod", "--expiredate", "1", "ga_abcdefgh"},
			{"userdel", "--remove", "--force", "ga_abcdefgh"},
		}},
	}
	for _, tc := range cases {
		if !reflect.DeepEqual(tc.got, tc.wanted) {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.wanted)
		}
	}
	drop := cfg.SSHDDropInContent()
	for _, want := range []string{"TrustedUserCAKeys /etc/ssh/gpuaas_user_ca.pub", "AuthorizedPrincipalsFile /etc/ssh/gpuaas_principals/%u",
		"Subsystem gpuaas-terminal@gpuaas /", " terminal-attach --socket /run/gpuaas-agent/terminal.sock\n"} {
		if !strings.Contains(drop, want) {
			t.Errorf("drop-in lacks %q:\n%s", want, drop)
		}
	}
}

// TestRevokeToleratesAbsentAccount: usermod and userdel 6 (no user) mean
// the account is already gone; other failures are errors. A name that could
// escape (root, a path) never reaches a command.
func TestRevokeToleratesAbsentAccount(t *testing.T) {
	t.Parallel()
	var ran [][]string
	exitWith := map[string]int{"usermod": 6, "userdel": 6}
	e, err := New(Config{PrincipalsDir: t.TempDir(), CgroupBase: "-", Run: func(_ context.Context, argv []string) error {
		ran = append(ran, argv)
		return &CommandError{Argv: argv, Err: exec.Command("sh", "-c", "exit "+strconv.Itoa(exitWith[argv[0]])).Run()}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RevokeUser(context.Background(), nodetask.RevokeUserParams{AllocationID: "a", Username: "ga_abcdefgh"}); err != nil {
		t.Fatalf("revoke of an absent account: %v", err)
	}
	exitWith["userdel"] = 8 // "user currently logged in"
	if err := e.RevokeUser(context.Background(), nodetask.RevokeUserParams{AllocationID: "a", Username: "ga_abcdefgh"}); err == nil {
		t.Fatal("a failing userdel was ignored")
	}
	n := len(ran)
	if err := e.RevokeUser(context.Background(), nodetask.RevokeUserParams{AllocationID: "a", Username: "root"}); err == nil || len(ran) != n {
		t.Fatalf("revoke of root ran %q (err %v)", ran[n:], err)
	}
}

// TestLinuxExecutorForReal changes the machine: it creates and deletes a
// real user (the sshd files go to a temporary directory). It runs as root —
// CI runs as root — and skips otherwise. Through the real terminal socket,
// as the account, it opens a browser-terminal session, leaves processes
// behind (a nohup'd loop, a setsid'd loop that ignores SIGTERM, and a
// process started outside the agent as sshd would), and revokes: every
// process of the account is gone within the grace period plus seconds,
// and so is the account.
func TestLinuxExecutorForReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: this test adds and removes a real user")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd is not installed")
	}
	dir := publicDir(t)
	attach := filepath.Join(dir, "attach")
	copyFile(t, os.Args[0], attach) // the test binary, reachable by the account, as the attach helper
	socket := filepath.Join(dir, "terminal.sock")
	e, err := New(Config{SSHDDropIn: filepath.Join(dir, "50-gpuaas.conf"), PrincipalsDir: filepath.Join(dir, "principals"),
		UserCAFile: filepath.Join(dir, "ca.pub"), ReloadSSHD: []string{"true"}, TerminalSocket: socket,
		AttachCommand: attach + " terminal-attach"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	name := "ga_linuxexectest1"
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb0+TxYiD1CkL3V7SpiGe2LeP8J0m6ZTxhrNdLk2F3p"
	ctx := context.Background()
	_ = e.RevokeUser(ctx, nodetask.RevokeUserParams{AllocationID: "a", Username: name}) // a leftover of an aborted run
	if err := e.ProvisionUser(ctx, nodetask.ProvisionUserParams{AllocationID: "a", Username: name,
		AuthorizedKeys: []string{key}, UserCAKey: key}); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	b, err := os.ReadFile(filepath.Join(u.HomeDir, ".ssh", "authorized_keys"))
	if err != nil || !strings.Contains(string(b), key) {
		t.Fatalf("authorized_keys = %q, %v", b, err)
	}
	if drop, _ := os.ReadFile(filepath.Join(dir, "50-gpuaas.conf")); !strings.Contains(string(drop), "Subsystem gpuaas-terminal@gpuaas "+attach) {
		t.Fatalf("drop-in without the terminal subsystem:\n%s", drop)
	}

	// A terminal session through the socket, as the account.
	term := startAttach(t, attach, socket, uid)
	term.hello(terminal.Hello{SessionID: "sess-linux-1", Mode: terminal.ModeNew, Cols: 80, Rows: 24})
	term.send("echo I-am-$(whoami) in $PWD; nohup sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 &\n")
	term.waitFor("I-am-" + name + " in " + u.HomeDir)
	term.send("setsid sh -c 'trap \"\" TERM HUP; while :; do sleep 1; done' </dev/null >/dev/null 2>&1 &\n")
	// A process the agent did not start (sshd's sessions are like this).
	outside := exec.Command("sleep", "600")
	outside.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	if err := outside.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = outside.Wait() }()
	var pids []int
	poll.Until(t, 10*time.Second, "the account's processes", func() bool { pids = processesOf(uid); return len(pids) >= 5 })

	start := time.Now()
	if err := e.RevokeUser(ctx, nodetask.RevokeUserParams{AllocationID: "a", Username: name, GraceSeconds: 1}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("revoke took %v; want within the 1 s grace period + 5 s", d)
	}
	if left := processesOf(uid); len(left) != 0 {
		t.Fatalf("processes of the account survived revoke: %v (of %v)", left, pids)
	}
	if _, err := user.Lookup(name); err == nil {
		t.Fatal("the account survived revoke")
	}
	if _, err := os.Stat(u.HomeDir); !os.IsNotExist(err) {
		t.Fatalf("home directory survived revoke: %v", err)
	}
	// Only allocation accounts are served by the socket.
	nobody := startAttach(t, attach, socket, 65534)
	nobody.hello(terminal.Hello{SessionID: "sess-linux-2", Mode: terminal.ModeNew, Cols: 80, Rows: 24})
	if typ, _, err := nobody.frames.Next(); err == nil {
		t.Fatalf("a non-allocation user got frame %c", typ)
	}
}

// SSHHostKey is the host key file's content, "" when it cannot be read.
func TestSSHHostKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ssh_host_ed25519_key.pub")
	e, err := New(Config{HostKeyFile: path, CgroupBase: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.SSHHostKey(); got != "" {
		t.Fatalf("missing file gave %q", got)
	}
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@node"
	if err := os.WriteFile(path, []byte(key+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := e.SSHHostKey(); got != key {
		t.Fatalf("got %q", got)
	}
}
