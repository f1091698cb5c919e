package allocationsvc

import (
	"context"
	"time"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/ports"
)

// The agent-safe API: a caller (a script, an agent) can ask what a node
// would cost and whether it would be allowed without writing anything
// (Quote), bound the hourly price it accepts and the total it will pay
// (CreateRequest.MaxHourlyPriceMinor, MaxTotalCostMinor; the billing
// worker releases an allocation before its cost passes the cap:
// ReleaseOverCostCaps), and a person's API key can carry a daily spend cap.

// Stable codes of the guards' refusals.
const (
	// CodeMaxHourlyPrice: the SKU costs more per hour than the caller accepts (422).
	CodeMaxHourlyPrice fault.Code = "max_hourly_price_exceeded"
	// CodeSpendCapReached: the API key's daily spend cap would be passed (402).
	CodeSpendCapReached fault.Code = "spend_cap_reached"
	// ReasonCostCap is the reason recorded when the billing worker releases
	// an allocation at its total-cost cap.
	ReasonCostCap = allocation.ReleaseCostCap
)

// MaxCostMinor bounds the guard amounts a caller may give.
const MaxCostMinor = 1_000_000_000_000

func checkGuardAmounts(req CreateRequest) error {
	if req.MaxHourlyPriceMinor < 0 || req.MaxHourlyPriceMinor > MaxCostMinor {
		return fault.Invalid("max_hourly_price_minor", "max_hourly_price_minor must be positive")
	}
	if req.MaxTotalCostMinor < 0 || req.MaxTotalCostMinor > MaxCostMinor {
		return fault.Invalid("max_total_cost_minor", "max_total_cost_minor must be positive")
	}
	return nil
}

// priceGuard refuses a SKU whose hourly price is over the caller's maximum.
func priceGuard(req CreateRequest, sku inventory.SKU) error {
	if req.MaxHourlyPriceMinor > 0 && sku.HourlyPriceMinor > req.MaxHourlyPriceMinor {
		return fault.New(fault.KindUnprocessable, CodeMaxHourlyPrice,
			"the SKU's hourly price is above max_hourly_price_minor").
			With("hourly_price_minor", sku.HourlyPriceMinor).With("max_hourly_price_minor", req.MaxHourlyPriceMinor)
	}
	return nil
}

// DayStart is the start of the UTC day of t: API-key spend caps are per
// UTC day.
func DayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// spendGuard applies an API key's daily spend cap: what the key's
// allocations cost since the start of the UTC day, plus an hour of each of
// its live ones and of the new one (at most its own cost cap), must stay
// within the cap — so a key cannot start more than it can pay for the next
// hour. Other callers pass. placedHourly is the new allocation's hourly
// price when it is already written (and so among the live ones), else 0.
func (s *Service) spendGuard(ctx context.Context, p identity.Principal, req CreateRequest, sku inventory.SKU, now time.Time, placedHourly int64) error {
	m := p.Machine
	if m == nil || m.Kind != identity.CallerAPIKey || m.SpendCapMinor <= 0 {
		return nil
	}
	if s.d.Spend == nil {
		return fault.Unavailable("spend caps cannot be checked on this platform", nil)
	}
	spend, err := s.d.Spend.KeySpend(ctx, m.ID, DayStart(now), now)
	if err != nil {
		return err
	}
	next := sku.HourlyPriceMinor
	if req.MaxTotalCostMinor > 0 && req.MaxTotalCostMinor < next {
		next = req.MaxTotalCostMinor
	}
	if committed := spend.SpentMinor + spend.LiveHourlyMinor - placedHourly + next; committed > m.SpendCapMinor {
		return fault.New(fault.KindPaymentRequired, CodeSpendCapReached,
			"this API key's daily spend cap would be passed: release allocations, wait for the next UTC day, or use another key").
			With("spent_today_minor", spend.SpentMinor).With("live_hourly_minor", spend.LiveHourlyMinor).
			With("spend_cap_minor", m.SpendCapMinor)
	}
	return nil
}

// Refusal is one reason a quoted request would be refused.
type Refusal struct {
	Code    fault.Code
	Message string
}

