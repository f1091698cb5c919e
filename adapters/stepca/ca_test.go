package stepca_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"go/build"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/stepca"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// stepCABinary finds step-ca: GPUAAS_TEST_STEPCA, PATH, or GOPATH/bin
// (`CGO_ENABLED=0 go install github.com/smallstep/certificates/cmd/step-ca@latest`).
func stepCABinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GPUAAS_TEST_STEPCA"); p != "" {
		return p
	}
	if p, err := exec.LookPath("step-ca"); err == nil {
		return p
	}
	p := filepath.Join(build.Default.GOPATH, "bin", "step-ca")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	// Through services.Unavailable: under GPUAAS_REQUIRE_SERVICES=1 (CI,
	// which builds step-ca with `make tools`) a missing binary fails.
	services.Unavailable(t, "stepca", errors.New("step-ca is not installed: `make tool-step-ca` builds it"))
	return ""
}

// stepCA is a running step-ca with a fresh PKI and a JWK provisioner.
type stepCA struct {
	url     string
	rootPEM []byte
	jwk     []byte // private provisioner key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func jwkOf(t *testing.T, key *ecdsa.PrivateKey) jose.JSONWebKey {
	t.Helper()
	j := jose.JSONWebKey{Key: key, Algorithm: "ES256", Use: "sig"}
	tp, err := j.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	j.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return j
}

func startStepCA(t *testing.T) *stepCA {
	t.Helper()
	bin := stepCABinary(t)
	dir := t.TempDir()
	now := time.Now()
	rootKey, interKey := newKey(t), newKey(t)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test step-ca root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, MaxPathLen: 1}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	interTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test step-ca intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, MaxPathLenZero: true}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, interKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	interKeyDER, _ := x509.MarshalECPrivateKey(interKey)
	writePEM(t, filepath.Join(dir, "root.crt"), "CERTIFICATE", rootDER)
	writePEM(t, filepath.Join(dir, "intermediate.crt"), "CERTIFICATE", interDER)
	writePEM(t, filepath.Join(dir, "intermediate.key"), "EC PRIVATE KEY", interKeyDER)

	provKey := jwkOf(t, newKey(t))
	pub := provKey.Public()
	pubJSON, _ := pub.MarshalJSON()
	privJSON, _ := provKey.MarshalJSON()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg := map[string]any{
		"root": filepath.Join(dir, "root.crt"), "crt": filepath.Join(dir, "intermediate.crt"),
		"key": filepath.Join(dir, "intermediate.key"), "address": addr, "dnsNames": []string{"127.0.0.1"},
		"logger": map[string]any{"format": "text"},
		"authority": map[string]any{"provisioners": []any{map[string]any{
			"type": "JWK", "name": "gpuaas", "key": json.RawMessage(pubJSON),
			"claims": map[string]any{"minTLSCertDuration": "5m", "maxTLSCertDuration": "72h", "defaultTLSCertDuration": "24h"},
			// Client certificates only: subject and SANs from the token.
			"options": map[string]any{"x509": map[string]any{"template": `{"subject": {{ toJson .Subject }}, "sans": {{ toJson .SANs }}, "keyUsage": ["digitalSignature"], "extKeyUsage": ["clientAuth"]}`}},
		}}},
	}
	cfgJSON, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(dir, "ca.json")
	if err := os.WriteFile(cfgPath, cfgJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "step-ca.log"))
	cmd := exec.Command(bin, cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "STEPPATH="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = logf.Close() })

	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	pool := x509.NewCertPool()
	pool.AddCert(root)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get("https://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "step-ca.log"))
			t.Fatalf("step-ca did not become healthy: %v\n%s", err, b)
		}
		select {
		case <-time.After(100 * time.Millisecond): // polling a child process's readiness
		case <-t.Context().Done():
			t.FailNow()
		}
	}
	return &stepCA{url: "https://" + addr, rootPEM: rootPEM, jwk: privJSON}
}

type fixture struct {
	db    *postgres.DB
	certs *postgres.NodeCertificateStore
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
	return &fixture{db: db, certs: postgres.NewNodeCertificateStore(db)}
}

func (f *fixture) node(t *testing.T) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	if _, err := f.db.Pool.Exec(context.Background(), `
		INSERT INTO nodes (id, name, sku_id, state, ssh_host, ssh_port)
		VALUES ($1, $2, 'h100-80g-x1', 'enrolling', '127.0.0.1', 22)`, id, "node-"+id); err != nil {
		t.Fatal(err)
	}
	return id
}

func csrFor(t *testing.T, key crypto.Signer, cn string, uris ...*url.URL) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, URIs: uris}, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificateRequest(der)
	return c
}

