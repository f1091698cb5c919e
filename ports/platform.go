package ports

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/policy"
)

// PolicyStore reads and writes policy values (global, with per-tenant
// overrides). Implementations may cache; Set invalidates.
type PolicyStore interface {
	// Values returns the effective values for a tenant ("" for global).
	Values(ctx context.Context, tenantID string) (policy.Values, error)
	Set(ctx context.Context, tenantID, key, value, actorID string) error
}

// AuditLog appends to and reads the audit log.
type AuditLog interface {
	Record(ctx context.Context, e audit.Event) error
	List(ctx context.Context, f audit.Filter) (events []audit.Event, nextCursor string, err error)
}

// AuditExporter streams the audit events a filter selects, newest first,
// without buffering them (the CSV export).
type AuditExporter interface {
	Each(ctx context.Context, f audit.Filter, fn func(audit.Event) error) error
}

// Outbox appends events inside the caller's transaction.
type Outbox interface {
	Append(ctx context.Context, events ...event.Envelope) error
}

// OutboxRecord is a claimed outbox row: the event as stored, not decoded.
type OutboxRecord struct {
	Event      event.Encoded
	RetryCount int
}

// OutboxClaimer hands batches of pending outbox rows to a publisher while
// holding their row locks, then records each row's outcome.
type OutboxClaimer interface {
	// ProcessBatch claims up to limit pending rows due for an attempt (FOR
	// UPDATE SKIP LOCKED), calls publish, and records per row: nil error →
	// published (the row leaves the outbox); error → retry_count+1 with
	// backoff, failed after maxRetries.
	// It returns the number of rows claimed.
	ProcessBatch(ctx context.Context, limit int, publish func(ctx context.Context, recs []OutboxRecord) []error) (int, error)
	// WaitForNew blocks until new rows may be pending, or ctx/timeout ends.
	WaitForNew(ctx context.Context, timeout time.Duration) error
}

// Publisher publishes events to the bus with the event id as dedupe id.
// Events arrive encoded ([event.Encode]; the outbox stores that form) and
// are published byte for byte.
type Publisher interface {
	// PublishBatch publishes all events and returns one error slot per event.
	PublishBatch(ctx context.Context, events []event.Encoded) []error
}

// Message is a delivered event.
type Message struct {
	Envelope event.Envelope
	// Ack marks the message handled; Nak asks for redelivery.
	Ack func() error
	Nak func(delay time.Duration) error
}

// Subscriber consumes a durable consumer. Handlers must be idempotent by
// Envelope.ID: delivery is at least once.
type Subscriber interface {
	Consume(ctx context.Context, stream, durable string, handle func(ctx context.Context, m Message)) error
}

// IdempotencyState is where a key stands.
type IdempotencyState int

const (
	IdempotencyNew       IdempotencyState = iota // caller owns the key now
	IdempotencyReplay                            // completed: replay the stored response
	IdempotencyInFlight                          // another request holds it
	IdempotencyMismatch                          // same key, different request
	IdempotencyCommitted                         // its request's writes committed, but no response was stored
)

// StoredResponse is a response remembered for replay.
type StoredResponse struct {
	Status  int
	Headers map[string]string
	Body    json.RawMessage
}

// ValidIdempotencyKey reports whether k is a key callers may choose: 1–255
// printable ASCII characters, no spaces (REST's X-Idempotency-Key, the RPCs'
// request_id).
func ValidIdempotencyKey(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// IdempotencyStore remembers responses by (scope, key).
type IdempotencyStore interface {
	// Begin claims the key for a request with the given fingerprint.
	Begin(ctx context.Context, scope, key, fingerprint string, ttl time.Duration) (IdempotencyState, StoredResponse, error)
	// Complete stores the response of the request that holds the key (in
	// flight or committed).
	Complete(ctx context.Context, scope, key string, resp StoredResponse) error
	// MarkCommitted, called inside the request's transaction (the ctx of
	// TxRunner.InTx, through WithTxWork), records that the request's writes
	// committed — when, and only when, that transaction commits. From then on
	// Abandon keeps the key and Begin answers IdempotencyCommitted until
	// Complete stores a response: a request that failed after its commit, or
	// whose commit's outcome it could not learn, is never run a second time.
	MarkCommitted(ctx context.Context, scope, key string) error
	// Abandon releases an in-flight key whose request failed before a
	// response and committed nothing.
	Abandon(ctx context.Context, scope, key string) error
}

// TokenStore keeps short-lived single-use tokens (terminal tokens, OIDC
// state). Consume is atomic: of concurrent consumers exactly one gets it.
type TokenStore interface {
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Consume(ctx context.Context, key string) ([]byte, error) // NotFound when absent or expired
	// Has reports whether an unexpired token is stored under key, without
	// consuming it (a deny-list entry, say).
	Has(ctx context.Context, key string) (bool, error)
}

// RateDecision is the outcome of one rate-limit check.
type RateDecision struct {
	Allowed   bool
	Limit     int
	Remaining int
	ResetAt   time.Time
}

// RateLimiter counts requests per key in fixed windows.
type RateLimiter interface {
	// Allow counts one request against the key's current window.
	Allow(ctx context.Context, key string, limit int, window time.Duration) (RateDecision, error)
	// Peek reports the key's current window without counting: Allowed is
	// whether one more request would be. It lets a caller refuse cheaply
	// before expensive work and count only the outcomes it limits (failed
	// sign-ins, say).
	Peek(ctx context.Context, key string, limit int, window time.Duration) (RateDecision, error)
}

// Mail is one plain-text email.
type Mail struct {
	To        string
	Subject   string
	Body      string
	MessageID string // "<id@domain>"; the same on every retry of one message
}

// Mailer sends an email. An error means it may not have been accepted: the
// caller retries (with the same MessageID).
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}
