package httphost

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/gpuaas/gpuaas/adapters/devpay"
	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/stripe"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// Webhook secrets of the tests: two, as during a rotation.
const (
	whOld = "whsec_test_old_secret"
	whNew = "whsec_test_new_secret"
)

// payServer is one API replica over real Postgres stores with the payment
// use cases wired to provider.
type payServer struct {
	ts *httptest.Server
	db *postgres.DB
}

// newPayServer opens its own pool on url (replicas share the database, not
// the pool) and serves the full host.
func newPayServer(t *testing.T, url string, iss *tokens.Issuer, provider ports.PaymentProvider) payServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Config{URL: url, Migrate: true, MaxConns: 16})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(db.Close)
	verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: iss.URL(), Audience: iss.Audience(),
		StaticKeys: append([]crypto.PublicKey(nil), iss.PublicKeys()...)})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	clock := system.Clock{}
	auditLog := postgres.NewAuditLog(db)
	idsvc, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: auditLog,
		Outbox: outbox, Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	pay, err := paymentsvc.New(paymentsvc.Config{SuccessURL: testOrigin + "/billing?paid=1", CancelURL: testOrigin + "/billing",
		PortalReturnURL: testOrigin + "/billing"}, paymentsvc.Deps{Tx: db, Store: postgres.NewPaymentStore(db),
		Ledger: postgres.NewLedgerStore(db), Provider: provider, Policies: policies, Audit: auditLog, Outbox: outbox,
		Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Addr: "127.0.0.1:0", PublicBaseURL: testOrigin, AllowedRedirectURIs: []string{testRedirect}},
		Deps{Identity: idsvc, Verifier: verifier, IdP: newStubIdP(t, iss), Tokens: inproc.NewTokenStore(clock),
			RateLimiter: inproc.NewRateLimiter(clock), Policies: policies, Audit: auditLog,
			Idempotency: postgres.NewIdempotencyStore(db, clock), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Payments: pay})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.ContractChecked(t))
	t.Cleanup(ts.Close)
	return payServer{ts: ts, db: db}
}

