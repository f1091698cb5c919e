// Package ledger models the append-only, tenant-owned money ledger. A
// balance is always a sum of entries, never a stored column.
package ledger

import (
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
)

// EntryType classifies a ledger entry.
type EntryType string

const (
	Credit     EntryType = "credit"
	UsageDebit EntryType = "usage_debit"
	Adjustment EntryType = "adjustment"
	Refund     EntryType = "refund"
)

// Entry is one immutable ledger line. AmountMinor is signed: credits are
// positive, debits and refunds negative.
type Entry struct {
	ID             string
	TenantID       string
	ProjectID      string
	UserID         string
	Type           EntryType
	AmountMinor    int64
	Currency       string
	IdempotencyKey string // unique: the same key never posts twice
	Reference      string // e.g. payment session or usage record id
	Reason         string
	CreatedAt      time.Time
}

// Validate checks sign and type consistency.
func (e Entry) Validate() error {
	switch e.Type {
	case Credit:
		if e.AmountMinor <= 0 {
			return fault.Invalid("amount", "a credit must be positive")
		}
	case UsageDebit, Refund:
		if e.AmountMinor >= 0 {
			return fault.Invalid("amount", "a debit or refund must be negative")
		}
	case Adjustment:
		if e.AmountMinor == 0 {
			return fault.Invalid("amount", "an adjustment must not be zero")
		}
	default:
		return fault.Invalid("type", "unknown ledger entry type")
	}
	if e.IdempotencyKey == "" {
		return fault.Invalid("idempotency_key", "ledger entries need an idempotency key")
	}
	if len(e.Currency) != 3 {
		return fault.Invalid("currency", "currency must be a 3-letter ISO code")
	}
	return nil
}

// CostMinor returns the cost of seconds of use at an hourly price, rounded
// down to a whole minor unit. Callers accrue per window from cumulative
// seconds so rounding never loses more than one minor unit in total.
func CostMinor(hourlyMinor, seconds int64) int64 {
	if seconds <= 0 || hourlyMinor <= 0 {
		return 0
	}
	return hourlyMinor * seconds / 3600
}
