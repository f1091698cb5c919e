package sandbox

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/nodetask"
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