// QuoteResult is what a request would cost and whether it would pass.
type QuoteResult struct {
	SKUID            string
	HourlyPriceMinor int64
	Currency         string
	BalanceMinor     int64
	// BurnRateMinorPerHour is what the tenant's live allocations cost per
	// hour now; RunwaySecondsAfter is how long the balance lasts with the
	// new one added (0 when it is not positive).
	BurnRateMinorPerHour int64
	RunwaySecondsAfter   int64
	// MaxDurationSeconds is how long the allocation may run under
	// MaxTotalCostMinor (0: no cap).
	MaxDurationSeconds int64
	FreeNodes          int
	// Allowed is true when nothing below refuses; Refusals lists, in the
	// order Create checks them, everything that would.
	Allowed  bool
	Refusals []Refusal
}

// Quote answers what Create would do with the same request — price,
// balance, runway after it, caps, capacity, SSH keys, the caller's price
// and spend guards — without writing anything (and without locking: a
// quote is advice, Create decides). The caller's project membership is
// checked by the host, as for Create.
func (s *Service) Quote(ctx context.Context, p identity.Principal, projectID string, req CreateRequest) (QuoteResult, error) {
	if projectID == "" {
		return QuoteResult{}, &fault.Error{Kind: fault.KindInvalid, Code: fault.CodeProjectRequired,
			Message: "a quote needs a project", Field: "X-Project-ID"}
	}
	if err := checkCreateText(req); err != nil {
		return QuoteResult{}, err
	}
	if err := checkGuardAmounts(req); err != nil {
		return QuoteResult{}, err
	}
	sku, err := s.d.SKUs.GetSKU(ctx, req.SKUID)
	if err != nil || !sku.Active {
		if err == nil || fault.IsKind(err, fault.KindNotFound) {
			return QuoteResult{}, fault.Invalid("sku_id", "unknown or retired SKU")
		}
		return QuoteResult{}, err
	}
	q := QuoteResult{SKUID: sku.ID, HourlyPriceMinor: sku.HourlyPriceMinor, Currency: sku.Currency}
	refuse := func(err error) {
		fe := fault.From(err)
		q.Refusals = append(q.Refusals, Refusal{Code: fe.Code, Message: fe.Message})
	}
	bal, _, err := s.d.Ledger.Balance(ctx, p.TenantID)
	if err != nil {
		return QuoteResult{}, err
	}
	q.BalanceMinor = bal
	if bal <= 0 {
		refuse(fault.New(fault.KindPaymentRequired, fault.CodeInsufficientBalance, "the balance is not positive: top up before requesting a node"))
	}
	live, err := s.liveOfTenant(ctx, p.TenantID)
	if err != nil {
		return QuoteResult{}, err
	}
	for _, a := range live {
		q.BurnRateMinorPerHour += a.PriceMinor
	}
	if burn := q.BurnRateMinorPerHour + sku.HourlyPriceMinor; bal > 0 && burn > 0 {
		q.RunwaySecondsAfter = bal * 3600 / burn
	}
	if req.MaxTotalCostMinor > 0 && sku.HourlyPriceMinor > 0 {
		q.MaxDurationSeconds = secondsUntilCost(sku.HourlyPriceMinor, req.MaxTotalCostMinor)
	}
	if _, err := s.selectKeys(ctx, p.User.ID, req.SSHKeyIDs); err != nil {
		if fault.IsKind(err, fault.KindInternal) || fault.IsKind(err, fault.KindUnavailable) {
			return QuoteResult{}, err
		}
		refuse(err)
	}
	if err := priceGuard(req, sku); err != nil {
		refuse(err)
	}
	vals, err := s.d.Policies.Values(ctx, p.TenantID)
	if err != nil {
		return QuoteResult{}, err
	}
	counts, err := s.d.Allocations.CountLive(ctx, p.TenantID, projectID, p.User.ID)
	if err != nil {
		return QuoteResult{}, err
	}
	for _, c := range []struct {
		scope string
		n     int
		key   policy.Key
	}{{"user", counts.User, policy.AllocationMaxPerUser}, {"project", counts.Project, policy.AllocationMaxPerProject},
		{"tenant", counts.Tenant, policy.AllocationMaxPerTenant}} {
		if int64(c.n) >= vals.Int(c.key) {
			refuse(fault.New(fault.KindRateLimited, CodeCapReached, "the "+c.scope+" already holds the most live allocations allowed"))
			break
		}
	}
	if err := s.spendGuard(ctx, p, req, sku, s.d.Clock.Now(), 0); err != nil {
		if !fault.IsKind(err, fault.KindPaymentRequired) {
			return QuoteResult{}, err
		}
		refuse(err)
	}
	free, err := s.d.SKUs.Capacity(ctx)
	if err != nil {
		return QuoteResult{}, err
	}
	q.FreeNodes = free[sku.ID]
	if q.FreeNodes == 0 {
		refuse(fault.Conflict(CodeNoCapacity, "no node of this SKU is free right now"))
	}
	q.Allowed = len(q.Refusals) == 0
	return q, nil
}

