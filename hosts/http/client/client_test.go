package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// sleeps records the waits between attempts instead of waiting.
type sleeps struct{ d []time.Duration }

func (s *sleeps) sleep(_ context.Context, d time.Duration) error { s.d = append(s.d, d); return nil }

func newClient(t *testing.T, url string, opts ...client.Option) (*client.Client, *sleeps) {
	t.Helper()
	s := &sleeps{}
	c, err := client.New(url, append([]client.Option{client.WithProject(fakeProject)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	client.SetSleep(c, s.sleep)
	return c, s
}

// TestRetriesKeepTheIdempotencyKey: a create answered 429 twice is retried
// after the server's Retry-After, with the same idempotency key and body,
// and makes one allocation.
func TestRetriesKeepTheIdempotencyKey(t *testing.T) {
	t.Parallel()
	api := newFakeAPI()
	defer api.Close()
	c, s := newClient(t, api.URL, client.WithAPIKey(fakeKey))
	api.busy = 2
	a, err := c.CreateAllocation(context.Background(), client.CreateAllocation{SkuId: "h100-80g-x1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(api.allocations) != 1 || a.SkuId != "h100-80g-x1" {
		t.Fatalf("%d allocations, %+v", len(api.allocations), a)
	}
	if len(api.requests) != 3 || len(s.d) != 2 || s.d[0] != time.Second || s.d[1] != time.Second {
		t.Fatalf("requests %+v, waits %v", api.requests, s.d)
	}
	key := api.requests[0].key
	for _, r := range api.requests {
		if r.key != key || len(key) != 32 || r.project != fakeProject || r.auth != "Bearer "+fakeKey {
			t.Fatalf("request %+v (first key %q)", r, key)
		}
	}
	// A second call is a new operation with a new key; reads carry none.
	if _, err := c.CreateAllocation(context.Background(), client.CreateAllocation{SkuId: "h100-80g-x1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SKUs(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := len(api.requests)
	if api.requests[n-2].key == key || api.requests[n-1].key != "" {
		t.Fatalf("keys: %+v", api.requests[n-2:])
	}
}

// TestRetryGivesUp: after MaxAttempts the last answer is the error, with
// its code and Retry-After; 503 without Retry-After backs off with jitter
// around a doubling delay.
func TestRetryGivesUp(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"service_unavailable","message":"down","correlation_id":"c-9"}}`))
	}))
	defer srv.Close()
	c, s := newClient(t, srv.URL, client.WithAPIKey(fakeKey), client.WithRetry(client.RetryPolicy{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond}))
	_, err := c.SKUs(context.Background())
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 503 || e.Code != client.CodeUnavailable || e.CorrelationID != "c-9" {
		t.Fatalf("err %v", err)
	}
	if n.Load() != 3 || len(s.d) != 2 {
		t.Fatalf("%d requests, waits %v", n.Load(), s.d)
	}
	for i, d := range s.d {
		base := 100 * time.Millisecond << i
		if d < base/2 || d > base {
			t.Fatalf("wait %d = %s, want within [%s, %s]", i, d, base/2, base)
		}
	}
}

// TestNetworkErrorsRetryOnlyWhatIsSafe: a read whose connection dies is
// retried; so is a mutation (its idempotency key makes it safe).
func TestNetworkErrorsRetryOnlyWhatIsSafe(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			_ = conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"skus":[]}`))
	}))
	defer srv.Close()
	c, s := newClient(t, srv.URL, client.WithAPIKey(fakeKey))
	if _, err := c.SKUs(context.Background()); err != nil || n.Load() != 2 || len(s.d) != 1 {
		t.Fatalf("err %v after %d requests, waits %v", err, n.Load(), s.d)
	}
}

