package httphost

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/ports"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := h.token("alice")
	h.me(tok) // provisions the tenant; counts 1 of the read budget
	h.store.setPolicy(policy.RateLimitDefaultRPM, "3")
	var last response
	for i := 0; i < 3; i++ {
		last = h.do(req{method: "GET", path: "/api/v1/projects", bearer: tok})
	}
	if last.status != 429 {
		t.Fatalf("4th read in the window: %d, want 429", last.status)
	}
	if e := last.errBody(t); e.Code != "rate_limited" {
		t.Fatalf("code %q", e.Code)
	}
	if last.header.Get("X-RateLimit-Limit") != "3" || last.header.Get("X-RateLimit-Remaining") != "0" ||
		last.header.Get("Retry-After") == "" || last.header.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("headers %v", last.header)
	}
	// Budgets are per class: a mutation still passes.
	if r := h.do(req{method: "POST", path: "/api/v1/projects", bearer: tok, body: `{"name":"p"}`}); r.status != 201 ||
		r.header.Get("X-RateLimit-Limit") != "120" {
		t.Fatalf("mutation: %d limit %q", r.status, r.header.Get("X-RateLimit-Limit"))
	}
	// And per user.
	if r := h.do(req{method: "GET", path: "/api/v1/projects", bearer: h.token("bob")}); r.status != 200 {
		t.Fatalf("another user: %d", r.status)
	}
	// The window ends; the budget is back.
	h.clock.Advance(time.Minute)
	if r := h.do(req{method: "GET", path: "/api/v1/projects", bearer: tok}); r.status != 200 {
		t.Fatalf("next window: %d", r.status)
	}
	// Health is never limited.
	for i := 0; i < 5; i++ {
		if r := h.do(req{method: "GET", path: "/api/v1/healthz"}); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("healthz limited: %d %v", r.status, r.header)
		}
	}
}

func TestRateLimitAuthRoutesByClientAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.store.setPolicy(policy.RateLimitAuthRPM, "2")
	var last response
	for i := 0; i < 3; i++ {
		last = h.do(req{method: "POST", path: "/api/v1/auth/logout"})
	}
	if last.status != 429 || last.header.Get("X-RateLimit-Limit") != "2" {
		t.Fatalf("third anonymous auth call: %d %v", last.status, last.header)
	}
}

type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string, int, time.Duration) (ports.RateDecision, error) {
	return ports.RateDecision{}, errors.New("redis: connection refused")
}

func (failingLimiter) Peek(context.Context, string, int, time.Duration) (ports.RateDecision, error) {
	return ports.RateDecision{}, errors.New("redis: connection refused")
}

