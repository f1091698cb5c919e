package paymentsvc_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/adapters/devpay"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/stripe"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
)

const refundSecret = "whsec_refund_test"

// scripted is the dev provider with a refund call the test scripts: its
// answer, and optionally a webhook it delivers before answering (the
// provider's confirmation overtaking its API response).
type scripted struct {
	*devpay.Provider
	mu      sync.Mutex
	answer  payment.RefundStatus
	refuse  bool
	calls   int
	before  func(call ports.RefundCall, ref string)
	lastRef string
}

func (s *scripted) Refund(_ context.Context, r ports.RefundCall) (ports.RefundResult, error) {
	s.mu.Lock()
	s.calls++
	answer, refuse, before := s.answer, s.refuse, s.before
	s.mu.Unlock()
	if refuse {
		return ports.RefundResult{}, &fault.Error{Kind: fault.KindUnprocessable, Code: "payment_provider_refused", Message: "charge already refunded"}
	}
	ref := "re_" + r.RefundID
	s.mu.Lock()
	s.lastRef = ref
	s.mu.Unlock()
	if before != nil {
		before(r, ref)
	}
	return ports.RefundResult{Ref: ref, Status: answer}, nil
}

// signed builds a Stripe-signed event.
func signed(t *testing.T, id, typ string, object map[string]any) ([]byte, string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": "dev",
		"created": time.Now().Unix(), "data": map[string]any{"object": object}})
	if err != nil {
		t.Fatal(err)
	}
	return body, stripe.SignatureHeader(body, refundSecret, time.Now())
}

type refundEnv struct {
	svc    *paymentsvc.Service
	prov   *scripted
	db     *postgres.DB
	op     identity.Principal
	tenant string
	credit string
}

