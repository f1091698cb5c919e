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
	"testing"

	"github.com/gpuaas/gpuaas/core/nodetask"
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
		{"revoke", RevokeCommands("ga_abcdefgh"), [][]string{
			{"pkill", "-KILL", "-u", "ga_abcdefgh"},
			{"userdel", "--remove", "--force", "ga_abcdefgh"},
		}},
	}
	for _, tc := range cases {
		if !reflect.DeepEqual(tc.got, tc.wanted) {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.wanted)
		}
	}
	drop := cfg.SSHDDropInContent()
	for _, want := range []string{"TrustedUserCAKeys /etc/ssh/gpuaas_user_ca.pub", "AuthorizedPrincipalsFile /etc/ssh/gpuaas_principals/%u"} {
		if !strings.Contains(drop, want) {
			t.Errorf("drop-in lacks %q:\n%s", want, drop)
		}
	}
}

// TestRevokeToleratesAbsentAccount: pkill 1 (no process) and userdel 6 (no
// user) mean the account is already gone; other failures are errors. A
// name that could escape (root, a path) never reaches a command.
func TestRevokeToleratesAbsentAccount(t *testing.T) {
	t.Parallel()
	var ran [][]string
	exitWith := map[string]int{"pkill": 1, "userdel": 6}
	e, err := New(Config{PrincipalsDir: t.TempDir(), Run: func(_ context.Context, argv []string) error {
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

// TestLinuxExecutorForReal changes the machine (creates and deletes a user,
// writes /etc/ssh files); it runs only with GPUAAS_TEST_LINUX_EXECUTOR=1 as root.
func TestLinuxExecutorForReal(t *testing.T) {
	if os.Getenv("GPUAAS_TEST_LINUX_EXECUTOR") != "1" || os.Geteuid() != 0 {
		t.Skip("set GPUAAS_TEST_LINUX_EXECUTOR=1 and run as root: this test adds and removes a real user")
	}
	dir := t.TempDir()
	e, err := New(Config{SSHDDropIn: filepath.Join(dir, "50-gpuaas.conf"), PrincipalsDir: filepath.Join(dir, "principals"),
		UserCAFile: filepath.Join(dir, "ca.pub"), ReloadSSHD: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	name := "ga_linuxexectest1"
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb0+TxYiD1CkL3V7SpiGe2LeP8J0m6ZTxhrNdLk2F3p"
	ctx := context.Background()
	if err := e.ProvisionUser(ctx, nodetask.ProvisionUserParams{AllocationID: "a", Username: name,
		AuthorizedKeys: []string{key}, UserCAKey: key}); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(u.HomeDir, ".ssh", "authorized_keys"))
	if err != nil || !strings.Contains(string(b), key) {
		t.Fatalf("authorized_keys = %q, %v", b, err)
	}
	if err := e.RevokeUser(ctx, nodetask.RevokeUserParams{AllocationID: "a", Username: name}); err != nil {
		t.Fatal(err)
	}
	if _, err := user.Lookup(name); err == nil {
		t.Fatal("the account survived revoke")
	}
	if _, err := os.Stat(u.HomeDir); !os.IsNotExist(err) {
		t.Fatalf("home directory survived revoke: %v", err)
	}
}

// SSHHostKey is the host key file's content, "" when it cannot be read.
func TestSSHHostKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ssh_host_ed25519_key.pub")
	e, err := New(Config{HostKeyFile: path})
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
