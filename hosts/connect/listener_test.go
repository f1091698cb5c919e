package connecthost

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// testCA issues certificates for the listener tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCert(t *testing.T, parent *testCA, tmpl *x509.Certificate) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl.SerialNumber, _ = rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key}
}

func caTemplate(name string) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
}

// TestHandshakeListenerSharesIssuerCertificates: connections whose clients
// present the same intermediate end up holding one parsed copy of it — in
// the peer certificates and in the verified chains — while each keeps its
// own leaf, and a certificate outside the verified chain is left alone.
func TestHandshakeListenerSharesIssuerCertificates(t *testing.T) {
	t.Parallel()
	root := newTestCert(t, nil, caTemplate("root"))
	inter := newTestCert(t, root, caTemplate("intermediate"))
	server := newTestCert(t, inter, &x509.Certificate{Subject: pkix.Name{CommonName: "gateway"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	stray := newTestCert(t, nil, caTemplate("unrelated"))
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)

	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newHandshakeListener(inner, &tls.Config{MinVersion: tls.VersionTLS13, ClientCAs: roots,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		Certificates: []tls.Certificate{{Certificate: [][]byte{server.cert.Raw, inter.cert.Raw}, PrivateKey: server.key}}}, nil)
	defer l.Close()

	dial := func(extra ...[]byte) tls.ConnectionState {
		t.Helper()
		leaf := newTestCert(t, inter, &x509.Certificate{Subject: pkix.Name{CommonName: "agent"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		chain := append([][]byte{leaf.cert.Raw, inter.cert.Raw}, extra...)
		cc, err := tls.Dial("tcp", inner.Addr().String(), &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &tls.Certificate{Certificate: chain, PrivateKey: leaf.key}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		sc, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sc.Close() })
		st := sc.(*tls.Conn).ConnectionState()
		if len(st.VerifiedChains) != 1 || len(st.PeerCertificates) != len(chain) {
			t.Fatalf("%d verified chains, %d peer certificates", len(st.VerifiedChains), len(st.PeerCertificates))
		}
		if !st.PeerCertificates[0].Equal(leaf.cert) {
			t.Fatal("the leaf is not the client's")
		}
		return st
	}
	a, b, c := dial(), dial(), dial(stray.cert.Raw)
	for _, st := range []tls.ConnectionState{b, c} {
		if st.PeerCertificates[1] != a.PeerCertificates[1] || st.VerifiedChains[0][1] != a.PeerCertificates[1] {
			t.Fatal("the intermediate is parsed once per connection, not shared")
		}
		if st.PeerCertificates[0] == a.PeerCertificates[0] {
			t.Fatal("connections share a leaf")
		}
	}
	if !a.PeerCertificates[1].Equal(inter.cert) {
		t.Fatal("the shared intermediate is not the intermediate")
	}
	if got := c.PeerCertificates[2]; !got.Equal(stray.cert) || l.issuers.certs[string(got.Raw)] != nil {
		t.Fatal("a certificate outside the verified chain was replaced or kept")
	}
}
