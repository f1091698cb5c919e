package connecthost_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	connecthost "github.com/gpuaas/gpuaas/hosts/connect"
	agentv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1/agentv1connect"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

// client is an AgentService client presenting cert (nil: none).
func (e *env) client(cert *tls.Certificate) agentv1connect.AgentServiceClient {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.rootsPEM)
	tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}
	if cert != nil {
		// Present the certificate whatever CAs the server names: a Go
		// client would otherwise withhold one from a foreign CA, and the
		// test is about what the server does with it.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return agentv1connect.NewAgentServiceClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tc,
		ForceAttemptHTTP2: true}}, e.url)
}

func keyAndCSR(t *testing.T) (*ecdsa.PrivateKey, *x509.CertificateRequest) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agent"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	return key, csr
}

func pair(t *testing.T, chainPEM []byte, key *ecdsa.PrivateKey) *tls.Certificate {
	t.Helper()
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	c, err := tls.X509KeyPair(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// foreignCert is a client certificate for nodeID from a CA the gateway
// does not trust, otherwise shaped exactly like a real one.
func foreignCert(t *testing.T, nodeID string) *tls.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rogue CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("spiffe://gpuaas/node/" + nodeID)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: nodeID}, URIs: []*url.URL{u}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pair(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), key)
}

// TestMTLSRefusals is the mTLS table: every RPC but Enroll needs a client
// certificate that chains to the roots, is unexpired, unrevoked and whose
// node is not retired. The handshake itself refuses foreign and expired
// certificates (tls.VerifyClientCertIfGiven); the gateway refuses the rest
// with a Connect code, a stable fault code and an audit record. No refused
// call records a heartbeat.
func TestMTLSRefusals(t *testing.T) {
	e := newEnv(t, agentsvc.Config{})
	ctx := context.Background()

	// issue enrols a node through the real RPC and returns its certificate.
	issue := func(t *testing.T) (string, *tls.Certificate) {
		nodeID, token := e.newNode(t)
		key, csr := keyAndCSR(t)
		res, err := e.client(nil).Enroll(ctx, connect.NewRequest(&agentv1.EnrollRequest{BootstrapToken: token, CsrDer: csr.Raw}))
		if err != nil {
			t.Fatal(err)
		}
		return nodeID, pair(t, res.Msg.GetCertChainPem(), key)
	}
	heartbeat := func(cert *tls.Certificate) error {
		_, err := e.client(cert).Heartbeat(ctx, connect.NewRequest(&agentv1.HeartbeatRequest{AgentVersion: "test"}))
		return err
	}
	noHeartbeat := func(t *testing.T, nodeID string) {
		t.Helper()
		if n, err := e.nodes.GetNode(ctx, nodeID); err != nil || n.LastHeartbeatAt != nil {
			t.Fatalf("a refused call recorded a heartbeat: %+v, %v", n, err)
		}
	}

	t.Run("valid certificate is accepted", func(t *testing.T) {
		nodeID, cert := issue(t)
		if err := heartbeat(cert); err != nil {
			t.Fatal(err)
		}
		// The same handler speaks gRPC (over HTTP/2) as well as Connect.
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(e.rootsPEM)
		grpc := agentv1connect.NewAgentServiceClient(&http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, Certificates: []tls.Certificate{*cert}}}},
			e.url, connect.WithGRPC())
		if _, err := grpc.Heartbeat(ctx, connect.NewRequest(&agentv1.HeartbeatRequest{AgentVersion: "grpc"})); err != nil {
			t.Fatalf("gRPC heartbeat: %v", err)
		}
		if n, _ := e.nodes.GetNode(ctx, nodeID); n.State != inventory.NodeActive {
			t.Fatalf("node state after heartbeat = %s", n.State)
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		nodeID, _ := issue(t)
		err := heartbeat(nil)
		if connect.CodeOf(err) != connect.CodeUnauthenticated || connecthost.FaultCode(err) != string(agentsvc.CodeCertificateRequired) {
			t.Fatalf("err = %v", err)
		}
		noHeartbeat(t, nodeID)
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		nodeID, _ := issue(t)
		if err := heartbeat(foreignCert(t, nodeID)); err == nil {
			t.Fatal("a certificate from another CA was accepted")
		}
		noHeartbeat(t, nodeID)
	})
	t.Run("expired certificate", func(t *testing.T) {
		nodeID, _ := issue(t)
		// The same CA (same keys, from the same secret store) as of three
		// hours ago issues a one-hour certificate: genuine, but expired.
		kms, err := keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(e.kmsDir, "kms.key"), NoCreate: true})
		if err != nil {
			t.Fatal(err)
		}
		past, err := pki.New(pki.Config{}, pki.Deps{KMS: kms, Secrets: postgres.NewSecretStore(e.db),
			Certificates: e.certs, Clock: fakes.NewClock(time.Now().Add(-3 * time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		key, csr := keyAndCSR(t)
		chain, err := past.SignCSR(ctx, csr, nodeID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		expired := pair(t, chain, key)
		// Genuine, only expired: verifying it now fails on the leaf's expiry.
		roots, _ := e.ca.Roots(ctx)
		inter := x509.NewCertPool()
		inter.AppendCertsFromPEM(chain[len(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: expired.Leaf.Raw})):])
		_, verr := expired.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		var ie x509.CertificateInvalidError
		if !errors.As(verr, &ie) || ie.Reason != x509.Expired || !ie.Cert.Equal(expired.Leaf) {
			t.Fatalf("want the leaf to fail only on expiry, got %v", verr)
		}
		if err := heartbeat(expired); err == nil {
			t.Fatal("an expired certificate was accepted")
		}
		noHeartbeat(t, nodeID)
	})
	t.Run("revoked certificate", func(t *testing.T) {
		nodeID, cert := issue(t)
		if err := e.certs.RevokeNodeCertificates(ctx, nodeID, time.Now()); err != nil {
			t.Fatal(err)
		}
		err := heartbeat(cert)
		if connect.CodeOf(err) != connect.CodeUnauthenticated || connecthost.FaultCode(err) != string(agentsvc.CodeCertificateRevoked) {
			t.Fatalf("err = %v", err)
		}
		noHeartbeat(t, nodeID)
		// Renewal is refused the same way: a revoked node cannot mint itself a new certificate.
		_, csr := keyAndCSR(t)
		if _, err := e.client(cert).Renew(ctx, connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr.Raw})); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("renew with a revoked certificate: %v", err)
		}
	})
	// A certificate in use is remembered as good between calls; a
	// revocation committed anywhere (here: by SQL, as another replica
	// would) still refuses its next call, announced by the store's trigger.
	t.Run("revoked while in use", func(t *testing.T) {
		nodeID, cert := issue(t)
		if err := heartbeat(cert); err != nil {
			t.Fatal(err)
		}
		if err := heartbeat(cert); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Pool.Exec(ctx, `UPDATE node_certificates SET revoked_at = now() WHERE node_id = $1`, nodeID); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 2*time.Second, "the revoked certificate to be refused", func() bool {
			return connecthost.FaultCode(heartbeat(cert)) == string(agentsvc.CodeCertificateRevoked)
		})
	})
	t.Run("retired while in use", func(t *testing.T) {
		nodeID, cert := issue(t)
		if err := heartbeat(cert); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Pool.Exec(ctx, `UPDATE nodes SET state = 'retired', retired_at = now() WHERE id = $1`, nodeID); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 2*time.Second, "the retired node to be refused", func() bool {
			return connecthost.FaultCode(heartbeat(cert)) == string(agentsvc.CodeNodeRetired)
		})
	})
	t.Run("retired node", func(t *testing.T) {
		nodeID, cert := issue(t)
		if _, err := e.nodes.UpdateNode(ctx, nodeID, func(n *inventory.Node) error { n.State = inventory.NodeRetired; return nil }); err != nil {
			t.Fatal(err)
		}
		err := heartbeat(cert)
		if connect.CodeOf(err) != connect.CodePermissionDenied || connecthost.FaultCode(err) != string(agentsvc.CodeNodeRetired) {
			t.Fatalf("err = %v", err)
		}
		noHeartbeat(t, nodeID)
	})

	// Handshake refusals are audited as the server closes the connection,
	// which the client may notice first: poll briefly.
	var codes map[string]bool
	invalid := 0
	poll.Until(t, 5*time.Second, "two handshake refusals in the audit log", func() bool {
		codes, invalid = map[string]bool{}, 0
		for _, ev := range e.audits(t, "node.authenticate", audit.Denied) {
			codes[ev.Metadata["code"].(string)] = true
			if ev.Metadata["code"] == string(agentsvc.CodeCertificateInvalid) {
				invalid++
				if ev.ActorID != "" || ev.Metadata["claimed_node_id"] == "" {
					t.Errorf("a handshake refusal names its unverified node as the actor: %+v", ev)
				}
			}
		}
		return invalid == 2
	})
	for _, c := range []string{string(agentsvc.CodeCertificateRequired), string(agentsvc.CodeCertificateRevoked),
		string(agentsvc.CodeNodeRetired), string(agentsvc.CodeCertificateInvalid)} {
		if !codes[c] {
			t.Errorf("no audit record for refusal %s (have %v)", c, codes)
		}
	}
}

