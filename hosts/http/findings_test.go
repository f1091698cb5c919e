package httphost

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// These tests pin what an outside review of the API found (issue 10): each
// failed before the contract became the validator.

// call sends one request to a full stack and returns status, error code and field.
func call(t *testing.T, ts *httptest.Server, method, path, tok, body string, hdr ...string) (int, errorJSON, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(context.Background(), method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error errorJSON `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error, resp.Header
}

func TestListFiltersAndCursorsAreChecked(t *testing.T) {
	t.Parallel()
	ts, _, iss := fullStack(t)
	tok := iss.Mint(t, tokens.Subject("lister"), tokens.Email("lister@example.com"), tokens.Roles("admin"))
	project := signInDefaultProject(t, ts, tok)
	for _, c := range []struct{ path, field string }{
		{"/api/v1/allocations?status=bogus", "status"},
		{"/api/v1/admin/allocations?status=bogus", "status"},
		{"/api/v1/admin/nodes?state=bogus", "state"},
		{"/api/v1/admin/payments/sessions?status=bogus", "status"},
		{"/api/v1/billing/usage?cursor=garbage", "cursor"},
		{"/api/v1/billing/ledger?cursor=garbage", "cursor"},
		{"/api/v1/allocations?cursor=garbage", "cursor"},
		{"/api/v1/admin/audit-log?cursor=garbage", "cursor"},
		{"/api/v1/allocations?limit=0", "limit"},
		{"/api/v1/admin/audit-log?since=yesterday", "since"},
	} {
		status, e, _ := call(t, ts, "GET", c.path, tok, "", "X-Project-ID", project)
		if status != 400 || e.Code != "validation_failed" || e.Field != c.field {
			t.Errorf("GET %s: %d %s/%q, want 400 validation_failed/%q", c.path, status, e.Code, e.Field, c.field)
		}
	}
}

func TestFieldNamesAreCaseExactAndUnique(t *testing.T) {
	t.Parallel()
	ts, db, iss := fullStack(t)
	tok := iss.Mint(t, tokens.Subject("namer"), tokens.Email("namer@example.com"))
	signInDefaultProject(t, ts, tok)
	before := rowCounts(t, db)["projects"]
	for _, c := range []struct{ body, field string }{
		{`{"NAME":"upper"}`, "NAME"},
		{`{"Name":"title"}`, "Name"},
		{`{"name":"a","name":"b"}`, "name"},
		{`{"name":"ok","extra":true}`, "extra"},
	} {
		status, e, _ := call(t, ts, "POST", "/api/v1/projects", tok, c.body)
		if status != 400 || e.Code != "validation_failed" || e.Field != c.field {
			t.Errorf("POST /projects %s: %d %s/%q, want 400 validation_failed/%q", c.body, status, e.Code, e.Field, c.field)
		}
	}
	if after := rowCounts(t, db)["projects"]; after != before {
		t.Fatalf("projects went from %d to %d", before, after)
	}
}

// TestOversizedHeadersGetTheErrorBody: 431 is JSON in the error model, not
// net/http's text/plain.
func TestOversizedHeadersGetTheErrorBody(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.do(req{method: "GET", path: "/api/v1/users/me", header: map[string]string{"X-Padding": strings.Repeat("p", 70<<10)}})
	if r.status != http.StatusRequestHeaderFieldsTooLarge || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("oversized headers: %d %s %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	if e := r.errBody(t); e.Code != "headers_too_large" || e.CorrelationID == "" {
		t.Fatalf("error body %+v", e)
	}
	// Just under the limit is served.
	tok := h.token("padded")
	r = h.do(req{method: "GET", path: "/api/v1/users/me", bearer: tok, header: map[string]string{"X-Padding": strings.Repeat("p", 60<<10)}})
	if r.status != http.StatusOK {
		t.Fatalf("60 KiB of headers: %d %s", r.status, r.body)
	}
}

// TestSecurityHeaders: nosniff on every response, no-store on every
// authenticated one, HSTS when the public URL is https (and only then).
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t) // public URL https://console.example.com
	tok := h.token("headers")
	for _, c := range []struct {
		name    string
		r       req
		noStore bool
	}{
		{"authenticated 200", req{method: "GET", path: "/api/v1/users/me", bearer: tok}, true},
		{"authenticated 401", req{method: "GET", path: "/api/v1/users/me"}, true},
		{"public health", req{method: "GET", path: "/api/v1/healthz"}, false},
		{"unknown route", req{method: "GET", path: "/api/v1/nope"}, true},
	} {
		r := h.do(c.r)
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", c.name, got)
		}
		if got := r.header.Get("Cache-Control"); c.noStore && got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", c.name, got)
		}
		if got := r.header.Get("Strict-Transport-Security"); got != hstsValue {
			t.Errorf("%s: Strict-Transport-Security %q over an https public URL", c.name, got)
		}
	}
	plain := newHarness(t, func(c *Config, _ *Deps) { c.PublicBaseURL = "http://127.0.0.1:8080" })
	if got := plain.do(req{method: "GET", path: "/api/v1/healthz"}).header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("HSTS %q over a plain-http public URL", got)
	}
}

// TestOperatorsSeeTheGPUSource: the admin node view says how each GPU was
// found, so a simulated node is told from a real one.
func TestOperatorsSeeTheGPUSource(t *testing.T) {
	t.Parallel()
	ts, db, iss := fullStack(t)
	admin := iss.Mint(t, tokens.Subject("ops-gpus"), tokens.Email("ops-gpus@example.com"), tokens.Roles("admin"))
	id := system.UUIDs{}.NewID()
	if err := postgres.NewNodeStore(db).CreateNode(context.Background(), inventory.Node{ID: id, Name: "sim-" + id[:8],
		SKUID: "h100-80g-x1", State: inventory.NodeMaintenance, SSHHost: "10.0.0.7", SSHPort: 22,
		GPUs: []inventory.GPU{{Index: 0, UUID: "GPU-sim-00000000", Model: "H100", MemoryMiB: 81559, Healthy: true,
			Source: inventory.GPUSourceSimulated}}}); err != nil {
		t.Fatal(err)
	}
	r, err := http.NewRequestWithContext(context.Background(), "GET", ts.URL+"/api/v1/admin/nodes", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+admin)
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Nodes []struct {
			ID   string `json:"id"`
			Gpus []struct {
				Source string `json:"source"`
			} `json:"gpus"`
		} `json:"nodes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin nodes: %d %v", resp.StatusCode, err)
	}
	for _, n := range out.Nodes {
		if n.ID == id {
			if len(n.Gpus) != 1 || n.Gpus[0].Source != "simulated" {
				t.Fatalf("node %s GPUs %+v, want one simulated", id, n.Gpus)
			}
			return
		}
	}
	t.Fatalf("node %s not listed", id)
}
