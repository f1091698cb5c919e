package httphost

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/core/policy"
)

// TestNoSecretsInLogs pushes canary secrets through success, error and
// panic paths and asserts that none of them reaches the log.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.store.setPolicy(policy.PersonalLoginEnabled, "true")
	valid := h.token("alice") // a real bearer token, used on success paths
	canaries := []string{valid, "CANARYbearer0001", "CANARYrefreshbody0002", "CANARYrefreshcookie0003",
		"CANARYpassword0004", "CANARYcode0005", "CANARYstate0006", "CANARYidemkey0007", "CANARYpanic0008",
		"CANARYquerytoken0009"}

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
		{"logout with cookie", req{method: "POST", path: "/api/v1/auth/logout",
			cookies: []*http.Cookie{{Name: RefreshCookieName, Value: "CANARYrefreshcookie0003"}}}, 204},
		{"password", req{method: "POST", path: "/api/v1/auth/personal/login",
			body: `{"username":"eve","password":"CANARYpassword0004"}`}, 401},
		{"password with unknown field", req{method: "POST", path: "/api/v1/auth/personal/login",
			body: `{"username":"eve","password":"CANARYpassword0004","CANARYcode0005":1}`}, 400},
		{"code and state in the query", req{method: "GET", path: "/api/v1/auth/oidc/authorize?redirect_uri=" +
			url.QueryEscape(testRedirect) + "&code=CANARYcode0005&state=CANARYstate0006"}, 400}, // undeclared: refused, named, never echoed
		{"code and state in the body", req{method: "POST", path: "/api/v1/auth/oidc/exchange",
			body: `{"code":"CANARYcode0005","state":"CANARYstate0006","redirect_uri":"` + testRedirect + `"}`}, 400},
		{"token in an unknown route's query", req{method: "GET", path: "/api/v1/nope?access_token=CANARYquerytoken0009"}, 404},
		{"idempotency key", req{method: "POST", path: "/api/v1/projects", bearer: valid, body: `{"name":"p"}`,
			header: map[string]string{"X-Idempotency-Key": "CANARYidemkey0007"}}, 201},
		{"idempotency key reused", req{method: "POST", path: "/api/v1/projects", bearer: valid, body: `{"name":"q"}`,
			header: map[string]string{"X-Idempotency-Key": "CANARYidemkey0007"}}, 422},
		{"wrong type on a secret field", req{method: "POST", path: "/api/v1/auth/personal/login",
			body: `{"username":"eve","password":["CANARYpassword0004"]}`}, 400},
	}
	for _, s := range steps {
		if r := h.do(s.rq); r.status != s.want {
			t.Fatalf("%s: status %d, want %d: %s", s.name, r.status, s.want, r.body)
		}
	}
	// The panic path: the provider panics with a value quoting the password.
	h.idp.mu.Lock()
	h.idp.panicWith = "login failed for password CANARYpanic0008 / CANARYpassword0004"
	h.idp.mu.Unlock()
	r := h.do(req{method: "POST", path: "/api/v1/auth/personal/login",
		body: `{"username":"eve","password":"CANARYpassword0004"}`, bearer: "CANARYbearer0001"})
	if r.status != 500 || r.errBody(t).Code != "internal_error" {
		t.Fatalf("panic: %d %s", r.status, r.body)
	}

	logs := h.logs.String()
	for _, c := range canaries {
		if strings.Contains(logs, c) {
			t.Errorf("canary %.24q… found in the logs", c)
		}
	}
	// The logs are not empty because nothing was logged: every request has
	// its access line and the panic its report.
	lines := h.logs.lines(t)
	var access, panics int
	for _, l := range lines {
		switch l["msg"] {
		case "http request":
			access++
		case "panic recovered":
			panics++
			if !strings.Contains(l["panic"].(string), "withheld value of type string") || l["stack"] == "" {
				t.Errorf("panic line %v", l)
			}
		}
	}
	if access != len(steps)+1 || panics != 1 {
		t.Fatalf("%d access lines (want %d), %d panic lines (want 1)", access, len(steps)+1, panics)
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs)
	}
}
