package ledgersvc_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

type env struct {
	t     *testing.T
	db    *postgres.DB
	clock *fakes.Clock
	svc   *ledgersvc.Service
	pol   *postgres.PolicyStore
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := services.Postgres(t)
	pol, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	clock := fakes.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	svc, err := ledgersvc.New(ledgersvc.Deps{Tx: db, Ledger: postgres.NewLedgerStore(db), Entries: postgres.NewLedgerStore(db),
		Usage: postgres.NewUsageStore(db), Policies: pol, Audit: postgres.NewAuditLog(db), Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, clock: clock, svc: svc, pol: pol}
}

type tenant struct{ id, project, user string }

// tenant seeds a tenant, a project and a user.
func (e *env) tenant() tenant {
	e.t.Helper()
	ids := system.UUIDs{}
	tn := tenant{ids.NewID(), ids.NewID(), ids.NewID()}
	sfx := services.RandomSuffix(6)
	if _, err := e.db.Pool.Exec(context.Background(), `
		WITH t AS (INSERT INTO tenants (id, name, slug) VALUES ($1, 't', 't-' || $4) RETURNING id),
		     p AS (INSERT INTO projects (id, tenant_id, name) SELECT $2, id, 'p' FROM t RETURNING id)
		INSERT INTO users (id, oidc_issuer, oidc_subject, email) SELECT $3, 'https://iss', 's-' || $4, $4 || '@example.com' FROM p`,
		tn.id, tn.project, tn.user, sfx); err != nil {
		e.t.Fatal(err)
	}
	return tn
}

// open seeds an open usage record at price (per hour) started at start.
func (e *env) open(tn tenant, price int64, start time.Time) {
	e.t.Helper()
	ctx := context.Background()
	alloc := system.UUIDs{}.NewID()
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO allocations (id, tenant_id, project_id, user_id, sku_id, state, price_minor,
		currency, active_at) VALUES ($1, $2, $3, $4, 'h100-80g-x1', 'active', $5, 'usd', $6)`,
		alloc, tn.id, tn.project, tn.user, price, start); err != nil {
		e.t.Fatal(err)
	}
	if ok, err := postgres.NewUsageStore(e.db).Open(ctx, billing.UsageRecord{ID: system.UUIDs{}.NewID(), TenantID: tn.id,
		ProjectID: tn.project, UserID: tn.user, AllocationID: alloc, HourlyPriceMinor: price, Currency: "usd",
		StartedAt: start, BilledThrough: start, State: billing.UsageOpen}); err != nil || !ok {
		e.t.Fatalf("open usage: %v %v", ok, err)
	}
}

func (e *env) balance(tn tenant) int64 {
	e.t.Helper()
	b, _, err := postgres.NewLedgerStore(e.db).Balance(context.Background(), tn.id)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func wantFault(t *testing.T, err error, kind fault.Kind, code fault.Code) {
	t.Helper()
	fe := fault.From(err)
	if err == nil || fe.Kind != kind || fe.Code != code {
		t.Fatalf("error %v; want %v/%s", err, kind, code)
	}
}

var admin = identity.Principal{User: identity.User{ID: "00000000-0000-7000-8000-0000000000ad", Role: identity.RoleAdmin}}

func TestCreditAndDebit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tn := e.tenant()
	post := ledgersvc.Posting{TenantID: tn.id, AmountMinor: 700, Currency: "USD", IdempotencyKey: "pay:1"}

	c, posted, err := e.svc.Credit(ctx, ledger.Credit, post)
	if err != nil || !posted || c.AmountMinor != 700 || c.Currency != "usd" || c.Type != ledger.Credit {
		t.Fatalf("credit: %+v %v %v", c, posted, err)
	}
	if _, posted, err := e.svc.Credit(ctx, ledger.Credit, post); err != nil || posted {
		t.Fatalf("the same key again: posted=%v %v", posted, err)
	}
	d, posted, err := e.svc.Debit(ctx, ledger.UsageDebit, ledgersvc.Posting{TenantID: tn.id, AmountMinor: 200, Currency: "usd",
		IdempotencyKey: "usage:x:1"})
	if err != nil || !posted || d.AmountMinor != -200 {
		t.Fatalf("debit: %+v %v %v", d, posted, err)
	}
	if got := e.balance(tn); got != 500 {
		t.Fatalf("balance %d; want 500", got)
	}

	cases := []struct {
		name  string
		fn    func() error
		kind  fault.Kind
		code  fault.Code
		field string
	}{
		{"no key", func() error {
			_, _, err := e.svc.Credit(ctx, ledger.Credit, ledgersvc.Posting{TenantID: tn.id, AmountMinor: 1, Currency: "usd", IdempotencyKey: " "})
			return err
		}, fault.KindInvalid, ledgersvc.CodeIdempotencyKeyRequired, "idempotency_key"},
		{"zero", func() error {
			_, _, err := e.svc.Debit(ctx, ledger.Refund, ledgersvc.Posting{TenantID: tn.id, Currency: "usd", IdempotencyKey: "k"})
			return err
		}, fault.KindInvalid, fault.CodeValidationFailed, "amount_minor"},
		{"negative magnitude", func() error {
			_, _, err := e.svc.Credit(ctx, ledger.Credit, ledgersvc.Posting{TenantID: tn.id, AmountMinor: -5, Currency: "usd", IdempotencyKey: "k"})
			return err
		}, fault.KindInvalid, fault.CodeValidationFailed, "amount_minor"},
		{"credit of a debit type", func() error {
			_, _, err := e.svc.Credit(ctx, ledger.UsageDebit, post)
			return err
		}, fault.KindInvalid, fault.CodeValidationFailed, "type"},
		{"debit of a credit type", func() error {
			_, _, err := e.svc.Debit(ctx, ledger.Credit, post)
			return err
		}, fault.KindInvalid, fault.CodeValidationFailed, "type"},
		{"another currency", func() error {
			_, _, err := e.svc.Credit(ctx, ledger.Credit, ledgersvc.Posting{TenantID: tn.id, AmountMinor: 5, Currency: "eur", IdempotencyKey: "eur:1"})
			return err
		}, fault.KindUnprocessable, ledgersvc.CodeCurrencyMismatch, ""},
	}
	for _, c := range cases {
		err := c.fn()
		wantFault(t, err, c.kind, c.code)
		if fault.From(err).Field != c.field {
			t.Errorf("%s: field %q; want %q", c.name, fault.From(err).Field, c.field)
		}
	}
	if got := e.balance(tn); got != 500 {
		t.Fatalf("refusals changed the balance to %d", got)
	}
	// Inside the caller's transaction: a rollback takes the posting with it.
	err = e.db.InTx(ctx, func(ctx context.Context) error {
		if _, _, err := e.svc.Credit(ctx, ledger.Credit, ledgersvc.Posting{TenantID: tn.id, AmountMinor: 1000, Currency: "usd",
			IdempotencyKey: "rolled-back"}); err != nil {
			return err
		}
		return fault.Conflict("test_rollback", "roll back")
	})
	if !fault.IsKind(err, fault.KindConflict) || e.balance(tn) != 500 {
		t.Fatalf("rollback: %v, balance %d", err, e.balance(tn))
	}
}

func TestBalanceBurnAndRunway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()

	empty := e.tenant()
	if err := e.pol.Set(ctx, empty.id, "billing.currency", "eur", "test"); err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.Balance(ctx, identity.Principal{TenantID: empty.id})
	if err != nil || b.BalanceMinor != 0 || b.Currency != "eur" || b.BurnRateMinorPerHour != 0 || b.RunwaySeconds != nil ||
		b.RunwayText() != "" {
		t.Fatalf("a tenant without entries: %+v %v (want the tenant's policy currency, nothing burning)", b, err)
	}

	tn := e.tenant()
	if _, _, err := e.svc.Credit(ctx, ledger.Credit, ledgersvc.Posting{TenantID: tn.id, AmountMinor: 10_000, Currency: "usd",
		IdempotencyKey: "c1"}); err != nil {
		t.Fatal(err)
	}
	e.open(tn, 299, e.clock.Now().Add(-time.Hour))
	e.open(tn, 2392, e.clock.Now())
	b, err = e.svc.Balance(ctx, identity.Principal{TenantID: tn.id})
	// 10,000 at 2,691/h: 13,378 s (3 h 42 min).
	if err != nil || b.BalanceMinor != 10_000 || b.Currency != "usd" || b.BurnRateMinorPerHour != 2691 ||
		b.RunwaySeconds == nil || *b.RunwaySeconds != 10_000*3600/2691 || b.RunwayText() != "lasts about 3 hours at the current rate" {
		t.Fatalf("balance %+v %v", b, err)
	}
	// Spent: the runway is zero, not negative.
	if _, _, err := e.svc.Debit(ctx, ledger.UsageDebit, ledgersvc.Posting{TenantID: tn.id, AmountMinor: 10_500, Currency: "usd",
		IdempotencyKey: "d1"}); err != nil {
		t.Fatal(err)
	}
	b, err = e.svc.Balance(ctx, identity.Principal{TenantID: tn.id})
	if err != nil || b.BalanceMinor != -500 || b.RunwaySeconds == nil || *b.RunwaySeconds != 0 ||
		b.RunwayText() != "the balance is used up" {
		t.Fatalf("spent balance %+v %v", b, err)
	}
}

func TestRunwayText(t *testing.T) {
	t.Parallel()
	secs := func(n int64) *int64 { return &n }
	for _, c := range []struct {
		runway *int64
		want   string
	}{
		{nil, ""},
		{secs(0), "the balance is used up"},
		{secs(3599), "lasts less than an hour at the current rate"},
		{secs(3600), "lasts about 1 hour at the current rate"},
		{secs(7199), "lasts about 1 hour at the current rate"},
		{secs(7200), "lasts about 2 hours at the current rate"},
		{secs(1 << 50), "lasts about 312749974122 hours at the current rate"},
	} {
		if got := (ledgersvc.Balance{RunwaySeconds: c.runway}).RunwayText(); got != c.want {
			t.Errorf("runway %v: %q; want %q", c.runway, got, c.want)
		}
	}
}

func TestAdminCredit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tn := e.tenant()
	req := ledgersvc.AdminCreditRequest{TenantID: tn.id, AmountMinor: 2500, Currency: "usd", Reason: " outage credit ",
		IdempotencyKey: "op-1"}

	first, err := e.svc.AdminCredit(ctx, admin, req)
	if err != nil || first.Type != ledger.Adjustment || first.AmountMinor != 2500 || first.Reason != "outage credit" {
		t.Fatalf("credit %+v %v", first, err)
	}
	again, err := e.svc.AdminCredit(ctx, admin, req)
	if err != nil || again.ID != first.ID || e.balance(tn) != 2500 {
		t.Fatalf("retry: %+v %v, balance %d; want the first entry and one credit", again, err, e.balance(tn))
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'billing.admin_credit' AND tenant_id = $1`, tn.id); n != 1 {
		t.Fatalf("%d audit rows; want 1", n)
	}
	// The same key for another amount is not a retry.
	other := req
	other.AmountMinor = 9999
	_, err = e.svc.AdminCredit(ctx, admin, other)
	wantFault(t, err, fault.KindUnprocessable, fault.CodeIdempotencyKeyReused)
	// A client key as long as the host allows still fits the ledger.
	long := req
	long.IdempotencyKey = strings.Repeat("k", 255)
	if _, err := e.svc.AdminCredit(ctx, admin, long); err != nil {
		t.Fatalf("a 255-character key: %v", err)
	}
	if _, err := e.svc.AdminCredit(ctx, admin, long); err != nil || e.balance(tn) != 5000 {
		t.Fatalf("its retry: %v, balance %d; want 5000", err, e.balance(tn))
	}

	cases := []struct {
		name  string
		p     identity.Principal
		edit  func(*ledgersvc.AdminCreditRequest)
		kind  fault.Kind
		code  fault.Code
		field string
	}{
		{"not an operator", identity.Principal{User: identity.User{ID: tn.user}, TenantID: tn.id, TenantRole: identity.TenantOwner},
			func(*ledgersvc.AdminCreditRequest) {}, fault.KindForbidden, fault.CodeForbidden, ""},
		{"no key", admin, func(r *ledgersvc.AdminCreditRequest) { r.IdempotencyKey = "" },
			fault.KindInvalid, ledgersvc.CodeIdempotencyKeyRequired, "X-Idempotency-Key"},
		{"zero", admin, func(r *ledgersvc.AdminCreditRequest) { r.AmountMinor = 0 },
			fault.KindInvalid, ledgersvc.CodeAmountOutOfRange, "amount_minor"},
		{"over the cap", admin, func(r *ledgersvc.AdminCreditRequest) { r.AmountMinor = ledgersvc.MaxAdminAmountMinor + 1 },
			fault.KindInvalid, ledgersvc.CodeAmountOutOfRange, "amount_minor"},
		{"blank reason", admin, func(r *ledgersvc.AdminCreditRequest) { r.Reason = "\t" },
			fault.KindInvalid, fault.CodeValidationFailed, "reason"},
		{"long reason", admin, func(r *ledgersvc.AdminCreditRequest) { r.Reason = strings.Repeat("é", 501) },
			fault.KindInvalid, fault.CodeValidationFailed, "reason"},
		{"bad currency", admin, func(r *ledgersvc.AdminCreditRequest) { r.Currency = "us" },
			fault.KindInvalid, fault.CodeValidationFailed, "currency"},
		{"other currency", admin, func(r *ledgersvc.AdminCreditRequest) { r.Currency = "gbp" },
			fault.KindInvalid, ledgersvc.CodeCurrencyMismatch, "currency"},
		{"unknown tenant", admin, func(r *ledgersvc.AdminCreditRequest) { r.TenantID = system.UUIDs{}.NewID() },
			fault.KindNotFound, fault.CodeNotFound, ""},
	}
	for i, c := range cases {
		r := req
		r.IdempotencyKey = "case-" + c.name
		c.edit(&r)
		_, err := e.svc.AdminCredit(ctx, c.p, r)
		wantFault(t, err, c.kind, c.code)
		if fault.From(err).Field != c.field {
			t.Errorf("case %d %s: field %q; want %q", i, c.name, fault.From(err).Field, c.field)
		}
	}
	if got := e.balance(tn); got != 5000 {
		t.Fatalf("refusals changed the balance to %d", got)
	}
}

