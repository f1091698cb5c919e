package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Stable codes of refused node certificates and CSRs.
const (
	CodeCSRInvalid              fault.Code = "csr_invalid"
	CodeNodeCertificateRequired fault.Code = "node_certificate_required"
	CodeNodeCertificateInvalid  fault.Code = "node_certificate_invalid"
	CodeNodeCertificateRevoked  fault.Code = "node_certificate_revoked"
)

// Defaults. Node certificates are short-lived on purpose: the agent renews at
// about two thirds of the lifetime, so a stolen certificate is useful for
// hours, and revocation is checked on every call besides.
const (
	DefaultNodeCertTTL          = 24 * time.Hour
	DefaultMaxNodeCertTTL       = 72 * time.Hour
	DefaultServerCertTTL        = 7 * 24 * time.Hour
	DefaultRootValidity         = 10 * 365 * 24 * time.Hour
	DefaultIntermediateValidity = 365 * 24 * time.Hour
	DefaultTrustDomain          = "gpuaas"
	DefaultSecretPrefix         = "pki/"
	// backdate tolerates clocks of agents that run slightly behind.
	backdate = time.Minute
)

// Config configures the built-in CAs.
type Config struct {
	// NodeCertTTL is the lifetime of a node certificate when SignCSR is
	// asked for ttl 0; MaxNodeCertTTL bounds what callers may ask for.
	NodeCertTTL    time.Duration
	MaxNodeCertTTL time.Duration
	// ServerCertTTL is the lifetime of the Connect host's certificate.
	ServerCertTTL time.Duration
	// RootValidity and IntermediateValidity: the root is made once; a new
	// intermediate is made every IntermediateValidity/2, so the one in use
	// always has at least half its life left.
	RootValidity         time.Duration
	IntermediateValidity time.Duration
	// TrustDomain is the SPIFFE trust domain in node URIs:
	// spiffe://<TrustDomain>/node/<node id>.
	TrustDomain string
	// SecretPrefix prefixes the secret names the CA keys are stored under.
	SecretPrefix string
	// SSH configures the SSH user CA.
	SSH SSHConfig
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.NodeCertTTL, DefaultNodeCertTTL)
	def(&c.MaxNodeCertTTL, DefaultMaxNodeCertTTL)
	def(&c.ServerCertTTL, DefaultServerCertTTL)
	def(&c.RootValidity, DefaultRootValidity)
	def(&c.IntermediateValidity, DefaultIntermediateValidity)
	if c.TrustDomain == "" {
		c.TrustDomain = DefaultTrustDomain
	}
	if c.SecretPrefix == "" {
		c.SecretPrefix = DefaultSecretPrefix
	}
	switch {
	case c.NodeCertTTL < 0 || c.MaxNodeCertTTL < 0 || c.ServerCertTTL < 0 || c.RootValidity < 0 || c.IntermediateValidity < 0:
		return errors.New("pki: durations must not be negative")
	case c.NodeCertTTL > c.MaxNodeCertTTL:
		return errors.New("pki: NodeCertTTL exceeds MaxNodeCertTTL")
	case c.IntermediateValidity > c.RootValidity:
		return errors.New("pki: IntermediateValidity exceeds RootValidity")
	case c.MaxNodeCertTTL > c.IntermediateValidity/2 || c.ServerCertTTL > c.IntermediateValidity/2:
		return errors.New("pki: certificate lifetimes must fit in half an intermediate's validity")
	case strings.ContainsAny(c.TrustDomain, "/:@ ") || strings.ToLower(c.TrustDomain) != c.TrustDomain:
		return errors.New("pki: TrustDomain must be a lower-case host name")
	}
	return c.SSH.CheckAndSetDefaults()
}

// CertificateStore is what the CA needs of its certificate records: the
// port, plus revocation of a single serial (adapters/postgres
// NodeCertificateStore implements it).
type CertificateStore interface {
	ports.NodeCertificateStore
	RevokeCertificate(ctx context.Context, serial string, at time.Time) error
}

// Deps are the ports the CA works through.
type Deps struct {
	KMS          ports.KMS
	Secrets      ports.SecretStore
	Certificates CertificateStore
	Clock        ports.Clock // nil: the wall clock
}

// CA implements [ports.CertificateAuthority] with a root and intermediate
// kept sealed in the SecretStore.
type CA struct {
	cfg   Config
	vault vault
	certs CertificateStore
	clock ports.Clock

	mu       sync.Mutex
	root     *keyPair
	roots    *x509.CertPool
	interIdx int64
	inter    *keyPair
}

var _ ports.CertificateAuthority = (*CA)(nil)

