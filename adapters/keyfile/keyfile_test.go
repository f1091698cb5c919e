package keyfile_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/core/envelope"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

func TestKMSCreatesKeyFileOnFirstUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "kms.key")
	k1, err := keyfile.NewKMS(keyfile.KMSConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("key file %v, mode %v, size %d; want 0600 and 32 bytes", err, st.Mode().Perm(), st.Size())
	}
	if !strings.HasPrefix(k1.KeyID(), "keyfile:") || len(k1.KeyID()) != len("keyfile:")+32 {
		t.Fatalf("key id %q", k1.KeyID())
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(k1.KeyID(), string(raw)) {
		t.Fatal("key id contains the key")
	}
	// A restart reads the same key: same id, and it opens what the first sealed.
	sealed, err := envelope.Seal(ctx, k1, []byte("ca key"), []byte("pki/root"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := keyfile.NewKMS(keyfile.KMSConfig{Path: path, NoCreate: true})
	if err != nil || k2.KeyID() != k1.KeyID() {
		t.Fatalf("reopen: %v, id %q vs %q", err, k2.KeyID(), k1.KeyID())
	}
	if pt, err := envelope.Open(ctx, k2, sealed, []byte("pki/root")); err != nil || string(pt) != "ca key" {
		t.Fatalf("Open after restart = %q, %v", pt, err)
	}
	// Another key file is another key: it refuses the envelope.
	other, err := keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(t.TempDir(), "other.key")})
	if err != nil || other.KeyID() == k1.KeyID() {
		t.Fatalf("other key: %v, id %q", err, other.KeyID())
	}
	if _, err := envelope.Open(ctx, other, sealed, []byte("pki/root")); !errors.Is(err, envelope.ErrDecrypt) {
		t.Fatalf("Open under another key: %v; want decrypt failure", err)
	}
}

func TestKMSDecryptRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k, err := keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(t.TempDir(), "kms.key")})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := k.Encrypt(ctx, []byte("data key"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k.Decrypt(ctx, k.KeyID(), ct); err != nil || string(pt) != "data key" {
		t.Fatalf("Decrypt = %q, %v", pt, err)
	}
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name  string
		keyID string
		ct    []byte
		code  fault.Code
	}{
		{"other key id", "keyfile:00", ct, "kms_key_unknown"},
		{"tampered", k.KeyID(), flipped, "kms_ciphertext_invalid"},
		{"short", k.KeyID(), ct[:5], "kms_ciphertext_invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pt, err := k.Decrypt(ctx, tc.keyID, tc.ct)
			if pt != nil || fault.From(err).Code != tc.code {
				t.Fatalf("Decrypt = %q, %v; want code %s", pt, err, tc.code)
			}
		})
	}
}

func TestKMSRefusesBadKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := bytes.Repeat([]byte{1}, 32)
	tests := map[string]keyfile.KMSConfig{
		"no path":           {},
		"missing, NoCreate": {Path: filepath.Join(dir, "absent"), NoCreate: true},
		"group readable":    {Path: write("group", key, 0o640)},
		"world readable":    {Path: write("world", key, 0o604)},
		"short":             {Path: write("short", key[:31], 0o600)},
		"long":              {Path: write("long", append(key, 0), 0o600)},
		"directory":         {Path: dir},
	}
	for name, cfg := range tests {
		if _, err := keyfile.NewKMS(cfg); err == nil {
			t.Errorf("%s: NewKMS succeeded", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Error("NoCreate created the key file")
	}
}

// Processes starting together must agree on one key: the file is linked
// into place atomically and losers read the winner's.
func TestKMSConcurrentFirstUseAgrees(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kms.key")
	const n = 16
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := keyfile.NewKMS(keyfile.KMSConfig{Path: path})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = k.KeyID()
		}()
	}
	wg.Wait()
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("starters disagree on the key: %q vs %q", ids[i], ids[0])
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries; temporary files were left behind", len(entries))
	}
}

func TestSignerCreatesAndReloadsKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "signer.pem")
	s1, err := keyfile.NewSigner(keyfile.SignerConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v mode %v", err, st.Mode().Perm())
	}
	pub, ok := s1.Public().(ed25519.PublicKey)
	if !ok {
		t.Fatalf("Public is %T", s1.Public())
	}
	msg := []byte("task envelope")
	sig, err := s1.Sign(ctx, msg)
	if err != nil || !ed25519.Verify(pub, msg, sig) {
		t.Fatalf("signature does not verify (err %v)", err)
	}
	if ed25519.Verify(pub, []byte("task envelopf"), sig) {
		t.Fatal("signature verifies another message")
	}
	s2, err := keyfile.NewSigner(keyfile.SignerConfig{Path: path, NoCreate: true})
	if err != nil || s2.KeyID() != s1.KeyID() || !pub.Equal(s2.Public()) {
		t.Fatalf("reload: %v; ids %q %q", err, s1.KeyID(), s2.KeyID())
	}
	if s1.KeyID() != keyfile.SignerKeyID(pub) || !strings.HasPrefix(s1.KeyID(), "ed25519:") {
		t.Fatalf("key id %q", s1.KeyID())
	}
	s3, _ := keyfile.NewSigner(keyfile.SignerConfig{Path: filepath.Join(t.TempDir(), "other.pem")})
	if s3.KeyID() == s1.KeyID() {
		t.Fatal("two keys share an id")
	}
}

// A key made by other tools (openssl genpkey -algorithm ed25519) loads; a
// key of another algorithm or a garbled file is refused.
func TestSignerKeyFileFormats(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pemOf := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	s, err := keyfile.NewSigner(keyfile.SignerConfig{Path: write("ed.pem", pemOf(edKey))})
	if err != nil || !edKey.Public().(ed25519.PublicKey).Equal(s.Public()) {
		t.Fatalf("external ed25519 key: %v", err)
	}
	for name, b := range map[string][]byte{
		"ecdsa":     pemOf(ecKey),
		"garbage":   []byte("not a key"),
		"two keys":  append(pemOf(edKey), pemOf(edKey)...),
		"wrong pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
	} {
		if _, err := keyfile.NewSigner(keyfile.SignerConfig{Path: write(name, b)}); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestModules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var (
		kms    ports.KMS
		signer ports.Signer
	)
	app := fx.New(
		fx.NopLogger,
		fx.Supply(
			keyfile.KMSConfig{Path: filepath.Join(dir, "kms.key")},
			keyfile.SignerConfig{Path: filepath.Join(dir, "signer.pem")},
		),
		keyfile.KMSModule,
		keyfile.SignerModule,
		fx.Populate(&kms, &signer),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if kms.KeyID() == "" || signer.KeyID() == "" {
		t.Fatal("modules provided empty ports")
	}
}
