package stepca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Stable codes.
const (
	CodeCSRInvalid fault.Code = "csr_invalid"
	// CodeRefused: step-ca refused a request the adapter considered valid
	// (provisioner, template or policy misconfigured); an operator must act.
	CodeRefused fault.Code = "stepca_refused"
)

// Config configures the adapter.
type Config struct {
	// URL of the step-ca server, e.g. https://ca.internal:9000.
	URL string
	// RootPEM is step-ca's root certificate: it authenticates the step-ca
	// server and is what Roots returns. Pin it out of band (`step ca root`).
	RootPEM []byte
	// ProvisionerName is the JWK provisioner's name; ProvisionerJWK its
	// private key as JSON (a decrypted `step crypto jwk create` key; its
	// "kid" must match the provisioner's).
	ProvisionerName string
	ProvisionerJWK  []byte
	// TrustDomain of the node URI SAN: spiffe://<TrustDomain>/node/<id>.
	TrustDomain string
	// DefaultTTL is used for ttl 0; MaxTTL bounds what callers may ask for
	// (the provisioner's maxTLSCertDuration must allow it).
	DefaultTTL, MaxTTL time.Duration
	// Timeout bounds each call to step-ca; 0 means 15 s.
	Timeout time.Duration
}

// CheckAndSetDefaults validates the config.
func (c *Config) CheckAndSetDefaults() error {
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return errors.New("stepca: URL must be https://host[:port]")
	}
	c.URL = strings.TrimSuffix(c.URL, "/")
	if c.ProvisionerName == "" || len(c.ProvisionerJWK) == 0 {
		return errors.New("stepca: ProvisionerName and ProvisionerJWK are required")
	}
	if c.TrustDomain == "" {
		c.TrustDomain = "gpuaas"
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = 24 * time.Hour
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = 72 * time.Hour
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.DefaultTTL < 0 || c.MaxTTL < c.DefaultTTL || c.Timeout < 0 {
		return errors.New("stepca: need 0 < DefaultTTL <= MaxTTL and a non-negative Timeout")
	}
	return nil
}

// CertificateStore is what the CA needs of its certificate records: the
// port plus single-serial revocation (adapters/postgres
// NodeCertificateStore implements it).
type CertificateStore interface {
	ports.NodeCertificateStore
	RevokeCertificate(ctx context.Context, serial string, at time.Time) error
}

// Deps are the ports the CA works through.
type Deps struct {
	Certificates CertificateStore
	Clock        ports.Clock // nil: the wall clock
}

// CA implements [ports.CertificateAuthority] through step-ca.
type CA struct {
	cfg    Config
	roots  *x509.CertPool
	jwk    jose.JSONWebKey
	signer jose.Signer
	http   *http.Client
	certs  CertificateStore
	clock  ports.Clock
}

var _ ports.CertificateAuthority = (*CA)(nil)

// New validates the config and the provisioner key; it does no I/O.
func New(cfg Config, deps Deps) (*CA, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if deps.Certificates == nil {
		return nil, errors.New("stepca: Certificates is required")
	}
	if deps.Clock == nil {
		deps.Clock = wallClock{}
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cfg.RootPEM) {
		return nil, errors.New("stepca: RootPEM holds no certificate")
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(cfg.ProvisionerJWK); err != nil {
		return nil, fmt.Errorf("stepca: ProvisionerJWK: %w", err)
	}
	if jwk.IsPublic() || jwk.KeyID == "" {
		return nil, errors.New("stepca: ProvisionerJWK must be a private key with a kid")
	}
	alg := jose.SignatureAlgorithm(jwk.Algorithm)
	if alg == "" {
		alg = jose.ES256
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jwk},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("stepca: provisioner key: %w", err)
	}
	client := &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			Proxy:           http.ProxyFromEnvironment,
		},
	}
	return &CA{cfg: cfg, roots: roots, jwk: jwk, signer: signer, http: client, certs: deps.Certificates, clock: deps.Clock}, nil
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (ca *CA) nodeURI(nodeID string) string {
	return "spiffe://" + ca.cfg.TrustDomain + "/node/" + nodeID
}