// New returns a CA. It does no I/O: keys are loaded (or made, on the very
// first start) by Init or by the first call that needs them.
func New(cfg Config, deps Deps) (*CA, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if deps.KMS == nil || deps.Secrets == nil || deps.Certificates == nil {
		return nil, errors.New("pki: KMS, Secrets and Certificates are required")
	}
	if deps.Clock == nil {
		deps.Clock = wallClock{}
	}
	return &CA{cfg: cfg, vault: vault{kms: deps.KMS, secrets: deps.Secrets}, certs: deps.Certificates, clock: deps.Clock, interIdx: -1}, nil
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Init loads the root and the current intermediate, generating them on
// the first start. Hosts call it at start so a KMS or database problem
// fails the start rather than the first enrolment.
func (ca *CA) Init(ctx context.Context) error {
	_, err := ca.issuer(ctx)
	return err
}

// issuer returns the intermediate to sign with now, loading or making the
// root and the intermediate as needed.
func (ca *CA) issuer(ctx context.Context) (*keyPair, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.root == nil {
		b, err := ca.vault.loadOrCreate(ctx, ca.cfg.SecretPrefix+"root", ca.newRoot)
		if err != nil {
			return nil, err
		}
		kp, err := decodeKeyPair(b)
		wipe(b)
		if err != nil {
			return nil, err
		}
		if !kp.cert.IsCA {
			return nil, errors.New("pki: stored root is not a CA certificate")
		}
		pool := x509.NewCertPool()
		pool.AddCert(kp.cert)
		ca.root, ca.roots = &kp, pool
	}
	now := ca.clock.Now()
	if !now.Before(ca.root.cert.NotAfter) {
		return nil, fault.Unavailable("the platform root CA has expired", nil)
	}
	idx := ca.intermediateIndex(now)
	if ca.inter != nil && ca.interIdx == idx {
		return ca.inter, nil
	}
	name := ca.cfg.SecretPrefix + "intermediate/" + strconv.FormatInt(idx, 10)
	b, err := ca.vault.loadOrCreate(ctx, name, func() ([]byte, error) { return ca.newIntermediate(idx) })
	if err != nil {
		return nil, err
	}
	kp, err := decodeKeyPair(b)
	wipe(b)
	if err != nil {
		return nil, err
	}
	if err := kp.cert.CheckSignatureFrom(ca.root.cert); err != nil {
		return nil, fmt.Errorf("pki: stored intermediate %d is not signed by the root: %w", idx, err)
	}
	ca.inter, ca.interIdx = &kp, idx
	return ca.inter, nil
}

// intermediateIndex numbers rotation periods from the root's birth. The
// period, not the process, decides the index, so every replica agrees on
// which intermediate is current and creates it at most once between them.
func (ca *CA) intermediateIndex(now time.Time) int64 {
	period := ca.cfg.IntermediateValidity / 2
	d := now.Sub(ca.root.cert.NotBefore.Add(backdate))
	if d < 0 {
		return 0
	}
	return int64(d / period)
}

func (ca *CA) newRoot() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := ca.clock.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"GPUaaS"}, CommonName: "GPUaaS Root CA " + ca.cfg.TrustDomain},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(ca.cfg.RootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return encodeKeyPair(der, key)
}

func (ca *CA) newIntermediate(idx int64) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	period := ca.cfg.IntermediateValidity / 2
	notBefore := ca.root.cert.NotBefore.Add(time.Duration(idx) * period)
	notAfter := notBefore.Add(ca.cfg.IntermediateValidity + backdate)
	if notAfter.After(ca.root.cert.NotAfter) {
		notAfter = ca.root.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"GPUaaS"}, CommonName: fmt.Sprintf("GPUaaS Intermediate CA %s %d", ca.cfg.TrustDomain, idx)},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root.cert, key.Public(), ca.root.key)
	if err != nil {
		return nil, err
	}
	return encodeKeyPair(der, key)
}

// randomSerial is 128 random bits (RFC 5280 allows up to 20 octets);
// unpredictable serials also defeat chosen-prefix collision attacks.
func randomSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// Serial formats a certificate's serial as the CA records it: lower-case
// hex without leading zeros.
func Serial(cert *x509.Certificate) string { return cert.SerialNumber.Text(16) }

// NodeURI is the URI SAN that binds a certificate to a node.
func (ca *CA) NodeURI(nodeID string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: ca.cfg.TrustDomain, Path: "/node/" + nodeID}
}