func newStripeProvider(t *testing.T) *stripe.Provider {
	t.Helper()
	// No API call is made by these tests: the key only satisfies the config.
	p, err := stripe.New(stripe.Config{SecretKey: "sk_test_webhook_only", WebhookSecrets: []string{whOld, whNew}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// seedSessions inserts n initiated sessions with provider refs cs_<prefix>_<i>
// across a few tenants and returns their refs and amounts.
func seedSessions(t *testing.T, db *postgres.DB, prefix string, n, tenants int) (refs []string, amounts []int64) {
	t.Helper()
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `
		WITH t AS (
			INSERT INTO tenants (id, name, slug) SELECT gen_random_uuid(), 'tenant', $1 || '-' || g
			FROM generate_series(1, $2) g RETURNING id),
		tn AS (SELECT id, row_number() OVER () AS k FROM t),
		u AS (
			INSERT INTO users (id, oidc_issuer, oidc_subject, email, display_name, role, status)
			SELECT gen_random_uuid(), 'https://iss', $1 || '-' || k, $1 || k || '@example.com', 'u', 'user', 'active'
			FROM tn RETURNING id, oidc_subject),
		un AS (SELECT u.id AS user_id, tn.id AS tenant_id, tn.k FROM u JOIN tn ON u.oidc_subject = $1 || '-' || tn.k)
		INSERT INTO payment_sessions (id, tenant_id, user_id, amount_minor, currency, provider, provider_ref, status, idempotency_key)
		SELECT gen_random_uuid(), un.tenant_id, un.user_id, 500 + (g * 7919) % 100000, 'usd', 'stripe',
			'cs_' || $1 || '_' || g, 'initiated', 'seed-' || g
		FROM generate_series(1, $3) g JOIN un ON un.k = 1 + g % $2`, prefix, tenants, n)
	if err != nil {
		t.Fatalf("seed sessions: %v", err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT provider_ref, amount_minor FROM payment_sessions WHERE provider_ref LIKE $1 ORDER BY provider_ref`,
		"cs_"+prefix+"_%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ref string
		var amt int64
		if err := rows.Scan(&ref, &amt); err != nil {
			t.Fatal(err)
		}
		refs, amounts = append(refs, ref), append(amounts, amt)
	}
	if len(refs) != n {
		t.Fatalf("seeded %d sessions, want %d", len(refs), n)
	}
	return refs, amounts
}

// stripeEvent is a Stripe event body for a checkout session.
func stripeEvent(id, typ, ref string, amount int64, currency, paymentStatus string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": "2023-10-16", "created": time.Now().Unix(),
		"data": map[string]any{"object": map[string]any{"id": ref, "object": "checkout.session", "mode": "payment",
			"amount_total": amount, "currency": currency, "payment_status": paymentStatus}},
	})
	return b
}

// signed returns stripe-go's test signature header for body.
func signed(body []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
}

// postWebhook delivers body with the given Stripe-Signature ("" sends none).
func postWebhook(t *testing.T, c *http.Client, base string, body []byte, sig string) (int, string) {
	t.Helper()
	r, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/api/v1/payments/webhook", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	// Stripe sends JSON with a charset; the host must not care.
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	if sig != "" {
		r.Header.Set("Stripe-Signature", sig)
	}
	resp, err := c.Do(r)
	if err != nil {
		t.Errorf("deliver: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// moneyCounts are the rows a webhook may write.
type moneyCounts struct {
	Events, Credits, CreditSum, Outbox, Audit int64
	Statuses                                  string
}

func countMoney(t *testing.T, db *postgres.DB) moneyCounts {
	t.Helper()
	var c moneyCounts
	err := db.Pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM payment_events),
		(SELECT count(*) FROM ledger_entries WHERE type = 'credit'),
		(SELECT COALESCE(sum(amount_minor), 0)::bigint FROM ledger_entries WHERE type = 'credit'),
		(SELECT count(*) FROM platform_outbox_events WHERE subject LIKE 'payments.%'),
		(SELECT count(*) FROM audit_log WHERE action LIKE 'payment.%'),
		(SELECT COALESCE(string_agg(status || '=' || n, ',' ORDER BY status), '')
			FROM (SELECT status, count(*) n FROM payment_sessions GROUP BY status) s)`).
		Scan(&c.Events, &c.Credits, &c.CreditSum, &c.Outbox, &c.Audit, &c.Statuses)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWebhookExactlyOnceUnderLoad is the money path's "done when": 10,000
// signed events, each delivered 1–5 times in shuffled order by 32 concurrent
// senders through 3 host replicas on one database, credit exactly the
// unique events — by count and by SUM.
func TestWebhookExactlyOnceUnderLoad(t *testing.T) {
	t.Parallel()
	events := 10_000
	if testing.Short() {
		events = 1_000
	}
	url := services.FreshDatabaseURL(t)
	iss := tokens.NewIssuer(t)
	provider := newStripeProvider(t)
	replicas := []payServer{newPayServer(t, url, iss, provider), newPayServer(t, url, iss, provider), newPayServer(t, url, iss, provider)}
	db := replicas[0].db
	refs, amounts := seedSessions(t, db, "load", events, 25)

	rng := rand.New(rand.NewPCG(42, uint64(events)))
	var deliveries []int
	var wantSum int64
	for i := range refs {
		wantSum += amounts[i]
		for n := 1 + rng.IntN(5); n > 0; n-- {
			deliveries = append(deliveries, i)
		}
	}
	rng.Shuffle(len(deliveries), func(a, b int) { deliveries[a], deliveries[b] = deliveries[b], deliveries[a] })
	bodies := make([][]byte, len(refs))
	for i, ref := range refs {
		bodies[i] = stripeEvent(fmt.Sprintf("evt_load_%05d", i), "checkout.session.completed", ref, amounts[i], "usd", "paid")
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 60 * time.Second}
	var next atomic.Int64
	var credited, duplicate, failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(deliveries) {
					return
				}
				i := deliveries[k]
				// Each delivery is signed afresh, as Stripe does on retries;
				// alternate secrets as during a rotation.
				secret := whNew
				if k%2 == 0 {
					secret = whOld
				}
				status, body := postWebhook(t, client, replicas[(w+k)%3].ts.URL, bodies[i], signed(bodies[i], secret, time.Now()))
				switch {
				case status != http.StatusOK:
					if failed.Add(1) < 5 {
						t.Errorf("delivery %d of event %d: %d %s", k, i, status, body)
					}
				case strings.Contains(body, `"outcome":"credited"`):
					credited.Add(1)
				case strings.Contains(body, `"outcome":"duplicate"`):
					duplicate.Add(1)
				default:
					t.Errorf("unexpected outcome: %s", body)
				}
			}
		}(w)
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d deliveries failed", failed.Load())
	}
	if credited.Load() != int64(events) || duplicate.Load() != int64(len(deliveries)-events) {
		t.Fatalf("outcomes: %d credited, %d duplicate; want %d and %d", credited.Load(), duplicate.Load(), events, len(deliveries)-events)
	}
	got := countMoney(t, db)
	want := moneyCounts{Events: int64(events), Credits: int64(events), CreditSum: wantSum, Outbox: int64(events),
		Audit: int64(events), Statuses: fmt.Sprintf("credited=%d", events)}
	if got != want {
		t.Fatalf("after %d deliveries of %d events:\n got %+v\nwant %+v", len(deliveries), events, got, want)
	}
	// Per tenant, the balance is the SUM of its sessions' amounts.
	var mismatched int
	if err := db.Pool.QueryRow(context.Background(), `
		SELECT count(*) FROM (
			SELECT s.tenant_id, sum(s.amount_minor) AS want,
				(SELECT sum(amount_minor) FROM ledger_entries l WHERE l.tenant_id = s.tenant_id) AS got
			FROM payment_sessions s GROUP BY s.tenant_id) x WHERE want IS DISTINCT FROM got`).Scan(&mismatched); err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 {
		t.Fatalf("%d tenants' balances differ from their paid sessions", mismatched)
	}
}

// TestWebhookRefusals: every refused delivery is 400 webhook_signature_invalid
// and writes nothing; both secrets of a rotation are accepted.
func TestWebhookRefusals(t *testing.T) {
	t.Parallel()
	url := services.FreshDatabaseURL(t)
	srv := newPayServer(t, url, tokens.NewIssuer(t), newStripeProvider(t))
	refs, amounts := seedSessions(t, srv.db, "sig", 3, 1)
	c := srv.ts.Client()
	body := stripeEvent("evt_sig_0", "checkout.session.completed", refs[0], amounts[0], "usd", "paid")
	now := time.Now()
	zero := countMoney(t, srv.db)
	for _, tc := range []struct {
		name string
		body []byte
		sig  string
	}{
		{"wrong secret", body, signed(body, "whsec_attacker", now)},
		{"mutated body", []byte(strings.Replace(string(body), fmt.Sprint(amounts[0]), fmt.Sprint(amounts[0]*100), 1)), signed(body, whNew, now)},
		{"stale beyond 300 s", body, signed(body, whNew, now.Add(-301*time.Second))},
		{"missing header", body, ""},
		{"malformed header", body, "t=abc,v1=zz"},
		{"signature of another timestamp", body, strings.Replace(signed(body, whNew, now), fmt.Sprintf("t=%d", now.Unix()), fmt.Sprintf("t=%d", now.Unix()-1), 1)},
	} {
		status, resp := postWebhook(t, c, srv.ts.URL, tc.body, tc.sig)
		if status != http.StatusBadRequest || !strings.Contains(resp, `"code":"webhook_signature_invalid"`) {
			t.Errorf("%s: %d %s", tc.name, status, resp)
		}
		if got := countMoney(t, srv.db); got != zero {
			t.Fatalf("%s wrote to the database: %+v, before %+v", tc.name, got, zero)
		}
	}
	// Rotation: the old and the new secret both verify; and a header
	// carrying two signatures (old and new) verifies once.
	for i, sig := range []string{
		signed(body, whOld, now),
		signed(stripeEvent("evt_sig_1", "checkout.session.completed", refs[1], amounts[1], "usd", "paid"), whNew, now),
	} {
		b := body
		if i == 1 {
			b = stripeEvent("evt_sig_1", "checkout.session.completed", refs[1], amounts[1], "usd", "paid")
		}
		if status, resp := postWebhook(t, c, srv.ts.URL, b, sig); status != http.StatusOK || !strings.Contains(resp, `"credited"`) {
			t.Fatalf("rotation secret %d: %d %s", i, status, resp)
		}
	}
	b2 := stripeEvent("evt_sig_2", "checkout.session.completed", refs[2], amounts[2], "usd", "paid")
	both := signed(b2, whOld, now) + ",v1=" + strings.SplitN(signed(b2, whNew, now), "v1=", 2)[1]
	if status, resp := postWebhook(t, c, srv.ts.URL, b2, both); status != http.StatusOK || !strings.Contains(resp, `"credited"`) {
		t.Fatalf("two signatures: %d %s", status, resp)
	}
	got := countMoney(t, srv.db)
	if got.Credits != 3 || got.CreditSum != amounts[0]+amounts[1]+amounts[2] || got.Events != 3 {
		t.Fatalf("after the accepted deliveries: %+v", got)
	}
}

// TestWebhookOutcomes: mismatch → failed_reconcile without credit; a
// duplicate event credits once; unknown types are ignored without writes;
// a second "paid" event for a credited session changes nothing; an event
// for an unknown session is 404 and is not marked processed.
func TestWebhookOutcomes(t *testing.T) {
	t.Parallel()
	url := services.FreshDatabaseURL(t)
	srv := newPayServer(t, url, tokens.NewIssuer(t), newStripeProvider(t))
	refs, amounts := seedSessions(t, srv.db, "out", 4, 1)
	c := srv.ts.Client()
	deliver := func(body []byte) (int, string) {
		return postWebhook(t, c, srv.ts.URL, body, signed(body, whNew, time.Now()))
	}
	expect := func(step string, status int, resp string, wantStatus int, wantOutcome string) {
		t.Helper()
		if status != wantStatus || !strings.Contains(resp, wantOutcome) {
			t.Fatalf("%s: %d %s (want %d %s)", step, status, resp, wantStatus, wantOutcome)
		}
	}
	ctx := context.Background()
	status := func(ref string) string {
		var s string
		if err := srv.db.Pool.QueryRow(ctx, `SELECT status FROM payment_sessions WHERE provider_ref = $1`, ref).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Unknown type: 200, nothing written.
	before := countMoney(t, srv.db)
	st, resp := deliver([]byte(`{"id":"evt_other","object":"event","type":"invoice.paid","data":{"object":{"id":"in_1"}}}`))
	expect("unknown type", st, resp, 200, `"outcome":"ignored"`)
	if got := countMoney(t, srv.db); got != before {
		t.Fatalf("an ignored event wrote rows: %+v", got)
	}

	// Amount mismatch.
	st, resp = deliver(stripeEvent("evt_mis_amount", "checkout.session.completed", refs[0], amounts[0]-1, "usd", "paid"))
	expect("amount mismatch", st, resp, 200, `"outcome":"reconcile"`)
	// Currency mismatch.
	st, resp = deliver(stripeEvent("evt_mis_cur", "checkout.session.completed", refs[1], amounts[1], "eur", "paid"))
	expect("currency mismatch", st, resp, 200, `"outcome":"reconcile"`)
	if status(refs[0]) != "failed_reconcile" || status(refs[1]) != "failed_reconcile" {
		t.Fatalf("statuses %s %s", status(refs[0]), status(refs[1]))
	}
	var reconcileEvents int
	_ = srv.db.Pool.QueryRow(ctx, `SELECT count(*) FROM platform_outbox_events WHERE subject = 'payments.reconcile_failed'`).Scan(&reconcileEvents)
	if got := countMoney(t, srv.db); got.Credits != 0 || reconcileEvents != 2 {
		t.Fatalf("mismatches credited or did not emit: %+v, %d events", got, reconcileEvents)
	}
	// A correct payment arriving later for a failed_reconcile session does
	// not credit behind the operator's back.
	st, resp = deliver(stripeEvent("evt_late", "checkout.session.completed", refs[0], amounts[0], "usd", "paid"))
	expect("late correct event", st, resp, 200, `"outcome":"no_change"`)

	// Duplicate event id: one credit.
	ok := stripeEvent("evt_dup", "checkout.session.completed", refs[2], amounts[2], "usd", "paid")
	st, resp = deliver(ok)
	expect("first delivery", st, resp, 200, `"outcome":"credited"`)
	st, resp = deliver(ok)
	expect("redelivery", st, resp, 200, `"outcome":"duplicate"`)
	// Another event id that also says paid (async success) changes nothing.
	st, resp = deliver(stripeEvent("evt_async", "checkout.session.async_payment_succeeded", refs[2], amounts[2], "usd", "paid"))
	expect("second paid event", st, resp, 200, `"outcome":"no_change"`)
	got := countMoney(t, srv.db)
	if got.Credits != 1 || got.CreditSum != amounts[2] {
		t.Fatalf("credits %+v, want one of %d", got, amounts[2])
	}
	var credited int
	_ = srv.db.Pool.QueryRow(ctx, `SELECT count(*) FROM platform_outbox_events WHERE subject = 'payments.balance_credited'`).Scan(&credited)
	if credited != 1 {
		t.Fatalf("%d balance_credited events, want 1", credited)
	}

	// Unpaid completion (delayed method) is ignored; then expiry.
	st, resp = deliver(stripeEvent("evt_unpaid", "checkout.session.completed", refs[3], amounts[3], "usd", "unpaid"))
	expect("unpaid completion", st, resp, 200, `"outcome":"ignored"`)
	st, resp = deliver(stripeEvent("evt_exp", "checkout.session.expired", refs[3], amounts[3], "usd", "unpaid"))
	expect("expiry", st, resp, 200, `"outcome":"expired"`)
	if status(refs[3]) != "expired" {
		t.Fatalf("status %s", status(refs[3]))
	}

	// Unknown session: 404, and the event stays unprocessed for a retry.
	before = countMoney(t, srv.db)
	st, resp = deliver(stripeEvent("evt_ghost", "checkout.session.completed", "cs_ghost", 1000, "usd", "paid"))
	expect("unknown session", st, resp, 404, `unknown_payment_session`)
	if got := countMoney(t, srv.db); got != before {
		t.Fatalf("an unknown session's event wrote rows: %+v", got)
	}
}

// TestCheckoutAndDevPay drives the whole top-up through the API with the
// dev provider: input refusals, checkout, the local page, Pay (a signed
// webhook to the same endpoint), the credit, and the admin list.
func TestCheckoutAndDevPay(t *testing.T) {
	t.Parallel()
	url := services.FreshDatabaseURL(t)
	iss := tokens.NewIssuer(t)
	// The dev provider needs the server's URL before the server exists.
	var h http.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	dev, err := devpay.New(devpay.Config{PublicBaseURL: front.URL, HTTPClient: front.Client()})
	if err != nil {
		t.Fatal(err)
	}
	srv := newPayServer(t, url, iss, dev)
	mux := http.NewServeMux()
	mux.Handle(devpay.DefaultMountPath, dev.Handler(nil))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Forward to the replica's own handler chain.
		srv.ts.Config.Handler.ServeHTTP(w, r)
	}))
	h = mux

	user := iss.Mint(t, tokens.Subject("payer"), tokens.Email("payer@example.com"), tokens.Name("Payer"))
	admin := iss.Mint(t, tokens.Subject("operator"), tokens.Email("op@example.com"), tokens.Name("Op"), tokens.Roles("admin"))
	call := func(method, path, bearer, body string, hdr ...string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		r, _ := http.NewRequestWithContext(context.Background(), method, front.URL+path, rd)
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		cl := *front.Client()
		cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := cl.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, tc := range []struct {
		name, body, key string
		status          int
		code            string
	}{
		{"no idempotency key", `{"amount_minor":2500,"currency":"usd"}`, "", 400, "idempotency_key_required"},
		{"below minimum", `{"amount_minor":499,"currency":"usd"}`, "k-low", 422, "amount_out_of_range"},
		{"above maximum", `{"amount_minor":1000001,"currency":"usd"}`, "k-high", 422, "amount_out_of_range"},
		{"wrong currency", `{"amount_minor":2500,"currency":"eur"}`, "k-eur", 422, "currency_not_supported"},
		{"float amount", `{"amount_minor":25.5,"currency":"usd"}`, "k-float", 400, "validation_failed"},
		{"unknown field", `{"amount_minor":2500,"currency":"usd","tip":1}`, "k-field", 400, "validation_failed"},
	} {
		hdr := []string{}
		if tc.key != "" {
			hdr = []string{"X-Idempotency-Key", tc.key}
		}
		st, resp := call("POST", "/api/v1/payments/checkout-session", user, tc.body, hdr...)
		if st != tc.status || !strings.Contains(resp, `"code":"`+tc.code+`"`) {
			t.Errorf("%s: %d %s", tc.name, st, resp)
		}
	}
	if st, _ := call("POST", "/api/v1/payments/checkout-session", "", `{"amount_minor":2500,"currency":"usd"}`, "X-Idempotency-Key", "k"); st != 401 {
		t.Fatalf("anonymous checkout: %d", st)
	}

	st, resp := call("POST", "/api/v1/payments/checkout-session", user, `{"amount_minor":2500,"currency":"USD"}`, "X-Idempotency-Key", "topup-1")
	if st != http.StatusCreated {
		t.Fatalf("checkout: %d %s", st, resp)
	}
	var co struct {
		SessionID   string `json:"session_id"`
		CheckoutURL string `json:"checkout_url"`
		Status      string `json:"status"`
		AmountMinor int64  `json:"amount_minor"`
	}
	_ = json.Unmarshal([]byte(resp), &co)
	if co.Status != "initiated" || co.AmountMinor != 2500 || !strings.HasPrefix(co.CheckoutURL, front.URL+"/dev-pay/checkout/") {
		t.Fatalf("checkout %+v", co)
	}
	// The same key again is the same session (replayed by the host).
	if _, again := call("POST", "/api/v1/payments/checkout-session", user, `{"amount_minor":2500,"currency":"USD"}`, "X-Idempotency-Key", "topup-1"); !strings.Contains(again, co.SessionID) {
		t.Fatalf("retry made another session: %s", again)
	}

	page, err := front.Client().Get(co.CheckoutURL)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(html), "25.00 USD") || !strings.Contains(string(html), `id="pay"`) {
		t.Fatalf("checkout page: %s", html)
	}
	// Press Pay: the dev provider signs a webhook to /api/v1/payments/webhook.
	ref := co.CheckoutURL[strings.LastIndex(co.CheckoutURL, "/")+1:]
	st, _ = call("POST", "/dev-pay/checkout/"+ref+"/pay", "", "")
	if st != http.StatusSeeOther {
		t.Fatalf("pay: %d", st)
	}
	// Paying again redelivers the same event: still one credit.
	if _, err := dev.Pay(context.Background(), ref); err != nil {
		t.Fatalf("second pay: %v", err)
	}
	got := countMoney(t, srv.db)
	if got.Credits != 1 || got.CreditSum != 2500 || got.Statuses != "credited=1" {
		t.Fatalf("after paying: %+v", got)
	}

	// Admin list by status; non-admins are refused.
	if st, _ := call("GET", "/api/v1/admin/payments/sessions?status=credited", user, ""); st != http.StatusForbidden {
		t.Fatalf("user on admin list: %d", st)
	}
	st, resp = call("GET", "/api/v1/admin/payments/sessions?status=credited", admin, "")
	if st != 200 || !strings.Contains(resp, co.SessionID) || !strings.Contains(resp, `"provider":"devpay"`) {
		t.Fatalf("admin list: %d %s", st, resp)
	}
	// It names the ledger credit the payment posted (what a refund names).
	var creditID string
	if err := srv.db.Pool.QueryRow(context.Background(), `SELECT id::text FROM ledger_entries WHERE type = 'credit' AND reference = $1`,
		co.SessionID).Scan(&creditID); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp, `"credit_entry_id":"`+creditID+`"`) {
		t.Fatalf("admin list without the credit %s: %s", creditID, resp)
	}
	if st, resp := call("GET", "/api/v1/admin/payments/sessions?status=initiated", admin, ""); st != 200 || strings.Contains(resp, co.SessionID) {
		t.Fatalf("initiated filter: %d %s", st, resp)
	}
	if st, _ := call("GET", "/api/v1/admin/payments/sessions?status=paid", admin, ""); st != 400 {
		t.Fatalf("unknown status filter: %d", st)
	}

	// The payer owns their tenant, so they may open the portal.
	st, resp = call("POST", "/api/v1/payments/customer-portal-session", user, "")
	if st != 200 || !strings.Contains(resp, front.URL+"/dev-pay/portal/") {
		t.Fatalf("portal: %d %s", st, resp)
	}
}

