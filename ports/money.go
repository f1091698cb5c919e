package ports

import (
	"context"
	"time"

	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/payment"
)

// The money path's ports: the ledger, payment sessions and refunds, and the
// payment provider.

// LedgerStore posts entries and sums balances.
type LedgerStore interface {
	// Post appends entries; an entry whose idempotency key exists is skipped.
	Post(ctx context.Context, entries ...ledger.Entry) (posted int, err error)
	Balance(ctx context.Context, tenantID string) (amountMinor int64, currency string, err error)
}

// PaymentStore persists payment sessions, the provider's customer per
// tenant, and the provider events already processed. Calls join the
// transaction in ctx.
type PaymentStore interface {
	// CreateSession inserts s. When the user already has a session with the
	// same idempotency key it returns that one and created=false.
	CreateSession(ctx context.Context, s payment.Session) (stored payment.Session, created bool, err error)
	// AttachProviderRef records the provider's checkout id and URL.
	AttachProviderRef(ctx context.Context, id, ref, checkoutURL string) error
	GetSession(ctx context.Context, id string) (payment.Session, error)
	GetSessionByProviderRef(ctx context.Context, ref string) (payment.Session, error)
	// TransitionSession moves a session from one status to another in one
	// conditional write; false when it was not in from (someone else won).
	TransitionSession(ctx context.Context, id string, from, to payment.Status, at time.Time) (bool, error)
	ListSessions(ctx context.Context, f payment.SessionFilter) (sessions []payment.Session, nextCursor string, err error)
	// MarkEventProcessed records a provider event id; false if seen before.
	MarkEventProcessed(ctx context.Context, provider, eventID, eventType string, at time.Time) (bool, error)
	// CustomerRef returns the tenant's customer at the provider (NotFound if none).
	CustomerRef(ctx context.Context, tenantID, provider string) (string, error)
	// SaveCustomerRef stores the tenant's customer unless one exists, and
	// returns the stored one (the first writer wins).
	SaveCustomerRef(ctx context.Context, tenantID, provider, ref string) (string, error)
}

// RefundStore persists refund requests. Calls join the transaction in ctx.
type RefundStore interface {
	// CreateRefund inserts r; when the tenant already has a request with
	// the same idempotency key it returns that one and created=false.
	CreateRefund(ctx context.Context, r payment.Refund) (stored payment.Refund, created bool, err error)
	GetRefund(ctx context.Context, id string) (payment.Refund, error)
	GetRefundByProviderRef(ctx context.Context, provider, ref string) (payment.Refund, error)
	// PendingRefundMinor sums the requested and submitted refunds of a credit.
	PendingRefundMinor(ctx context.Context, creditEntryID string) (int64, error)
	// TransitionRefund moves a request whose status is one of from to `to`,
	// recording the provider's ref (when not empty) and a failure reason,
	// in one conditional write; false when it was in none of them.
	TransitionRefund(ctx context.Context, id string, from []payment.RefundStatus, to payment.RefundStatus, providerRef, failure string, at time.Time) (bool, error)
	ListRefunds(ctx context.Context, f payment.RefundFilter) ([]payment.Refund, string, error)
}

// RefundCall asks a provider to refund (part of) a paid checkout.
type RefundCall struct {
	RefundID    string // the platform's request id: the provider's idempotency key and metadata
	SessionRef  string // the provider's checkout id that took the money
	AmountMinor int64
	Currency    string
}

// RefundResult is the provider's answer: its refund id and where the refund
// stands (submitted while pending, succeeded, failed).
type RefundResult struct {
	Ref    string
	Status payment.RefundStatus
	// Failure says why, when Status is failed.
	Failure string
}

// CheckoutRequest is what a provider needs to open a hosted checkout.
type CheckoutRequest struct {
	SessionID   string // the platform's session id: client reference and provider idempotency key
	TenantID    string
	UserID      string
	CustomerRef string
	AmountMinor int64
	Currency    string
	SuccessURL  string
	CancelURL   string
}

// PaymentProvider creates checkouts and verifies webhooks (Stripe, dev).
type PaymentProvider interface {
	// Name is stored with sessions and processed events, e.g. "stripe".
	Name() string
	// EnsureCustomer creates the tenant's customer at the provider.
	EnsureCustomer(ctx context.Context, tenantID, email string) (customerRef string, err error)
	CreateCheckout(ctx context.Context, r CheckoutRequest) (ref, url string, err error)
	CustomerPortalURL(ctx context.Context, customerRef, returnURL string) (string, error)
	// ParseWebhook verifies the signature over the raw body and decodes it.
	// A bad signature is a fault with code webhook_signature_invalid.
	ParseWebhook(payload []byte, signatureHeader string) (WebhookEvent, error)
	// Refund returns money of a paid checkout (idempotent by RefundID). A
	// refusal is fault.Unprocessable (payment_provider_refused); an outage
	// is fault.Unavailable (retry).
	Refund(ctx context.Context, r RefundCall) (RefundResult, error)
}

// WebhookEvent is a verified provider event.
type WebhookEvent struct {
	ID   string
	Type string // the provider's type, e.g. checkout.session.completed
	// Kind is what the event means to the platform (ignored when zero).
	Kind payment.EventKind
	// SessionRef is the provider's checkout id; ClientReference the
	// platform's session id the checkout was created with.
	SessionRef      string
	ClientReference string
	AmountMinor     int64
	Currency        string
	// RefundRef is the provider's refund id and RefundID the platform's
	// request id (from the refund's metadata), for refund events.
	RefundRef     string
	RefundID      string
	RefundFailure string
}