// TestTypedErrors: the error body's code, message, field, details and
// correlation id come back as *Error.
func TestTypedErrors(t *testing.T) {
	t.Parallel()
	api := newFakeAPI()
	defer api.Close()
	c, _ := newClient(t, api.URL, client.WithAPIKey(fakeKey))
	_, err := c.Balance(context.Background())
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 402 || e.Code != client.CodeInsufficientBalance || e.Details["balance_minor"] != float64(0) ||
		e.CorrelationID != "c-2" || client.ErrorCode(err) != "insufficient_balance" || !strings.Contains(err.Error(), "402") {
		t.Fatalf("err %#v", err)
	}
	bad, _ := newClient(t, api.URL, client.WithAPIKey("gpa_wrong"))
	if _, err := bad.SKUs(context.Background()); client.ErrorCode(err) != client.CodeTokenInvalid {
		t.Fatalf("wrong key: %v", err)
	}
	if client.ErrorCode(errors.New("plain")) != "" {
		t.Fatal("a plain error has a code")
	}
	if _, err := client.New("ftp://x"); err == nil {
		t.Fatal("a non-http URL was accepted")
	}
	if _, err := client.New(api.URL, client.WithAPIKey("not-a-key")); err == nil {
		t.Fatal("a non-key was accepted as an API key")
	}
}

// TestIteratorStopsWhenAsked: breaking out of the loop fetches no further
// page.
func TestIteratorStopsWhenAsked(t *testing.T) {
	t.Parallel()
	api := newFakeAPI()
	defer api.Close()
	c, _ := newClient(t, api.URL, client.WithAPIKey(fakeKey))
	for range 5 {
		if _, err := c.CreateAllocation(context.Background(), client.CreateAllocation{SkuId: "h100-80g-x1"}); err != nil {
			t.Fatal(err)
		}
	}
	before := len(api.requests)
	seen := 0
	for _, err := range c.Allocations(context.Background(), client.ListAllocations{}) {
		if err != nil {
			t.Fatal(err)
		}
		if seen++; seen == 2 {
			break
		}
	}
	if got := len(api.requests) - before; got != 1 {
		t.Fatalf("%d pages fetched for 2 items", got)
	}
	all := 0
	for _, err := range c.Allocations(context.Background(), client.ListAllocations{}) {
		if err != nil {
			t.Fatal(err)
		}
		all++
	}
	if all != 5 {
		t.Fatalf("iterated %d of 5", all)
	}
}

// TestServiceAccountTokens: one token serves many requests; a 401 fetches
// a new one once; a wrong secret is invalid_client.
func TestServiceAccountTokens(t *testing.T) {
	t.Parallel()
	api := newFakeAPI()
	defer api.Close()
	c, _ := newClient(t, api.URL, client.WithServiceAccount(fakeClient, fakeSecret))
	ctx := context.Background()
	for range 3 {
		if _, err := c.SKUs(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if api.tokens != 1 {
		t.Fatalf("%d tokens for 3 requests", api.tokens)
	}
	for _, r := range api.requests {
		if r.path == "/api/v1/auth/service-token" && (r.auth != "" || r.project != "") {
			t.Fatalf("the token request carried credentials or a project: %+v", r)
		}
	}
	// The server forgets the token: the client asks for a new one and retries.
	api.mu.Lock()
	api.tokens = 100 // tokens issued from now on are sa-token-101…; the old one still passes the fake, so revoke it:
	api.mu.Unlock()
	client.InvalidateToken(c)
	if _, err := c.SKUs(ctx); err != nil || api.tokens != 101 {
		t.Fatalf("after invalidation: %v, tokens %d", err, api.tokens)
	}
	bad, _ := newClient(t, api.URL, client.WithServiceAccount(fakeClient, "gps_wrong"))
	if _, err := bad.SKUs(ctx); client.ErrorCode(err) != client.CodeInvalidClient {
		t.Fatalf("wrong secret: %v", err)
	}
}

// TestWaitPollsSoonThenBacksOff: a node is often ready in well under a
// second, so the first poll comes after 100 ms and each wait doubles up
// to PollInterval.
func TestWaitPollsSoonThenBacksOff(t *testing.T) {
	t.Parallel()
	api := newFakeAPI()
	defer api.Close()
	c, s := newClient(t, api.URL, client.WithAPIKey(fakeKey))
	a, err := c.CreateAllocation(context.Background(), client.CreateAllocation{SkuId: "h100-80g-x1"})
	if err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	api.slow = 5
	api.mu.Unlock()
	if a, err = c.WaitActive(context.Background(), a.Id, nil); err != nil || a.State != client.StateActive {
		t.Fatalf("wait: %+v %v", a, err)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		time.Second, time.Second}
	if !slices.Equal(s.d, want) {
		t.Fatalf("waits %v, want %v", s.d, want)
	}
}
