package pki

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Defaults of the SSH user CA.
const (
	DefaultSSHSecretName = "pki/ssh-user-ca"
	// DefaultSSHMaxTTL bounds SSH certificates: they are the terminal's
	// credentials for one session, minted right before it dials.
	DefaultSSHMaxTTL = time.Hour
)

// CodeSSHKeyInvalid is the code of a public key SignUserKey will not sign.
const CodeSSHKeyInvalid fault.Code = "ssh_key_invalid"

// SSHConfig configures the SSH user CA.
type SSHConfig struct {
	// SecretName is where the sealed CA key is stored.
	SecretName string
	// MaxTTL bounds the lifetime SignUserKey grants.
	MaxTTL time.Duration
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *SSHConfig) CheckAndSetDefaults() error {
	if c.SecretName == "" {
		c.SecretName = DefaultSSHSecretName
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultSSHMaxTTL
	}
	if c.MaxTTL < 0 {
		return errors.New("pki: SSH MaxTTL must be positive")
	}
	return nil
}

// SSHDeps are the ports the SSH CA works through.
type SSHDeps struct {
	KMS     ports.KMS
	Secrets ports.SecretStore
	Clock   ports.Clock // nil: the wall clock
}

// SSHCA implements [ports.SSHCertificateAuthority] with an Ed25519 key kept
// sealed in the SecretStore.
type SSHCA struct {
	cfg   SSHConfig
	vault vault
	clock ports.Clock

	mu     sync.Mutex
	signer ssh.Signer
}

var _ ports.SSHCertificateAuthority = (*SSHCA)(nil)

// NewSSHCA returns an SSH user CA. It does no I/O: the key is loaded (or
// made, on the very first start) by Init or the first call.
func NewSSHCA(cfg SSHConfig, deps SSHDeps) (*SSHCA, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if deps.KMS == nil || deps.Secrets == nil {
		return nil, errors.New("pki: KMS and Secrets are required")
	}
	if deps.Clock == nil {
		deps.Clock = wallClock{}
	}
	return &SSHCA{cfg: cfg, vault: vault{kms: deps.KMS, secrets: deps.Secrets}, clock: deps.Clock}, nil
}

// Init loads the CA key, generating it on the first start.
func (c *SSHCA) Init(ctx context.Context) error {
	_, err := c.load(ctx)
	return err
}

func (c *SSHCA) load(ctx context.Context) (ssh.Signer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.signer != nil {
		return c.signer, nil
	}
	k, err := c.vault.loadKey(ctx, c.cfg.SecretName, "SSH CA key", func() (any, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	})
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: stored SSH CA key is a %T", k)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	c.signer = s
	return s, nil
}

// PublicKey implements [ports.SSHCertificateAuthority]: one
// authorized_keys line without a trailing newline, ready for sshd's
// TrustedUserCAKeys or a cert-authority entry.
func (c *SSHCA) PublicKey(ctx context.Context) (string, error) {
	s, err := c.load(ctx)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))), nil
}

// principalRE admits POSIX-ish user names: the principal becomes the
// account the certificate may log in as.
var principalRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// SignUserKey implements [ports.SSHCertificateAuthority]. The certificate
// is a user certificate for exactly one principal, valid from a minute ago
// (clock skew) until ttl from now, with permit-pty as its only extension (no
// agent, port or X11 forwarding) and a random serial.
func (c *SSHCA) SignUserKey(ctx context.Context, publicKey, principal string, ttl time.Duration) (string, error) {
	if !principalRE.MatchString(principal) {
		return "", fault.Invalid("principal", "the principal must be a user name")
	}
	if ttl <= 0 || ttl > c.cfg.MaxTTL {
		return "", fault.Invalid("ttl", fmt.Sprintf("SSH certificate lifetime must be in (0, %s]", c.cfg.MaxTTL))
	}
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil || len(strings.TrimSpace(string(rest))) != 0 {
		return "", fault.New(fault.KindInvalid, CodeSSHKeyInvalid, "the public key is not one authorized_keys line")
	}
	if _, isCert := pub.(*ssh.Certificate); isCert {
		return "", fault.New(fault.KindInvalid, CodeSSHKeyInvalid, "a certificate cannot be certified again")
	}
	switch pub.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA:
	default:
		return "", fault.New(fault.KindInvalid, CodeSSHKeyInvalid, "unsupported SSH key type "+pub.Type())
	}
	signer, err := c.load(ctx)
	if err != nil {
		return "", err
	}
	var sb [8]byte
	if _, err := rand.Read(sb[:]); err != nil {
		return "", fault.Internal(err)
	}
	serial := binary.BigEndian.Uint64(sb[:])
	now := c.clock.Now()
	cert := &ssh.Certificate{
		Key:             pub,
		Serial:          serial,
		CertType:        ssh.UserCert,
		KeyId:           fmt.Sprintf("gpuaas:%s:%016x", principal, serial),
		ValidPrincipals: []string{principal},
		ValidAfter:      uint64(now.Add(-time.Minute).Unix()),
		ValidBefore:     uint64(now.Add(ttl).Unix()),
		Permissions:     ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	if err := cert.SignCert(rand.Reader, signer); err != nil {
		return "", fault.Internal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert))), nil
}