// flakyProvider fails its first checkout as an unreachable provider does.
type flakyProvider struct {
	ports.PaymentProvider
	failed atomic.Bool
}

func (f *flakyProvider) CreateCheckout(ctx context.Context, r ports.CheckoutRequest) (string, string, error) {
	if f.failed.CompareAndSwap(false, true) {
		return "", "", errors.New("dial tcp: connection refused")
	}
	return f.PaymentProvider.CreateCheckout(ctx, r)
}

// A checkout whose provider call failed after its session committed is
// resumed by a retry with the same key (the use case dedupes on the key:
// x-idempotency: use-case), not held back as a request that committed.
func TestCheckoutRetryAfterProviderFailureResumes(t *testing.T) {
	t.Parallel()
	url := services.FreshDatabaseURL(t)
	iss := tokens.NewIssuer(t)
	dev, err := devpay.New(devpay.Config{PublicBaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := newPayServer(t, url, iss, &flakyProvider{PaymentProvider: dev})
	user := iss.Mint(t, tokens.Subject("retrier"), tokens.Email("retrier@example.com"), tokens.Name("R"))
	post := func() (int, string) {
		r, _ := http.NewRequest("POST", srv.ts.URL+"/api/v1/payments/checkout-session", strings.NewReader(`{"amount_minor":2500,"currency":"usd"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+user)
		r.Header.Set("X-Idempotency-Key", "topup-flaky")
		resp, err := srv.ts.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := post(); st != http.StatusServiceUnavailable {
		t.Fatalf("checkout with the provider down: %d %s, want 503", st, body)
	}
	st, body := post()
	if st != http.StatusCreated || !strings.Contains(body, `"checkout_url"`) {
		t.Fatalf("retry with the same key: %d %s, want the checkout (201)", st, body)
	}
	var n int
	if err := srv.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM payment_sessions`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d payment sessions, %v; want 1", n, err)
	}
}
