package adminsvc_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/admin"
	"github.com/gpuaas/gpuaas/core/admin/adminsvc"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

type env struct {
	db    *postgres.DB
	svc   *adminsvc.Service
	ident *identitysvc.Service
	pol   *postgres.PolicyStore
	admin identity.Principal

	ledger *ledgersvc.Service
	clock  *fakes.Clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := services.Postgres(t)
	clock := fakes.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	pol, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{Clock: clock})
	must(t, err)
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	must(t, err)
	t.Cleanup(outbox.Close)
	ledger, err := ledgersvc.New(ledgersvc.Deps{Tx: db, Ledger: postgres.NewLedgerStore(db), Entries: postgres.NewLedgerStore(db),
		Usage: postgres.NewUsageStore(db), Policies: pol, Audit: postgres.NewAuditLog(db), Clock: clock, IDs: system.UUIDs{}})
	must(t, err)
	store := postgres.NewAdminStore(db)
	ident, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: postgres.NewAuditLog(db),
		Outbox: outbox, Clock: clock, IDs: system.UUIDs{}, Pending: store})
	must(t, err)
	svc, err := adminsvc.New(adminsvc.Deps{Tx: db, Directory: store, Ops: store, Balances: ledger,
		Refunds: postgres.NewLedgerStore(db), Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Tenants: postgres.NewTenantStore(db),
		Allocations: postgres.NewAllocationStore(db), Policies: pol, Overrides: pol, Audit: postgres.NewAuditLog(db),
		Outbox: outbox, Clock: clock, IDs: system.UUIDs{}})
	must(t, err)
	e := &env{db: db, svc: svc, ident: ident, pol: pol, ledger: ledger, clock: clock}
	// The operator signs in like anyone, with the admin role in the token.
	e.admin, err = ident.SignIn(context.Background(), identity.Claims{Issuer: "https://iss", Subject: "op-" + services.RandomSuffix(6),
		Email: "op-" + services.RandomSuffix(6) + "@example.com", Roles: []string{"admin"}})
	must(t, err)
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func code(err error) fault.Code { return fault.From(err).Code }

