package allocationsvc_test

import (
	"context"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// guardEnv is the service at a clock the test moves.
type guardEnv struct {
	*env
	clock *fakes.Clock
}

func newGuardEnv(t *testing.T) *guardEnv {
	t.Helper()
	e := newEnv(t)
	clock := fakes.NewClock(time.Now().UTC().Truncate(24 * time.Hour).Add(2 * time.Hour))
	outbox, err := postgres.NewOutbox(e.db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewAllocationStore(e.db)
	e.svc, err = allocationsvc.New(allocationsvc.Deps{Tx: e.db, Allocations: store, Spend: store,
		SKUs: postgres.NewSKUStore(e.db), Nodes: postgres.NewNodeStore(e.db), SSHKeys: postgres.NewSSHKeyStore(e.db),
		Ledger: postgres.NewLedgerStore(e.db), Policies: e.pol, Audit: postgres.NewAuditLog(e.db), Outbox: outbox,
		Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	return &guardEnv{env: e, clock: clock}
}

func code(err error) fault.Code {
	if err == nil {
		return ""
	}
	return fault.From(err).Code
}

// rows counts what a quote must never write.
func (e *guardEnv) rows() [3]int {
	e.t.Helper()
	var n [3]int
	for i, q := range []string{`SELECT count(*) FROM allocations`, `SELECT count(*) FROM audit_log`,
		`SELECT count(*) FROM platform_outbox_events`} {
		if err := e.db.Pool.QueryRow(context.Background(), q).Scan(&n[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	return n
}

// TestQuoteWritesNothing: a quote reports price, balance, runway after the
// new node, free capacity and every refusal Create would give, and writes
// no row.
func TestQuoteWritesNothing(t *testing.T) {
	t.Parallel()
	e := newGuardEnv(t)
	ctx := context.Background()
	m := e.newMember(29900) // 100 hours of one h100-80g-x1 (299/h)
	e.addKey(m)
	e.addNodes("h100-80g-x1", 2)
	before := e.rows()
	q, err := e.svc.Quote(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1", MaxTotalCostMinor: 299})
	if err != nil {
		t.Fatal(err)
	}
	if !q.Allowed || q.HourlyPriceMinor != 299 || q.BalanceMinor != 29900 || q.RunwaySecondsAfter != 100*3600 ||
		q.FreeNodes < 2 || q.MaxDurationSeconds != 3600 || q.Currency == "" {
		t.Fatalf("quote %+v", q)
	}
	// One live node halves the runway of the next.
	if _, err := e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1"}); err != nil {
		t.Fatal(err)
	}
	before = e.rows()
	q, err = e.svc.Quote(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1", MaxHourlyPriceMinor: 200})
	if err != nil {
		t.Fatal(err)
	}
	if q.Allowed || q.BurnRateMinorPerHour != 299 || q.RunwaySecondsAfter != 50*3600 || len(q.Refusals) != 1 ||
		q.Refusals[0].Code != allocationsvc.CodeMaxHourlyPrice {
		t.Fatalf("quote over the price: %+v", q)
	}
	broke, keyless := e.newMember(0), e.newMember(100)
	q, err = e.svc.Quote(ctx, broke.p, broke.projectID, allocationsvc.CreateRequest{SKUID: "a100-80g-x8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []fault.Code{fault.CodeInsufficientBalance, allocationsvc.CodeSSHKeyRequired, allocationsvc.CodeNoCapacity}
	if q.Allowed || len(q.Refusals) != len(want) {
		t.Fatalf("refusals %+v, want %v", q.Refusals, want)
	}
	for i, c := range want {
		if q.Refusals[i].Code != c {
			t.Fatalf("refusal %d = %s, want %s", i, q.Refusals[i].Code, c)
		}
	}
	if _, err := e.svc.Quote(ctx, keyless.p, keyless.projectID, allocationsvc.CreateRequest{SKUID: "nope"}); code(err) != fault.CodeValidationFailed {
		t.Fatalf("unknown SKU: %v", err)
	}
	if after := e.rows(); after != before {
		t.Fatalf("quotes wrote rows: %v → %v", before, after)
	}
	// Create refuses what the quote reported.
	_, err = e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1", MaxHourlyPriceMinor: 200})
	if code(err) != allocationsvc.CodeMaxHourlyPrice || !fault.IsKind(err, fault.KindUnprocessable) {
		t.Fatalf("create over the price: %v", err)
	}
}

// TestCostCapReleases: an allocation with max_total_cost is released by the
// billing horizon just before its cost would reach the cap — what it is
// billed (active until the release request) stays within the cap — once,
// audited with the reason, with its release event.
func TestCostCapReleases(t *testing.T) {
	t.Parallel()
	e := newGuardEnv(t)
	ctx := context.Background()
	m := e.newMember(100000)
	e.addKey(m)
	e.addNodes("h100-80g-x1", 1)
	const capMinor = 100 // 299/h reaches 100 after 1205 s
	a, err := e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1", MaxTotalCostMinor: capMinor})
	if err != nil {
		t.Fatal(err)
	}
	if a.MaxTotalCostMinor != capMinor {
		t.Fatalf("cap not kept: %+v", a)
	}
	if _, err := e.svc.ReleaseOverCostCaps(ctx, e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.Get(ctx, m.p, a.ID); got.State != allocation.Requested {
		t.Fatalf("a node not yet active was released: %s", got.State)
	}
	if _, err := e.svc.MarkProvisioning(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.MarkActive(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	const window = time.Minute
	for _, tc := range []struct {
		after time.Duration
		moved int
	}{{10 * time.Minute, 0}, {1205*time.Second - window - 3*time.Second, 0}, {1205*time.Second - window, 1}, {1300 * time.Second, 0}} {
		e.clock.Set(a.CreatedAt.Add(tc.after))
		n, err := e.svc.ReleaseOverCostCaps(ctx, e.clock.Now().Add(window))
		if err != nil || n != tc.moved {
			t.Fatalf("at +%s: moved %d (%v), want %d", tc.after, n, err, tc.moved)
		}
	}
	got, err := e.svc.Get(ctx, m.p, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	billed := int64(299) * int64(got.ReleaseRequestedAt.Sub(*got.ActiveAt)/time.Second) / 3600
	if got.State != allocation.Releasing || billed > capMinor || got.ReleaseReason != allocation.ReleaseCostCap {
		t.Fatalf("state %s, billed %d (cap %d), reason %q", got.State, billed, capMinor, got.ReleaseReason)
	}
	var reason string
	if err := e.db.Pool.QueryRow(ctx, `SELECT metadata->>'reason' FROM audit_log WHERE action = 'allocation.force_release'
		AND resource_id LIKE '%'||$1`, a.ID).Scan(&reason); err != nil || reason != allocationsvc.ReasonCostCap {
		t.Fatalf("audit reason %q %v", reason, err)
	}
	if evs := e.events(a.ID); evs[len(evs)-1].Type != "provisioning.allocation_release_requested" {
		t.Fatalf("last event %s", evs[len(evs)-1].Type)
	}
}

// TestSpendCap: an API key's daily cap counts what its allocations cost
// today and an hour of the live ones and the new one; over it, create is
// 402 spend_cap_reached; other callers are not capped.
func TestSpendCap(t *testing.T) {
	t.Parallel()
	e := newGuardEnv(t)
	ctx := context.Background()
	m := e.newMember(1000000)
	e.addKey(m)
	e.addNodes("h100-80g-x1", 4)
	keyID := system.UUIDs{}.NewID()
	if err := postgres.NewAPIKeyStore(e.db).CreateAPIKey(ctx, identity.APIKey{ID: keyID, UserID: m.p.User.ID, TenantID: m.p.TenantID,
		ProjectID: m.projectID, Name: "k", Lookup: services.RandomSuffix(6), Hash: make([]byte, 32),
		Scopes: []identity.Scope{identity.ScopeAllocations}, SpendCapMinor: 500, CreatedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	kp := m.p
	kp.Machine = &identity.Machine{Kind: identity.CallerAPIKey, ID: keyID, ProjectID: m.projectID,
		Scopes: []identity.Scope{identity.ScopeAllocations}, SpendCapMinor: 500}
	first, err := e.svc.Create(ctx, kp, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1"})
	if err != nil || first.APIKeyID != keyID {
		t.Fatalf("first: %+v %v", first, err)
	}
	// 299 live + 299 new > 500.
	if _, err := e.svc.Create(ctx, kp, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1"}); code(err) != allocationsvc.CodeSpendCapReached ||
		!fault.IsKind(err, fault.KindPaymentRequired) {
		t.Fatalf("second: %v", err)
	}
	q, err := e.svc.Quote(ctx, kp, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1"})
	if err != nil || q.Allowed || q.Refusals[0].Code != allocationsvc.CodeSpendCapReached {
		t.Fatalf("quote: %+v %v", q, err)
	}
	// A cost cap under an hour counts as what it may cost.
	if _, err := e.svc.Create(ctx, kp, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1", MaxTotalCostMinor: 150}); err != nil {
		t.Fatalf("capped second: %v", err)
	}
	// The person themself is not capped.
	if _, err := e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1"}); err != nil {
		t.Fatalf("the holder signed in: %v", err)
	}
	// What ran today counts after release: the first ran 40 min (199),
	// released; the capped one still live (150) — 199+150+299 > 500.
	if _, err := e.svc.MarkProvisioning(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.MarkActive(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(40 * time.Minute)
	if _, err := e.svc.Release(ctx, kp, first.ID); err != nil {
		t.Fatal(err)
	}
	spend, err := postgres.NewAllocationStore(e.db).KeySpend(ctx, keyID, allocationsvc.DayStart(e.clock.Now()), e.clock.Now())
	if err != nil || spend.SpentMinor != 199 || spend.LiveHourlyMinor != 299 {
		t.Fatalf("spend %+v %v", spend, err)
	}
	if _, err := e.svc.Create(ctx, kp, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1"}); code(err) != allocationsvc.CodeSpendCapReached {
		t.Fatalf("after a day's use: %v", err)
	}
	// The next UTC day starts afresh for what ran yesterday.
	e.clock.Advance(24 * time.Hour)
	spend, err = postgres.NewAllocationStore(e.db).KeySpend(ctx, keyID, allocationsvc.DayStart(e.clock.Now()), e.clock.Now())
	if err != nil || spend.SpentMinor != 0 {
		t.Fatalf("next day %+v %v", spend, err)
	}
}
