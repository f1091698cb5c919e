package pki_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/envelope"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// fixture is a CA's world: real Postgres stores, a key-file KMS and a
// clock the test moves. Times are whole seconds (X.509 drops the rest)
// and near the real now, so the TLS stack, which checks validity with the
// wall clock, agrees with the CA.
type fixture struct {
	db      *postgres.DB
	secrets *postgres.SecretStore
	certs   *postgres.NodeCertificateStore
	kms     ports.KMS
	clock   *fakes.Clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Config{URL: services.FreshDatabaseURL(t), Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	kms, err := keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(t.TempDir(), "kms.key")})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		db: db, secrets: postgres.NewSecretStore(db), certs: postgres.NewNodeCertificateStore(db),
		kms: kms, clock: fakes.NewClock(time.Now().Truncate(time.Second)),
	}
}

func (f *fixture) ca(t *testing.T, cfg pki.Config) *pki.CA {
	t.Helper()
	ca, err := pki.New(cfg, pki.Deps{KMS: f.kms, Secrets: f.secrets, Certificates: f.certs, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func (f *fixture) node(t *testing.T) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	_, err := f.db.Pool.Exec(context.Background(), `
		INSERT INTO nodes (id, name, sku_id, state, ssh_host, ssh_port)
		VALUES ($1, $2, 'h100-80g-x1', 'enrolling', '127.0.0.1', 22)`, id, "node-"+id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newCSR is what an agent sends: its own key, and whatever subject it
// likes (the CA ignores it).
func newCSR(t *testing.T, key crypto.Signer) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "admin"},
		DNSNames: []string{"evil.example"},
		URIs:     []*url.URL{{Scheme: "spiffe", Host: "gpuaas", Path: "/node/00000000-0000-0000-0000-000000000000"}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parseChain(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func verify(t *testing.T, ca *pki.CA, chain []*x509.Certificate, at time.Time, usage x509.ExtKeyUsage) error {
	t.Helper()
	roots, err := ca.Roots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err = chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func wantCode(t *testing.T, err error, kind fault.Kind, code fault.Code) {
	t.Helper()
	if f := fault.From(err); err == nil || f.Kind != kind || f.Code != code {
		t.Fatalf("err = %v; want %s/%s", err, kind, code)
	}
}

func TestSignCSRIssuesNodeClientCertificate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	ca := f.ca(t, pki.Config{NodeCertTTL: 6 * time.Hour})
	node := f.node(t)
	now := f.clock.Now()

	for _, tc := range []struct {
		name    string
		ttl     time.Duration
		wantTTL time.Duration
	}{
		{"configured default", 0, 6 * time.Hour},
		{"asked", 2 * time.Hour, 2 * time.Hour},
	} {
		certPEM, err := ca.SignCSR(ctx, newCSR(t, ecKey(t)), node, tc.ttl)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		chain := parseChain(t, certPEM)
		if len(chain) != 2 {
			t.Fatalf("%s: chain has %d certificates; want leaf + intermediate", tc.name, len(chain))
		}
		leaf := chain[0]
		if err := verify(t, ca, chain, now, x509.ExtKeyUsageClientAuth); err != nil {
			t.Fatalf("%s: does not verify for client auth: %v", tc.name, err)
		}
		if err := verify(t, ca, chain, now, x509.ExtKeyUsageServerAuth); err == nil {
			t.Fatalf("%s: verifies for server auth", tc.name)
		}
		if !leaf.NotAfter.Equal(now.Add(tc.wantTTL)) {
			t.Fatalf("%s: NotAfter %v; want %v", tc.name, leaf.NotAfter, now.Add(tc.wantTTL))
		}
		if err := verify(t, ca, chain, now.Add(tc.wantTTL+time.Second), x509.ExtKeyUsageClientAuth); err == nil {
			t.Fatalf("%s: verifies after expiry", tc.name)
		}
		if leaf.Subject.CommonName != node || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://gpuaas/node/"+node {
			t.Fatalf("%s: subject %q URIs %v", tc.name, leaf.Subject.CommonName, leaf.URIs)
		}
		if len(leaf.DNSNames) != 0 || leaf.IsCA {
			t.Fatalf("%s: CSR's requests leaked in: DNS %v, CA %v", tc.name, leaf.DNSNames, leaf.IsCA)
		}
		if got, err := pki.NodeIDFromCertificate(leaf, "gpuaas"); err != nil || got != node {
			t.Fatalf("%s: NodeIDFromCertificate = %q, %v", tc.name, got, err)
		}
		if leaf.SerialNumber.BitLen() > 128 || leaf.SerialNumber.BitLen() < 64 {
			t.Fatalf("%s: serial has %d bits", tc.name, leaf.SerialNumber.BitLen())
		}
		recorded, revoked, err := f.certs.UseCertificate(ctx, pki.Serial(leaf), time.Now())
		if err != nil || recorded != node || revoked {
			t.Fatalf("%s: recorded %q revoked=%v err=%v", tc.name, recorded, revoked, err)
		}
	}
	// Other key types agents may use.
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, k := range []crypto.Signer{edKey, rsaKey} {
		if _, err := ca.SignCSR(ctx, newCSR(t, k), node, 0); err != nil {
			t.Fatalf("%T: %v", k, err)
		}
	}
}

func TestSignCSRRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	ca := f.ca(t, pki.Config{})
	node := f.node(t)

	forged := newCSR(t, ecKey(t))
	forged.Signature = bytes.Clone(forged.Signature)
	forged.Signature[len(forged.Signature)-1] ^= 1
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		csr  *x509.CertificateRequest
		node string
		ttl  time.Duration
		kind fault.Kind
		code fault.Code
	}{
		{"nil csr", nil, node, 0, fault.KindInvalid, pki.CodeCSRInvalid},
		{"forged signature", forged, node, 0, fault.KindInvalid, pki.CodeCSRInvalid},
		{"weak key", newCSR(t, weak), node, 0, fault.KindInvalid, pki.CodeCSRInvalid},
		{"bad node id", newCSR(t, ecKey(t)), "node-1", 0, fault.KindInvalid, fault.CodeValidationFailed},
		{"upper-case node id", newCSR(t, ecKey(t)), strings.ToUpper(node), 0, fault.KindInvalid, fault.CodeValidationFailed},
		{"ttl over max", newCSR(t, ecKey(t)), node, pki.DefaultMaxNodeCertTTL + time.Second, fault.KindInvalid, fault.CodeValidationFailed},
		{"negative ttl", newCSR(t, ecKey(t)), node, -time.Second, fault.KindInvalid, fault.CodeValidationFailed},
		{"unknown node", newCSR(t, ecKey(t)), uuid.NewString(), 0, fault.KindNotFound, fault.CodeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ca.SignCSR(ctx, tc.csr, tc.node, tc.ttl)
			if out != nil {
				t.Fatal("a certificate was returned")
			}
			wantCode(t, err, tc.kind, tc.code)
		})
	}
	var n int
	if err := f.db.Pool.QueryRow(ctx, `SELECT count(*) FROM node_certificates`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d certificates recorded by refused requests (err %v)", n, err)
	}
}

// CA private keys are stored sealed: the stored bytes hold no PEM, each
// opens only under its own name, and a restart (a new CA on the same
// stores) loads the same root and intermediate.
func TestCAKeysAreSealedAndSurviveRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	ca1 := f.ca(t, pki.Config{})
	if err := ca1.Init(ctx); err != nil {
		t.Fatal(err)
	}
	ssh1, err := pki.NewSSHCA(pki.SSHConfig{}, pki.SSHDeps{KMS: f.kms, Secrets: f.secrets, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	sshPub1, err := ssh1.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.db.Pool.Query(ctx, `SELECT name, envelope FROM platform_secrets ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string][]byte{}
	for rows.Next() {
		var name string
		var env []byte
		if err := rows.Scan(&name, &env); err != nil {
			t.Fatal(err)
		}
		stored[name] = env
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	var names []string
	for n := range stored {
		names = append(names, n)
	}
	if len(stored) != 3 || stored["pki/root"] == nil || stored["pki/intermediate/0"] == nil || stored["pki/ssh-user-ca"] == nil {
		t.Fatalf("stored secrets %v; want root, intermediate/0 and the SSH CA", names)
	}
	for name, env := range stored {
		for _, marker := range []string{"PRIVATE KEY", "BEGIN", "CERTIFICATE"} {
			if bytes.Contains(env, []byte(marker)) {
				t.Fatalf("%s: stored bytes contain %q: not sealed", name, marker)
			}
		}
		pt, err := envelope.Open(ctx, f.kms, env, []byte(name))
		if err != nil || !bytes.Contains(pt, []byte("PRIVATE KEY")) {
			t.Fatalf("%s: does not open to a key under its own name: %v", name, err)
		}
		if _, err := envelope.Open(ctx, f.kms, env, []byte(name+"x")); !errors.Is(err, envelope.ErrDecrypt) {
			t.Fatalf("%s: opens under another name", name)
		}
	}

	node := f.node(t)
	certPEM, err := ca1.SignCSR(ctx, newCSR(t, ecKey(t)), node, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Restart: new instances, same stores and KMS.
	ca2 := f.ca(t, pki.Config{})
	chain := parseChain(t, certPEM)
	if err := verify(t, ca2, chain, f.clock.Now(), x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatalf("restarted CA does not trust what it issued before: %v", err)
	}
	r1, _ := ca1.RootPEM(ctx)
	r2, _ := ca2.RootPEM(ctx)
	if !bytes.Equal(r1, r2) {
		t.Fatal("restart made a new root")
	}
	again, err := ca2.SignCSR(ctx, newCSR(t, ecKey(t)), node, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parseChain(t, again)[1].Raw, chain[1].Raw) {
		t.Fatal("restart made a new intermediate")
	}
	ssh2, _ := pki.NewSSHCA(pki.SSHConfig{}, pki.SSHDeps{KMS: f.kms, Secrets: f.secrets, Clock: f.clock})
	if sshPub2, err := ssh2.PublicKey(ctx); err != nil || sshPub2 != sshPub1 {
		t.Fatalf("restarted SSH CA has another key (%v)", err)
	}

	// A CA whose KMS holds another key cannot open them, and says so.
	otherKMS, _ := keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(t.TempDir(), "other.key")})
	wrong, _ := pki.New(pki.Config{}, pki.Deps{KMS: otherKMS, Secrets: f.secrets, Certificates: f.certs, Clock: f.clock})
	if err := wrong.Init(ctx); !errors.Is(err, envelope.ErrDecrypt) {
		t.Fatalf("Init under another KMS key: %v; want a decrypt failure", err)
	}
}

// Replicas starting together on an empty database agree on one root and
// one intermediate.
func TestConcurrentFirstStartsAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	const n = 8
	roots := make([][]byte, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ca, err := pki.New(pki.Config{}, pki.Deps{KMS: f.kms, Secrets: f.secrets, Certificates: f.certs, Clock: f.clock})
			if err != nil {
				t.Error(err)
				return
			}
			<-start
			if roots[i], err = ca.RootPEM(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range roots {
		if roots[i] == nil || !bytes.Equal(roots[i], roots[0]) {
			t.Fatalf("replica %d has another root", i)
		}
	}
	var count int
	if err := f.db.Pool.QueryRow(ctx, `SELECT count(*) FROM platform_secrets`).Scan(&count); err != nil || count != 2 {
		t.Fatalf("%d secrets stored (err %v); want one root and one intermediate", count, err)
	}
}

// Every half intermediate-lifetime a new intermediate takes over; what the
// old one issued stays valid.
func TestIntermediateRotates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	ca := f.ca(t, pki.Config{IntermediateValidity: 10 * 24 * time.Hour, MaxNodeCertTTL: 24 * time.Hour, ServerCertTTL: 24 * time.Hour})
	node := f.node(t)
	first, err := ca.SignCSR(ctx, newCSR(t, ecKey(t)), node, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(4*24*time.Hour + 23*time.Hour)
	sameWindow, err := ca.SignCSR(ctx, newCSR(t, ecKey(t)), node, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parseChain(t, first)[1].Raw, parseChain(t, sameWindow)[1].Raw) {
		t.Fatal("intermediate changed within its period")
	}
	f.clock.Advance(2 * time.Hour)
	rotated, err := ca.SignCSR(ctx, newCSR(t, ecKey(t)), node, 0)
	if err != nil {
		t.Fatal(err)
	}
	chain := parseChain(t, rotated)
	if bytes.Equal(chain[1].Raw, parseChain(t, first)[1].Raw) {
		t.Fatal("intermediate did not rotate after half its validity")
	}
	now := f.clock.Now()
	if err := verify(t, ca, chain, now, x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatalf("certificate from the new intermediate: %v", err)
	}
	if err := verify(t, ca, parseChain(t, sameWindow), now, x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatalf("certificate from the old intermediate no longer verifies: %v", err)
	}
	if _, err := f.secrets.GetSecret(ctx, "pki/intermediate/1"); err != nil {
		t.Fatalf("new intermediate not stored: %v", err)
	}
}

func TestServerCertificate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	ca := f.ca(t, pki.Config{})
	c, err := ca.IssueServerCert(ctx, []string{"connect.gpuaas.internal", "127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := ca.Roots(ctx)
	inter := x509.NewCertPool()
	ic, _ := x509.ParseCertificate(c.Certificate[1])
	inter.AddCert(ic)
	for _, name := range []string{"connect.gpuaas.internal", "127.0.0.1"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter, CurrentTime: f.clock.Now()}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: roots, Intermediates: inter, CurrentTime: f.clock.Now()}); err == nil {
		t.Fatal("verifies for another host")
	}
	if !c.Leaf.NotAfter.Equal(f.clock.Now().Add(pki.DefaultServerCertTTL)) {
		t.Fatalf("NotAfter %v", c.Leaf.NotAfter)
	}
	if _, err := ca.IssueServerCert(ctx, nil, 0); err == nil {
		t.Fatal("issued without hosts")
	}
}

// A real mTLS handshake through ServerTLSConfig: the node is identified,
// refused once its certificate is revoked or past its lifetime at the CA's
// clock, and a certificate from another CA does not get through the
// handshake.
func TestAuthenticateNodeOverMTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	ca := f.ca(t, pki.Config{})
	node := f.node(t)

	srvTLS, err := ca.ServerTLSConfig(ctx, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	// Not httptest.StartTLS: it installs its own certificate, which wins
	// over GetCertificate for clients that send no SNI.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, serial, err := ca.AuthenticateNode(r.Context(), r.TLS)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": string(fault.From(err).Code)})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"node": id, "serial": serial})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: handler, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(tls.NewListener(ln, srvTLS)) }()
	t.Cleanup(func() { _ = hs.Close() })
	srvURL := "https://" + ln.Addr().String()

	rootPEM, _ := ca.RootPEM(ctx)
	trust := x509.NewCertPool()
	trust.AppendCertsFromPEM(rootPEM)
	client := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: trust, MinVersion: tls.VersionTLS13}
		if cert != nil {
			// Always present it, even when its issuer is not among the
			// server's acceptable CAs (the look-alike case).
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	}
	call := func(c *http.Client) (int, map[string]string, error) {
		resp, err := c.Get(srvURL)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body, nil
	}

	key := ecKey(t)
	certPEM, err := ca.SignCSR(ctx, newCSR(t, key), node, 0)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	nodeCert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	serial := pki.Serial(parseChain(t, certPEM)[0])

	status, body, err := call(client(&nodeCert))
	if err != nil || status != 200 || body["node"] != node || body["serial"] != serial {
		t.Fatalf("valid node: %d %v %v", status, body, err)
	}
	status, body, err = call(client(nil))
	if err != nil || status != 401 || body["code"] != string(pki.CodeNodeCertificateRequired) {
		t.Fatalf("no certificate: %d %v %v", status, body, err)
	}
	// A certificate from a look-alike CA never gets through the handshake.
	if status, body, err := call(client(foreignNodeCert(t, node))); err == nil {
		t.Fatalf("a certificate from another CA got through the handshake: %d %v", status, body)
	}
	// Past its lifetime at the CA's clock (the TLS stack's wall clock
	// still accepts it): refused.
	f.clock.Advance(pki.DefaultNodeCertTTL)
	status, body, _ = call(client(&nodeCert))
	if status != 401 || body["code"] != string(pki.CodeNodeCertificateInvalid) {
		t.Fatalf("expired at the CA clock: %d %v", status, body)
	}
	f.clock.Advance(-pki.DefaultNodeCertTTL)
	if err := ca.Revoke(ctx, serial); err != nil {
		t.Fatal(err)
	}
	status, body, _ = call(client(&nodeCert))
	if status != 401 || body["code"] != string(pki.CodeNodeCertificateRevoked) {
		t.Fatalf("revoked: %d %v", status, body)
	}
	if _, revoked, err := f.certs.UseCertificate(ctx, serial, time.Now()); err != nil || !revoked {
		t.Fatalf("store: revoked=%v err=%v", revoked, err)
	}
	wantCode(t, ca.Revoke(ctx, "abcdef"), fault.KindNotFound, fault.CodeNotFound)
}

// foreignNodeCert is a well-formed node certificate from a CA the platform
// does not know.
func foreignNodeCert(t *testing.T, node string) *tls.Certificate {
	t.Helper()
	caKey := ecKey(t)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "GPUaaS Root CA gpuaas"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	key := ecKey(t)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: node},
		URIs: []*url.URL{{Scheme: "spiffe", Host: "gpuaas", Path: "/node/" + node}}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
}

func TestNodeIDFromCertificate(t *testing.T) {
	t.Parallel()
	id := uuid.NewString()
	good := func() *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: id},
			URIs:        []*url.URL{{Scheme: "spiffe", Host: "gpuaas", Path: "/node/" + id}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
	}
	if got, err := pki.NodeIDFromCertificate(good(), "gpuaas"); err != nil || got != id {
		t.Fatalf("good = %q, %v", got, err)
	}
	tests := map[string]func(c *x509.Certificate){
		"other trust domain": func(c *x509.Certificate) { c.URIs[0].Host = "evil" },
		"other scheme":       func(c *x509.Certificate) { c.URIs[0].Scheme = "https" },
		"other path":         func(c *x509.Certificate) { c.URIs[0].Path = "/user/" + id },
		"CN disagrees":       func(c *x509.Certificate) { c.Subject.CommonName = uuid.NewString() },
		"not a uuid":         func(c *x509.Certificate) { c.URIs[0].Path = "/node/x"; c.Subject.CommonName = "x" },
		"two URIs":           func(c *x509.Certificate) { c.URIs = append(c.URIs, c.URIs[0]) },
		"no URI":             func(c *x509.Certificate) { c.URIs = nil },
		"server only":        func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} },
		"a CA":               func(c *x509.Certificate) { c.IsCA = true },
		"query":              func(c *x509.Certificate) { c.URIs[0].RawQuery = "a=b" },
	}
	for name, mutate := range tests {
		c := good()
		mutate(c)
		_, err := pki.NodeIDFromCertificate(c, "gpuaas")
		if f := fault.From(err); err == nil || f.Code != pki.CodeNodeCertificateInvalid || f.Kind != fault.KindUnauthenticated {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]pki.Config{
		"ttl over max":          {NodeCertTTL: 48 * time.Hour, MaxNodeCertTTL: 24 * time.Hour},
		"negative":              {NodeCertTTL: -1},
		"intermediate too long": {RootValidity: time.Hour, IntermediateValidity: 2 * time.Hour},
		"leaf outlives half":    {IntermediateValidity: 48 * time.Hour, MaxNodeCertTTL: 25 * time.Hour},
		"trust domain":          {TrustDomain: "Evil/x"},
		"ssh ttl":               {SSH: pki.SSHConfig{MaxTTL: -1}},
	} {
		if err := cfg.CheckAndSetDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var c pki.Config
	if err := c.CheckAndSetDefaults(); err != nil || c.NodeCertTTL != 24*time.Hour || c.TrustDomain != "gpuaas" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	if _, err := pki.New(pki.Config{}, pki.Deps{}); err == nil {
		t.Fatal("New without deps succeeded")
	}
}
