package httphost

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gpuaas/gpuaas/core/fault"
)

// TestKindStatusTable pins the one fault-kind → HTTP-status table. Every
// kind the core defines must be in it.
func TestKindStatusTable(t *testing.T) {
	t.Parallel()
	want := map[fault.Kind]int{
		fault.KindInvalid: 400, fault.KindUnauthenticated: 401, fault.KindPaymentRequired: 402,
		fault.KindForbidden: 403, fault.KindNotFound: 404, fault.KindConflict: 409, fault.KindTooLarge: 413,
		fault.KindUnprocessable: 422, fault.KindRateLimited: 429, fault.KindInternal: 500, fault.KindUnavailable: 503,
	}
	for k := fault.Kind(0); !strings.HasPrefix(k.String(), "kind("); k++ {
		w, ok := want[k]
		if !ok {
			t.Errorf("kind %s has no pinned status; add it here and to doc/api/README.md", k)
			continue
		}
		if got := StatusOf(k); got != w {
			t.Errorf("StatusOf(%s) = %d, want %d", k, got, w)
		}
	}
	if len(kindStatus) != len(want) {
		t.Errorf("kindStatus has %d entries, want %d", len(kindStatus), len(want))
	}
	if got := StatusOf(fault.Kind(200)); got != 500 {
		t.Errorf("unknown kind maps to %d, want 500", got)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestCorrelationID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cases := []struct {
		name, sent string
		echoed     bool
	}{
		{"generated when absent", "", false},
		{"echoed when sane", "req-42.abc:def_1", true},
		{"replaced when it has spaces", "has spaces", false},
		{"replaced when too long", strings.Repeat("a", 129), false},
		{"replaced when it has markup", "a<b>;c", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			if c.sent != "" {
				hdr["X-Correlation-ID"] = c.sent
			}
			// An error route, so the body carries the id too.
			r := h.do(req{method: "GET", path: "/api/v1/users/me", header: hdr})
			got := r.header.Get("X-Correlation-ID")
			if c.echoed && got != c.sent {
				t.Fatalf("X-Correlation-ID = %q, want %q echoed", got, c.sent)
			}
			if !c.echoed && !uuidRE.MatchString(got) {
				t.Fatalf("X-Correlation-ID = %q, want a generated UUID", got)
			}
			if e := r.errBody(t); e.CorrelationID != got {
				t.Fatalf("body correlation_id %q != header %q", e.CorrelationID, got)
			}
		})
	}
}

func TestStrictJSON(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := h.token("owner")
	h.me(tok)
	cases := []struct {
		name, body, contentType string
		code, field             string
	}{
		{"malformed", `{"name": "x"`, "", "validation_failed", "body"},
		{"syntax error", `{"name": x}`, "", "validation_failed", "body"},
		{"unknown field", `{"name": "x", "bogus": 1}`, "", "validation_failed", "bogus"},
		{"wrong type", `{"name": 5}`, "", "validation_failed", "name"},
		{"not an object", `["name"]`, "", "validation_failed", "body"},
		{"trailing data", `{"name": "x"} {"name": "y"}`, "", "validation_failed", "body"},
		{"wrong media type", `{"name": "x"}`, "text/plain", "unsupported_media_type", "Content-Type"},
		{"use-case validation", `{"name": ""}`, "", "validation_failed", "name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(req{method: "POST", path: "/api/v1/projects", bearer: tok, body: c.body, contentType: c.contentType})
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			e := r.errBody(t)
			if e.Code != c.code || e.Field != c.field {
				t.Fatalf("code %q field %q, want %q %q (%s)", e.Code, e.Field, c.code, c.field, e.Message)
			}
		})
	}
	t.Run("empty body", func(t *testing.T) {
		r := h.do(req{method: "POST", path: "/api/v1/projects", bearer: tok})
		if e := r.errBody(t); r.status != 400 || e.Field != "body" {
			t.Fatalf("status %d field %q, want 400 body", r.status, e.Field)
		}
	})
	t.Run("nested wrong type names the path", func(t *testing.T) {
		var dst struct {
			A struct {
				B int `json:"b"`
			} `json:"a"`
		}
		err := decodeError(decodeInto(t, `{"a":{"b":"x"}}`, &dst))
		if fe := fault.From(err); fe.Field != "a.b" {
			t.Fatalf("field %q, want a.b", fe.Field)
		}
	})
}

