package billing

import (
	"context"
	"strconv"
	"time"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/ledger"
)

// UsageState is where a usage record stands (doc/state-machines.md#usage-record).
type UsageState string

const (
	// UsageOpen: the allocation is active; cost accrues.
	UsageOpen UsageState = "open"
	// UsageClosed: the allocation was released (or its release failed);
	// nothing accrues past EndedAt. Terminal.
	UsageClosed UsageState = "closed"
)

// UsageRecord meters one allocation. HourlyPriceMinor is the allocation's
// price snapshot; BilledThrough is how far it has been debited.
type UsageRecord struct {
	ID               string
	TenantID         string
	ProjectID        string
	UserID           string
	AllocationID     string
	HourlyPriceMinor int64
	Currency         string
	StartedAt        time.Time
	EndedAt          *time.Time
	BilledThrough    time.Time
	BilledMinor      int64
	State            UsageState
	// ProjectName is the project's name at read time, filled by the
	// listings (List, Each) for people reading usage; it is not part of
	// the metering record.
	ProjectName string
}

// WholeSeconds is the number of whole seconds from start to t (0 when t is
// not after start). Usage is metered per second of wall time.
func WholeSeconds(start, t time.Time) int64 {
	if !t.After(start) {
		return 0
	}
	return int64(t.Sub(start) / time.Second)
}

// WindowCostMinor is the debit of the window [from, to) of a record started
// at started: the cumulative cost through to minus the cumulative cost
// through from. Computing every window from cumulative seconds means the
// rounding of each window never adds up to drift: the sum of all windows is
// exactly the cost of the whole span.
func WindowCostMinor(hourlyMinor int64, started, from, to time.Time) int64 {
	return ledger.CostMinor(hourlyMinor, WholeSeconds(started, to)) -
		ledger.CostMinor(hourlyMinor, WholeSeconds(started, from))
}

// UsageIdempotencyKey is the ledger idempotency key of one window's debit:
// one record, one window start, one debit, however often the worker runs.
// The adapter builds the same key in SQL; a test pins that they agree.
func UsageIdempotencyKey(recordID string, windowStart time.Time) string {
	return "usage:" + recordID + ":" + strconv.FormatInt(windowStart.Unix(), 10)
}

// CorrectionIdempotencyKey is the key of the credit that returns usage
// billed past the end of a record (the close arrived after a window had
// already been debited beyond it). One per record.
func CorrectionIdempotencyKey(recordID string) string { return "usage-correction:" + recordID }

// WindowEnd is the end of the last whole window before now: windows are
// aligned to multiples of window since the Unix epoch, so every worker
// replica computes the same boundaries.
func WindowEnd(now time.Time, window time.Duration) time.Time {
	if window < time.Second {
		window = time.Second
	}
	return time.Unix(0, 0).Add(now.Sub(time.Unix(0, 0)).Truncate(window)).UTC()
}

// TenantState is the billing worker's view of a tenant's balance.
type TenantState string

const (
	TenantOK       TenantState = "ok"       // at or above the low-balance threshold
	TenantLow      TenantState = "low"      // positive but below the threshold
	TenantDepleted TenantState = "depleted" // zero or negative: live allocations are released
)

// TenantStatus is a tenant's balance with the worker's recorded state.
type TenantStatus struct {
	TenantID      string
	BalanceMinor  int64
	Currency      string
	State         TenantState
	LastWarnedAt  *time.Time
	HasOpenUsage  bool  // some allocation of the tenant is still metered
	HasStateRow   bool  // tenant_billing_state has a row (else State is ok by default)
	BurnRateMinor int64 // per hour: the sum of the price snapshots of its open usage
	// ReleaseWarnedAt is when the tenant was last told its nodes will be
	// released soon (nil: not since the runway was last comfortable).
	ReleaseWarnedAt *time.Time
}

// Runway is how long the balance lasts at the burn rate (ok false when
// nothing burns).
func (s TenantStatus) Runway() (time.Duration, bool) {
	if s.BurnRateMinor <= 0 {
		return 0, false
	}
	if s.BalanceMinor <= 0 {
		return 0, true
	}
	return time.Duration(s.BalanceMinor) * time.Hour / time.Duration(s.BurnRateMinor), true
}

// ReleaseWarning decides the auto-release warning: it is due once when a
// tenant that still has money, and burns it, will run out (and so have its
// nodes released) within warnWithin; it is re-armed when the runway is back
// above twice that (a top-up, or allocations released) or nothing burns, so
// a runway hovering around the line does not warn every cycle.
func ReleaseWarning(s TenantStatus, warnWithin time.Duration) (warn, rearm bool) {
	runway, burning := s.Runway()
	if s.ReleaseWarnedAt != nil {
		return false, !burning || runway > 2*warnWithin
	}
	return warnWithin > 0 && burning && s.BalanceMinor > 0 && runway <= warnWithin, false
}

