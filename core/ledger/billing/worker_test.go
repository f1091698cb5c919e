package billing_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
)

// TestWorkerBalanceStates runs billing cycles over real Postgres, the real
// outbox and the real allocation use cases, moving the clock: a tenant's
// own low-balance threshold is honoured, the warning fires once, depletion
// emits once and releases the tenant's allocations (again on later cycles
// while usage is open), and credit returning puts the tenant back to ok
// and lets new allocations through.
func TestWorkerBalanceStates(t *testing.T) {
	t.Parallel()
	e := newMeterEnv(t)
	ctx := context.Background()
	const sku = "h100-80g-x8" // 2392 minor per hour
	pol, err := postgres.NewPolicyStore(e.db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := postgres.NewOutbox(e.db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := billing.NewWorker(billing.WorkerDeps{Tx: e.db, Accruer: e.bills, Releaser: e.allocs, Policies: pol,
		Outbox: outbox, Clock: e.clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	m := e.member(sku)
	bystander := e.member(sku) // global threshold (1000), plenty of money; its node is the spare
	tenant := m.p.TenantID
	// Bring the balance to 2,000 and give the tenant its own threshold.
	if _, err := postgres.NewLedgerStore(e.db).Post(ctx, ledger.Entry{TenantID: tenant, Type: ledger.Adjustment,
		AmountMinor: -998_000, Currency: "usd", IdempotencyKey: "trim-" + tenant}); err != nil {
		t.Fatal(err)
	}
	if err := pol.Set(ctx, tenant, "billing.low_balance_threshold_minor", "1500", "test"); err != nil {
		t.Fatal(err)
	}
	// And its own auto-release warning: 30 minutes of runway (global 60).
	if err := pol.Set(ctx, tenant, "billing.auto_release_warning_minutes", "30", "test"); err != nil {
		t.Fatal(err)
	}
	t0 := e.clock.Now() // 10:00:00, a window boundary
	a := e.active(m, sku)
	e.handle(e.event(a.ID, event.AllocationActive))

	events := func(subject string) int {
		t.Helper()
		var n int
		if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM platform_outbox_events WHERE envelope->>'type' = $1
			AND envelope->>'tenant_id' = $2`, subject, tenant).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	balance := func() int64 {
		t.Helper()
		b, _, err := postgres.NewLedgerStore(e.db).Balance(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cycle := func(at time.Duration) billing.CycleResult {
		t.Helper()
		e.clock.Set(t0.Add(at))
		res, err := w.RunCycle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	// 10 minutes: 2000 − 398 = 1602, above the tenant's 1500.
	if res := cycle(10*time.Minute + 5*time.Second); len(res.Warned) != 0 || balance() != 2000-ledger.CostMinor(2392, 600) {
		t.Fatalf("at 10 min: %+v, balance %d", res, balance())
	}
	// 13 minutes: 1482 — above the global 1000, below the tenant's 1500.
	res := cycle(13*time.Minute + 5*time.Second)
	if len(res.Warned) != 1 || res.Warned[0] != tenant || events(event.LowBalanceWarning) != 1 {
		t.Fatalf("at 13 min: %+v, %d warnings; want the tenant's own threshold to warn", res, events(event.LowBalanceWarning))
	}
	// Still low a minute later: no second warning.
	if res := cycle(14*time.Minute + 5*time.Second); len(res.Warned) != 0 || events(event.LowBalanceWarning) != 1 {
		t.Fatalf("at 14 min: %+v", res)
	}
	if len(res.Debited) != 1 || res.Debited[0].TenantID != tenant {
		// The bystander has nothing metered: it is never debited.
		t.Fatalf("debited %+v", res.Debited)
	}
	if events(event.AutoReleasePending) != 0 {
		t.Fatalf("at 14 min (runway about 35 min, warning at 30): %d auto-release warnings", events(event.AutoReleasePending))
	}
	// 21 minutes: 2000 − 837 = 1163, which lasts 29 minutes at 2392/h: the
	// tenant is told its node will be released, once.
	if res := cycle(21*time.Minute + 5*time.Second); len(res.ReleaseWarned) != 1 || events(event.AutoReleasePending) != 1 {
		t.Fatalf("at 21 min: %+v, %d auto-release warnings", res, events(event.AutoReleasePending))
	}
	var payload billing.AutoReleasePayload
	var raw []byte
	if err := e.db.Pool.QueryRow(ctx, `SELECT envelope->'payload' FROM platform_outbox_events WHERE envelope->>'type' = $1
		AND envelope->>'tenant_id' = $2`, event.AutoReleasePending, tenant).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &payload); err != nil || payload.BurnRateMinorPerHour != 2392 || payload.BalanceMinor != balance() ||
		payload.RunwaySeconds/60 != 29 {
		t.Fatalf("payload %+v (%v)", payload, err)
	}
	if res := cycle(22*time.Minute + 5*time.Second); len(res.ReleaseWarned) != 0 || events(event.AutoReleasePending) != 1 {
		t.Fatalf("at 22 min: %+v", res)
	}

	// 51 minutes: 2000 − 2033 < 0 → depleted once, the allocation released.
	res = cycle(51*time.Minute + 5*time.Second)
	if len(res.Depleted) != 1 || res.Released != 1 || events(event.BalanceDepleted) != 1 || balance() > 0 {
		t.Fatalf("at 51 min: %+v, balance %d", res, balance())
	}
	got, err := e.allocs.Get(ctx, m.p, a.ID)
	if err != nil || got.State != allocation.Releasing {
		t.Fatalf("allocation %s (%v); want releasing", got.State, err)
	}
	// The release is in flight (usage still open): later cycles ask again,
	// harmlessly, and emit nothing new.
	if res := cycle(52*time.Minute + 5*time.Second); len(res.Depleted) != 0 || res.Released != 0 || res.ReleaseErr != nil ||
		events(event.BalanceDepleted) != 1 {
		t.Fatalf("at 52 min: %+v", res)
	}
	// While depleted, new allocations are refused.
	if _, err := e.allocs.Create(ctx, m.p, m.project, allocationsvc.CreateRequest{SKUID: sku}); !fault.IsKind(err, fault.KindPaymentRequired) {
		t.Fatalf("create while depleted: %v; want payment required", err)
	}
	// The release completes at 52:30; billing ended at the force release
	// (51:05), when the usage record closed.
	e.clock.Set(t0.Add(52*time.Minute + 30*time.Second))
	if _, err := e.allocs.MarkReleased(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	e.handle(e.event(a.ID, event.AllocationReleased))

	// Credit returns: back to ok, and a new allocation goes through.
	if _, err := postgres.NewLedgerStore(e.db).Post(ctx, ledger.Entry{TenantID: tenant, Type: ledger.Credit, AmountMinor: 50_000,
		Currency: "usd", IdempotencyKey: "topup-" + tenant}); err != nil {
		t.Fatal(err)
	}
	res = cycle(54*time.Minute + 5*time.Second)
	var state string
	if err := e.db.Pool.QueryRow(ctx, `SELECT state FROM tenant_billing_state WHERE tenant_id = $1`, tenant).Scan(&state); err != nil ||
		state != string(billing.TenantOK) {
		t.Fatalf("state %q (%v) after the top-up; want ok (%+v)", state, err, res)
	}
	if _, err := e.allocs.Create(ctx, m.p, m.project, allocationsvc.CreateRequest{SKUID: sku}); err != nil {
		t.Fatalf("create after the top-up: %v", err)
	}
	// Nothing burns any more: the auto-release warning is armed again.
	var warnedAt *time.Time
	if err := e.db.Pool.QueryRow(ctx, `SELECT release_warned_at FROM tenant_billing_state WHERE tenant_id = $1`, tenant).Scan(&warnedAt); err != nil ||
		warnedAt != nil || events(event.AutoReleasePending) != 1 {
		t.Fatalf("release_warned_at %v (%v) after the top-up; want re-armed", warnedAt, err)
	}
	// Exactly the span up to the force release was charged: 51 min 5 s at
	// 2392/h = 2036.5, rounded down.
	if want := int64(2000+50_000) - 2036; balance() != want {
		t.Fatalf("balance %d; want %d", balance(), want)
	}
	// Nothing happened to the bystander.
	var n int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM platform_outbox_events WHERE envelope->>'tenant_id' = $1
		AND envelope->>'type' LIKE 'billing.%'`, bystander.p.TenantID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d billing events for the bystander (%v)", n, err)
	}
}

// capStub records the horizons the worker asks about.
type capStub struct {
	horizons []time.Time
	n        int
	err      error
}

func (c *capStub) ReleaseOverCostCaps(_ context.Context, horizon time.Time) (int, error) {
	c.horizons = append(c.horizons, horizon)
	return c.n, c.err
}

// TestWorkerReleasesAtCostCaps: every cycle asks the allocation use cases
// to release what would reach its total-cost cap before the next cycle
// (one window and the Run loop's slack ahead); a failure is reported and
// retried next cycle without failing the cycle.
func TestWorkerReleasesAtCostCaps(t *testing.T) {
	t.Parallel()
	e := newMeterEnv(t)
	ctx := context.Background()
	pol, err := postgres.NewPolicyStore(e.db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := postgres.NewOutbox(e.db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	caps := &capStub{n: 2}
	w, err := billing.NewWorker(billing.WorkerDeps{Tx: e.db, Accruer: e.bills, Releaser: e.allocs, Policies: pol,
		Outbox: outbox, Clock: e.clock, IDs: system.UUIDs{}, CostCaps: caps})
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.RunCycle(ctx)
	if err != nil || res.CapReleased != 2 || len(caps.horizons) != 1 {
		t.Fatalf("cycle %+v %v, horizons %v", res, err, caps.horizons)
	}
	window, _, _ := w.Window(ctx)
	if want := e.clock.Now().Add(window + 2*time.Second); !caps.horizons[0].Equal(want) {
		t.Fatalf("horizon %s, want %s", caps.horizons[0], want)
	}
	caps.n, caps.err = 0, fault.Unavailable("down", nil)
	res, err = w.RunCycle(ctx)
	if err != nil || res.ReleaseErr == nil {
		t.Fatalf("a failing release: %+v %v", res, err)
	}
}