// TestKindCodeTable pins how every fault kind becomes a Connect code: a kind
// the core adds fails here until it is placed.
func TestKindCodeTable(t *testing.T) {
	t.Parallel()
	want := map[fault.Kind]connect.Code{
		fault.KindInternal: connect.CodeInternal, fault.KindInvalid: connect.CodeInvalidArgument,
		fault.KindUnauthenticated: connect.CodeUnauthenticated, fault.KindForbidden: connect.CodePermissionDenied,
		fault.KindNotFound: connect.CodeNotFound, fault.KindConflict: connect.CodeFailedPrecondition,
		fault.KindRateLimited: connect.CodeResourceExhausted, fault.KindPaymentRequired: connect.CodeFailedPrecondition,
		fault.KindUnprocessable: connect.CodeFailedPrecondition, fault.KindTooLarge: connect.CodeResourceExhausted,
		fault.KindUnavailable: connect.CodeUnavailable,
	}
	n := 0
	for k := fault.Kind(0); !strings.HasPrefix(k.String(), "kind("); k++ {
		n++
		w, ok := want[k]
		if !ok {
			t.Errorf("kind %s has no pinned Connect code; add it here and to kindCode", k)
			continue
		}
		if got := connecthost.CodeOf(k); got != w {
			t.Errorf("%v → %v, want %v", k, got, w)
		}
	}
	if n != len(want) {
		t.Errorf("the core has %d kinds, the table pins %d", n, len(want))
	}
	if got := connecthost.CodeOf(fault.Kind(200)); got != connect.CodeInternal {
		t.Errorf("an unknown kind → %v, want internal", got)
	}
}
