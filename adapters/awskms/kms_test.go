package awskms_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/awskms"
	"github.com/gpuaas/gpuaas/core/envelope"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

const keyARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// fakeKMS speaks the KMS JSON 1.1 protocol for Encrypt and Decrypt over a
// real AES-GCM key, binding blobs to their key and encryption context as
// KMS does, so the SDK's serialisation, signing and error decoding all run.
type fakeKMS struct {
	aead     cipher.AEAD
	fail     atomic.Value // string: an error type to answer with, or "500"
	calls    atomic.Int32
	lastAuth atomic.Value // string
}

func newFakeKMS(t *testing.T) (*fakeKMS, *httptest.Server) {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	f := &fakeKMS{aead: aead}
	f.fail.Store("")
	srv := httptest.NewServer(f) // httptest binds 127.0.0.1
	t.Cleanup(srv.Close)
	return f, srv
}

type kmsRequest struct {
	KeyID             string            `json:"KeyId"`
	Plaintext         []byte            `json:"Plaintext"`
	CiphertextBlob    []byte            `json:"CiphertextBlob"`
	EncryptionContext map[string]string `json:"EncryptionContext"`
}

func (f *fakeKMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	f.lastAuth.Store(r.Header.Get("Authorization"))
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	fail := func(status int, typ string) {
		w.Header().Set("X-Amzn-ErrorType", typ)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": "fake: " + typ})
	}
	if v := f.fail.Load().(string); v == "500" {
		fail(500, "KMSInternalException")
		return
	} else if v != "" {
		fail(400, v)
		return
	}
	var req kmsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(400, "SerializationException")
		return
	}
	ctxJSON, _ := json.Marshal(req.EncryptionContext) // map keys sort: canonical
	switch r.Header.Get("X-Amz-Target") {
	case "TrentService.Encrypt":
		if req.KeyID != keyARN {
			fail(400, "NotFoundException")
			return
		}
		nonce := make([]byte, 12)
		_, _ = rand.Read(nonce)
		blob := binary.BigEndian.AppendUint16(nil, uint16(len(keyARN)))
		blob = append(append(blob, keyARN...), nonce...)
		blob = f.aead.Seal(blob, nonce, req.Plaintext, append([]byte(keyARN), ctxJSON...))
		_ = json.NewEncoder(w).Encode(map[string]any{"CiphertextBlob": blob, "KeyId": keyARN, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	case "TrentService.Decrypt":
		b := req.CiphertextBlob
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b))+12 {
			fail(400, "InvalidCiphertextException")
			return
		}
		n := int(binary.BigEndian.Uint16(b))
		blobKey, nonce, ct := string(b[2:2+n]), b[2+n:2+n+12], b[2+n+12:]
		if req.KeyID != "" && req.KeyID != blobKey {
			fail(400, "IncorrectKeyException")
			return
		}
		pt, err := f.aead.Open(nil, nonce, ct, append([]byte(blobKey), ctxJSON...))
		if err != nil {
			fail(400, "InvalidCiphertextException")
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"Plaintext": pt, "KeyId": blobKey, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	default:
		fail(400, "UnknownOperationException")
	}
}

