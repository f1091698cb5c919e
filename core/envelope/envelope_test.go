package envelope_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/core/envelope"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// testKMS wraps data keys with AES-GCM under a key of its own, as the
// keyfile adapter does; core tests may not import adapters.
type testKMS struct {
	id   string
	aead cipher.AEAD
	down bool
}

var _ ports.KMS = (*testKMS)(nil)

func newTestKMS(t testing.TB, id string) *testKMS {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return newTestKMSWithKey(t, id, key)
}

// newTestKMSWithKey is for fuzz targets: the coordinator and every worker
// process must agree on the key, or seeds sealed in one do not open in
// another.
func newTestKMSWithKey(t testing.TB, id string, key []byte) *testKMS {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return &testKMS{id: id, aead: aead}
}

func (k *testKMS) KeyID() string { return k.id }

func (k *testKMS) Encrypt(_ context.Context, pt []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return k.aead.Seal(nonce, nonce, pt, []byte(k.id)), nil
}

func (k *testKMS) Decrypt(_ context.Context, keyID string, ct []byte) ([]byte, error) {
	if k.down {
		return nil, fault.Unavailable("kms down", nil)
	}
	if keyID != k.id {
		return nil, fmt.Errorf("unknown key %q", keyID)
	}
	if len(ct) < k.aead.NonceSize() {
		return nil, errors.New("short")
	}
	return k.aead.Open(nil, ct[:k.aead.NonceSize()], ct[k.aead.NonceSize():], []byte(k.id))
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kms := newTestKMS(t, "key-1")
	for _, size := range []int{0, 1, 31, 32, 1000, 64 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			pt := make([]byte, size)
			_, _ = rand.Read(pt)
			sealed, err := envelope.Seal(ctx, kms, pt, []byte("pki/root"))
			if err != nil {
				t.Fatal(err)
			}
			if size >= 16 && bytes.Contains(sealed, pt) {
				t.Fatal("plaintext appears in the envelope")
			}
			e, err := envelope.Parse(sealed)
			if err != nil || e.KeyID != "key-1" || e.Version != envelope.Version1 {
				t.Fatalf("Parse = %+v, %v", e, err)
			}
			if len(e.Ciphertext) != size+16 {
				t.Fatalf("ciphertext is %d bytes; want %d", len(e.Ciphertext), size+16)
			}
			re, err := e.Marshal()
			if err != nil || !bytes.Equal(re, sealed) {
				t.Fatalf("Marshal(Parse(x)) != x (err %v)", err)
			}
			got, err := envelope.Open(ctx, kms, sealed, []byte("pki/root"))
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Open = %x, %v", got, err)
			}
		})
	}
}

func TestSealUsesFreshKeyAndNonce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kms := newTestKMS(t, "k")
	a, _ := envelope.Seal(ctx, kms, []byte("same secret"), []byte("n"))
	b, _ := envelope.Seal(ctx, kms, []byte("same secret"), []byte("n"))
	ea, _ := envelope.Parse(a)
	eb, _ := envelope.Parse(b)
	if bytes.Equal(ea.Nonce, eb.Nonce) || bytes.Equal(ea.WrappedKey, eb.WrappedKey) || bytes.Equal(ea.Ciphertext, eb.Ciphertext) {
		t.Fatal("two seals of one plaintext share a nonce, data key or ciphertext")
	}
}

// Flipping any single bit anywhere in the envelope must make Open refuse
// with the decrypt code: the header is authenticated as additional data.
func TestEveryFlippedByteIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kms := newTestKMS(t, "key-1")
	secret := []byte("-----BEGIN PRIVATE KEY----- canary")
	sealed, err := envelope.Seal(ctx, kms, secret, []byte("name"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(sealed)
			bad[i] ^= mask
			pt, err := envelope.Open(ctx, kms, bad, []byte("name"))
			if err == nil {
				t.Fatalf("byte %d ^ %#x: opened (%q)", i, mask, pt)
			}
			if !errors.Is(err, envelope.ErrDecrypt) {
				t.Fatalf("byte %d ^ %#x: err %v; want %s", i, mask, err, envelope.CodeDecryptFailed)
			}
			if strings.Contains(err.Error(), "canary") {
				t.Fatalf("error carries plaintext: %v", err)
			}
		}
	}
	// Truncation and extension are tampering too.
	for _, bad := range [][]byte{sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0), sealed[:10], nil} {
		if _, err := envelope.Open(ctx, kms, bad, []byte("name")); !errors.Is(err, envelope.ErrDecrypt) {
			t.Fatalf("len %d: err %v; want decrypt failure", len(bad), err)
		}
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kms := newTestKMS(t, "key-1")
	sealed, err := envelope.Seal(ctx, kms, []byte("s3cret"), []byte("pki/root"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey := newTestKMS(t, "key-1") // same id, different key material
	otherID := newTestKMS(t, "key-2")
	tests := []struct {
		name string
		kms  ports.KMS
		aad  string
	}{
		{"wrong aad", kms, "pki/intermediate"},
		{"empty aad", kms, ""},
		{"aad prefix", kms, "pki/roo"},
		{"wrong key material", otherKey, "pki/root"},
		{"wrong key id", otherID, "pki/root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pt, err := envelope.Open(ctx, tc.kms, sealed, []byte(tc.aad))
			if !errors.Is(err, envelope.ErrDecrypt) || pt != nil {
				t.Fatalf("Open = %q, %v; want decrypt failure", pt, err)
			}
			if f := fault.From(err); f.Code != envelope.CodeDecryptFailed || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("fault %+v", f)
			}
		})
	}
}

