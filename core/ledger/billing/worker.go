package billing

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/ports"
)

// WorkerDeps are what the billing Worker needs; all but Logger are required.
type WorkerDeps struct {
	Tx       ports.TxRunner
	Accruer  Accruer
	Releaser AllocationReleaser
	Policies ports.PolicyStore
	Outbox   ports.Outbox
	Clock    ports.Clock
	IDs      ports.IDs
	Logger   *slog.Logger
	// CostCaps, optional, releases allocations before their cost passes
	// their max_total_cost (allocationsvc implements it).
	CostCaps CostCapReleaser
}

// CostCapReleaser releases every allocation whose cost would reach its
// total-cost cap by horizon. allocationsvc implements it (guards.go).
type CostCapReleaser interface {
	ReleaseOverCostCaps(ctx context.Context, horizon time.Time) (int, error)
}

// Worker runs billing cycles: accrue one window, then evaluate the
// balances of the tenants it touched and of every tenant not in state ok.
type Worker struct{ d WorkerDeps }

// NewWorker checks the dependencies.
func NewWorker(d WorkerDeps) (*Worker, error) {
	if d.Tx == nil || d.Accruer == nil || d.Releaser == nil || d.Policies == nil || d.Outbox == nil ||
		d.Clock == nil || d.IDs == nil {
		return nil, errors.New("billing: every worker dependency is required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{d: d}, nil
}

// CycleResult says what one cycle did.
type CycleResult struct {
	WindowEnd     time.Time
	Debited       []AccrualTotal
	Warned        []string // tenants warned of a low balance
	ReleaseWarned []string // tenants warned that their nodes will be released soon
	Depleted      []string // tenants that became depleted
	Released      int      // allocations released for depleted tenants
	CapReleased   int      // allocations released at their total-cost cap
	ReleaseErr    error    // the first release failure (retried next cycle)
}

// UsageDebitedPayload is the payload of billing.usage_debited: one event
// per tenant and cycle, not per record, so the bus carries O(tenants).
type UsageDebitedPayload struct {
	TenantID    string    `json:"tenant_id"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	Records     int       `json:"records"`
	WindowEnd   time.Time `json:"window_end"`
}

// AutoReleasePayload is the payload of billing.auto_release_pending: the
// tenant's nodes will be released when the balance runs out, in about
// RunwaySeconds at the current burn rate.
type AutoReleasePayload struct {
	TenantID             string    `json:"tenant_id"`
	BalanceMinor         int64     `json:"balance_minor"`
	Currency             string    `json:"currency"`
	BurnRateMinorPerHour int64     `json:"burn_rate_minor_per_hour"`
	RunwaySeconds        int64     `json:"runway_seconds"`
	ReleaseAt            time.Time `json:"release_at"`
}

// BalancePayload is the payload of billing.low_balance_warning and
// billing.balance_depleted.
type BalancePayload struct {
	TenantID       string `json:"tenant_id"`
	BalanceMinor   int64  `json:"balance_minor"`
	Currency       string `json:"currency"`
	ThresholdMinor int64  `json:"threshold_minor"`
}

// Window is the accrual window length from policy billing.window_seconds.
func (w *Worker) Window(ctx context.Context) (time.Duration, policy.Values, error) {
	vals, err := w.d.Policies.Values(ctx, "")
	if err != nil {
		return 0, nil, err
	}
	return time.Duration(vals.Int(policy.BillingWindowSeconds)) * time.Second, vals, nil
}

// RunCycle runs one cycle at the clock's time. The accrual and its
// billing.usage_debited events commit together in one transaction; each
// tenant's state change commits with its event in another, compare-and-set
// so that concurrent workers warn and deplete once. Releases run after, in
// allocationsvc's own transactions; a failed release is retried on the next
// cycle because the tenant still has open usage.
func (w *Worker) RunCycle(ctx context.Context) (CycleResult, error) {
	window, vals, err := w.Window(ctx)
	if err != nil {
		return CycleResult{}, err
	}
	now := w.d.Clock.Now()
	res := CycleResult{WindowEnd: WindowEnd(now, window)}
	err = w.d.Tx.InTx(ctx, func(ctx context.Context) error {
		totals, err := w.d.Accruer.AccrueWindow(ctx, res.WindowEnd)
		if err != nil {
			return err
		}
		res.Debited = totals
		evs := make([]event.Envelope, 0, len(totals))
		for _, t := range totals {
			if t.AmountMinor == 0 {
				continue
			}
			env, err := w.envelope(event.UsageDebited, t.TenantID, now, UsageDebitedPayload{TenantID: t.TenantID,
				AmountMinor: t.AmountMinor, Currency: t.Currency, Records: t.Records, WindowEnd: res.WindowEnd})
			if err != nil {
				return err
			}
			evs = append(evs, env)
		}
		if len(evs) == 0 {
			return nil
		}
		return w.d.Outbox.Append(ctx, evs...)
	})
	if err != nil {
		return CycleResult{}, err
	}
	ids := make([]string, 0, len(res.Debited))
	for _, t := range res.Debited {
		ids = append(ids, t.TenantID)
	}
	statuses, err := w.d.Accruer.TenantsToEvaluate(ctx, ids)
	if err != nil {
		return res, err
	}
	for _, s := range statuses {
		tv, err := w.tenantValues(ctx, s.TenantID, vals)
		if err != nil {
			return res, err
		}
		if err := w.evaluate(ctx, s, tv.Int(policy.BillingLowBalanceMinor), now, &res); err != nil {
			return res, err
		}
		warnWithin := time.Duration(tv.Int(policy.AutoReleaseWarnMinutes)) * time.Minute
		if err := w.warnRelease(ctx, s, warnWithin, now, &res); err != nil {
			return res, err
		}
	}
	w.releaseAtCostCaps(ctx, now, window, &res)
	return res, nil
}

// releaseAtCostCaps releases the allocations whose cost would reach their
// cap before the next cycle (one window and the Run loop's second of slack
// from now), so what they are billed stays within it. A failure is
// retried next cycle, like a depletion release.
func (w *Worker) releaseAtCostCaps(ctx context.Context, now time.Time, window time.Duration, res *CycleResult) {
	if w.d.CostCaps == nil {
		return
	}
	n, err := w.d.CostCaps.ReleaseOverCostCaps(ctx, now.Add(window+2*time.Second))
	res.CapReleased += n
	if err != nil {
		w.d.Logger.Error("releasing allocations at their cost cap failed; retrying next cycle", "err", err)
		if res.ReleaseErr == nil {
			res.ReleaseErr = err
		}
	}
}

// warnRelease tells a tenant, once per approach, that its nodes will be
// released when its balance runs out (billing.ReleaseWarning), in a
// compare-and-set committed with the event so replicas warn once.
func (w *Worker) warnRelease(ctx context.Context, s TenantStatus, warnWithin time.Duration, now time.Time, res *CycleResult) error {
	warn, rearm := ReleaseWarning(s, warnWithin)
	switch {
	case rearm:
		_, err := w.d.Accruer.MarkReleaseWarned(ctx, s.TenantID, s.ReleaseWarnedAt, nil)
		return err
	case !warn:
		return nil
	}
	runway, _ := s.Runway()
	var won bool
	err := w.d.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		if won, err = w.d.Accruer.MarkReleaseWarned(ctx, s.TenantID, nil, &now); err != nil || !won {
			return err
		}
		env, err := w.envelope(event.AutoReleasePending, s.TenantID, now, AutoReleasePayload{TenantID: s.TenantID,
			BalanceMinor: s.BalanceMinor, Currency: s.Currency, BurnRateMinorPerHour: s.BurnRateMinor,
			RunwaySeconds: int64(runway / time.Second), ReleaseAt: now.Add(runway).UTC()})
		if err != nil {
			return err
		}
		return w.d.Outbox.Append(ctx, env)
	})
	if err == nil && won {
		res.ReleaseWarned = append(res.ReleaseWarned, s.TenantID)
	}
	return err
}

// tenantValues are the tenant's policy values: its overrides (of
// billing.low_balance_threshold_minor, billing.auto_release_warning_minutes)
// over the global values. The policy
// store caches per tenant, so this is a map lookup on most cycles; a tenant
// without an override reads the global value it already has.
func (w *Worker) tenantValues(ctx context.Context, tenantID string, global policy.Values) (policy.Values, error) {
	vals, err := w.d.Policies.Values(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if vals == nil {
		vals = global
	}
	return vals, nil
}

func (w *Worker) evaluate(ctx context.Context, s TenantStatus, threshold int64, now time.Time, res *CycleResult) error {
	d := Decide(s, threshold, now)
	if d.Changed {
		var won bool
		err := w.d.Tx.InTx(ctx, func(ctx context.Context) error {
			var err error
			won, err = w.d.Accruer.SetTenantState(ctx, s, d.Next, d.WarnedAt, now)
			if err != nil || !won {
				return err
			}
			p := BalancePayload{TenantID: s.TenantID, BalanceMinor: s.BalanceMinor, Currency: s.Currency, ThresholdMinor: threshold}
			var evs []event.Envelope
			for _, e := range []struct {
				on      bool
				subject string
			}{{d.Warn, event.LowBalanceWarning}, {d.Deplete, event.BalanceDepleted}} {
				if !e.on {
					continue
				}
				env, err := w.envelope(e.subject, s.TenantID, now, p)
				if err != nil {
					return err
				}
				evs = append(evs, env)
			}
			if len(evs) == 0 {
				return nil
			}
			return w.d.Outbox.Append(ctx, evs...)
		})
		if err != nil {
			return err
		}
		if won && d.Warn {
			res.Warned = append(res.Warned, s.TenantID)
		}
		if won && d.Deplete {
			res.Depleted = append(res.Depleted, s.TenantID)
			w.d.Logger.Info("tenant balance depleted; releasing its allocations", "tenant_id", s.TenantID,
				"balance_minor", s.BalanceMinor)
		}
	}
	if d.Release {
		n, err := w.d.Releaser.ForceReleaseForTenant(ctx, s.TenantID, ReasonDepleted)
		res.Released += n
		if err != nil {
			w.d.Logger.Error("releasing allocations of a depleted tenant failed; retrying next cycle",
				"tenant_id", s.TenantID, "err", err)
			if res.ReleaseErr == nil {
				res.ReleaseErr = err
			}
		}
	}
	return nil
}

func (w *Worker) envelope(subject, tenantID string, now time.Time, payload any) (event.Envelope, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return event.Envelope{}, fault.Internal(err)
	}
	return event.Envelope{ID: w.d.IDs.NewID(), Type: subject, Version: 1, OccurredAt: now, TenantID: tenantID,
		AggregateType: "tenant", AggregateID: tenantID, Payload: body}, nil
}

// Run runs a cycle just after every window boundary until ctx ends. wait
// blocks for a duration (time.After in production; tests drive RunCycle
// directly). Errors are logged and the next boundary retries: a window that
// failed is folded into the next one, because each cycle bills from
// billed_through, never from the previous boundary. The window length is
// re-read at least every policyRecheck, so a change of
// billing.window_seconds takes effect within seconds, not at the end of a
// long old window.
func (w *Worker) Run(ctx context.Context, wait func(ctx context.Context, d time.Duration) error) error {
	failing := false
	var lastEnd time.Time
	for {
		res, err := w.RunCycle(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				w.d.Logger.Error("billing cycle failed; retrying at the next window", "err", err)
			}
			failing = true
		case err == nil:
			if failing {
				w.d.Logger.Info("billing cycles recovered")
			}
			failing = false
			lastEnd = res.WindowEnd
			w.d.Logger.Debug("billing cycle", "window_end", res.WindowEnd, "tenants_debited", len(res.Debited),
				"warned", len(res.Warned), "depleted", len(res.Depleted), "released", res.Released)
		}
		// Sleep until a boundary of the window in force has passed since the
		// last cycle's window — a little past it, so the window has closed
		// everywhere.
		for {
			window := w.windowOrDefault(ctx)
			now := w.d.Clock.Now()
			d := WindowEnd(now, window).Add(window).Sub(now) + time.Second
			if d > policyRecheck {
				d = policyRecheck
			}
			if err := wait(ctx, d); err != nil {
				return nil
			}
			window = w.windowOrDefault(ctx)
			if WindowEnd(w.d.Clock.Now().Add(-time.Second), window).After(lastEnd) {
				break
			}
		}
	}
}

// policyRecheck bounds how long Run sleeps before re-reading the window.
const policyRecheck = 5 * time.Second

func (w *Worker) windowOrDefault(ctx context.Context) time.Duration {
	window, _, err := w.Window(ctx)
	if err != nil || window <= 0 {
		return time.Minute
	}
	return window
}
