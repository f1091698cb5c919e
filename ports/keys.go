package ports

import (
	"context"
	"crypto"
	"crypto/x509"
	"time"
)

// The keys the platform holds or asks for: node certificates, task
// signatures and the encryption envelope's data keys.

// CertificateAuthority signs short-lived node client certificates.
type CertificateAuthority interface {
	SignCSR(ctx context.Context, csr *x509.CertificateRequest, nodeID string, ttl time.Duration) (certPEM []byte, err error)
	Revoke(ctx context.Context, serial string) error
	Roots(ctx context.Context) (*x509.CertPool, error)
}

// Signer signs node tasks (Ed25519) with a key it holds.
type Signer interface {
	KeyID() string
	Public() crypto.PublicKey
	Sign(ctx context.Context, msg []byte) ([]byte, error)
}

// KMS wraps and unwraps data keys for the encryption envelope.
type KMS interface {
	KeyID() string
	Encrypt(ctx context.Context, plaintext []byte) ([]byte, error)
	Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error)
}
