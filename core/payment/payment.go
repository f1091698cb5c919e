package payment

import (
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
)

// Status is where a payment session stands.
type Status string

// The session states. Only initiated moves; the others are final, so a late
// or replayed provider event can never credit twice or undo a credit.
const (
	Initiated       Status = "initiated"        // checkout created, waiting for the provider
	Credited        Status = "credited"         // paid and credited to the ledger
	FailedReconcile Status = "failed_reconcile" // the provider reported an amount or currency we did not ask for
	Expired         Status = "expired"          // the provider's checkout expired unpaid
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case Initiated, Credited, FailedReconcile, Expired:
		return true
	}
	return false
}

// CanTransition reports whether a session may move from one status to another.
func CanTransition(from, to Status) bool {
	return from == Initiated && (to == Credited || to == FailedReconcile || to == Expired)
}

// Session is one top-up checkout. AmountMinor and Currency are what the
// platform asked the provider to charge; a webhook must match both.
type Session struct {
	ID             string
	TenantID       string
	UserID         string
	AmountMinor    int64
	Currency       string
	Provider       string // "stripe", "devpay"
	ProviderRef    string // the provider's checkout id; "" until the provider answered
	CheckoutURL    string
	Status         Status
	IdempotencyKey string // the caller's key; unique per user
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// CreditEntryID is the ledger credit the session posted, in the admin
	// list ("" before it was credited, and elsewhere).
	CreditEntryID string
}

// SessionFilter selects sessions for the admin list; zero fields match all.
type SessionFilter struct {
	Status Status
	Limit  int
	Cursor string
}

// EventKind is what a verified provider event means to the platform. The
// provider adapter maps its own event types onto these.
type EventKind string

const (
	// EventIgnored is any event the platform does not act on; it is
	// acknowledged and nothing is written.
	EventIgnored EventKind = ""
	// EventPaid says the checkout completed and the money was captured.
	EventPaid EventKind = "paid"
	// EventExpired says the checkout expired without payment.
	EventExpired EventKind = "expired"
)

// Stable error codes of the payment path.
const (
	CodeIdempotencyKeyRequired  fault.Code = "idempotency_key_required"
	CodeAmountOutOfRange        fault.Code = "amount_out_of_range"
	CodeCurrencyNotSupported    fault.Code = "currency_not_supported"
	CodeWebhookSignatureInvalid fault.Code = "webhook_signature_invalid"
	CodeUnknownPaymentSession   fault.Code = "unknown_payment_session"
)

// ErrSignature is the fault for a webhook whose signature does not verify
// (missing, malformed, wrong secret, mutated body or outside the tolerance).
// The message is the same for every cause so probing learns nothing.
func ErrSignature(cause error) *fault.Error {
	return (&fault.Error{Kind: fault.KindInvalid, Code: CodeWebhookSignatureInvalid,
		Message: "the webhook signature is missing or invalid"}).Wrap(cause)
}

// NormalizeCurrency lower-cases and trims an ISO 4217 code, the form the
// ledger and Stripe both use.
func NormalizeCurrency(c string) string { return strings.ToLower(strings.TrimSpace(c)) }

// CheckTopUp validates a requested top-up against the policy limits and the
// ledger currency. Amounts are int64 minor units: floats never touch money.
func CheckTopUp(amountMinor, minMinor, maxMinor int64, currency, ledgerCurrency string) error {
	if amountMinor < minMinor || amountMinor > maxMinor {
		return (&fault.Error{Kind: fault.KindUnprocessable, Code: CodeAmountOutOfRange, Field: "amount_minor",
			Message: "the amount is outside the allowed top-up range"}).
			With("min_minor", minMinor).With("max_minor", maxMinor)
	}
	if c := NormalizeCurrency(currency); len(c) != 3 || c != NormalizeCurrency(ledgerCurrency) {
		return (&fault.Error{Kind: fault.KindUnprocessable, Code: CodeCurrencyNotSupported, Field: "currency",
			Message: "this currency is not supported"}).With("supported", NormalizeCurrency(ledgerCurrency))
	}
	return nil
}

// IdempotencyKeyRequired is the fault for a checkout without a key.
func IdempotencyKeyRequired() *fault.Error {
	return &fault.Error{Kind: fault.KindInvalid, Code: CodeIdempotencyKeyRequired, Field: "X-Idempotency-Key",
		Message: "X-Idempotency-Key is required to start a checkout"}
}

// LedgerKey is the ledger idempotency key of a session's credit: whatever
// events arrive, a session credits at most once.
func LedgerKey(sessionID string) string { return "payment:" + sessionID }

// Mismatch says why a paid event does not reconcile with its session, or
// "" when it does.
func Mismatch(s Session, amountMinor int64, currency string) string {
	switch {
	case amountMinor != s.AmountMinor:
		return "amount_mismatch"
	case NormalizeCurrency(currency) != NormalizeCurrency(s.Currency):
		return "currency_mismatch"
	}
	return ""
}
