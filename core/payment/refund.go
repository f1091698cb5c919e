package payment

import (
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
)

// RefundStatus is where a refund request stands
// (doc/state-machines.md#refund-request).
type RefundStatus string

const (
	// RefundRequested: recorded, the provider not (yet) told.
	RefundRequested RefundStatus = "requested"
	// RefundSubmitted: the provider accepted it and will confirm.
	RefundSubmitted RefundStatus = "submitted"
	// RefundSucceeded: the money went back; the ledger refund is posted.
	RefundSucceeded RefundStatus = "succeeded"
	// RefundFailed: the provider refused or failed it; nothing posted.
	RefundFailed RefundStatus = "failed"
)

// CanRefundTransition reports whether a refund request may move from one
// status to another. Succeeded and failed are final.
func CanRefundTransition(from, to RefundStatus) bool {
	switch from {
	case RefundRequested:
		return to == RefundSubmitted || to == RefundSucceeded || to == RefundFailed
	case RefundSubmitted:
		return to == RefundSucceeded || to == RefundFailed
	}
	return false
}

// Refund is an operator's request to return (part of) a provider-paid
// credit, and its progress at the provider.
type Refund struct {
	ID             string
	TenantID       string
	SessionID      string // the payment session that paid the credit
	CreditEntryID  string // the ledger credit being refunded
	AmountMinor    int64
	Currency       string
	Reason         string
	RequestedBy    string
	IdempotencyKey string // the operator's X-Idempotency-Key
	Provider       string
	ProviderRef    string // the provider's refund id, once known
	Status         RefundStatus
	FailureReason  string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// RefundFilter pages refund requests, newest first.
type RefundFilter struct {
	TenantID string
	Status   RefundStatus
	Limit    int
	Cursor   string
}

// RefundLedgerKey is the idempotency key of a refund's ledger entry: one
// request, one entry, whichever path settles it.
func RefundLedgerKey(refundID string) string { return "refund:" + refundID }

// Event kinds of refunds at the provider.
const (
	EventRefundSucceeded EventKind = "refund_succeeded"
	EventRefundFailed    EventKind = "refund_failed"
	EventRefundPending   EventKind = "refund_pending"
)

// CodeNotProviderCredit refuses a provider refund of a credit that no
// payment session of the provider paid (an adjustment, another provider's).
const CodeNotProviderCredit fault.Code = "refund_not_provider_credit"
