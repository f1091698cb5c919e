package stripe_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/gpuaas/gpuaas/adapters/stripe"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/ports"
)

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  stripe.Config
		ok   bool
	}{
		{"valid", stripe.Config{SecretKey: "sk_test_x", WebhookSecrets: []string{"whsec_a"}}, true},
		{"restricted key", stripe.Config{SecretKey: "rk_test_x", WebhookSecrets: []string{"whsec_a"}}, true},
		{"no key", stripe.Config{WebhookSecrets: []string{"whsec_a"}}, false},
		{"publishable key", stripe.Config{SecretKey: "pk_test_x", WebhookSecrets: []string{"whsec_a"}}, false},
		{"no webhook secret", stripe.Config{SecretKey: "sk_test_x"}, false},
		{"empty webhook secret", stripe.Config{SecretKey: "sk_test_x", WebhookSecrets: []string{"whsec_a", " "}}, false},
		{"bad backend", stripe.Config{SecretKey: "sk_test_x", WebhookSecrets: []string{"w"}, BackendURL: "localhost:1"}, false},
		{"negative tolerance", stripe.Config{SecretKey: "sk_test_x", WebhookSecrets: []string{"w"}, Tolerance: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			err := cfg.CheckAndSetDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("CheckAndSetDefaults = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && (strings.Contains(err.Error(), "sk_test_x") || strings.Contains(err.Error(), "whsec_a")) {
				t.Fatalf("error quotes a secret: %v", err)
			}
		})
	}
	s := fmt.Sprint(stripe.Config{SecretKey: "sk_live_canary", WebhookSecrets: []string{"whsec_canary"}})
	if strings.Contains(s, "canary") {
		t.Fatalf("Config.String leaks a secret: %s", s)
	}
}

func checkoutEvent(id, typ, sessionRef, clientRef string, amount int64, currency, paymentStatus string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": "2020-08-27", "created": 1700000000,
		"data": map[string]any{"object": map[string]any{
			"id": sessionRef, "object": "checkout.session", "client_reference_id": clientRef,
			"amount_total": amount, "currency": currency, "payment_status": paymentStatus, "mode": "payment",
		}},
	})
	return b
}