// TestUnknownQueryParameter: a query parameter the operation does not
// declare is refused as an unknown body field is — named back when it looks
// like a name, with what the operation takes, and its value never echoed.
func TestUnknownQueryParameter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := h.token("owner")
	h.me(tok)
	cases := []struct {
		name, path, field, says string
	}{
		{"misspelt filter", "/api/v1/billing/ledger?limt=5", "limt", `"limt": it takes limit, cursor`},
		{"a route without any", "/api/v1/users/me?verbose=SECRETVALUE", "verbose", "it takes no query parameters"},
		{"not a name", "/api/v1/users/me?%0Abad%00=1", "query", "unknown query parameter: it takes no"},
		{"long name", "/api/v1/users/me?" + strings.Repeat("x", 65) + "=1", "query", "unknown query parameter: it takes no"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(req{method: "GET", path: c.path, bearer: tok})
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			e := r.errBody(t)
			if e.Code != "validation_failed" || e.Field != c.field || !strings.Contains(e.Message, c.says) ||
				strings.Contains(string(r.body), "SECRETVALUE") {
				t.Fatalf("code %q field %q message %q: want validation_failed, field %q, a message saying %q, no value",
					e.Code, e.Field, e.Message, c.field, c.says)
			}
		})
	}
	t.Run("declared ones pass", func(t *testing.T) {
		r := h.do(req{method: "GET", path: "/api/v1/billing/ledger?limit=5", bearer: tok})
		if r.status == http.StatusBadRequest {
			t.Fatalf("declared parameter refused: %s", r.body)
		}
	})
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config, _ *Deps) { c.BodyLimit = 64 })
	tok := h.token("owner")
	big := `{"name": "` + strings.Repeat("x", 100) + `"}`
	r := h.do(req{method: "POST", path: "/api/v1/projects", bearer: tok, body: big})
	if r.status != http.StatusRequestEntityTooLarge || r.errBody(t).Code != "payload_too_large" {
		t.Fatalf("declared length: status %d %s, want 413 payload_too_large", r.status, r.body)
	}
	// The same through the idempotency layer, which reads the body itself.
	r = h.do(req{method: "POST", path: "/api/v1/projects", bearer: tok, body: big,
		header: map[string]string{"X-Idempotency-Key": "k1"}})
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("with idempotency key: status %d, want 413", r.status)
	}
	// Unknown length (chunked): the cap applies while reading.
	rec := serveChunked(t, h, "/api/v1/auth/oidc/exchange", big)
	if rec != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status %d, want 413", rec)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.do(req{method: "GET", path: "/api/v1/nope"})
	if r.status != 404 || r.errBody(t).Code != "not_found" {
		t.Fatalf("unknown route: %d %s", r.status, r.body)
	}
	r = h.do(req{method: "DELETE", path: "/api/v1/projects", bearer: h.token("x")})
	if r.status != 405 || r.errBody(t).Code != "method_not_allowed" {
		t.Fatalf("wrong method: %d %s", r.status, r.body)
	}
	if got := r.header.Get("Allow"); got != "GET, POST" {
		t.Fatalf("Allow = %q, want \"GET, POST\"", got)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
}