func newKMS(t *testing.T, srv *httptest.Server, mutate func(*awskms.Config)) *awskms.KMS {
	t.Helper()
	cfg := awskms.Config{
		KeyID: keyARN, Region: "eu-west-1", Endpoint: srv.URL, MaxAttempts: 1, Timeout: 10 * time.Second,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret", ""),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	k, err := awskms.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEnvelopeOverAWSKMS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake, srv := newFakeKMS(t)
	k := newKMS(t, srv, nil)
	if k.KeyID() != keyARN {
		t.Fatalf("KeyID %q", k.KeyID())
	}
	sealed, err := envelope.Seal(ctx, k, []byte("root CA key"), []byte("pki/root"))
	if err != nil {
		t.Fatal(err)
	}
	if auth, _ := fake.lastAuth.Load().(string); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(auth, "/eu-west-1/kms/") {
		t.Fatalf("request not SigV4-signed for kms in eu-west-1: %q", auth)
	}
	pt, err := envelope.Open(ctx, k, sealed, []byte("pki/root"))
	if err != nil || string(pt) != "root CA key" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	// Another encryption context cannot unwrap the data key.
	other := newKMS(t, srv, func(c *awskms.Config) { c.EncryptionContext = map[string]string{"gpuaas:purpose": "other"} })
	if _, err := envelope.Open(ctx, other, sealed, []byte("pki/root")); !errors.Is(err, envelope.ErrDecrypt) {
		t.Fatalf("Open under another encryption context: %v; want decrypt failure", err)
	}
}

func TestErrorTranslation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake, srv := newFakeKMS(t)
	k := newKMS(t, srv, nil)
	blob, err := k.Encrypt(ctx, []byte("data key"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(blob)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name  string
		fail  string
		keyID string
		blob  []byte
		kind  fault.Kind
		code  fault.Code
	}{
		{"tampered blob", "", keyARN, tampered, fault.KindInternal, awskms.CodeCiphertextInvalid},
		{"another key's blob", "", keyARN + "-other", blob, fault.KindInternal, awskms.CodeCiphertextInvalid},
		{"empty blob", "", keyARN, nil, fault.KindInternal, awskms.CodeCiphertextInvalid},
		{"disabled key", "DisabledException", keyARN, blob, fault.KindInternal, awskms.CodeKeyUnusable},
		{"deleted key", "KMSInvalidStateException", keyARN, blob, fault.KindInternal, awskms.CodeKeyUnusable},
		{"access denied", "AccessDeniedException", keyARN, blob, fault.KindInternal, awskms.CodeKeyUnusable},
		{"throttled", "ThrottlingException", keyARN, blob, fault.KindUnavailable, fault.CodeUnavailable},
		{"KMS internal error", "500", keyARN, blob, fault.KindUnavailable, fault.CodeUnavailable},
	}
	for _, tc := range tests {
		fake.fail.Store(tc.fail)
		pt, err := k.Decrypt(ctx, tc.keyID, tc.blob)
		if f := fault.From(err); pt != nil || err == nil || f.Kind != tc.kind || f.Code != tc.code {
			t.Errorf("%s: %q, %v; want %s/%s", tc.name, pt, err, tc.kind, tc.code)
		}
	}
	fake.fail.Store("")
	// Unknown key on Encrypt: operator problem.
	bad := newKMS(t, srv, func(c *awskms.Config) { c.KeyID = "arn:aws:kms:eu-west-1:111122223333:key/absent" })
	if _, err := bad.Encrypt(ctx, []byte("x")); fault.From(err).Code != awskms.CodeKeyUnusable {
		t.Errorf("unknown key: %v", err)
	}
}

// A KMS outage reaches callers as Unavailable, after the configured
// attempts, and the envelope passes it through so they can retry.
func TestOutageIsRetriedThenUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake, srv := newFakeKMS(t)
	k := newKMS(t, srv, func(c *awskms.Config) { c.MaxAttempts = 2 })
	sealed, err := envelope.Seal(ctx, k, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	fake.fail.Store("500")
	before := fake.calls.Load()
	_, err = envelope.Open(ctx, k, sealed, nil)
	if !fault.IsKind(err, fault.KindUnavailable) || errors.Is(err, envelope.ErrDecrypt) {
		t.Fatalf("Open during an outage: %v; want unavailable", err)
	}
	if n := fake.calls.Load() - before; n != 2 {
		t.Fatalf("%d attempts; want 2", n)
	}
	// Nothing listening at all is an outage too.
	srv.Close()
	if _, err := k.Encrypt(ctx, []byte("x")); !fault.IsKind(err, fault.KindUnavailable) {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]awskms.Config{
		"no key":       {Region: "eu-west-1"},
		"no region":    {KeyID: keyARN},
		"bad endpoint": {KeyID: keyARN, Region: "eu-west-1", Endpoint: "kms.local"},
		"negative":     {KeyID: keyARN, Region: "eu-west-1", Timeout: -1},
	} {
		if err := cfg.CheckAndSetDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := awskms.Config{KeyID: keyARN, Region: "eu-west-1"}
	if err := c.CheckAndSetDefaults(); err != nil || c.Timeout != 10*time.Second || c.MaxAttempts != 3 ||
		c.EncryptionContext["gpuaas:purpose"] != "envelope-data-key" {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	// Defaults are copies: changing one config's context changes no other.
	c.EncryptionContext["x"] = "y"
	if _, ok := awskms.DefaultEncryptionContext["x"]; ok {
		t.Fatal("config shares the default map")
	}
}

func TestModule(t *testing.T) {
	t.Parallel()
	var k ports.KMS
	err := fx.New(fx.NopLogger,
		fx.Supply(awskms.Config{KeyID: keyARN, Region: "eu-west-1"}),
		awskms.Module,
		fx.Populate(&k),
	).Err()
	if err != nil || k.KeyID() != keyARN {
		t.Fatalf("module: %v", err)
	}
}
