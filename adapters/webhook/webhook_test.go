package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/webhook"
	"github.com/gpuaas/gpuaas/ports"
)

func TestSendAndTheSSRFGuard(t *testing.T) {
	t.Parallel()
	var got http.Header
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	ctx := context.Background()
	req := ports.WebhookRequest{URL: srv.URL + "/hook", Body: []byte(`{"a":1}`), Headers: map[string]string{"webhook-id": "e1"}}

	strict, err := webhook.New(webhook.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := strict.Send(ctx, req); !errors.Is(err, webhook.ErrPrivateTarget) || st != 0 || got != nil {
		t.Fatalf("loopback target in production: %d, %v (reached: %v)", st, err, got != nil)
	}
	dev, err := webhook.New(webhook.Config{AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := dev.Send(ctx, req)
	if err != nil || st != http.StatusAccepted || got.Get("webhook-id") != "e1" || body != `{"a":1}` ||
		got.Get("User-Agent") != "gpuaas-webhooks/1" {
		t.Fatalf("dev send: %d, %v, %v, %q", st, err, got, body)
	}
	req.URL = srv.URL + "/redirect"
	if st, err := dev.Send(ctx, req); err != nil || st != http.StatusFound {
		t.Fatalf("a redirect is the answer, not followed: %d, %v", st, err)
	}
}