func parseChain(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return out
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func TestSignCSRThroughStepCA(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sca := startStepCA(t)
	f := newFixture(t)
	ca, err := stepca.New(stepca.Config{URL: sca.url, RootPEM: sca.rootPEM, ProvisionerName: "gpuaas", ProvisionerJWK: sca.jwk, MaxTTL: 100 * time.Hour},
		stepca.Deps{Certificates: f.certs})
	if err != nil {
		t.Fatal(err)
	}
	node := f.node(t)
	nodeURI := &url.URL{Scheme: "spiffe", Host: "gpuaas", Path: "/node/" + node}

	for name, csr := range map[string]*x509.CertificateRequest{
		"empty subject":        csrFor(t, newKey(t), ""),
		"node id and node URI": csrFor(t, newKey(t), node, nodeURI),
	} {
		before := time.Now()
		out, err := ca.SignCSR(ctx, csr, node, 2*time.Hour)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		chain := parseChain(t, out)
		if len(chain) < 2 {
			t.Fatalf("%s: chain of %d", name, len(chain))
		}
		leaf := chain[0]
		roots, _ := ca.Roots(ctx)
		inter := x509.NewCertPool()
		inter.AddCert(chain[1])
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
			t.Fatalf("%s: verifies for server auth", name)
		}
		if leaf.Subject.CommonName != node || len(leaf.URIs) != 1 || leaf.URIs[0].String() != nodeURI.String() {
			t.Fatalf("%s: subject %q URIs %v", name, leaf.Subject.CommonName, leaf.URIs)
		}
		if d := leaf.NotAfter.Sub(before.Add(2 * time.Hour)); d < -2*time.Minute || d > 2*time.Minute {
			t.Fatalf("%s: NotAfter %v; want about %v", name, leaf.NotAfter, before.Add(2*time.Hour))
		}
		got, revoked, err := f.certs.UseCertificate(ctx, leaf.SerialNumber.Text(16), time.Now())
		if err != nil || got != node || revoked {
			t.Fatalf("%s: recorded %q revoked=%v err=%v", name, got, revoked, err)
		}
	}

	// Revocation is recorded where the Connect host checks it.
	out, err := ca.SignCSR(ctx, csrFor(t, newKey(t), ""), node, 0)
	if err != nil {
		t.Fatal(err)
	}
	serial := parseChain(t, out)[0].SerialNumber.Text(16)
	if err := ca.Revoke(ctx, serial); err != nil {
		t.Fatal(err)
	}
	if _, revoked, _ := f.certs.UseCertificate(ctx, serial, time.Now()); !revoked {
		t.Fatal("not revoked")
	}

	// Refusals, each with nothing recorded.
	var n0 int
	_ = f.db.Pool.QueryRow(ctx, `SELECT count(*) FROM node_certificates`).Scan(&n0)
	otherKey := jwkOf(t, newKey(t))
	otherJSON, _ := otherKey.MarshalJSON()
	impostor, err := stepca.New(stepca.Config{URL: sca.url, RootPEM: sca.rootPEM, ProvisionerName: "gpuaas", ProvisionerJWK: otherJSON},
		stepca.Deps{Certificates: f.certs})
	if err != nil {
		t.Fatal(err)
	}
	down, _ := stepca.New(stepca.Config{URL: "https://127.0.0.1:1", RootPEM: sca.rootPEM, ProvisionerName: "gpuaas", ProvisionerJWK: sca.jwk},
		stepca.Deps{Certificates: f.certs})
	tests := []struct {
		name string
		ca   *stepca.CA
		csr  *x509.CertificateRequest
		ttl  time.Duration
		kind fault.Kind
		code fault.Code
	}{
		{"agent-chosen CommonName", ca, csrFor(t, newKey(t), "gpuaas-agent"), 0, fault.KindInvalid, stepca.CodeCSRInvalid},
		{"another node's URI", ca, csrFor(t, newKey(t), "", &url.URL{Scheme: "spiffe", Host: "gpuaas", Path: "/node/" + uuid.NewString()}), 0, fault.KindInvalid, stepca.CodeCSRInvalid},
		{"over the provisioner's maximum", ca, csrFor(t, newKey(t), ""), 80 * time.Hour, fault.KindInternal, stepca.CodeRefused},
		{"unknown provisioner key", impostor, csrFor(t, newKey(t), ""), 0, fault.KindInternal, stepca.CodeRefused},
		{"step-ca down", down, csrFor(t, newKey(t), ""), 0, fault.KindUnavailable, fault.CodeUnavailable},
	}
	for _, tc := range tests {
		out, err := tc.ca.SignCSR(ctx, tc.csr, node, tc.ttl)
		if f := fault.From(err); out != nil || err == nil || f.Kind != tc.kind || f.Code != tc.code {
			t.Errorf("%s: %v; want %s/%s", tc.name, err, tc.kind, tc.code)
		}
	}
	var n1 int
	_ = f.db.Pool.QueryRow(ctx, `SELECT count(*) FROM node_certificates`).Scan(&n1)
	if n1 != n0 {
		t.Fatalf("refused requests recorded %d certificates", n1-n0)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	key := jwkOf(t, newKey(t))
	priv, _ := key.MarshalJSON()
	pubOnly, _ := key.Public().MarshalJSON()
	good := stepca.Config{URL: "https://ca:9000", ProvisionerName: "p", ProvisionerJWK: priv}
	rootKey := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	rootDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rootKey.Public(), rootKey)
	good.RootPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	store := &postgres.NodeCertificateStore{}
	if _, err := stepca.New(good, stepca.Deps{Certificates: store}); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	for name, mutate := range map[string]func(*stepca.Config){
		"http":        func(c *stepca.Config) { c.URL = "http://ca:9000" },
		"path":        func(c *stepca.Config) { c.URL = "https://ca:9000/x" },
		"no name":     func(c *stepca.Config) { c.ProvisionerName = "" },
		"ttl":         func(c *stepca.Config) { c.DefaultTTL, c.MaxTTL = 2*time.Hour, time.Hour },
		"public only": func(c *stepca.Config) { c.ProvisionerJWK = pubOnly },
		"garbage jwk": func(c *stepca.Config) { c.ProvisionerJWK = []byte("{") },
		"no root":     func(c *stepca.Config) { c.RootPEM = nil },
		"bad root":    func(c *stepca.Config) { c.RootPEM = []byte("placeholder") },
	} {
		c := good
		mutate(&c)
		if _, err := stepca.New(c, stepca.Deps{Certificates: store}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