// newRefundEnv makes a tenant whose 10.00 USD top-up was paid (through the
// webhook) and credited.
func newRefundEnv(t *testing.T) *refundEnv {
	t.Helper()
	db := services.Postgres(t)
	ctx := context.Background()
	dev, err := devpay.New(devpay.Config{PublicBaseURL: "http://127.0.0.1:1", WebhookSecret: refundSecret})
	if err != nil {
		t.Fatal(err)
	}
	prov := &scripted{Provider: dev, answer: payment.RefundSubmitted}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(outbox.Close)
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := paymentsvc.New(cfg, paymentsvc.Deps{Tx: db, Store: postgres.NewPaymentStore(db), Ledger: postgres.NewLedgerStore(db),
		Provider: prov, Policies: policies, Audit: postgres.NewAuditLog(db), Outbox: outbox, Clock: system.Clock{}, IDs: system.UUIDs{},
		Refunds: postgres.NewRefundStore(db), Credits: postgres.NewLedgerStore(db)})
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
	p := identity.Principal{User: u, TenantID: tenant, TenantRole: identity.TenantOwner}
	c, err := svc.CreateCheckout(ctx, p, 1000, "usd", "topup")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := postgres.NewPaymentStore(db).GetSession(ctx, c.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	body, sig := signed(t, "evt_paid_"+tenant[:8], "checkout.session.completed", map[string]any{"id": sess.ProviderRef,
		"object": "checkout.session", "client_reference_id": sess.ID, "amount_total": 1000, "currency": "usd", "payment_status": "paid"})
	if out, err := svc.HandleWebhook(ctx, body, sig); err != nil || out != paymentsvc.OutcomeCredited {
		t.Fatalf("paid: %v %v", out, err)
	}
	var credit string
	if err := db.Pool.QueryRow(ctx, `SELECT id FROM ledger_entries WHERE tenant_id = $1 AND type = 'credit'`, tenant).Scan(&credit); err != nil {
		t.Fatal(err)
	}
	op := identity.Principal{User: identity.User{ID: uuid.NewString(), Role: identity.RoleAdmin}}
	return &refundEnv{svc: svc, prov: prov, db: db, op: op, tenant: tenant, credit: credit}
}

func (e *refundEnv) refunds(t *testing.T) (n int, sum int64) {
	t.Helper()
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*), COALESCE(-SUM(amount_minor), 0) FROM ledger_entries
		WHERE tenant_id = $1 AND type = 'refund'`, e.tenant).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	return n, sum
}

func (e *refundEnv) refundEvent(t *testing.T, id, ref, refundID, status string) ([]byte, string) {
	return signed(t, id, "refund.updated", map[string]any{"id": ref, "object": "refund", "amount": 400, "currency": "usd",
		"status": status, "metadata": map[string]string{"refund_request_id": refundID}})
}

// The API answers first (submitted), the webhook confirms: one ledger
// refund; the webhook again (redelivered, and as charge.refunded's twin)
// changes nothing.
func TestRefundSettledByTheWebhookOnce(t *testing.T) {
	t.Parallel()
	e := newRefundEnv(t)
	ctx := context.Background()
	r, err := e.svc.RequestRefund(ctx, e.op, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 400,
		Reason: "customer asked", IdempotencyKey: "k1"})
	if err != nil || r.Status != payment.RefundSubmitted || r.ProviderRef == "" {
		t.Fatalf("request: %+v %v", r, err)
	}
	if n, _ := e.refunds(t); n != 0 {
		t.Fatal("a submitted refund posted to the ledger before the provider confirmed it")
	}
	body, sig := e.refundEvent(t, "evt_r1", r.ProviderRef, r.ID, "succeeded")
	if out, err := e.svc.HandleWebhook(ctx, body, sig); err != nil || out != paymentsvc.OutcomeRefunded {
		t.Fatalf("webhook: %v %v", out, err)
	}
	body, sig = e.refundEvent(t, "evt_r1_again", r.ProviderRef, r.ID, "succeeded")
	if out, err := e.svc.HandleWebhook(ctx, body, sig); err != nil || out != paymentsvc.OutcomeNoChange {
		t.Fatalf("second confirmation: %v %v", out, err)
	}
	if n, sum := e.refunds(t); n != 1 || sum != 400 {
		t.Fatalf("%d ledger refunds of %d; want one of 400", n, sum)
	}
	// The operator's retry with the same key returns the settled request
	// without asking the provider again.
	calls := e.prov.calls
	again, err := e.svc.RequestRefund(ctx, e.op, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 400,
		Reason: "customer asked", IdempotencyKey: "k1"})
	if err != nil || again.ID != r.ID || again.Status != payment.RefundSucceeded || e.prov.calls != calls {
		t.Fatalf("retry: %+v %v (calls %d→%d)", again, err, calls, e.prov.calls)
	}
	if _, err := e.svc.RequestRefund(ctx, e.op, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 300,
		Reason: "customer asked", IdempotencyKey: "k1"}); fault.From(err).Code != fault.CodeIdempotencyKeyReused {
		t.Fatalf("key reused for another amount: %v", err)
	}
	// 600 left of the credit: 700 is too much.
	if _, err := e.svc.RequestRefund(ctx, e.op, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 700,
		Reason: "more", IdempotencyKey: "k2"}); fault.From(err).Code != paymentsvc.CodeRefundExceedsCredit {
		t.Fatalf("over the credit: %v", err)
	}
}

// The webhook overtakes the API answer: the provider confirms (and the
// platform settles) before Refund returns "submitted"; the late answer
// changes nothing. Then a succeeded API answer settles directly.
func TestRefundWebhookBeforeTheAnswer(t *testing.T) {
	t.Parallel()
	e := newRefundEnv(t)
	ctx := context.Background()
	e.prov.before = func(call ports.RefundCall, ref string) {
		body, sig := e.refundEvent(t, "evt_early_"+call.RefundID, ref, call.RefundID, "succeeded")
		if out, err := e.svc.HandleWebhook(ctx, body, sig); err != nil || out != paymentsvc.OutcomeRefunded {
			t.Errorf("early webhook: %v %v", out, err)
		}
	}
	r, err := e.svc.RequestRefund(ctx, e.op, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 400,
		Reason: "r", IdempotencyKey: "k1"})
	if err != nil || r.Status != payment.RefundSucceeded {
		t.Fatalf("request: %+v %v", r, err)
	}
	e.prov.before, e.prov.answer = nil, payment.RefundSucceeded
	r2, err := e.svc.RequestRefund(ctx, e.op, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 100,
		Reason: "r", IdempotencyKey: "k2"})
	if err != nil || r2.Status != payment.RefundSucceeded {
		t.Fatalf("synchronous success: %+v %v", r2, err)
	}
	if n, sum := e.refunds(t); n != 2 || sum != 500 {
		t.Fatalf("%d ledger refunds of %d; want 2 of 500 in all", n, sum)
	}
}

// A refusal fails the request without touching the ledger and frees the
// amount; the window and the operator check hold.
func TestRefundRefusedWindowAndRights(t *testing.T) {
	t.Parallel()
	e := newRefundEnv(t)
	ctx := context.Background()
	e.prov.refuse = true
	r, err := e.svc.RequestRefund(ctx, e.op, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 1000,
		Reason: "r", IdempotencyKey: "k1"})
	if fault.KindOf(err) != fault.KindUnprocessable || r.Status != payment.RefundFailed {
		t.Fatalf("refused: %+v %v", r, err)
	}
	e.prov.refuse = false
	if r, err := e.svc.RequestRefund(ctx, e.op, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 1000,
		Reason: "r", IdempotencyKey: "k2"}); err != nil || r.Status != payment.RefundSubmitted {
		t.Fatalf("after a failed one the whole credit is refundable again: %+v %v", r, err)
	}
	if n, _ := e.refunds(t); n != 0 {
		t.Fatal("a failed or submitted refund posted")
	}
	user := identity.Principal{User: identity.User{ID: uuid.NewString(), Role: identity.RoleUser}, TenantID: e.tenant}
	if _, err := e.svc.RequestRefund(ctx, user, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 1,
		Reason: "r", IdempotencyKey: "k3"}); !fault.IsKind(err, fault.KindForbidden) {
		t.Fatalf("a user refunded: %v", err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO policies (scope, key, value) VALUES ($1, 'billing.refund_window_days', '0')`, e.tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestRefund(ctx, e.op, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 1,
		Reason: "r", IdempotencyKey: "k4"}); fault.From(err).Code != paymentsvc.CodeRefundWindowExceeded {
		t.Fatalf("outside the window: %v", err)
	}
}

