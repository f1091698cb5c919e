package pki_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/core/fault"
)

// connMeta is the part of an SSH connection a server's CertChecker reads:
// the user name asked for.
type connMeta struct{ user string }

func (c connMeta) User() string          { return c.user }
func (c connMeta) SessionID() []byte     { return nil }
func (c connMeta) ClientVersion() []byte { return nil }
func (c connMeta) ServerVersion() []byte { return nil }
func (c connMeta) RemoteAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c connMeta) LocalAddr() net.Addr   { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func userKey(t *testing.T) (ssh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp, string(ssh.MarshalAuthorizedKey(sp))
}

func TestSSHUserCertificate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	ca, err := pki.NewSSHCA(pki.SSHConfig{}, pki.SSHDeps{KMS: f.kms, Secrets: f.secrets, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	caLine, err := ca.PublicKey(ctx)
	if err != nil || strings.ContainsAny(caLine, "\n") || !strings.HasPrefix(caLine, "ssh-ed25519 ") {
		t.Fatalf("PublicKey = %q, %v", caLine, err)
	}
	caKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(caLine))
	if err != nil {
		t.Fatal(err)
	}
	userPub, userLine := userKey(t)
	const principal = "gpu_0190a1b2"
	issued := f.clock.Now()
	certLine, err := ca.SignUserKey(ctx, userLine, principal, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, _, _, err := ssh.ParseAuthorizedKey([]byte(certLine))
	if err != nil {
		t.Fatal(err)
	}
	cert, ok := parsed.(*ssh.Certificate)
	if !ok {
		t.Fatalf("got a %T, not a certificate", parsed)
	}
	if cert.CertType != ssh.UserCert || !bytes.Equal(cert.Key.Marshal(), userPub.Marshal()) ||
		len(cert.ValidPrincipals) != 1 || cert.ValidPrincipals[0] != principal {
		t.Fatalf("certificate %+v", cert)
	}
	if len(cert.Permissions.Extensions) != 1 || cert.Permissions.Extensions["permit-pty"] != "" || len(cert.Permissions.CriticalOptions) != 0 {
		t.Fatalf("extensions %v, critical options %v; want permit-pty only", cert.Permissions.Extensions, cert.Permissions.CriticalOptions)
	}
	if cert.ValidAfter != uint64(issued.Add(-time.Minute).Unix()) || cert.ValidBefore != uint64(issued.Add(5*time.Minute).Unix()) {
		t.Fatalf("validity [%d, %d)", cert.ValidAfter, cert.ValidBefore)
	}
	other, _ := ca.SignUserKey(ctx, userLine, principal, 5*time.Minute)
	if otherCert, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(other)); otherCert.(*ssh.Certificate).Serial == cert.Serial {
		t.Fatal("two certificates share a serial")
	}

	// As a node's sshd sees it: trusts the CA key, checks at its clock.
	now := issued
	checker := func(trusted ssh.PublicKey) *ssh.CertChecker {
		return &ssh.CertChecker{
			IsUserAuthority: func(auth ssh.PublicKey) bool { return bytes.Equal(auth.Marshal(), trusted.Marshal()) },
			Clock:           func() time.Time { return now },
		}
	}
	otherCA, _ := pki.NewSSHCA(pki.SSHConfig{SecretName: "pki/other-ssh-ca"}, pki.SSHDeps{KMS: f.kms, Secrets: f.secrets, Clock: f.clock})
	otherLine, _ := otherCA.PublicKey(ctx)
	otherKey, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(otherLine))
	tests := []struct {
		name    string
		user    string
		at      time.Time
		trusted ssh.PublicKey
		ok      bool
	}{
		{"the principal", principal, issued, caKey, true},
		{"clock slightly behind", principal, issued.Add(-59 * time.Second), caKey, true},
		{"just before expiry", principal, issued.Add(5*time.Minute - time.Second), caKey, true},
		{"another principal", "root", issued, caKey, false},
		{"another allocation's user", "gpu_0190a1b3", issued, caKey, false},
		{"at expiry", principal, issued.Add(5 * time.Minute), caKey, false},
		{"after expiry", principal, issued.Add(time.Hour), caKey, false},
		{"before validity", principal, issued.Add(-2 * time.Minute), caKey, false},
		{"a node trusting another CA", principal, issued, otherKey, false},
	}
	for _, tc := range tests {
		now = tc.at
		_, err := checker(tc.trusted).Authenticate(connMeta{user: tc.user}, cert)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
	// A tampered certificate (principal swapped after signing) is refused.
	now = issued
	forged := *cert
	forged.ValidPrincipals = []string{"root"}
	if _, err := checker(caKey).Authenticate(connMeta{user: "root"}, &forged); err == nil {
		t.Error("a certificate altered after signing was accepted")
	}
}

func TestSSHSignRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	ca, err := pki.NewSSHCA(pki.SSHConfig{MaxTTL: 10 * time.Minute}, pki.SSHDeps{KMS: f.kms, Secrets: f.secrets, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	_, line := userKey(t)
	certLine, err := ca.SignUserKey(ctx, line, "gpu_a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key, principal string
		ttl                  time.Duration
		code                 fault.Code
	}{
		{"root principal ok shape but uppercase", line, "Root", time.Minute, fault.CodeValidationFailed},
		{"empty principal", line, "", time.Minute, fault.CodeValidationFailed},
		{"principal list", line, "a,b", time.Minute, fault.CodeValidationFailed},
		{"ttl over max", line, "gpu_a", 11 * time.Minute, fault.CodeValidationFailed},
		{"zero ttl", line, "gpu_a", 0, fault.CodeValidationFailed},
		{"garbage key", "ssh-ed25519 AAAA", "gpu_a", time.Minute, pki.CodeSSHKeyInvalid},
		{"two keys", line + line, "gpu_a", time.Minute, pki.CodeSSHKeyInvalid},
		{"a certificate", certLine, "gpu_a", time.Minute, pki.CodeSSHKeyInvalid},
	}
	for _, tc := range tests {
		out, err := ca.SignUserKey(ctx, tc.key, tc.principal, tc.ttl)
		if out != "" || fault.From(err).Code != tc.code || fault.KindOf(err) != fault.KindInvalid {
			t.Errorf("%s: %q, %v; want %s", tc.name, out, err, tc.code)
		}
	}
}
