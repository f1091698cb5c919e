package keyfile

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/gpuaas/gpuaas/ports"
)

// SignerConfig configures the local-file task signer.
type SignerConfig struct {
	// Path of the key file: an Ed25519 private key as PKCS#8 PEM
	// ("PRIVATE KEY", as `openssl genpkey -algorithm ed25519` writes it),
	// mode 0600.
	Path string
	// NoCreate refuses to start when the file is missing instead of
	// generating a key (agents pinned to the old public key would refuse
	// every task signed by a silently replaced one).
	NoCreate bool
}

// CheckAndSetDefaults validates the config.
func (c *SignerConfig) CheckAndSetDefaults() error {
	if c.Path == "" {
		return errors.New("keyfile: signer key Path is required")
	}
	return nil
}

// Signer implements [ports.Signer] with an Ed25519 key from a local file.
type Signer struct {
	keyID string
	key   ed25519.PrivateKey
}

var _ ports.Signer = (*Signer)(nil)

// NewSigner loads the key file, generating it on first use unless NoCreate.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	b, err := loadOrCreate(cfg.Path, !cfg.NoCreate, func() ([]byte, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	})
	if err != nil {
		return nil, fmt.Errorf("keyfile: signer key: %w", err)
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" || len(pemTrim(rest)) != 0 {
		return nil, fmt.Errorf("keyfile: %s must hold one PKCS#8 \"PRIVATE KEY\" PEM block", cfg.Path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %s: %w", cfg.Path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("keyfile: %s holds a %T; an Ed25519 key is required", cfg.Path, k)
	}
	return NewSignerFromKey(priv), nil
}

// NewSignerFromKey wraps a key held elsewhere (tests, a sealed secret).
func NewSignerFromKey(priv ed25519.PrivateKey) *Signer {
	return &Signer{keyID: SignerKeyID(priv.Public().(ed25519.PublicKey)), key: priv}
}

// SignerKeyID names a public key: "ed25519:" and the first 16 bytes of its
// SHA-256, hex. Agents use it to pick the verifying key during a rotation.
func SignerKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:16])
}

// KeyID implements [ports.Signer].
func (s *Signer) KeyID() string { return s.keyID }

// Public implements [ports.Signer]; it is an ed25519.PublicKey.
func (s *Signer) Public() crypto.PublicKey { return s.key.Public() }

// Sign implements [ports.Signer].
func (s *Signer) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return ed25519.Sign(s.key, msg), nil
}

func pemTrim(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' || b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
