package paymentsvc_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/adapters/devpay"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
)

var cfg = paymentsvc.Config{SuccessURL: "https://c.example.com/ok", CancelURL: "https://c.example.com/no",
	PortalReturnURL: "https://c.example.com/billing"}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := paymentsvc.New(paymentsvc.Config{SuccessURL: "/ok", CancelURL: "https://a", PortalReturnURL: "https://a"},
		paymentsvc.Deps{}); err == nil {
		t.Fatal("relative success URL accepted")
	}
	if _, err := paymentsvc.New(cfg, paymentsvc.Deps{}); err == nil {
		t.Fatal("missing dependencies accepted")
	}
}

// flaky wraps the real dev provider and fails CreateCheckout while down is
// set: an outage between the session row and the provider's answer.
type flaky struct {
	*devpay.Provider
	down  atomic.Bool
	calls atomic.Int32
}

func (f *flaky) CreateCheckout(ctx context.Context, r ports.CheckoutRequest) (string, string, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return "", "", errors.New("connection refused")
	}
	return f.Provider.CreateCheckout(ctx, r)
}

func setup(t *testing.T) (*paymentsvc.Service, *flaky, *postgres.DB, identity.Principal) {
	t.Helper()
	db := services.Postgres(t)
	ctx := context.Background()
	dev, err := devpay.New(devpay.Config{PublicBaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	prov := &flaky{Provider: dev}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := paymentsvc.New(cfg, paymentsvc.Deps{Tx: db, Store: postgres.NewPaymentStore(db), Ledger: postgres.NewLedgerStore(db),
		Provider: prov, Policies: policies, Audit: postgres.NewAuditLog(db), Outbox: outbox, Clock: system.Clock{}, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	tenant, user := uuid.NewString(), uuid.NewString()
	if err := postgres.NewTenantStore(db).CreateTenant(ctx, identity.Tenant{ID: tenant, Name: "t", Slug: "t-" + tenant[:8]}); err != nil {
		t.Fatal(err)
	}
	u, _, err := postgres.NewUserStore(db).UpsertByIdentity(ctx, identity.User{ID: user, Issuer: "https://iss", Subject: user,
		Email: "m@example.com", Role: identity.RoleUser, Status: identity.UserActive})
	if err != nil {
		t.Fatal(err)
	}
	return svc, prov, db, identity.Principal{User: u, TenantID: tenant, TenantRole: identity.TenantMember}
}

// TestCheckoutSurvivesProviderOutage: a provider failure leaves the session
// initiated without a checkout; the retry with the same key resumes the same
// session instead of opening a second one.
func TestCheckoutSurvivesProviderOutage(t *testing.T) {
	t.Parallel()
	svc, prov, db, p := setup(t)
	ctx := context.Background()
	prov.down.Store(true)
	_, err := svc.CreateCheckout(ctx, p, 1500, "usd", "retry-me")
	if fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("outage: %v", err)
	}
	prov.down.Store(false)
	c, err := svc.CreateCheckout(ctx, p, 1500, "usd", "retry-me")
	if err != nil || c.CheckoutURL == "" || c.Status != payment.Initiated {
		t.Fatalf("retry: %+v %v", c, err)
	}
	again, err := svc.CreateCheckout(ctx, p, 1500, "usd", "retry-me")
	if err != nil || again.SessionID != c.SessionID || again.CheckoutURL != c.CheckoutURL {
		t.Fatalf("replay: %+v %v", again, err)
	}
	if prov.calls.Load() != 2 {
		t.Fatalf("provider called %d times; a completed checkout must not call it again", prov.calls.Load())
	}
	var n int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM payment_sessions WHERE tenant_id = $1`, p.TenantID).Scan(&n)
	if n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	// The same key with another amount is refused.
	if _, err := svc.CreateCheckout(ctx, p, 1600, "usd", "retry-me"); fault.From(err).Code != fault.CodeIdempotencyKeyReused {
		t.Fatalf("key reuse: %v", err)
	}
}

// TestConcurrentCheckoutsOneSession: 16 concurrent first attempts with one
// key produce one session.
func TestConcurrentCheckoutsOneSession(t *testing.T) {
	t.Parallel()
	svc, _, db, p := setup(t)
	ctx := context.Background()
	ids := make([]string, 16)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := svc.CreateCheckout(ctx, p, 2000, "usd", "same-key")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = c.SessionID
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("sessions differ: %v", ids)
		}
	}
	var n int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM payment_sessions WHERE tenant_id = $1`, p.TenantID).Scan(&n)
	if n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
}

func TestPortalAndAdminRights(t *testing.T) {
	t.Parallel()
	svc, _, _, p := setup(t)
	ctx := context.Background()
	if _, err := svc.CustomerPortal(ctx, p); !fault.IsKind(err, fault.KindForbidden) {
		t.Fatalf("member opened the portal: %v", err)
	}
	p.TenantRole = identity.TenantOwner
	if u, err := svc.CustomerPortal(ctx, p); err != nil || u == "" {
		t.Fatalf("owner: %q %v", u, err)
	}
	if _, _, err := svc.ListSessions(ctx, p, payment.SessionFilter{}); !fault.IsKind(err, fault.KindForbidden) {
		t.Fatalf("non-admin list: %v", err)
	}
	p.User.Role = identity.RoleAdmin
	if _, _, err := svc.ListSessions(ctx, p, payment.SessionFilter{Limit: 500}); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("limit 500: %v", err)
	}
}