// WarnAgainAfter is how long a tenant that stays low waits for the next
// warning.
const WarnAgainAfter = 24 * time.Hour

// Decision is what one evaluation of a tenant asks for.
type Decision struct {
	Next     TenantState
	Warn     bool // emit billing.low_balance_warning
	Deplete  bool // emit billing.balance_depleted (on the transition only)
	Release  bool // force-release the tenant's live allocations
	Changed  bool // Next differs from the recorded state, or a warning is due
	WarnedAt *time.Time
}

// Decide applies the balance rules: a warning once per transition into
// low (again only after WarnAgainAfter while still low); depletion (balance
// ≤ 0) emits its event once and releases every live allocation for as long
// as the tenant still has metered usage; a balance back at or above the
// threshold returns the tenant to ok, which is what lets new allocations
// through again (allocation create checks the balance itself).
func Decide(s TenantStatus, thresholdMinor int64, now time.Time) Decision {
	d := Decision{Next: TenantOK, WarnedAt: s.LastWarnedAt}
	switch {
	case s.BalanceMinor <= 0:
		d.Next = TenantDepleted
		d.Deplete = s.State != TenantDepleted
		d.Release = d.Deplete || s.HasOpenUsage
	case s.BalanceMinor < thresholdMinor:
		d.Next = TenantLow
		due := s.LastWarnedAt == nil || !now.Before(s.LastWarnedAt.Add(WarnAgainAfter))
		d.Warn = s.State != TenantLow || due
		if d.Warn {
			t := now
			d.WarnedAt = &t
		}
	}
	d.Changed = d.Next != s.State || d.Warn
	return d
}

// AccrualTotal is what one accrual cycle debited from one tenant.
type AccrualTotal struct {
	TenantID    string
	Currency    string
	AmountMinor int64 // positive: the sum of the debits posted
	Records     int
}

// Accruer is the set-based half of the billing worker.
type Accruer interface {
	// AccrueWindow debits, in ONE statement inside the caller's
	// transaction, every open record and every closed record not yet billed
	// to its end, for [billed_through, min(windowEnd, ended_at)), with the
	// ledger idempotency key UsageIdempotencyKey(id, billed_through), and
	// advances billed_through in the same statement. It returns the totals
	// per tenant.
	AccrueWindow(ctx context.Context, windowEnd time.Time) ([]AccrualTotal, error)
	// TenantsToEvaluate returns the status of the given tenants and of every
	// tenant whose recorded state is not ok.
	TenantsToEvaluate(ctx context.Context, tenantIDs []string) ([]TenantStatus, error)
	// SetTenantState moves a tenant from the state in `from` (compare and
	// set on State and LastWarnedAt) to next. It reports false when another
	// worker changed it first.
	SetTenantState(ctx context.Context, from TenantStatus, next TenantState, warnedAt *time.Time, now time.Time) (bool, error)
	// MarkReleaseWarned sets the tenant's ReleaseWarnedAt from `from` to
	// `to` (compare and set); false when another worker changed it first.
	MarkReleaseWarned(ctx context.Context, tenantID string, from, to *time.Time) (bool, error)
}

// UsageStore persists usage records.
type UsageStore interface {
	// Open inserts r; false (and no error) when the allocation already has a
	// record.
	Open(ctx context.Context, r UsageRecord) (bool, error)
	// GetByAllocation returns the allocation's record, locked FOR UPDATE
	// when called inside a transaction.
	GetByAllocation(ctx context.Context, allocationID string) (UsageRecord, error)
	// Close ends the record at endedAt (billed_through is clamped to it and
	// billed_minor reduced by correctedMinor, the usage returned by a
	// correction credit). False when it was not open.
	Close(ctx context.Context, id string, endedAt time.Time, correctedMinor int64) (bool, error)
	// List pages a tenant's records, newest first.
	List(ctx context.Context, tenantID, cursor string, limit int) ([]UsageRecord, string, error)
	// Each calls fn for every record of the tenant, newest first, streaming
	// from the database without buffering the whole set.
	Each(ctx context.Context, tenantID string, fn func(UsageRecord) error) error
	// BurnRate sums the hourly price snapshots of the tenant's open records.
	BurnRate(ctx context.Context, tenantID string) (int64, error)
}

// AllocationReleaser releases every live allocation of a tenant whose
// balance ran out. allocationsvc implements it (depletion.go).
type AllocationReleaser interface {
	ForceReleaseForTenant(ctx context.Context, tenantID, reason string) (int, error)
}

// ReasonDepleted is the reason the worker gives when it releases
// allocations of a depleted tenant.
const ReasonDepleted = allocation.ReleaseBalanceOut
