package nodeagent

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Files in the state directory. Every one is written 0600 through a
// rename; the directory itself is 0700.
const (
	fileKey      = "agent.key"     // ECDSA P-256 private key, PKCS#8 PEM
	fileCert     = "agent.crt"     // client certificate chain, PEM
	fileRoots    = "roots.pem"     // CA roots for the gateway, PEM
	fileIdentity = "identity.json" // node id and the task signing key
	fileReplay   = "replay.json"   // replay window
)

// Identity is what enrolment gave the agent.
type Identity struct {
	NodeID    string `json:"node_id"`
	TaskKey   []byte `json:"task_signing_public_key"`
	TaskKeyID string `json:"task_signing_key_id"`
}

// newKeyAndCSR makes a fresh P-256 key and a CSR for it.
func newKeyAndCSR() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "gpuaas-agent"},
	}, key)
	return key, csr, err
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// certificate pairs a chain with its key and parses the leaf.
func certificate(chainPEM []byte, key *ecdsa.PrivateKey) (*tls.Certificate, error) {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate does not match the key: %w", err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// stateDir reads and writes the agent's files.
type stateDir string

func (d stateDir) path(name string) string { return filepath.Join(string(d), name) }

func (d stateDir) ensure() error { return os.MkdirAll(string(d), 0o700) }

// enrolled reports whether the directory holds a complete identity.
func (d stateDir) enrolled() bool {
	for _, f := range []string{fileKey, fileCert, fileRoots, fileIdentity} {
		if _, err := os.Stat(d.path(f)); err != nil {
			return false
		}
	}
	return true
}

func (d stateDir) save(id Identity, key *ecdsa.PrivateKey, chainPEM, rootsPEM []byte) error {
	if err := d.ensure(); err != nil {
		return err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	idJSON, err := json.Marshal(id)
	if err != nil {
		return err
	}
	// The key first and the identity last: an interrupted save leaves an
	// incomplete directory, which enrolled() reports as not enrolled.
	for _, f := range []struct {
		name string
		b    []byte
	}{{fileKey, keyPEM}, {fileCert, chainPEM}, {fileRoots, rootsPEM}, {fileIdentity, idJSON}} {
		if err := writeFileAtomic(d.path(f.name), f.b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (d stateDir) load() (Identity, *tls.Certificate, *x509.CertPool, []byte, error) {
	var id Identity
	b, err := os.ReadFile(d.path(fileIdentity))
	if err != nil {
		return id, nil, nil, nil, err
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return id, nil, nil, nil, fmt.Errorf("identity.json: %w", err)
	}
	if id.NodeID == "" || len(id.TaskKey) != ed25519.PublicKeySize || id.TaskKeyID == "" {
		return id, nil, nil, nil, errors.New("identity.json is incomplete")
	}
	keyPEM, err := os.ReadFile(d.path(fileKey))
	if err != nil {
		return id, nil, nil, nil, err
	}
	chainPEM, err := os.ReadFile(d.path(fileCert))
	if err != nil {
		return id, nil, nil, nil, err
	}
	cert, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		return id, nil, nil, nil, err
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return id, nil, nil, nil, err
		}
	}
	rootsPEM, err := os.ReadFile(d.path(fileRoots))
	if err != nil {
		return id, nil, nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootsPEM) {
		return id, nil, nil, nil, errors.New("roots.pem holds no certificate")
	}
	return id, &cert, pool, rootsPEM, nil
}

// RenewAt is when a certificate should be renewed: two thirds into its
// lifetime, so a renewal that fails has a third of the lifetime to retry.
// The lifetime counts from when the agent obtained the certificate, not
// from NotBefore: CAs backdate NotBefore for clock skew, and counting from
// it would renew a short-lived certificate at once, again and again.
func RenewAt(c *x509.Certificate, obtained time.Time) time.Time {
	start := c.NotBefore
	if obtained.After(start) && obtained.Before(c.NotAfter) {
		start = obtained
	}
	return start.Add(c.NotAfter.Sub(start) * 2 / 3)
}