// SignCSR implements [ports.CertificateAuthority]. Only the CSR's public
// key is used: the subject, SANs and extensions it asks for are ignored, and
// the certificate names nodeID (CommonName and URI SAN
// spiffe://<trust domain>/node/<nodeID>) and allows client authentication
// only. ttl 0 means Config.NodeCertTTL. The serial is recorded before the
// certificate is returned; the result is PEM: leaf, then intermediate.
func (ca *CA) SignCSR(ctx context.Context, csr *x509.CertificateRequest, nodeID string, ttl time.Duration) ([]byte, error) {
	if csr == nil {
		return nil, fault.New(fault.KindInvalid, CodeCSRInvalid, "a CSR is required")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fault.New(fault.KindInvalid, CodeCSRInvalid, "the CSR signature does not verify").Wrap(err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if u, err := uuid.Parse(nodeID); err != nil || u.String() != nodeID {
		return nil, fault.Invalid("node_id", "a node id is a lower-case UUID")
	}
	if ttl == 0 {
		ttl = ca.cfg.NodeCertTTL
	}
	if ttl < 0 || ttl > ca.cfg.MaxNodeCertTTL {
		return nil, fault.Invalid("ttl", fmt.Sprintf("certificate lifetime must be in (0, %s]", ca.cfg.MaxNodeCertTTL))
	}
	inter, err := ca.issuer(ctx)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fault.Internal(err)
	}
	now := ca.clock.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: nodeID},
		URIs:                  []*url.URL{ca.NodeURI(nodeID)},
		NotBefore:             now.Add(-backdate),
		NotAfter:              minTime(now.Add(ttl), inter.cert.NotAfter),
		KeyUsage:              keyUsageFor(csr.PublicKey),
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, inter.cert, csr.PublicKey, inter.key)
	if err != nil {
		return nil, fault.Internal(err)
	}
	if err := ca.certs.RecordCertificate(ctx, serial.Text(16), nodeID, tmpl.NotAfter); err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.cert.Raw})...), nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// checkPublicKey admits the key types agents are expected to use, at
// strengths that are safe today.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return nil
		}
	}
	return fault.New(fault.KindInvalid, CodeCSRInvalid, "the CSR key must be ECDSA P-256/P-384, Ed25519 or RSA ≥ 2048 bits")
}

func keyUsageFor(pub crypto.PublicKey) x509.KeyUsage {
	if _, ok := pub.(*rsa.PublicKey); ok {
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	return x509.KeyUsageDigitalSignature
}

// Revoke implements [ports.CertificateAuthority]: the serial (as [Serial]
// formats it) is marked revoked now; AuthenticateNode refuses it from then
// on. An unknown serial is NotFound.
func (ca *CA) Revoke(ctx context.Context, serial string) error {
	return ca.certs.RevokeCertificate(ctx, strings.ToLower(serial), ca.clock.Now())
}

// Roots implements [ports.CertificateAuthority]: the pool holds the root
// only; peers present the intermediate in their chain.
func (ca *CA) Roots(ctx context.Context) (*x509.CertPool, error) {
	if _, err := ca.issuer(ctx); err != nil {
		return nil, err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.roots.Clone(), nil
}

// RootPEM is the root certificate, for agents' trust bundles.
func (ca *CA) RootPEM(ctx context.Context) ([]byte, error) {
	if _, err := ca.issuer(ctx); err != nil {
		return nil, err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.root.cert.Raw}), nil
}

// IssueServerCert issues a server certificate for hosts (DNS names or IP
// addresses) with a fresh P-256 key, valid for ttl (0: Config.ServerCertTTL).
// The chain holds the leaf and the intermediate.
func (ca *CA) IssueServerCert(ctx context.Context, hosts []string, ttl time.Duration) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("pki: a server certificate needs at least one host")
	}
	if ttl == 0 {
		ttl = ca.cfg.ServerCertTTL
	}
	if ttl < 0 || ttl > ca.cfg.IntermediateValidity/2 {
		return tls.Certificate{}, fmt.Errorf("pki: server certificate lifetime %s out of range", ttl)
	}
	inter, err := ca.issuer(ctx)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := randomSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := ca.clock.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             now.Add(-backdate),
		NotAfter:              minTime(now.Add(ttl), inter.cert.NotAfter),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, inter.cert, key.Public(), inter.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, inter.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerTLSConfig is the Connect host's TLS config: a server certificate