// SignCSR implements [ports.CertificateAuthority]. step-ca's JWK provisioner
// requires the CSR to be consistent with the token: its CommonName must be
// empty or the node id, and its SANs empty or exactly the node's URI; the
// certificate's subject and SANs come from the token, which this adapter
// mints for nodeID and binds to this CSR (x5rt#S256), so the token is
// useless for any other request. The returned certificate is checked (node
// id, URI, clientAuth, the CSR's key, lifetime) before its serial is
// recorded and the PEM chain returned.
func (ca *CA) SignCSR(ctx context.Context, csr *x509.CertificateRequest, nodeID string, ttl time.Duration) ([]byte, error) {
	if csr == nil {
		return nil, fault.New(fault.KindInvalid, CodeCSRInvalid, "a CSR is required")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fault.New(fault.KindInvalid, CodeCSRInvalid, "the CSR signature does not verify").Wrap(err)
	}
	if u, err := uuid.Parse(nodeID); err != nil || u.String() != nodeID {
		return nil, fault.Invalid("node_id", "a node id is a lower-case UUID")
	}
	if cn := csr.Subject.CommonName; cn != "" && cn != nodeID {
		return nil, fault.New(fault.KindInvalid, CodeCSRInvalid, "with step-ca the CSR's CommonName must be empty or the node id")
	}
	if len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.EmailAddresses) != 0 ||
		len(csr.URIs) > 1 || (len(csr.URIs) == 1 && csr.URIs[0].String() != ca.nodeURI(nodeID)) {
		return nil, fault.New(fault.KindInvalid, CodeCSRInvalid, "with step-ca the CSR may name no SAN but the node's URI")
	}
	if ttl == 0 {
		ttl = ca.cfg.DefaultTTL
	}
	if ttl < 0 || ttl > ca.cfg.MaxTTL {
		return nil, fault.Invalid("ttl", fmt.Sprintf("certificate lifetime must be in (0, %s]", ca.cfg.MaxTTL))
	}
	ott, err := ca.token(nodeID, csr)
	if err != nil {
		return nil, fault.Internal(err)
	}
	body, _ := json.Marshal(map[string]string{
		"csr":      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw})),
		"ott":      ott,
		"notAfter": ttl.String(),
	})
	var resp struct {
		Crt       string   `json:"crt"`
		CA        string   `json:"ca"`
		CertChain []string `json:"certChain"`
	}
	if err := ca.post(ctx, "/1.0/sign", body, &resp); err != nil {
		return nil, err
	}
	chain := resp.CertChain
	if len(chain) == 0 {
		chain = []string{resp.Crt, resp.CA}
	}
	leaf, err := ca.checkIssued(chain, csr, nodeID, ttl)
	if err != nil {
		return nil, err
	}
	serial := leaf.SerialNumber.Text(16)
	if err := ca.certs.RecordCertificate(ctx, serial, nodeID, leaf.NotAfter); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, c := range chain {
		out.WriteString(strings.TrimSpace(c))
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// token is the one-time token step-ca's JWK provisioner accepts for one
// sign request: audience the sign endpoint, five minutes, a random jti,
// subject and SAN the node, confirmation the CSR's fingerprint.
func (ca *CA) token(nodeID string, csr *x509.CertificateRequest) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := ca.clock.Now()
	sum := sha256.Sum256(csr.Raw)
	claims := struct {
		jwt.Claims
		SANs []string          `json:"sans"`
		Cnf  map[string]string `json:"cnf"`
	}{
		Claims: jwt.Claims{
			Issuer:    ca.cfg.ProvisionerName,
			Subject:   nodeID,
			Audience:  jwt.Audience{ca.cfg.URL + "/1.0/sign"},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-30 * time.Second)),
			Expiry:    jwt.NewNumericDate(now.Add(5 * time.Minute)),
			ID:        hex.EncodeToString(jti),
		},
		SANs: []string{ca.nodeURI(nodeID)},
		Cnf:  map[string]string{"x5rt#S256": base64.RawURLEncoding.EncodeToString(sum[:])},
	}
	return jwt.Signed(ca.signer).Claims(claims).Serialize()
}

// checkIssued parses what step-ca returned and refuses a certificate that
// is not what was asked for: a misconfigured template must not hand a node
// a certificate naming something else.
func (ca *CA) checkIssued(chainPEM []string, csr *x509.CertificateRequest, nodeID string, ttl time.Duration) (*x509.Certificate, error) {
	refused := func(msg string) error {
		return fault.New(fault.KindInternal, CodeRefused, "step-ca issued an unexpected certificate: "+msg)
	}
	var certs []*x509.Certificate
	for _, p := range chainPEM {
		blk, _ := pem.Decode([]byte(p))
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, refused("not PEM")
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, refused(err.Error())
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, refused("empty chain")
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.roots, Intermediates: inter, CurrentTime: leaf.NotBefore.Add(time.Second),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, refused("does not chain to the root for client auth: " + err.Error())
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if k, ok := leaf.PublicKey.(equaler); !ok || !k.Equal(csr.PublicKey) {
		return nil, refused("not for the CSR's key")
	}
	if leaf.Subject.CommonName != nodeID || len(leaf.URIs) != 1 || leaf.URIs[0].String() != ca.nodeURI(nodeID) || leaf.IsCA {
		return nil, refused("does not name the node")
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > ttl+5*time.Minute {
		return nil, refused(fmt.Sprintf("lifetime %s exceeds the %s asked for", life, ttl))
	}
	return leaf, nil
}

// post sends a JSON request and decodes the answer, translating step-ca's
// refusals (4xx: misconfiguration, since inputs were checked) and outages.
func (ca *CA) post(ctx context.Context, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ca.cfg.URL+path, bytes.NewReader(body))
	if err != nil {
		return fault.Internal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ca.http.Do(req)
	if err != nil {
		return fault.Unavailable("step-ca is unavailable", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fault.Unavailable("step-ca is unavailable", err)
	}
	switch {
	case resp.StatusCode >= 500:
		return fault.Unavailable("step-ca is unavailable", fmt.Errorf("status %d: %s", resp.StatusCode, b))
	case resp.StatusCode >= 400:
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &e)
		return fault.New(fault.KindInternal, CodeRefused, "step-ca refused the request").
			Wrap(fmt.Errorf("status %d: %s", resp.StatusCode, e.Message))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fault.Unavailable("step-ca answered garbage", err)
	}
	return nil
}

// Revoke implements [ports.CertificateAuthority]. Revocation is recorded in
// the platform's certificate store, which the Connect host checks on every
// call; step-ca's own (passive) revocation would only stop renewals through
// step-ca, which the platform does not use.
func (ca *CA) Revoke(ctx context.Context, serial string) error {
	return ca.certs.RevokeCertificate(ctx, strings.ToLower(serial), ca.clock.Now())
}

// Roots implements [ports.CertificateAuthority]: step-ca's root, as
// configured.
func (ca *CA) Roots(context.Context) (*x509.CertPool, error) { return ca.roots.Clone(), nil }