func TestRateLimitFailsOpen(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(_ *Config, d *Deps) { d.RateLimiter = failingLimiter{} })
	if r := h.do(req{method: "GET", path: "/api/v1/users/me", bearer: h.token("alice")}); r.status != 200 {
		t.Fatalf("limiter down: %d, want the request to pass", r.status)
	}
	if !strings.Contains(h.logs.String(), "rate limiter failed; allowing request") {
		t.Fatalf("no warning logged:\n%s", h.logs.String())
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := h.token("alice")
	userID := h.me(tok).User.ID
	post := func(key, body string) response {
		return h.do(req{method: "POST", path: "/api/v1/projects", bearer: tok, body: body,
			header: map[string]string{"X-Idempotency-Key": key}})
	}
	first := post("key-1", `{"name":"one"}`)
	if first.status != 201 || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v", first.status, first.header)
	}
	again := post("key-1", `{"name":"one"}`)
	if again.status != 201 || again.header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(first.body) ||
		again.header.Get("Content-Type") != "application/json" {
		t.Fatalf("replay: %d %v %s", again.status, again.header, again.body)
	}
	if r := post("key-1", `{"name":"two"}`); r.status != 422 || r.errBody(t).Code != "idempotency_key_reused" {
		t.Fatalf("reused key: %d %s", r.status, r.body)
	}
	// In flight: another request holds the key with this very fingerprint.
	body := `{"name":"three"}`
	probe := httptest.NewRequest("POST", "/api/v1/projects", strings.NewReader(body))
	if st, _, _ := h.store.Begin(context.Background(), userID, "key-2", fingerprint(probe, userID, []byte(body)), time.Hour); st != ports.IdempotencyNew {
		t.Fatalf("seed: %v", st)
	}
	if r := post("key-2", body); r.status != 409 || r.errBody(t).Code != "idempotency_request_in_flight" {
		t.Fatalf("in flight: %d %s", r.status, r.body)
	}
	// A 5xx is not remembered: the retry runs again.
	h.store.mu.Lock()
	h.store.failCreate = errors.New("boom")
	h.store.mu.Unlock()
	if r := post("key-3", `{"name":"four"}`); r.status != 500 {
		t.Fatalf("failing create: %d", r.status)
	}
	h.store.mu.Lock()
	h.store.failCreate = nil
	h.store.mu.Unlock()
	if r := post("key-3", `{"name":"four"}`); r.status != 201 || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after 5xx: %d %v", r.status, r.header)
	}
	// A 5xx after the request's transaction committed keeps the key: here the
	// commit's answer is lost (the connection dropped during COMMIT) although
	// the project was created. The retry is not run a second time.
	countProjects := func(name string) int {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		n := 0
		for _, p := range h.store.projects {
			if p.Name == name {
				n++
			}
		}
		return n
	}
	h.store.mu.Lock()
	h.store.commitErr = errors.New("conn closed while reading the COMMIT's answer")
	h.store.mu.Unlock()
	if r := post("key-4", `{"name":"five"}`); r.status != 500 {
		t.Fatalf("create whose commit answer is lost: %d %s", r.status, r.body)
	}
	h.store.mu.Lock()
	h.store.commitErr = nil
	h.store.mu.Unlock()
	if r := post("key-4", `{"name":"five"}`); r.status != 409 || r.errBody(t).Code != "idempotency_response_lost" {
		t.Fatalf("retry after a committed 5xx: %d %s, want 409 idempotency_response_lost", r.status, r.body)
	}
	if n := countProjects("five"); n != 1 {
		t.Fatalf("%d projects named five, want 1 (the retry must not create another)", n)
	}
	// Keys are per user: bob's key-1 is his own.
	if r := h.do(req{method: "POST", path: "/api/v1/projects", bearer: h.token("bob"), body: `{"name":"one"}`,
		header: map[string]string{"X-Idempotency-Key": "key-1"}}); r.status != 201 || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("other user's key: %d %v", r.status, r.header)
	}
	// 204 responses replay without a body.
	project := h.me(tok).defaultProject(t)
	// A second member, so removing the caller is not removing the last one.
	if err := h.store.AddProjectMember(context.Background(), identity.ProjectMembership{ProjectID: project,
		UserID: "0193aaaa-0000-7000-8000-0000000000ee", Role: identity.ProjectMember}); err != nil {
		t.Fatal(err)
	}
	del := func() response {
		return h.do(req{method: "DELETE", path: "/api/v1/projects/" + project + "/members/" + userID, bearer: tok,
			header: map[string]string{"X-Idempotency-Key": "key-del"}})
	}
	if r := del(); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := del(); r.status != 204 || r.header.Get("Idempotent-Replayed") != "true" || len(r.body) != 0 {
		t.Fatalf("delete replay: %d %v %q", r.status, r.header, r.body)
	}
	if r := post(strings.Repeat("k", 256), `{"name":"x"}`); r.status != 400 || r.errBody(t).Field != "X-Idempotency-Key" {
		t.Fatalf("oversized key: %d %s", r.status, r.body)
	}
}

type check struct {
	name string
	fn   func(ctx context.Context) error
}

func (c check) Name() string                    { return c.name }
func (c check) Check(ctx context.Context) error { return c.fn(ctx) }

