package devoidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/devoidc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/ports"
)

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "oidc-key.pem")
	k1, err := devoidc.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode(), err)
	}
	k2, err := devoidc.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
		t.Fatal("a second load made a new key instead of reading the file")
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := devoidc.LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file: %v, want a refusal", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := devoidc.LoadOrCreateKey(bad); err == nil {
		t.Fatal("garbage accepted as a key")
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(small)
	if err := os.WriteFile(bad, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := devoidc.LoadOrCreateKey(bad); err == nil {
		t.Fatal("a 1024-bit RSA key accepted")
	}
}

// A provider restarted with the same key file, state file and address keeps
// everyone signed in: access tokens verify against its JWKS, refresh tokens
// refresh, and what was revoked or rotated stays so.
func TestRestartKeepsSignIns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	keyFile, stateFile := filepath.Join(dir, "oidc-key.pem"), filepath.Join(dir, "oidc-sessions.json")
	addr := "127.0.0.1:0"
	var srv *devoidc.Server
	start := func() {
		t.Helper()
		key, err := devoidc.LoadOrCreateKey(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		srv, err = devoidc.Serve(devoidc.Config{RedirectURIs: []string{"http://127.0.0.1/cb"}, SigningKey: key, StateFile: stateFile}, addr)
		if err != nil {
			t.Fatal(err)
		}
		addr = srv.Addr().String()
	}
	restart := func() {
		t.Helper()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		start()
	}
	start()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	// Fresh clients and verifiers each time: nothing cached from before.
	client := func() *oidc.Client {
		c, err := oidc.NewClient(oidc.ClientConfig{Issuer: srv.Issuer(), ClientID: devoidc.DefaultClientID})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	verify := func(tok ports.Tokens) error {
		v, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: srv.Issuer(), Audience: devoidc.DefaultClientID})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(ctx, tok.AccessToken)
		return err
	}

	alice, err := client().PasswordLogin(ctx, "alice", "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := client().PasswordLogin(ctx, "bob", "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob2, err := client().Refresh(ctx, bob.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	carol, err := client().PasswordLogin(ctx, "admin", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := client().Revoke(ctx, carol.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(stateFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, %v; want 0600", st.Mode(), err)
	}
	state, _ := os.ReadFile(stateFile)
	for _, tok := range []ports.Tokens{alice, bob, bob2, carol} {
		if strings.Contains(string(state), tok.RefreshToken) {
			t.Fatal("the state file holds a refresh token in clear")
		}
	}

	restart()
	if err := verify(alice); err != nil {
		t.Fatalf("an access token from before the restart: %v", err)
	}
	alice2, err := client().Refresh(ctx, alice.RefreshToken)
	if err != nil {
		t.Fatalf("a refresh token from before the restart: %v", err)
	}
	if err := verify(alice2); err != nil {
		t.Fatal(err)
	}
	if _, err := client().Refresh(ctx, carol.RefreshToken); err == nil {
		t.Fatal("a session revoked before the restart came back")
	}
	// bob's first token was rotated before the restart: presenting it now is
	// reuse, which ends bob's session, newest token included.
	if _, err := client().Refresh(ctx, bob.RefreshToken); err == nil {
		t.Fatal("a rotated refresh token was accepted after the restart")
	}
	if _, err := client().Refresh(ctx, bob2.RefreshToken); err == nil {
		t.Fatal("the session survived the reuse of its rotated token")
	}

	restart()
	if _, err := client().Refresh(ctx, bob2.RefreshToken); err == nil {
		t.Fatal("a session revoked for reuse came back after a restart")
	}
	if _, err := client().Refresh(ctx, alice2.RefreshToken); err != nil {
		t.Fatalf("alice's rotated-in token after a second restart: %v", err)
	}

	if err := os.WriteFile(stateFile, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := devoidc.LoadOrCreateKey(keyFile)
	if _, err := devoidc.New(devoidc.Config{Issuer: srv.Issuer(), RedirectURIs: []string{"http://127.0.0.1/cb"}, SigningKey: key,
		StateFile: stateFile}); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("a corrupt state file: %v, want an error saying what to do", err)
	}
}