// liveOfTenant lists the tenant's live allocations (a tenant holds at most
// its concurrency cap of them).
func (s *Service) liveOfTenant(ctx context.Context, tenantID string) ([]allocation.Allocation, error) {
	var out []allocation.Allocation
	cursor := ""
	for {
		page, next, err := s.d.Allocations.List(ctx, ports.AllocationFilter{TenantID: tenantID, Limit: depletionPage,
			Cursor: cursor, States: []allocation.State{allocation.Requested, allocation.Provisioning, allocation.Active}})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// secondsUntilCost is the first whole second at which an allocation of
// this hourly price has cost capMinor (ledger.CostMinor rounds down).
func secondsUntilCost(hourlyMinor, capMinor int64) int64 {
	s := (capMinor*3600 + hourlyMinor - 1) / hourlyMinor
	for s > 0 && ledger.CostMinor(hourlyMinor, s-1) >= capMinor {
		s--
	}
	return s
}

// ReleaseOverCostCaps moves to releasing every live allocation with a
// total-cost cap whose cost would reach the cap by horizon — the billing
// worker passes the end of its next cycle, so an allocation is released
// in the last cycle before it would pass its cap and what it is billed
// (active_at until the release request) stays within it. Each move is its
// own transaction with its audit row (actor system "billing", reason
// cost_cap_reached) and its release event; safe to call again. It returns
// how many it moved; on an error, those moved stay moved.
func (s *Service) ReleaseOverCostCaps(ctx context.Context, horizon time.Time) (int, error) {
	var due []string
	cursor := ""
	for {
		page, next, err := s.d.Allocations.List(ctx, ports.AllocationFilter{CostCapped: true, Limit: depletionPage,
			Cursor: cursor, States: []allocation.State{allocation.Active}})
		if err != nil {
			return 0, err
		}
		for _, a := range page {
			if costReachesCap(a, horizon) {
				due = append(due, a.ID)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	n := 0
	for _, id := range due {
		moved, err := s.forceReleaseIf(ctx, id, ReasonCostCap, func(a allocation.Allocation) bool {
			return a.State == allocation.Active && costReachesCap(a, horizon)
		})
		if err != nil {
			return n, err
		}
		if moved {
			n++
		}
	}
	return n, nil
}

// costReachesCap reports whether an active capped allocation's cost
// through t reaches its cap.
func costReachesCap(a allocation.Allocation, t time.Time) bool {
	if a.MaxTotalCostMinor <= 0 || a.ActiveAt == nil || !t.After(*a.ActiveAt) {
		return false
	}
	secs := int64(t.Sub(*a.ActiveAt) / time.Second)
	return ledger.CostMinor(a.PriceMinor, secs) >= a.MaxTotalCostMinor
}

// forceReleaseIf moves one allocation to releasing when it still matches
// (read under its row lock), with an audit row by the billing worker and
// the forced release event.
func (s *Service) forceReleaseIf(ctx context.Context, id, reason string, match func(allocation.Allocation) bool) (bool, error) {
	moved := false
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		moved = false
		a, err := s.d.Allocations.Update(ctx, id, func(a *allocation.Allocation) error {
			if !a.State.Live() || a.State == allocation.Releasing || !match(*a) {
				return nil
			}
			if err := allocation.Transition(a.State, allocation.Releasing); err != nil {
				return err
			}
			a.State, moved = allocation.Releasing, true
			s.markReleaseRequested(a, reason)
			return nil
		})
		if err != nil || !moved {
			return err
		}
		ev := s.auditEvent(ctx, audit.ActorSystem, "billing", a, "allocation.force_release")
		ev.Metadata = map[string]any{"reason": reason}
		if err := s.d.Audit.Record(ctx, ev); err != nil {
			return err
		}
		return s.emitReleaseRequested(ctx, a, true)
	})
	return moved, err
}