// A KMS outage is not a broken secret: callers must be able to retry.
func TestKMSUnavailablePassesThrough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kms := newTestKMS(t, "k")
	sealed, _ := envelope.Seal(ctx, kms, []byte("x"), nil)
	kms.down = true
	_, err := envelope.Open(ctx, kms, sealed, nil)
	if !fault.IsKind(err, fault.KindUnavailable) || errors.Is(err, envelope.ErrDecrypt) {
		t.Fatalf("err %v; want unavailable", err)
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	t.Parallel()
	valid := func() []byte {
		sealed, _ := envelope.Seal(context.Background(), newTestKMS(t, "kid"), []byte("x"), nil)
		return sealed
	}()
	tests := map[string][]byte{
		"empty":            {},
		"version 0":        append([]byte{0}, valid[1:]...),
		"version 2":        append([]byte{2}, valid[1:]...),
		"zero key id":      {1, 0, 0, 1, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"key id too long":  append([]byte{1, 200}, valid[2:]...),
		"no ciphertext":    valid[:len(valid)-17],
		"zero wrapped len": {1, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for name, b := range tests {
		if _, err := envelope.Parse(b); !errors.Is(err, envelope.ErrDecrypt) {
			t.Errorf("%s: Parse err %v; want decrypt failure", name, err)
		}
	}
}

// FuzzParse: the decoder never panics, and whatever it accepts re-encodes
// to exactly the input (one byte string, one envelope).
func FuzzParse(f *testing.F) {
	kms := newTestKMS(f, "fuzz-key")
	for _, pt := range []string{"", "a", "a longer secret value"} {
		sealed, err := envelope.Seal(context.Background(), kms, []byte(pt), []byte("ctx"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed)
	}
	f.Add([]byte{1, 1, 'k', 0, 1, 'w'})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := envelope.Parse(b)
		if err != nil {
			if !errors.Is(err, envelope.ErrDecrypt) {
				t.Fatalf("Parse error %v does not match ErrDecrypt", err)
			}
			return
		}
		re, err := e.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("Marshal(Parse(b)) = %x, %v; want %x", re, err, b)
		}
	})
}

// fuzzSealed is "the secret" sealed with context "ctx" under the fixed fuzz
// key. It is a constant so that every fuzz process agrees on the one
// envelope that may open.
const fuzzSealed = "010866757a7a2d6b6579003c6e2b131a1b335e86deab06e854c0973783c414d7c5649153ff82805b331efee9a118296b76e8c1c4710d38c05f4971f9609a90f314a968e8359ac0d4c0a215abf0a9542609cc61396cd48f0190ddd1464aaa4516bf2a2705aea3ba61f7f02b07b340"

// FuzzOpen: arbitrary input never panics Open and never opens, except the
// one envelope that was sealed.
func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	kms := newTestKMSWithKey(f, "fuzz-key", bytes.Repeat([]byte{7}, 32))
	sealed, err := hex.DecodeString(fuzzSealed)
	if err != nil {
		f.Fatal(err)
	}
	if pt, err := envelope.Open(ctx, kms, sealed, []byte("ctx")); err != nil || string(pt) != "the secret" {
		f.Fatalf("fixed envelope does not open: %q, %v", pt, err)
	}
	f.Add(sealed)
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := envelope.Open(ctx, kms, b, []byte("ctx"))
		if err == nil && (!bytes.Equal(b, sealed) || string(pt) != "the secret") {
			t.Fatalf("opened a forged envelope %x → %q", b, pt)
		}
		if err != nil && !errors.Is(err, envelope.ErrDecrypt) {
			t.Fatalf("err %v does not match ErrDecrypt", err)
		}
	})
}
