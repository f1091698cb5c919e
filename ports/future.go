package ports

import (
	"context"
	"crypto"
	"crypto/x509"
	"io"
	"time"

	"github.com/gpuaas/gpuaas/core/ledger"
)

// The ports below serve the compute, money and storage paths. Their
// adapters arrive with those capabilities (see doc.go).

// LedgerStore posts entries and sums balances.
type LedgerStore interface {
	// Post appends entries; an entry whose idempotency key exists is skipped.
	Post(ctx context.Context, entries ...ledger.Entry) (posted int, err error)
	Balance(ctx context.Context, tenantID string) (amountMinor int64, currency string, err error)
}

// PaymentSession is a checkout in progress.
type PaymentSession struct {
	ID          string
	TenantID    string
	UserID      string
	AmountMinor int64
	Currency    string
	ProviderRef string
	Status      string // initiated, credited, failed_reconcile, expired
	CheckoutURL string
	CreatedAt   time.Time
}

// PaymentStore persists payment sessions and processed provider events.
type PaymentStore interface {
	CreateSession(ctx context.Context, s PaymentSession) error
	GetSessionByProviderRef(ctx context.Context, ref string) (PaymentSession, error)
	SetSessionStatus(ctx context.Context, id, status string) error
	// MarkEventProcessed records a provider event id; false if seen before.
	MarkEventProcessed(ctx context.Context, provider, eventID string) (bool, error)
}

// PaymentProvider creates checkouts and verifies webhooks (Stripe, dev).
type PaymentProvider interface {
	CreateCheckout(ctx context.Context, s PaymentSession, successURL, cancelURL string) (ref, url string, err error)
	CustomerPortalURL(ctx context.Context, tenantID, returnURL string) (string, error)
	// ParseWebhook verifies the signature over the raw body and decodes it.
	ParseWebhook(payload []byte, signatureHeader string) (WebhookEvent, error)
}

// WebhookEvent is a verified provider event.
type WebhookEvent struct {
	ID          string
	Type        string
	SessionRef  string
	AmountMinor int64
	Currency    string
}

// WorkflowEngine starts durable workflows (Temporal). Starting a workflow
// whose id is already running is not an error.
type WorkflowEngine interface {
	Start(ctx context.Context, workflow, id string, input any) error
	Signal(ctx context.Context, id, signal string, arg any) error
}

// ObjectStore stores project files under /{tenant}/{project}/.
type ObjectStore interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Get(ctx context.Context, key string) (io.ReadCloser, int64, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix, cursor string, limit int) (keys []ObjectInfo, next string, err error)
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key          string
	Size         int64
	LastModified time.Time
}

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