// TestParseWebhook feeds stripe-go's signed test payloads through the
// provider: verification over the raw bytes, rotation, tolerance, and the
// mapping of event types onto what the platform acts on.
func TestParseWebhook(t *testing.T) {
	t.Parallel()
	const oldSecret, newSecret = "whsec_old", "whsec_new"
	p, err := stripe.New(stripe.Config{SecretKey: "sk_test_123", WebhookSecrets: []string{oldSecret, newSecret}})
	if err != nil {
		t.Fatal(err)
	}
	paid := checkoutEvent("evt_1", "checkout.session.completed", "cs_1", "sess-1", 2500, "usd", "paid")
	sign := func(body []byte, secret string, at time.Time) string {
		return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at}).Header
	}
	now := time.Now()
	for _, tc := range []struct {
		name    string
		body    []byte
		header  string
		wantErr bool
		want    ports.WebhookEvent
	}{
		{name: "paid, signed with the new secret", body: paid, header: sign(paid, newSecret, now),
			want: ports.WebhookEvent{ID: "evt_1", Type: "checkout.session.completed", Kind: payment.EventPaid,
				SessionRef: "cs_1", ClientReference: "sess-1", AmountMinor: 2500, Currency: "usd"}},
		{name: "signed with the old secret during rotation", body: paid, header: sign(paid, oldSecret, now),
			want: ports.WebhookEvent{ID: "evt_1", Type: "checkout.session.completed", Kind: payment.EventPaid,
				SessionRef: "cs_1", ClientReference: "sess-1", AmountMinor: 2500, Currency: "usd"}},
		{name: "two signatures, one valid", body: paid,
			header: sign(paid, "whsec_other", now) + ",v1=" + strings.Split(sign(paid, newSecret, now), "v1=")[1],
			want: ports.WebhookEvent{ID: "evt_1", Type: "checkout.session.completed", Kind: payment.EventPaid,
				SessionRef: "cs_1", ClientReference: "sess-1", AmountMinor: 2500, Currency: "usd"}},
		{name: "unpaid completion is ignored", body: checkoutEvent("evt_2", "checkout.session.completed", "cs_2", "s", 100, "usd", "unpaid"),
			header: sign(checkoutEvent("evt_2", "checkout.session.completed", "cs_2", "s", 100, "usd", "unpaid"), newSecret, now),
			want: ports.WebhookEvent{ID: "evt_2", Type: "checkout.session.completed", Kind: payment.EventIgnored,
				SessionRef: "cs_2", ClientReference: "s", AmountMinor: 100, Currency: "usd"}},
		{name: "async success pays", body: checkoutEvent("evt_3", "checkout.session.async_payment_succeeded", "cs_3", "s", 100, "usd", "paid"),
			header: sign(checkoutEvent("evt_3", "checkout.session.async_payment_succeeded", "cs_3", "s", 100, "usd", "paid"), oldSecret, now),
			want: ports.WebhookEvent{ID: "evt_3", Type: "checkout.session.async_payment_succeeded", Kind: payment.EventPaid,
				SessionRef: "cs_3", ClientReference: "s", AmountMinor: 100, Currency: "usd"}},
		{name: "expiry", body: checkoutEvent("evt_4", "checkout.session.expired", "cs_4", "s", 100, "usd", "unpaid"),
			header: sign(checkoutEvent("evt_4", "checkout.session.expired", "cs_4", "s", 100, "usd", "unpaid"), newSecret, now),
			want: ports.WebhookEvent{ID: "evt_4", Type: "checkout.session.expired", Kind: payment.EventExpired,
				SessionRef: "cs_4", ClientReference: "s", AmountMinor: 100, Currency: "usd"}},
		{name: "unknown type is ignored", body: []byte(`{"id":"evt_5","object":"event","type":"customer.created","data":{"object":{}}}`),
			header: sign([]byte(`{"id":"evt_5","object":"event","type":"customer.created","data":{"object":{}}}`), newSecret, now),
			want:   ports.WebhookEvent{ID: "evt_5", Type: "customer.created"}},
		{name: "wrong secret", body: paid, header: sign(paid, "whsec_attacker", now), wantErr: true},
		{name: "mutated body", body: []byte(strings.Replace(string(paid), "2500", "250000", 1)), header: sign(paid, newSecret, now), wantErr: true},
		{name: "stale", body: paid, header: sign(paid, newSecret, now.Add(-301*time.Second)), wantErr: true},
		{name: "28 hours in the future", body: paid, header: sign(paid, newSecret, now.Add(28*time.Hour)), wantErr: true},
		{name: "just past the tolerance ahead", body: paid, header: sign(paid, newSecret, now.Add(310*time.Second)), wantErr: true},
		{name: "a minute ahead (clock skew)", body: paid, header: sign(paid, newSecret, now.Add(time.Minute)),
			want: ports.WebhookEvent{ID: "evt_1", Type: "checkout.session.completed", Kind: payment.EventPaid,
				SessionRef: "cs_1", ClientReference: "sess-1", AmountMinor: 2500, Currency: "usd"}},
		{name: "missing header", body: paid, header: "", wantErr: true},
		{name: "garbage header", body: paid, header: "nonsense", wantErr: true},
		{name: "no v1 signature", body: paid, header: fmt.Sprintf("t=%d,v0=abcd", now.Unix()), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.ParseWebhook(tc.body, tc.header)
			if tc.wantErr {
				if fault.From(err).Code != payment.CodeWebhookSignatureInvalid || fault.KindOf(err) != fault.KindInvalid {
					t.Fatalf("want webhook_signature_invalid, got %v (event %+v)", err, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestSignatureHeaderRoundTrip pins that the exported signer (used by the
// dev provider) produces what the verifier accepts, and only for its secret.
func TestSignatureHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	v, err := stripe.NewVerifier([]string{"whsec_dev"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	body := checkoutEvent("evt_x", "checkout.session.completed", "cs_x", "s", 700, "usd", "paid")
	if _, err := v.Parse(body, stripe.SignatureHeader(body, "whsec_dev", time.Now())); err != nil {
		t.Fatalf("own signature refused: %v", err)
	}
	if _, err := v.Parse(body, stripe.SignatureHeader(body, "whsec_other", time.Now())); err == nil {
		t.Fatal("foreign signature accepted")
	}
	// The stdlib-compatible header equals stripe-go's own.
	at := time.Unix(1700000000, 0)
	want := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: "whsec_dev", Timestamp: at}).Header
	if got := stripe.SignatureHeader(body, "whsec_dev", at); got != want {
		t.Fatalf("header %q, stripe-go makes %q", got, want)
	}
}

// TestAgainstStripeMock creates a customer, a checkout and a portal session
// against stripe-mock, which validates each request against Stripe's
// OpenAPI spec.
func TestAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := stripeMock(t)
	p, err := stripe.New(stripe.Config{SecretKey: "sk_test_123", WebhookSecrets: []string{"whsec_x"}, BackendURL: base})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cus, err := p.EnsureCustomer(ctx, "0190f000-0000-7000-8000-000000000001", "owner@example.com")
	if err != nil || !strings.HasPrefix(cus, "cus_") {
		t.Fatalf("EnsureCustomer = %q, %v", cus, err)
	}
	ref, url, err := p.CreateCheckout(ctx, ports.CheckoutRequest{
		SessionID: "0190f000-0000-7000-8000-0000000000aa", TenantID: "0190f000-0000-7000-8000-000000000001",
		UserID: "0190f000-0000-7000-8000-000000000002", CustomerRef: cus, AmountMinor: 2500, Currency: "usd",
		SuccessURL: "https://console.example.com/billing?paid=1", CancelURL: "https://console.example.com/billing",
	})
	if err != nil {
		t.Fatalf("CreateCheckout: %v", err)
	}
	if !strings.HasPrefix(ref, "cs_") || !strings.HasPrefix(url, "https://") {
		t.Fatalf("checkout ref %q url %q", ref, url)
	}
	portal, err := p.CustomerPortalURL(ctx, cus, "https://console.example.com/billing")
	if err != nil || !strings.HasPrefix(portal, "https://") {
		t.Fatalf("CustomerPortalURL = %q, %v", portal, err)
	}
	// A refund of the checkout's payment: the session is read for its
	// payment intent, which is refunded with the request id as key.
	res, err := p.Refund(ctx, ports.RefundCall{RefundID: "0190f000-0000-7000-8000-0000000000bb", SessionRef: ref,
		AmountMinor: 500, Currency: "usd"})
	if err != nil || !strings.HasPrefix(res.Ref, "re_") || res.Status == "" {
		t.Fatalf("Refund = %+v, %v", res, err)
	}
}

// TestProviderDown maps an unreachable API to 503.
func TestProviderDown(t *testing.T) {
	t.Parallel()
	p, err := stripe.New(stripe.Config{SecretKey: "sk_test_123", WebhookSecrets: []string{"w"}, BackendURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.EnsureCustomer(context.Background(), "t", "")
	if fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("want unavailable, got %v", err)
	}
	if strings.Contains(fault.From(err).Message, "sk_test_123") {
		t.Fatal("message leaks the key")
	}
}

// TestRefundEvents: refund.updated and charge.refunded map to the refund
// kinds with the provider's refund id and the platform's request id.
func TestRefundEvents(t *testing.T) {
	t.Parallel()
	v, err := stripe.NewVerifier([]string{"whsec_refunds"}, stripe.DefaultTolerance)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		typ    string
		object string
		kind   payment.EventKind
		ref    string
	}{
		{"refund.updated", `{"id":"re_1","object":"refund","amount":400,"currency":"usd","status":"succeeded","metadata":{"refund_request_id":"rq1"}}`, payment.EventRefundSucceeded, "re_1"},
		{"refund.updated", `{"id":"re_2","object":"refund","amount":400,"currency":"usd","status":"failed","failure_reason":"lost_or_stolen_card","metadata":{"refund_request_id":"rq1"}}`, payment.EventRefundFailed, "re_2"},
		{"refund.created", `{"id":"re_3","object":"refund","amount":400,"currency":"usd","status":"pending","metadata":{"refund_request_id":"rq1"}}`, payment.EventRefundPending, "re_3"},
		{"charge.refunded", `{"id":"ch_1","object":"charge","refunds":{"object":"list","data":[{"id":"re_4","object":"refund","amount":400,"currency":"usd","status":"succeeded","metadata":{"refund_request_id":"rq1"}}]}}`, payment.EventRefundSucceeded, "re_4"},
		{"charge.refunded", `{"id":"ch_2","object":"charge"}`, payment.EventIgnored, ""},
	} {
		body := []byte(`{"id":"evt_` + c.ref + c.typ + `","object":"event","type":"` + c.typ + `","api_version":"2023-10-16","data":{"object":` + c.object + `}}`)
		ev, err := v.Parse(body, stripe.SignatureHeader(body, "whsec_refunds", time.Now()))
		if err != nil || ev.Kind != c.kind || ev.RefundRef != c.ref || (c.ref != "" && ev.RefundID != "rq1") {
			t.Errorf("%s %s: %+v %v", c.typ, c.ref, ev, err)
		}
	}
}
