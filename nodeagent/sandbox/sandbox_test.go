package sandbox

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

func newKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

// certFor signs a user certificate for principal with the CA.
func certFor(t *testing.T, ca ssh.Signer, user ssh.Signer, principal string, valid time.Duration) ssh.Signer {
	t.Helper()
	c := &ssh.Certificate{Key: user.PublicKey(), CertType: ssh.UserCert, ValidPrincipals: []string{principal},
		ValidAfter: uint64(time.Now().Add(-time.Minute).Unix()), ValidBefore: uint64(time.Now().Add(valid).Unix()),
		Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}}}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	cs, err := ssh.NewCertSigner(c, user)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func start(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dial(s *Server, user string, signer ssh.Signer) (*ssh.Client, error) {
	return ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostPublicKey()), Timeout: 5 * time.Second})
}

func TestSandboxLogins(t *testing.T) {
	t.Parallel()
	s := start(t)
	ctx := context.Background()
	ca, caLine := newKey(t)
	userKey, userLine := newKey(t)
	const acct, other = "ga_sandbox0001", "ga_sandbox0002"
	if err := s.ProvisionUser(ctx, nodetask.ProvisionUserParams{AllocationID: "a", Username: acct,
		AuthorizedKeys: []string{userLine}, UserCAKey: caLine}); err != nil {
		t.Fatal(err)
	}
	if err := s.ProvisionUser(ctx, nodetask.ProvisionUserParams{AllocationID: "b", Username: other,
		AuthorizedKeys: []string{userLine}}); err != nil {
		t.Fatal(err)
	}
	stranger, _ := newKey(t)
	cases := []struct {
		name   string
		user   string
		signer ssh.Signer
		ok     bool
	}{
		{"authorized key", acct, userKey, true},
		{"certificate for the account", acct, certFor(t, ca, stranger, acct, time.Hour), true},
		{"certificate for another principal", acct, certFor(t, ca, stranger, other, time.Hour), false},
		{"expired certificate", acct, certFor(t, ca, stranger, acct, -30*time.Second), false},
		{"certificate on an account without a trusted CA", other, certFor(t, ca, stranger, other, time.Hour), false},
		{"certificate from another CA", acct, certFor(t, stranger, stranger, acct, time.Hour), false},
		{"unknown key", acct, stranger, false},
		{"unknown account", "ga_nosuchacct1", userKey, false},
	}
	for _, tc := range cases {
		c, err := dial(s, tc.user, tc.signer)
		if (err == nil) != tc.ok {
			t.Errorf("%s: login err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if c != nil {
			c.Close()
		}
	}
}

// TestSandboxShellAndRevoke: an interactive pty shell runs in the
// account's home; revoke kills it, wipes the home and refuses new logins.
func TestSandboxShellAndRevoke(t *testing.T) {
	t.Parallel()
	s := start(t)
	ctx := context.Background()
	key, line := newKey(t)
	const acct = "ga_sandbox0003"
	if err := s.ProvisionUser(ctx, nodetask.ProvisionUserParams{AllocationID: "a", Username: acct,
		AuthorizedKeys: []string{line}}); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(s.cfg.Root, "home", acct)
	c, err := dial(s, acct, key)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 40, 100, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	var out syncBuffer
	sess.Stdout = &out
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write([]byte("echo marker-$((6*7)) > f.txt; pwd; tty\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), home) || !strings.Contains(out.String(), "/dev/pts/") {
		if time.Now().After(deadline) {
			t.Fatalf("shell output %q lacks the home directory or a tty", out.String())
		}
		time.Sleep(10 * time.Millisecond) // polling output with a deadline
	}
	if b, err := os.ReadFile(filepath.Join(home, "f.txt")); err != nil || string(b) != "marker-42\n" {
		t.Fatalf("file written in home: %q, %v", b, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()
	if err := s.RevokeUser(ctx, nodetask.RevokeUserParams{AllocationID: "a", Username: acct}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("the shell survived revoke")
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("home survived revoke: %v", err)
	}
	if c2, err := dial(s, acct, key); err == nil {
		c2.Close()
		t.Fatal("login accepted after revoke")
	}
	if err := s.RevokeUser(ctx, nodetask.RevokeUserParams{AllocationID: "a", Username: acct}); err != nil {
		t.Fatalf("revoke is not idempotent: %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The key the agent reports is the one the server presents.
func TestSandboxReportsHostKey(t *testing.T) {
	s := start(t)
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.SSHHostKey()))
	if err != nil || string(k.Marshal()) != string(s.HostPublicKey().Marshal()) {
		t.Fatalf("SSHHostKey %q does not match the host key: %v", s.SSHHostKey(), err)
	}
}

// publicRoot is a sandbox root that other users can reach (t.TempDir's
// parents are private), so a root sandbox switches users.
func publicRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gpuaas-sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func startAt(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func provision(t *testing.T, s *Server, acct, keyLine string) {
	t.Helper()
	if err := s.ProvisionUser(context.Background(), nodetask.ProvisionUserParams{AllocationID: "a-" + acct,
		Username: acct, AuthorizedKeys: []string{keyLine}}); err != nil {
		t.Fatal(err)
	}
}

// execOut runs one command over SSH and returns its output.
func execOut(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, out)
	}
	return string(out)
}

func pidAlive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	return err == nil && !strings.Contains(string(b), "State:\tZ")
}

// TestSandboxReleaseEndsEveryProcess: a shell running a foreground sleep,
// a nohup'd loop and a setsid'd loop that ignores SIGTERM — revoke ends all
// of them within the grace period plus seconds, and nothing of the account
// survives.
func TestSandboxReleaseEndsEveryProcess(t *testing.T) {
	t.Parallel()
	for _, identity := range []string{IdentityAgent, IdentityAuto} {
		t.Run(identity, func(t *testing.T) {
			t.Parallel()
			s := startAt(t, Config{Root: publicRoot(t), Identity: identity})
			key, line := newKey(t)
			const acct = "ga_sandbox0010"
			provision(t, s, acct, line)
			c, err := dial(s, acct, key)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			execOut(t, c, `nohup sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 &
setsid sh -c 'trap "" TERM HUP; while :; do sleep 1; done' </dev/null >/dev/null 2>&1 &
echo started`)
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
				t.Fatal(err)
			}
			in, _ := sess.StdinPipe()
			var out syncBuffer
			sess.Stdout = &out
			if err := sess.Shell(); err != nil {
				t.Fatal(err)
			}
			_, _ = in.Write([]byte("sleep 600\n"))
			var pids []int
			poll.Until(t, 10*time.Second, "the account's processes", func() bool {
				pids, _ = s.Processes(acct)
				return len(pids) >= 5 // shell, sleep 600, two loops (and their sleeps)
			})
			start := time.Now()
			if err := s.RevokeUser(context.Background(), nodetask.RevokeUserParams{AllocationID: "a", Username: acct,
				GraceSeconds: 1}); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 6*time.Second {
				t.Fatalf("revoke took %v; want within the 1 s grace period + 5 s", d)
			}
			for _, p := range pids {
				if pidAlive(p) {
					t.Fatalf("pid %d of the account survived revoke", p)
				}
			}
			if left, _ := s.Processes(acct); len(left) != 0 {
				t.Fatalf("processes left: %v", left)
			}
			if s.users.enabled && s.users.uidOf(acct) >= 0 {
				t.Fatal("the OS user survived revoke")
			}
		})
	}
}

// TestSandboxIdentity: as root the shell is the allocation's own OS user
// with an absolute HOME; otherwise the agent's user, honestly reported.
func TestSandboxIdentity(t *testing.T) {
	t.Parallel()
	s := startAt(t, Config{Root: publicRoot(t)})
	key, line := newKey(t)
	const acct = "ga_sandbox0011"
	provision(t, s, acct, line)
	c, err := dial(s, acct, key)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := strings.Fields(execOut(t, c, `echo "$USER $HOME"; whoami; id -u; cd && pwd`))
	if len(f) != 5 {
		t.Fatalf("output %q", f)
	}
	home := filepath.Join(s.cfg.Root, "home", acct)
	if f[0] != acct || f[1] != home || !filepath.IsAbs(f[1]) || f[4] != home {
		t.Fatalf("USER/HOME/cd: %q; want %s %s", f, acct, home)
	}
	if os.Geteuid() == 0 {
		if !s.users.enabled {
			t.Fatal("a root sandbox with a reachable root did not switch users")
		}
		if f[2] != acct || f[3] == "0" {
			t.Fatalf("whoami %q, uid %s; want %s, not root", f[2], f[3], acct)
		}
		fi, err := os.Stat(home)
		if err != nil || fi.Sys().(*syscall.Stat_t).Uid == 0 || fi.Mode().Perm() != 0o700 {
			t.Fatalf("home %v %v: want owned by the account, 0700", fi, err)
		}
	} else if f[3] != strconv.Itoa(os.Geteuid()) {
		t.Fatalf("uid %s; want the agent's %d", f[3], os.Geteuid())
	}
	if err := s.RevokeUser(context.Background(), nodetask.RevokeUserParams{AllocationID: "a", Username: acct}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.users.lookup(acct); ok {
		t.Fatal("the OS user survived revoke")
	}
}

// TestSandboxDisconnectHangsUp: closing the SSH connection hangs the shell
// up, as sshd does; the foreground command dies with it.
func TestSandboxDisconnectHangsUp(t *testing.T) {
	t.Parallel()
	s := start(t)
	key, line := newKey(t)
	const acct = "ga_sandbox0012"
	provision(t, s, acct, line)
	c, err := dial(s, acct, key)
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := c.NewSession()
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	_, _ = in.Write([]byte("sleep 600\n"))
	poll.Until(t, 10*time.Second, "the shell and its sleep", func() bool { p, _ := s.Processes(acct); return len(p) >= 2 })
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := s.Processes(acct)
		if len(p) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range p {
				st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
				cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Logf("left: pid %d %q\n%s", pid, cl, st)
			}
			t.Fatal("the hang-up did not end the shell and its sleep within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSandboxTerminalSessionResumes: the browser-terminal subsystem keeps
// the session when the connection drops and resumes it on a new one.
func TestSandboxTerminalSessionResumes(t *testing.T) {
	t.Parallel()
	s := start(t)
	key, line := newKey(t)
	const acct = "ga_sandbox0013"
	provision(t, s, acct, line)
	open := func(mode string) (*ssh.Client, io.ReadWriter) {
		c, err := dial(s, acct, key)
		if err != nil {
			t.Fatal(err)
		}
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			t.Fatal(err)
		}
		go ssh.DiscardRequests(reqs)
		ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{terminal.SessionSubsystem}))
		if err != nil || !ok {
			t.Fatalf("subsystem refused: %v", err)
		}
		if err := terminal.WriteJSONFrame(ch, terminal.FrameHello, terminal.Hello{SessionID: "sess-sandbox-1",
			Mode: mode, Cols: 80, Rows: 24}); err != nil {
			t.Fatal(err)
		}
		return c, ch
	}
	readUntil := func(ch io.Reader, want string) {
		t.Helper()
		fr := terminal.NewFrameReader(ch)
		var out strings.Builder
		for !strings.Contains(out.String(), want) {
			typ, p, err := fr.Next()
			if err != nil {
				t.Fatalf("%v before %q; got %q", err, want, out.String())
			}
			if typ == terminal.FrameData {
				out.Write(p)
			}
		}
	}
	c1, ch1 := open(terminal.ModeNew)
	_ = terminal.WriteFrame(ch1, terminal.FrameData, []byte("echo first-$((2*3))\n"))
	readUntil(ch1, "first-6")
	_ = terminal.WriteFrame(ch1, terminal.FrameData, []byte("sleep 0.5; echo second-$((3*3))\n"))
	c1.Close()
	poll.Until(t, 10*time.Second, "the session to detach", func() bool {
		ss := s.TerminalSessions(acct)
		return len(ss) == 1 && !ss[0].Attached
	})
	c2, ch2 := open(terminal.ModeResume)
	defer c2.Close()
	readUntil(ch2, "second-9")
}

// TestSandboxRestartKeepsAccounts: a sandbox started again on the same
// root lets provisioned accounts back in.
func TestSandboxRestartKeepsAccounts(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	s1, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Start(); err != nil {
		t.Fatal(err)
	}
	key, line := newKey(t)
	const acct = "ga_sandbox0014"
	provision(t, s1, acct, line)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := startAt(t, Config{Root: root})
	c, err := dial(s2, acct, key)
	if err != nil {
		t.Fatalf("login after a restart: %v", err)
	}
	c.Close()
	if err := s2.RevokeUser(context.Background(), nodetask.RevokeUserParams{AllocationID: "a", Username: acct}); err != nil {
		t.Fatal(err)
	}
	s3 := startAt(t, Config{Root: root})
	if c, err := dial(s3, acct, key); err == nil {
		c.Close()
		t.Fatal("a revoked account came back after a restart")
	}
}

// TestSandboxStopKeepsTheHome: stop_user ends every process and refuses
// logins, but the home and its files stay until revoke_user.
func TestSandboxStopKeepsTheHome(t *testing.T) {
	t.Parallel()
	s := start(t)
	key, line := newKey(t)
	const acct = "ga_sandbox0015"
	provision(t, s, acct, line)
	c, err := dial(s, acct, key)
	if err != nil {
		t.Fatal(err)
	}
	execOut(t, c, `echo kept > result.txt; nohup sh -c 'while :; do date >> log.txt; sleep 1; done' >/dev/null 2>&1 & echo ok`)
	poll.Until(t, 10*time.Second, "the loop", func() bool { p, _ := s.Processes(acct); return len(p) >= 1 })
	if err := s.StopUser(context.Background(), nodetask.StopUserParams{AllocationID: "a", Username: acct, GraceSeconds: 1}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Processes(acct); len(p) != 0 {
		t.Fatalf("processes after stop: %v", p)
	}
	if c2, err := dial(s, acct, key); err == nil {
		c2.Close()
		t.Fatal("login accepted after stop")
	}
	home := filepath.Join(s.cfg.Root, "home", acct)
	if b, err := os.ReadFile(filepath.Join(home, "result.txt")); err != nil || string(b) != "kept\n" {
		t.Fatalf("the home lost its files at stop: %q, %v", b, err)
	}
	if err := s.RevokeUser(context.Background(), nodetask.RevokeUserParams{AllocationID: "a", Username: acct}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("home survived revoke: %v", err)
	}
}