func TestAdminRefund(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tn := e.tenant()
	now := e.clock.Now()
	credit := func(key string, amount int64, age time.Duration) ledger.Entry {
		t.Helper()
		e.clock.Set(now.Add(-age))
		defer e.clock.Set(now)
		c, _, err := e.svc.Credit(ctx, ledger.Credit, ledgersvc.Posting{TenantID: tn.id, AmountMinor: amount, Currency: "usd",
			IdempotencyKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := credit("old", 5000, 31*24*time.Hour) // the default window is 30 days
	mid := credit("mid", 3000, 10*24*time.Hour)
	recent := credit("recent", 2000, 24*time.Hour)
	grant, err := e.svc.AdminCredit(ctx, admin, ledgersvc.AdminCreditRequest{TenantID: tn.id, AmountMinor: 100, Currency: "usd",
		Reason: "grant", IdempotencyKey: "g"})
	if err != nil {
		t.Fatal(err)
	}
	refund := func(key string, amount int64, creditID string) ([]ledger.Entry, error) {
		return e.svc.AdminRefund(ctx, admin, ledgersvc.AdminRefundRequest{TenantID: tn.id, AmountMinor: amount,
			Reason: "customer request", CreditEntryID: creditID, IdempotencyKey: key})
	}

	_, err = refund("a", 10, old.ID)
	wantFault(t, err, fault.KindUnprocessable, ledgersvc.CodeRefundWindowExceeded)
	_, err = refund("b", 2001, recent.ID)
	wantFault(t, err, fault.KindUnprocessable, ledgersvc.CodeRefundExceedsCredit)
	_, err = refund("c", 10, grant.ID)
	wantFault(t, err, fault.KindUnprocessable, ledgersvc.CodeNotACredit)
	_, err = refund("d", 10, system.UUIDs{}.NewID())
	wantFault(t, err, fault.KindNotFound, fault.CodeNotFound)
	// Only mid and recent are in the window: 5,000 is refundable, 5,001 not.
	_, err = refund("e", 5001, "")
	wantFault(t, err, fault.KindUnprocessable, ledgersvc.CodeRefundExceedsCredit)
	_, err = e.svc.AdminRefund(ctx, identity.Principal{User: identity.User{ID: tn.user}, TenantID: tn.id},
		ledgersvc.AdminRefundRequest{TenantID: tn.id, AmountMinor: 1, Reason: "x", IdempotencyKey: "f"})
	wantFault(t, err, fault.KindForbidden, fault.CodeForbidden)
	if got := e.balance(tn); got != 10_100 {
		t.Fatalf("refusals changed the balance to %d", got)
	}

	// 1,500 of recent by name.
	got, err := refund("g", 1500, recent.ID)
	if err != nil || len(got) != 1 || got[0].AmountMinor != -1500 || got[0].Type != ledger.Refund || got[0].Reference != recent.ID {
		t.Fatalf("named refund: %+v %v", got, err)
	}
	// The retry answers with the same entry and refunds nothing more; the
	// same key for another amount is refused.
	again, err := refund("g", 1500, recent.ID)
	if err != nil || len(again) != 1 || again[0].ID != got[0].ID || e.balance(tn) != 8600 {
		t.Fatalf("retry: %+v %v, balance %d", again, err, e.balance(tn))
	}
	_, err = refund("g", 1400, recent.ID)
	wantFault(t, err, fault.KindUnprocessable, fault.CodeIdempotencyKeyReused)
	_, err = refund("h", 501, recent.ID)
	wantFault(t, err, fault.KindUnprocessable, ledgersvc.CodeRefundExceedsCredit)

	// Unnamed: the newest first — the 500 left of recent, then 2,000 of mid.
	got, err = refund("i", 2500, "")
	if err != nil || len(got) != 2 || got[0].Reference != recent.ID || got[0].AmountMinor != -500 ||
		got[1].Reference != mid.ID || got[1].AmountMinor != -2000 {
		t.Fatalf("unnamed refund: %+v %v", got, err)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'billing.admin_refund' AND tenant_id = $1`, tn.id); n != 2 {
		t.Fatalf("%d refund audit rows; want 2", n)
	}

	// Spent credit is not refundable: with the balance below what is left
	// of mid (1,000), refunding it is refused.
	if _, _, err := e.svc.Debit(ctx, ledger.UsageDebit, ledgersvc.Posting{TenantID: tn.id, AmountMinor: 5_700, Currency: "usd",
		IdempotencyKey: "usage"}); err != nil {
		t.Fatal(err)
	}
	if b := e.balance(tn); b != 400 {
		t.Fatalf("balance %d; want 400", b)
	}
	_, err = refund("j", 500, mid.ID)
	wantFault(t, err, fault.KindUnprocessable, ledgersvc.CodeRefundExceedsBalance)
	if got, err := refund("k", 400, mid.ID); err != nil || len(got) != 1 || e.balance(tn) != 0 {
		t.Fatalf("refund of the whole balance: %+v %v, balance %d", got, err, e.balance(tn))
	}
}

// TestAdminRefundRace: 12 concurrent refunds of 1,000 against one credit of
// 5,000 → exactly 5 succeed; the rest are refund_exceeds_credit.
func TestAdminRefundRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tn := e.tenant()
	c, _, err := e.svc.Credit(ctx, ledger.Credit, ledgersvc.Posting{TenantID: tn.id, AmountMinor: 5000, Currency: "usd",
		IdempotencyKey: "paid"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := e.svc.AdminRefund(ctx, admin, ledgersvc.AdminRefundRequest{TenantID: tn.id, AmountMinor: 1000,
				Reason: "race", CreditEntryID: c.ID, IdempotencyKey: "race-" + string(rune('a'+i))})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case fault.From(err).Code == ledgersvc.CodeRefundExceedsCredit:
				refused++
			default:
				t.Errorf("refund %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	if ok != 5 || refused != 7 || e.balance(tn) != 0 {
		t.Fatalf("%d refunded, %d refused, balance %d; want 5, 7, 0", ok, refused, e.balance(tn))
	}
}

func TestListings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.tenant(), e.tenant()
	for i := 0; i < 5; i++ {
		e.clock.Advance(time.Second)
		if _, _, err := e.svc.Credit(ctx, ledger.Credit, ledgersvc.Posting{TenantID: a.id, AmountMinor: int64(i + 1),
			Currency: "usd", IdempotencyKey: "a" + string(rune('0'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.svc.Credit(ctx, ledger.Credit, ledgersvc.Posting{TenantID: b.id, AmountMinor: 99, Currency: "usd",
		IdempotencyKey: "b"}); err != nil {
		t.Fatal(err)
	}
	var amounts []int64
	cursor := ""
	for {
		page, next, err := e.svc.Ledger(ctx, identity.Principal{TenantID: a.id}, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range page {
			if en.TenantID != a.id {
				t.Fatalf("another tenant's entry %+v", en)
			}
			amounts = append(amounts, en.AmountMinor)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(amounts) != 5 || amounts[0] != 5 || amounts[4] != 1 {
		t.Fatalf("amounts %v; want 5..1 newest first", amounts)
	}

	start := e.clock.Now().Add(-90 * time.Minute)
	e.open(a, 3600, start)
	lines, _, err := e.svc.Usage(ctx, identity.Principal{TenantID: a.id}, "", 10)
	if err != nil || len(lines) != 1 || lines[0].Seconds != 5400 || lines[0].CostMinor != 5400 || lines[0].ProjectName != "p" {
		t.Fatalf("usage lines %+v %v; want 90 min at 3600/h costing 5400 so far", lines, err)
	}
	n := 0
	if err := e.svc.EachUsage(ctx, identity.Principal{TenantID: b.id}, func(ledgersvc.UsageLine) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("b streamed %d of a's lines (%v)", n, err)
	}
}