// A provider refund in flight holds its part of the credit: until it
// settles (and posts its ledger refund) a refund through the ledger cannot
// take the same money, and the credit's committed refunds count it.
func TestLedgerRefundWaitsForProviderRefundInFlight(t *testing.T) {
	t.Parallel()
	e := newRefundEnv(t)
	ctx := context.Background()
	r, err := e.svc.RequestRefund(ctx, e.op, paymentsvc.RefundInput{TenantID: e.tenant, CreditEntryID: e.credit, AmountMinor: 400,
		Reason: "customer asked", IdempotencyKey: "p1"})
	if err != nil || r.Status != payment.RefundSubmitted {
		t.Fatalf("provider refund: %+v %v", r, err)
	}
	store := postgres.NewLedgerStore(e.db)
	if got, err := store.CommittedRefunds(ctx, e.tenant, []string{e.credit}); err != nil || got[e.credit] != 400 {
		t.Fatalf("committed with 400 in flight: %v %v", got, err)
	}
	policies, err := postgres.NewPolicyStore(e.db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lsvc, err := ledgersvc.New(ledgersvc.Deps{Tx: e.db, Ledger: store, Entries: store, Usage: postgres.NewUsageStore(e.db),
		Policies: policies, Audit: postgres.NewAuditLog(e.db), Clock: system.Clock{}, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	refund := func(amount int64, key string) error {
		_, err := lsvc.AdminRefund(ctx, e.op, ledgersvc.AdminRefundRequest{TenantID: e.tenant, CreditEntryID: e.credit,
			AmountMinor: amount, Reason: "through the ledger", IdempotencyKey: key})
		return err
	}
	if err := refund(1000, "l1"); fault.From(err).Code != ledgersvc.CodeRefundExceedsCredit ||
		fault.From(err).Details["refundable_minor"] != int64(600) {
		t.Fatalf("ledger refund of the whole credit with 400 in flight: %v", err)
	}
	if err := refund(600, "l2"); err != nil {
		t.Fatalf("ledger refund of what is left: %v", err)
	}
	// The provider's refund settles: the credit is refunded exactly once.
	body, sig := e.refundEvent(t, "evt_inflight", r.ProviderRef, r.ID, "succeeded")
	if out, err := e.svc.HandleWebhook(ctx, body, sig); err != nil || out != paymentsvc.OutcomeRefunded {
		t.Fatalf("webhook: %v %v", out, err)
	}
	if n, sum := e.refunds(t); n != 2 || sum != 1000 {
		t.Fatalf("%d ledger refunds of %d; want two of 1000 together", n, sum)
	}
	if got, err := store.CommittedRefunds(ctx, e.tenant, []string{e.credit, "not-an-id"}); err != nil || len(got) != 1 || got[e.credit] != 1000 {
		t.Fatalf("committed after settling: %v %v", got, err)
	}
}