// for hosts, re-issued at two thirds of its lifetime, and client
// certificates verified against the root when presented (Enroll comes
// without one; every other call must pass AuthenticateNode).
func (ca *CA) ServerTLSConfig(ctx context.Context, hosts []string) (*tls.Config, error) {
	roots, err := ca.Roots(ctx)
	if err != nil {
		return nil, err
	}
	var (
		mu  sync.Mutex
		cur *tls.Certificate
	)
	get := func(ctx context.Context) (*tls.Certificate, error) {
		mu.Lock()
		defer mu.Unlock()
		now := ca.clock.Now()
		if cur != nil {
			nb, na := cur.Leaf.NotBefore, cur.Leaf.NotAfter
			if now.Before(nb.Add(na.Sub(nb) * 2 / 3)) {
				return cur, nil
			}
		}
		c, err := ca.IssueServerCert(ctx, hosts, 0)
		if err != nil {
			if cur != nil && now.Before(cur.Leaf.NotAfter) {
				return cur, nil // keep serving; the next handshake retries
			}
			return nil, err
		}
		cur = &c
		return cur, nil
	}
	if _, err := get(ctx); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  roots,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return get(hello.Context())
		},
	}, nil
}

// NodeIDFromCertificate returns the node a certificate names, checking that
// its SPIFFE URI SAN and CommonName agree and that it is a client
// certificate. It does not verify the chain: use it on a peer certificate
// the TLS stack has verified, or through AuthenticateNode.
func NodeIDFromCertificate(cert *x509.Certificate, trustDomain string) (string, error) {
	invalid := fault.Unauthenticated(CodeNodeCertificateInvalid, "the client certificate does not identify a node")
	if cert == nil || len(cert.URIs) != 1 {
		return "", invalid
	}
	u := cert.URIs[0]
	id, ok := strings.CutPrefix(u.Path, "/node/")
	if u.Scheme != "spiffe" || u.Host != trustDomain || !ok || u.RawQuery != "" || u.Fragment != "" {
		return "", invalid
	}
	if parsed, err := uuid.Parse(id); err != nil || parsed.String() != id || cert.Subject.CommonName != id {
		return "", invalid
	}
	client := false
	for _, eku := range cert.ExtKeyUsage {
		client = client || eku == x509.ExtKeyUsageClientAuth
	}
	if !client || cert.IsCA {
		return "", invalid
	}
	return id, nil
}

// AuthenticateNode identifies the node behind a TLS connection whose
// client certificate the TLS stack verified against Roots (ServerTLSConfig
// does). It also checks, at the CA's clock, that the certificate is within
// its validity, that the CA recorded its serial for that same node, and that
// it is not revoked. Refusals are Unauthenticated: node_certificate_required,
// node_certificate_invalid or node_certificate_revoked.
func (ca *CA) AuthenticateNode(ctx context.Context, cs *tls.ConnectionState) (nodeID, serial string, err error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", "", fault.Unauthenticated(CodeNodeCertificateRequired, "a verified node client certificate is required")
	}
	chain := cs.VerifiedChains[0]
	leaf := chain[0]
	// The chain must end at this CA's root, not merely at some root the
	// server was configured with.
	ca.mu.Lock()
	root := ca.root
	ca.mu.Unlock()
	if root == nil {
		if _, err := ca.issuer(ctx); err != nil {
			return "", "", err
		}
		ca.mu.Lock()
		root = ca.root
		ca.mu.Unlock()
	}
	if !bytes.Equal(chain[len(chain)-1].Raw, root.cert.Raw) {
		return "", "", fault.Unauthenticated(CodeNodeCertificateInvalid, "the client certificate was not issued by the platform CA")
	}
	nodeID, err = NodeIDFromCertificate(leaf, ca.cfg.TrustDomain)
	if err != nil {
		return "", "", err
	}
	now := ca.clock.Now()
	if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return "", "", fault.Unauthenticated(CodeNodeCertificateInvalid, "the client certificate is not valid now")
	}
	serial = Serial(leaf)
	recorded, revoked, err := ca.certs.UseCertificate(ctx, serial, now)
	switch {
	case fault.IsKind(err, fault.KindNotFound):
		return "", "", fault.Unauthenticated(CodeNodeCertificateInvalid, "the client certificate is unknown")
	case err != nil:
		return "", "", err
	case recorded != nodeID:
		return "", "", fault.Unauthenticated(CodeNodeCertificateInvalid, "the client certificate was issued to another node")
	case revoked:
		return "", "", fault.Unauthenticated(CodeNodeCertificateRevoked, "the client certificate has been revoked")
	}
	return nodeID, serial, nil
}

// TrustDomain is the SPIFFE trust domain node certificates are issued in.
func (ca *CA) TrustDomain() string { return ca.cfg.TrustDomain }

// Fingerprint is the SHA-256 of a certificate's DER, for logs and pinning.
func Fingerprint(cert *x509.Certificate) [32]byte { return sha256.Sum256(cert.Raw) }

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