// TestInternalErrorsAreGeneric: a foreign error becomes a generic 500 whose
// detail is logged once under the correlation id.
func TestInternalErrorsAreGeneric(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := h.token("owner")
	h.me(tok)
	h.store.mu.Lock()
	h.store.failCreate = errString("pq: connection to postgres://app:hunter2@db:5432 lost")
	h.store.mu.Unlock()
	r := h.do(req{method: "POST", path: "/api/v1/projects", bearer: tok, body: `{"name":"p"}`})
	e := r.errBody(t)
	if r.status != 500 || e.Code != "internal_error" || strings.Contains(e.Message, "postgres") {
		t.Fatalf("got %d %+v, want a generic 500", r.status, e)
	}
	n := 0
	for _, l := range h.logs.lines(t) {
		if l["msg"] == "request failed" {
			n++
			if l["correlation_id"] != e.CorrelationID {
				t.Errorf("logged correlation id %v, want %s", l["correlation_id"], e.CorrelationID)
			}
			if s, _ := l["error"].(string); !strings.Contains(s, "connection to") || strings.Contains(s, "hunter2") {
				t.Errorf("logged error %q: want the detail without the password", s)
			}
		}
	}
	if n != 1 {
		t.Fatalf("detail logged %d times, want once", n)
	}
}

// TestClientGoneIs499: a request whose client goes away mid-handler is
// recorded as 499 client_closed_request — not a 5xx with an error log (it
// would page operators for their users' Ctrl-C) — and its idempotency key is
// released, so the retry runs instead of replaying the cancellation.
func TestClientGoneIs499(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := h.token("owner")
	h.me(tok)
	entered := make(chan struct{})
	h.store.mu.Lock()
	h.store.holdCreate = entered
	h.store.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	r, err := http.NewRequestWithContext(ctx, "POST", h.ts.URL+"/api/v1/projects", strings.NewReader(`{"name":"p"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("X-Idempotency-Key", "gone-1")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(r)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want its own cancellation", err)
	}

	var access map[string]any
	for deadline := time.Now().Add(5 * time.Second); access == nil && time.Now().Before(deadline); {
		for _, l := range h.logs.lines(t) {
			if l["msg"] == "http request" && l["method"] == "POST" {
				access = l
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if access == nil {
		t.Fatal("no access log line for the cancelled request")
	}
	if access["status"] != float64(499) || access["error_code"] != "client_closed_request" || access["level"] != "INFO" {
		t.Fatalf("access log %v, want status 499, error_code client_closed_request, level INFO", access)
	}
	for _, l := range h.logs.lines(t) {
		if l["msg"] == "request failed" {
			t.Fatalf("a cancelled request was logged as a server failure: %v", l)
		}
	}

	h.store.mu.Lock()
	h.store.holdCreate = nil
	h.store.mu.Unlock()
	again := h.do(req{method: "POST", path: "/api/v1/projects", bearer: tok, body: `{"name":"p"}`,
		header: map[string]string{"X-Idempotency-Key": "gone-1"}})
	if again.status != 201 || again.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after the client went away: %d %v %s, want a fresh 201", again.status, again.header, again.body)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestItemCountMessages: array bounds read as English ("must not be
// empty", "at most 1 item"), not "at least 1 items".
func TestItemCountMessages(t *testing.T) {
	t.Parallel()
	one, ten := uint64(1), uint64(10)
	for _, c := range []struct {
		se   *openapi3.SchemaError
		want string
	}{
		{&openapi3.SchemaError{SchemaField: "minItems", Schema: &openapi3.Schema{MinItems: 1}}, "scopes must not be empty"},
		{&openapi3.SchemaError{SchemaField: "minItems", Schema: &openapi3.Schema{MinItems: 2}}, "scopes must have at least 2 items"},
		{&openapi3.SchemaError{SchemaField: "maxItems", Schema: &openapi3.Schema{MaxItems: &one}}, "scopes must have at most 1 item"},
		{&openapi3.SchemaError{SchemaField: "maxItems", Schema: &openapi3.Schema{MaxItems: &ten}}, "scopes must have at most 10 items"},
	} {
		if got := fault.From(schemaFault("scopes", c.se)).Message; got != c.want {
			t.Errorf("%s: %q, want %q", c.se.SchemaField, got, c.want)
		}
	}
}
