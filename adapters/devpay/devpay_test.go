package devpay_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/devpay"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/ports"
)

// platform stands in for the API's webhook route: it verifies each delivery
// with the provider's own ParseWebhook, as the real route does.
type platform struct {
	mu     sync.Mutex
	p      *devpay.Provider
	events []ports.WebhookEvent
	fail   bool
}

func (pl *platform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	ev, err := pl.p.ParseWebhook(body, r.Header.Get("Stripe-Signature"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pl.events = append(pl.events, ev)
}

func TestDevCheckoutPay(t *testing.T) {
	t.Parallel()
	pl := &platform{}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/payments/webhook", pl)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, err := devpay.New(devpay.Config{PublicBaseURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	pl.p = p
	mux.Handle(devpay.DefaultMountPath, p.Handler(nil))
	ctx := context.Background()

	req := ports.CheckoutRequest{SessionID: "sess-1", TenantID: "t1", AmountMinor: 1999, Currency: "usd",
		SuccessURL: "https://console.example.com/ok", CancelURL: "https://console.example.com/cancel"}
	ref, url, err := p.CreateCheckout(ctx, req)
	if err != nil || !strings.HasPrefix(url, srv.URL+"/dev-pay/checkout/") {
		t.Fatalf("checkout %q %q %v", ref, url, err)
	}
	// A retried create returns the same checkout.
	if ref2, _, _ := p.CreateCheckout(ctx, req); ref2 != ref {
		t.Fatalf("retry made another checkout: %s vs %s", ref2, ref)
	}
	resp, err := srv.Client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "19.99 USD") || !strings.Contains(string(page), "/dev-pay/checkout/"+ref+"/pay") {
		t.Fatalf("page: %s", page)
	}

	client := *srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = client.Post(srv.URL+"/dev-pay/checkout/"+ref+"/pay", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != req.SuccessURL {
		t.Fatalf("pay: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(pl.events) != 1 {
		t.Fatalf("%d deliveries", len(pl.events))
	}
	want := ports.WebhookEvent{ID: "evt_" + ref, Type: "checkout.session.completed", Kind: payment.EventPaid,
		SessionRef: ref, ClientReference: "sess-1", AmountMinor: 1999, Currency: "usd"}
	if pl.events[0] != want {
		t.Fatalf("delivered %+v\nwant %+v", pl.events[0], want)
	}
	// Pay again: the same event id (the platform dedupes it).
	if _, err := p.Pay(ctx, ref); err != nil || pl.events[1].ID != want.ID {
		t.Fatalf("second pay: %v", err)
	}
	if _, err := p.Pay(ctx, "devcs_unknown"); !errors.Is(err, devpay.ErrUnknownCheckout) {
		t.Fatalf("unknown ref: %v", err)
	}
	resp, _ = srv.Client().Get(srv.URL + "/dev-pay/checkout/devcs_unknown")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown page: %d", resp.StatusCode)
	}

	// A platform that refuses the webhook makes Pay fail and the page 502.
	pl.mu.Lock()
	pl.fail = true
	pl.mu.Unlock()
	if _, err := p.Pay(ctx, ref); err == nil {
		t.Fatal("Pay succeeded although the webhook failed")
	}
	resp, _ = client.Post(srv.URL+"/dev-pay/checkout/"+ref+"/pay", "", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("pay with the platform down: %d", resp.StatusCode)
	}

	// Another provider's secret does not verify here.
	other, _ := devpay.New(devpay.Config{PublicBaseURL: srv.URL})
	if _, err := other.ParseWebhook([]byte(`{}`), "t=1,v1=00"); err == nil {
		t.Fatal("garbage signature accepted")
	}

	portal, err := p.CustomerPortalURL(ctx, "devcus_t1", "https://console.example.com/billing")
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = srv.Client().Get(portal)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "https://console.example.com/billing") {
		t.Fatalf("portal page: %s", body)
	}
}

func TestDevConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []devpay.Config{
		{},
		{PublicBaseURL: "localhost:8080"},
		{PublicBaseURL: "http://127.0.0.1:8080", MountPath: "dev-pay"},
		{PublicBaseURL: "http://127.0.0.1:8080", WebhookURL: "/relative"},
	} {
		if _, err := devpay.New(cfg); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
	if _, _, err := mustNew(t).CreateCheckout(context.Background(), ports.CheckoutRequest{SessionID: "s", AmountMinor: 0,
		Currency: "usd", SuccessURL: "https://a", CancelURL: "https://a"}); err == nil {
		t.Error("zero amount accepted")
	}
}

func mustNew(t *testing.T) *devpay.Provider {
	p, err := devpay.New(devpay.Config{PublicBaseURL: "http://127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
