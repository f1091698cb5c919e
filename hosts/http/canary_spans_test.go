package httphost

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gpuaas/gpuaas/core/policy"
)

// TestNoSecretsInSpans is TestNoSecretsInLogs for traces: with tracing on,
// canary secrets sent as bearer tokens, refresh tokens, passwords, OIDC
// codes and states, tokens in a query string and idempotency keys appear in
// no span's name, attribute, event, link or status.
func TestNoSecretsInSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	h := newHarness(t, func(_ *Config, d *Deps) { d.TracerProvider = tp })
	h.store.setPolicy(policy.PersonalLoginEnabled, "true")
	valid := h.token("alice")
	canaries := []string{valid, "CANARYbearer0001", "CANARYrefreshbody0002", "CANARYrefreshcookie0003",
		"CANARYpassword0004", "CANARYcode0005", "CANARYstate0006", "CANARYidemkey0007", "CANARYquerytoken0009"}
	steps := []struct {
		name string
		rq   req
		want int
	}{
		{"valid bearer", req{method: "GET", path: "/api/v1/users/me", bearer: valid}, 200},
		{"forged bearer", req{method: "GET", path: "/api/v1/users/me", bearer: "CANARYbearer0001"}, 401},
		{"refresh token in body", req{method: "POST", path: "/api/v1/auth/token/refresh",
			body: `{"refresh_token":"CANARYrefreshbody0002"}`}, 401},
		{"refresh token in cookie", req{method: "POST", path: "/api/v1/auth/token/refresh",
			cookies: []*http.Cookie{{Name: RefreshCookieName, Value: "CANARYrefreshcookie0003"}}}, 401},
		{"password", req{method: "POST", path: "/api/v1/auth/personal/login",
			body: `{"username":"eve","password":"CANARYpassword0004"}`}, 401},
		{"code and state in the query", req{method: "GET", path: "/api/v1/auth/oidc/authorize?redirect_uri=" +
			url.QueryEscape(testRedirect) + "&code=CANARYcode0005&state=CANARYstate0006"}, 400}, // undeclared: refused, named, never echoed
		{"token in an unknown route's query", req{method: "GET", path: "/api/v1/nope?access_token=CANARYquerytoken0009"}, 404},
		{"idempotency key", req{method: "POST", path: "/api/v1/projects", bearer: valid, body: `{"name":"p"}`,
			header: map[string]string{"X-Idempotency-Key": "CANARYidemkey0007"}}, 201},
	}
	for _, s := range steps {
		if r := h.do(s.rq); r.status != s.want {
			t.Fatalf("%s: status %d, want %d: %s", s.name, r.status, s.want, r.body)
		}
	}
	spans := rec.Ended()
	if len(spans) < len(steps) {
		t.Fatalf("%d spans for %d requests: tracing is not on", len(spans), len(steps))
	}
	for _, sp := range spans {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %v %v", sp.Name(), sp.Status(), sp.Links())
		for _, a := range sp.Attributes() {
			fmt.Fprintf(&b, " %s=%s", a.Key, a.Value.Emit())
		}
		for _, e := range sp.Events() {
			fmt.Fprintf(&b, " %s", e.Name)
			for _, a := range e.Attributes {
				fmt.Fprintf(&b, " %s=%s", a.Key, a.Value.Emit())
			}
		}
		for _, c := range canaries {
			if strings.Contains(b.String(), c) {
				t.Errorf("canary %.24q… in span %q: %s", c, sp.Name(), b.String())
			}
		}
	}
}

// TestServerSpans: each request is one server span named by method and
// route pattern, with the method, the route, the matched path and the
// status as attributes (an unmatched path is not recorded), an error status
// only at 500 and up, and a caller's traceparent as a link, never the parent.
func TestServerSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	h := newHarness(t, func(_ *Config, d *Deps) { d.TracerProvider = tp })
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if r := h.do(req{method: "GET", path: "/api/v1/users/me", bearer: h.token("alice"),
		header: map[string]string{"Traceparent": parent}}); r.status != 200 {
		t.Fatalf("GET /users/me: %d %s", r.status, r.body)
	}
	if r := h.do(req{method: "GET", path: "/api/v1/nope/secret-ish"}); r.status != 404 {
		t.Fatalf("GET /nope: %d %s", r.status, r.body)
	}
	var server []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.SpanKind() == trace.SpanKindServer {
			server = append(server, sp)
		}
	}
	if len(server) != 2 {
		t.Fatalf("%d server spans, want 2", len(server))
	}
	attrs := func(sp sdktrace.ReadOnlySpan) map[string]string {
		m := map[string]string{}
		for _, kv := range sp.Attributes() {
			m[string(kv.Key)] = kv.Value.Emit()
		}
		return m
	}
	me, nope := server[0], server[1]
	if got, want := fmt.Sprint(me.Name(), attrs(me)), fmt.Sprint("GET /api/v1/users/me", map[string]string{
		"http.request.method": "GET", "http.route": "/api/v1/users/me", "url.path": "/api/v1/users/me",
		"http.response.status_code": "200"}); got != want {
		t.Errorf("span %s, want %s", got, want)
	}
	if me.Parent().IsValid() || len(me.Links()) != 1 || me.Links()[0].SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" ||
		me.Status().Code != codes.Unset {
		t.Errorf("span parent %v, links %v, status %v: want a root span linked to the caller's, status unset",
			me.Parent(), me.Links(), me.Status())
	}
	if got, want := fmt.Sprint(nope.Name(), attrs(nope)), fmt.Sprint("GET unmatched", map[string]string{
		"http.request.method": "GET", "http.route": "unmatched", "http.response.status_code": "404"}); got != want {
		t.Errorf("span %s, want %s", got, want)
	}
}

// TestAbortedResponseIsObserved: a handler that cuts its response off with
// http.ErrAbortHandler (a download whose source failed mid-stream) is still
// in the access log (aborted), in the request metrics and on its span (its
// status, and an error: the server, not the client, ended it) — the abort
// used to skip all three.
func TestAbortedResponseIsObserved(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	h := newHarness(t, func(_ *Config, d *Deps) { d.TracerProvider = tp })
	abort := h.srv.entry(h.srv.tracing(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		panic(http.ErrAbortHandler)
	})))
	ts := httptest.NewServer(abort)
	t.Cleanup(ts.Close)
	resp, err := http.Get(ts.URL + "/download")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("the client read a whole response; want it cut off")
	}

	var access map[string]any
	for deadline := time.Now().Add(5 * time.Second); access == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range h.logs.lines(t) {
			if l["msg"] == "http request" {
				access = l
			}
		}
	}
	if access == nil || access["status"] != float64(200) || access["aborted"] != true {
		t.Fatalf("access log %v, want status 200 and aborted", access)
	}
	if m := h.do(req{method: "GET", path: "/metrics"}); !strings.Contains(string(m.body),
		`gpuaas_http_requests_total{method="GET",route="unmatched",status="200"} 1`) {
		t.Errorf("the aborted request is not counted:\n%s", m.body)
	}
	var span sdktrace.ReadOnlySpan // the first: /metrics came after
	for _, sp := range rec.Ended() {
		if sp.SpanKind() == trace.SpanKindServer && span == nil {
			span = sp
		}
	}
	if span == nil {
		t.Fatal("no server span for the aborted request")
	}
	status := ""
	for _, kv := range span.Attributes() {
		if kv.Key == "http.response.status_code" {
			status = kv.Value.Emit()
		}
	}
	if status != "200" || span.Status().Code != codes.Error {
		t.Fatalf("span status code %q, status %v; want 200 and an error", status, span.Status())
	}
}