func TestHealthz(t *testing.T) {
	t.Parallel()
	ok := check{"postgres", func(context.Context) error { return nil }}
	t.Run("all up", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, func(_ *Config, d *Deps) { d.Health = []ports.HealthCheck{ok} })
		r := h.do(req{method: "GET", path: "/api/v1/healthz"})
		if r.status != 200 || string(r.body) != `{"checks":{"postgres":"ok"},"status":"ok"}`+"\n" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("one down, one hung", func(t *testing.T) {
		t.Parallel()
		hang := make(chan struct{})
		t.Cleanup(func() { close(hang) })
		down := check{"nats", func(context.Context) error {
			return errors.New("dial nats://relay:s3cr3tpw@10.0.0.1:4222: connection refused")
		}}
		hung := check{"temporal", func(context.Context) error { <-hang; return nil }} // ignores its context
		h := newHarness(t, func(c *Config, d *Deps) {
			c.HealthTimeout = 50 * time.Millisecond
			d.Health = []ports.HealthCheck{ok, down, hung}
		})
		r := h.do(req{method: "GET", path: "/api/v1/healthz"})
		var body struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		r.json(t, &body)
		if r.status != 503 || body.Status != "degraded" || body.Checks["postgres"] != "ok" ||
			!strings.HasPrefix(body.Checks["nats"], "down: ") || !strings.HasPrefix(body.Checks["temporal"], "down: ") {
			t.Fatalf("%d %+v", r.status, body)
		}
		if strings.Contains(string(r.body), "s3cr3tpw") || strings.Contains(h.logs.String(), "s3cr3tpw") {
			t.Fatalf("a credential leaked: %s", r.body)
		}
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.do(req{method: "GET", path: "/api/v1/users/me", bearer: h.token("alice")})
	h.do(req{method: "GET", path: "/api/v1/nope"})
	r := h.do(req{method: "GET", path: "/metrics"})
	if r.status != 200 {
		t.Fatalf("metrics: %d", r.status)
	}
	for _, want := range []string{
		`gpuaas_http_requests_total{method="GET",route="/api/v1/users/me",status="200"} 1`,
		`gpuaas_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`gpuaas_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/me",status="200"`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	off := newHarness(t, func(c *Config, _ *Deps) { c.MetricsDisabled = true })
	if r := off.do(req{method: "GET", path: "/metrics"}); r.status != http.StatusNotFound {
		t.Fatalf("disabled metrics: %d", r.status)
	}
}

// countingVerifier counts signature checks.
type countingVerifier struct {
	ports.TokenVerifier
	n atomic.Int64
}

func (v *countingVerifier) Verify(ctx context.Context, raw string) (identity.Claims, error) {
	v.n.Add(1)
	return v.TokenVerifier.Verify(ctx, raw)
}

// TestForgedTokensAreLimitedBeforeVerifying: requests without a valid token
// are counted per client address; once the address has spent its budget
// (ratelimit.unauthenticated_per_minute) it gets 429 without its token's
// signature being checked, until the window ends. Valid tokens from other
// callers are not counted.
func TestForgedTokensAreLimitedBeforeVerifying(t *testing.T) {
	t.Parallel()
	var cv *countingVerifier
	h := newHarness(t, func(_ *Config, d *Deps) {
		cv = &countingVerifier{TokenVerifier: d.Verifier}
		d.Verifier = cv
	})
	const limit = 5
	h.store.setPolicy(policy.RateLimitUnauthRPM, "5")
	good := h.token("legit")
	for i := 0; i < 3*limit; i++ { // valid tokens spend nothing
		if r := h.do(req{method: "GET", path: "/api/v1/projects", bearer: good}); r.status != 200 {
			t.Fatalf("valid request %d: %d %s", i, r.status, r.body)
		}
	}
	forged := good[:len(good)-4] + "AAAA"
	verified := cv.n.Load()
	for i := 0; i < limit; i++ {
		if r := h.do(req{method: "GET", path: "/api/v1/users/me", bearer: forged}); r.status != 401 {
			t.Fatalf("forged token %d: %d, want 401", i, r.status)
		}
	}
	for _, r := range []req{
		{method: "GET", path: "/api/v1/users/me", bearer: forged},
		{method: "GET", path: "/api/v1/users/me"}, // no token at all
		{method: "GET", path: "/api/v1/users/me", bearer: good},
	} {
		got := h.do(r)
		if e := got.errBody(t); got.status != 429 || e.Code != "rate_limited" || got.header.Get("Retry-After") == "" {
			t.Fatalf("over the budget: %d %s", got.status, got.body)
		}
	}
	if n := cv.n.Load() - verified; n != int64(limit) {
		t.Fatalf("%d signature checks for %d forged tokens and 3 refused requests; want %d", n, limit, limit)
	}
	h.clock.Advance(time.Minute)
	if r := h.do(req{method: "GET", path: "/api/v1/users/me", bearer: good}); r.status != 200 {
		t.Fatalf("next window: %d %s", r.status, r.body)
	}
}