func TestUsersCreateFindSignInSuspend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	email := "carol-" + services.RandomSuffix(6) + "@example.com"
	row, err := e.svc.CreateUser(ctx, e.admin, adminsvc.CreateUserRequest{Email: email, DisplayName: "Carol",
		NewTenantName: "Carol's lab"})
	must(t, err)
	if !row.Pending || row.TenantRole != identity.TenantOwner || row.TenantName != "Carol's lab" {
		t.Fatalf("created %+v", row)
	}
	if _, err := e.svc.CreateUser(ctx, e.admin, adminsvc.CreateUserRequest{Email: email, TenantID: row.TenantID,
		Role: identity.TenantMember}); code(err) != adminsvc.CodeEmailTaken {
		t.Fatalf("same email twice: %v", err)
	}
	// A colleague joins Carol's tenant as a member.
	dave := "dave-" + services.RandomSuffix(6) + "@example.com"
	_, err = e.svc.CreateUser(ctx, e.admin, adminsvc.CreateUserRequest{Email: dave, TenantID: row.TenantID, Role: identity.TenantMember})
	must(t, err)
	found, _, err := e.svc.ListUsers(ctx, e.admin, admin.UserFilter{TenantID: row.TenantID})
	must(t, err)
	if len(found) != 2 {
		t.Fatalf("tenant's users: %+v", found)
	}
	byEmail, _, err := e.svc.ListUsers(ctx, e.admin, admin.UserFilter{Email: email[:9]})
	must(t, err)
	if len(byEmail) != 1 || byEmail[0].User.ID != row.User.ID {
		t.Fatalf("by email: %+v", byEmail)
	}
	// Carol's first sign-in takes her account: same id, same tenant.
	p, err := e.ident.SignIn(ctx, identity.Claims{Issuer: "https://iss", Subject: "carol-sub-" + email, Email: email, Name: "Carol"})
	must(t, err)
	if p.User.ID != row.User.ID || p.TenantID != row.TenantID || p.TenantRole != identity.TenantOwner {
		t.Fatalf("first sign-in: %+v; want the created account", p)
	}
	detail, err := e.svc.User(ctx, e.admin, row.User.ID)
	must(t, err)
	if detail.Row.Pending || len(detail.Projects) != 1 || detail.Projects[0].Role != identity.ProjectAdmin || detail.Balance.Currency != "usd" {
		t.Fatalf("detail %+v", detail)
	}
	// Suspension: refused on the next request, evented, audited.
	_, err = e.svc.SetSuspended(ctx, e.admin, row.User.ID, true)
	must(t, err)
	if _, err := e.ident.Resolve(ctx, identity.Claims{Issuer: "https://iss", Subject: "carol-sub-" + email}); !fault.IsKind(err, fault.KindForbidden) {
		t.Fatalf("a suspended user's token: %v; want 403", err)
	}
	var events int
	must(t, e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM platform_outbox_events WHERE subject = $1 AND envelope->>'aggregate_id' = $2`,
		event.UserSuspended, row.User.ID).Scan(&events))
	if events != 1 {
		t.Fatalf("%d suspension events", events)
	}
	_, err = e.svc.SetSuspended(ctx, e.admin, row.User.ID, false)
	must(t, err)
	if _, err := e.ident.Resolve(ctx, identity.Claims{Issuer: "https://iss", Subject: "carol-sub-" + email}); err != nil {
		t.Fatalf("reinstated: %v", err)
	}
	// Refusals.
	if _, err := e.svc.SetSuspended(ctx, e.admin, e.admin.User.ID, true); code(err) != adminsvc.CodeSelfSuspend {
		t.Fatalf("suspend self: %v", err)
	}
	if _, err := e.svc.SetSuspended(ctx, e.admin, system.UUIDs{}.NewID(), true); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, _, err := e.svc.ListUsers(ctx, p, admin.UserFilter{}); !fault.IsKind(err, fault.KindForbidden) {
		t.Fatalf("a tenant owner listed users: %v", err)
	}
	if _, _, err := e.svc.ListUsers(ctx, e.admin, admin.UserFilter{Cursor: "nope"}); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}
	if _, _, err := e.svc.ListUsers(ctx, e.admin, admin.UserFilter{Status: "gone"}); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("bad status: %v", err)
	}
}

func TestLastPlatformAdmin(t *testing.T) {
	// Not parallel with itself: it counts every admin of the database.
	e := newEnv(t)
	ctx := context.Background()
	other, err := e.ident.SignIn(ctx, identity.Claims{Issuer: "https://iss", Subject: "op2-" + services.RandomSuffix(6),
		Email: "op2-" + services.RandomSuffix(6) + "@example.com", Roles: []string{"admin"}})
	must(t, err)
	// Suspend every other active admin of this database but these two.
	_, err = e.db.Pool.Exec(ctx, `UPDATE users SET status = 'suspended' WHERE role = 'admin' AND id NOT IN ($1, $2)`,
		e.admin.User.ID, other.User.ID)
	must(t, err)
	if _, err := e.svc.SetSuspended(ctx, e.admin, other.User.ID, true); err != nil {
		t.Fatalf("suspending one of two admins: %v", err)
	}
	// Now e.admin is the last one; another admin (reinstated) tries to
	// suspend them.
	_, err = e.db.Pool.Exec(ctx, `UPDATE users SET status = 'active' WHERE id = $1`, other.User.ID)
	must(t, err)
	_, err = e.db.Pool.Exec(ctx, `UPDATE users SET status = 'suspended' WHERE id = $1`, other.User.ID)
	must(t, err)
	if _, err := e.svc.SetSuspended(ctx, other, e.admin.User.ID, true); code(err) != adminsvc.CodeLastAdmin {
		t.Fatalf("suspending the last admin: %v", err)
	}
}

func TestTenantsPoliciesOpsAndRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	row, err := e.svc.CreateUser(ctx, e.admin, adminsvc.CreateUserRequest{Email: "erin-" + services.RandomSuffix(6) + "@example.com",
		NewTenantName: "Erin " + services.RandomSuffix(6)})
	must(t, err)
	tenants, _, err := e.svc.ListTenants(ctx, e.admin, admin.TenantFilter{Name: row.TenantName[5:]})
	must(t, err)
	// A tenant without a ledger entry yet shows the currency its ledger
	// will keep, not "".
	if len(tenants) != 1 || tenants[0].Members != 1 || tenants[0].Currency != policy.BillingCurrency.Default {
		t.Fatalf("tenants %+v", tenants)
	}
	d, err := e.svc.Tenant(ctx, e.admin, row.TenantID)
	must(t, err)
	if len(d.Projects) != 1 || len(d.Members) != 1 || len(d.Overrides) != 0 || d.Row.Currency != policy.BillingCurrency.Default {
		t.Fatalf("tenant detail %+v", d)
	}
	if _, err := e.svc.Tenant(ctx, e.admin, system.UUIDs{}.NewID()); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("unknown tenant: %v", err)
	}
	// Its ledger, for operators only; an unknown tenant is not an empty ledger.
	if pg, err := e.svc.TenantLedger(ctx, e.admin, row.TenantID, "", 0); err != nil || len(pg.Entries) != 0 || pg.Next != "" {
		t.Fatalf("a new tenant's ledger: %+v %v", pg, err)
	}
	if _, err := e.svc.TenantLedger(ctx, e.admin, system.UUIDs{}.NewID(), "", 0); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("unknown tenant's ledger: %v", err)
	}
	if _, err := e.svc.TenantLedger(ctx, e.admin, row.TenantID, "", 201); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("limit 201: %v", err)
	}
	if _, err := e.svc.TenantLedger(ctx, identity.Principal{TenantID: row.TenantID}, row.TenantID, "", 0); !fault.IsKind(err, fault.KindForbidden) {
		t.Fatalf("a non-operator read a ledger: %v", err)
	}
	v := "250"
	got, err := e.svc.SetTenantPolicy(ctx, e.admin, row.TenantID, policy.BillingLowBalanceMinor.Name, &v)
	must(t, err)
	if got.Value != "250" || !got.Overridden {
		t.Fatalf("override %+v", got)
	}
	if _, err := e.svc.SetTenantPolicy(ctx, e.admin, row.TenantID, policy.BillingWindowSeconds.Name, &v); code(err) != adminsvc.CodePolicyNotTenant {
		t.Fatalf("a platform-wide key overridden: %v", err)
	}
	bad := "-1"
	if _, err := e.svc.SetTenantPolicy(ctx, e.admin, row.TenantID, policy.BillingLowBalanceMinor.Name, &bad); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("bad value: %v", err)
	}
	ps, err := e.svc.TenantPolicies(ctx, e.admin, row.TenantID)
	must(t, err)
	for _, p := range ps {
		if p.Key.Name == policy.BillingLowBalanceMinor.Name && (!p.Overridden || p.Value != "250") {
			t.Fatalf("listed %+v", p)
		}
	}
	got, err = e.svc.SetTenantPolicy(ctx, e.admin, row.TenantID, policy.BillingLowBalanceMinor.Name, nil)
	must(t, err)
	if got.Overridden || got.Value != policy.BillingLowBalanceMinor.Default {
		t.Fatalf("reset %+v", got)
	}
	// A failed event shows in the ops view and goes back to pending.
	id := system.UUIDs{}.NewID()
	_, err = e.db.Pool.Exec(ctx, `INSERT INTO platform_outbox_events (id, subject, envelope, status, retry_count, last_error)
		VALUES ($1::uuid, 'billing.low_balance_warning', jsonb_build_object('id', $2::text, 'type', 'billing.low_balance_warning'), 'failed', 10, 'nats: no responders')`, id, id)
	must(t, err)
	view, err := e.svc.Ops(ctx, e.admin, 0)
	must(t, err)
	degraded := map[string]string{}
	for _, en := range view.Entries {
		if en.Status == admin.Degraded {
			degraded[en.Name] = en.Runbook
		}
	}
	if degraded["events_failed"] != admin.RunbookFailedEvents {
		t.Fatalf("ops entries %+v", view.Entries)
	}
	ev, err := e.svc.RetryEvent(ctx, e.admin, id)
	must(t, err)
	if ev.RetryCount != 10 || ev.LastError != "nats: no responders" {
		t.Fatalf("retried %+v", ev)
	}
	var status string
	var retries int
	must(t, e.db.Pool.QueryRow(ctx, `SELECT status, retry_count FROM platform_outbox_events WHERE id = $1`, id).Scan(&status, &retries))
	if status != "pending" || retries != 0 {
		t.Fatalf("after retry: %s %d", status, retries)
	}
	if _, err := e.svc.RetryEvent(ctx, e.admin, id); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("retrying a pending event: %v; want 404", err)
	}
	if _, err := e.svc.Ops(ctx, e.admin, 30*time.Second); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("stuck threshold below a minute: %v", err)
	}
}

// TestTenantLedgerRefundable: each credit on an operator's ledger page says
// what is left to refund of it — the amount less earlier refunds, nothing
// once refunded in full, nothing once older than the tenant's refund
// window — and entries that are not credits say nothing.
func TestTenantLedgerRefundable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	row, err := e.svc.CreateUser(ctx, e.admin, adminsvc.CreateUserRequest{Email: "rae-" + services.RandomSuffix(6) + "@example.com",
		NewTenantName: "Rae " + services.RandomSuffix(6)})
	must(t, err)
	store := postgres.NewLedgerStore(e.db)
	post := func(typ ledger.EntryType, amount int64, at time.Time, ref string) string {
		t.Helper()
		id := system.UUIDs{}.NewID()
		_, err := store.Post(ctx, ledger.Entry{ID: id, TenantID: row.TenantID, Type: typ, AmountMinor: amount, Currency: "usd",
			IdempotencyKey: "test-" + id, Reference: ref, CreatedAt: at})
		must(t, err)
		return id
	}
	now := e.clock.Now()
	old := post(ledger.Credit, 900, now.Add(-31*24*time.Hour), "cs_old") // the default window is 30 days
	partial := post(ledger.Credit, 5000, now.Add(-2*time.Hour), "cs_partial")
	whole := post(ledger.Credit, 800, now.Add(-time.Hour), "cs_whole")
	debit := post(ledger.UsageDebit, -300, now.Add(-30*time.Minute), "")
	for i, r := range []ledgersvc.AdminRefundRequest{{CreditEntryID: partial, AmountMinor: 1200}, {CreditEntryID: whole, AmountMinor: 800}} {
		r.TenantID, r.Reason, r.IdempotencyKey = row.TenantID, "test", "refund-"+strconv.Itoa(i)
		if _, err := e.ledger.AdminRefund(ctx, e.admin, r); err != nil {
			t.Fatalf("refund %d: %v", i, err)
		}
	}
	pg, err := e.svc.TenantLedger(ctx, e.admin, row.TenantID, "", 0)
	must(t, err)
	want := map[string]int64{old: 0, partial: 3800, whole: 0}
	if len(pg.Entries) != 6 || len(pg.Refundable) != len(want) {
		t.Fatalf("page: %d entries, refundable %v", len(pg.Entries), pg.Refundable)
	}
	for id, left := range want {
		if got, ok := pg.Refundable[id]; !ok || got != left {
			t.Errorf("credit %s: refundable %d (%v), want %d", id, got, ok, left)
		}
	}
	if _, ok := pg.Refundable[debit]; ok {
		t.Errorf("a usage debit has a refundable amount")
	}
	// A longer window (a tenant override) brings the old credit back.
	must(t, e.pol.Set(ctx, row.TenantID, policy.RefundWindowDays.Name, "60", e.admin.User.ID))
	pg, err = e.svc.TenantLedger(ctx, e.admin, row.TenantID, "", 0)
	must(t, err)
	if pg.Refundable[old] != 900 {
		t.Fatalf("old credit with a 60-day window: refundable %d, want 900", pg.Refundable[old])
	}
}
