package httphost

import (
	"net/http"
	"testing"
)

// A mounted handler answers under its pattern, beside the API, and the API
// (including its JSON 404) is unchanged.
func TestMountsServeBesideTheAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(_ *Config, d *Deps) {
		d.Mounts = []Mount{{Pattern: "/ws/terminal/", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		})}}
	})
	if r := h.do(req{method: http.MethodGet, path: "/ws/terminal/abc"}); r.status != http.StatusTeapot {
		t.Fatalf("mounted handler: status %d", r.status)
	}
	if r := h.do(req{method: http.MethodGet, path: "/api/v1/healthz"}); r.status != http.StatusOK {
		t.Fatalf("healthz through the mux: status %d", r.status)
	}
	if r := h.do(req{method: http.MethodGet, path: "/api/v1/nope"}); r.status != http.StatusNotFound || r.errBody(t).Code != "not_found" {
		t.Fatalf("unknown API route: status %d", r.status)
	}
}
