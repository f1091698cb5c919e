package httphost_test

import (
	"context"
	"crypto"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/policy/policysvc"
	httphost "github.com/gpuaas/gpuaas/hosts/http"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
	"github.com/gpuaas/gpuaas/testkit/tokens"
	"github.com/gpuaas/gpuaas/testkit/tokens/signin"
)

// stack is the host over the real Postgres stores, the real OIDC client and
// verifier, and the dev OIDC provider, as `gpuaas dev` wires them.
type stack struct {
	t   *testing.T
	ts  *httptest.Server
	dev *tokens.DevOIDC
}

func newStack(t *testing.T) *stack {
	t.Helper()
	db := services.Postgres(t)
	dev := tokens.NewDevOIDC(t)
	client, err := oidc.NewClient(oidc.ClientConfig{Issuer: dev.Issuer(), ClientID: dev.ClientID(), HTTPClient: dev.Server.Client()})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: dev.Issuer(), Audience: dev.ClientID(),
		StaticKeys: []crypto.PublicKey{dev.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	clock := system.Clock{}
	svc, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: postgres.NewAuditLog(db),
		Outbox: outbox, Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	policyAdmin, err := policysvc.New(policysvc.Deps{Tx: db, Policies: policies, Audit: postgres.NewAuditLog(db),
		Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httphost.New(httphost.Config{Addr: "127.0.0.1:0", AllowedRedirectURIs: []string{dev.RedirectURI}},
		httphost.Deps{Identity: svc, PolicyAdmin: policyAdmin, Verifier: verifier, IdP: client, Tokens: inproc.NewTokenStore(clock),
			RateLimiter: inproc.NewRateLimiter(clock), Policies: policies, Audit: postgres.NewAuditLog(db),
			Idempotency: postgres.NewIdempotencyStore(db, clock), Health: []ports.HealthCheck{db, client},
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.ContractChecked(t))
	t.Cleanup(ts.Close)
	return &stack{t: t, ts: ts, dev: dev}
}

func (s *stack) call(method, path, bearer, body string, hdr ...string) (int, http.Header, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(context.Background(), method, s.ts.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	c := *s.ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(r)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// signIn runs the browser flow through the host: authorize → the dev
// provider's login page → exchange.
func (s *stack) signIn(user string) string {
	s.t.Helper()
	status, hdr, body := s.call("GET", "/api/v1/auth/oidc/authorize?redirect_uri="+url.QueryEscape(s.dev.RedirectURI), "", "")
	if status != http.StatusFound {
		s.t.Fatalf("authorize: %d %s", status, body)
	}
	cb, err := signin.Login(context.Background(), signin.Params{StartURL: hdr.Get("Location"), RedirectURI: s.dev.RedirectURI,
		Username: user, Password: user, HTTPClient: s.dev.Server.Client()})
	if err != nil {
		s.t.Fatalf("login at the dev provider: %v", err)
	}
	req, _ := json.Marshal(map[string]string{"code": cb.Code, "state": cb.State, "redirect_uri": s.dev.RedirectURI})
	status, _, body = s.call("POST", "/api/v1/auth/oidc/exchange", "", string(req))
	if status != http.StatusOK {
		s.t.Fatalf("exchange: %d %s", status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		s.t.Fatalf("token response %s", body)
	}
	return tr.AccessToken
}

type profile struct {
	User     struct{ ID, Email, Role string }
	Tenant   struct{ ID, Name, Role string }
	Projects []struct {
		ID        string
		Name      string
		IsDefault bool `json:"is_default"`
	}
}

// TestIntegrationSignInAndTenancy signs in through the dev provider with
// real stores: the new user sees their tenant and default project; another
// tenant's project is 404; admin routes are 403 for users and work for the
// operator; idempotent replays come from the real store.
func TestIntegrationSignInAndTenancy(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	if status, _, body := s.call("GET", "/api/v1/healthz", "", ""); status != 200 ||
		!strings.Contains(string(body), `"postgres":"ok"`) || !strings.Contains(string(body), `"oidc":"ok"`) {
		t.Fatalf("healthz: %d %s", status, body)
	}
	alice := s.signIn("alice")
	status, _, body := s.call("GET", "/api/v1/users/me", alice, "")
	var me profile
	if status != 200 || json.Unmarshal(body, &me) != nil {
		t.Fatalf("users/me: %d %s", status, body)
	}
	if me.User.Email != "alice@example.com" || me.Tenant.ID == "" || me.Tenant.Role != "owner" ||
		len(me.Projects) != 1 || !me.Projects[0].IsDefault || me.Projects[0].Name != "default" {
		t.Fatalf("profile %+v: want alice's own tenant and its default project", me)
	}
	project := me.Projects[0].ID

	bob := s.signIn("bob")
	for _, c := range []struct{ method, path, hdr string }{
		{"GET", "/api/v1/users/me", project},
		{"GET", "/api/v1/projects/" + project + "/members", ""},
	} {
		var hdr []string
		if c.hdr != "" {
			hdr = []string{"X-Project-ID", c.hdr}
		}
		if status, _, body := s.call(c.method, c.path, bob, "", hdr...); status != 404 {
			t.Errorf("bob %s %s (alice's project): %d %s, want 404", c.method, c.path, status, body)
		}
	}
	if status, _, _ := s.call("GET", "/api/v1/admin/policies", bob, ""); status != 403 {
		t.Errorf("bob on an admin route: %d, want 403", status)
	}
	admin := s.signIn("admin")
	if status, _, body := s.call("PUT", "/api/v1/admin/policies", admin, `{"key":"ratelimit.mutate_per_minute","value":"500"}`); status != 200 {
		t.Fatalf("admin sets a policy: %d %s", status, body)
	}
	if status, _, body := s.call("GET", "/api/v1/admin/audit-log?action=auth.first_sign_in", admin, ""); status != 200 ||
		strings.Count(string(body), "auth.first_sign_in") != 3 {
		t.Fatalf("audit log: %d %s", status, body)
	}
	if status, _, body := s.call("GET", "/api/v1/admin/audit-log?action=policy.set", admin, ""); status != 200 ||
		!strings.Contains(string(body), `"new_value":"500"`) {
		t.Fatalf("policy change not audited: %d %s", status, body)
	}

	// Idempotency on the real store.
	st1, _, b1 := s.call("POST", "/api/v1/projects", alice, `{"name":"research"}`, "X-Idempotency-Key", "create-research")
	st2, h2, b2 := s.call("POST", "/api/v1/projects", alice, `{"name":"research"}`, "X-Idempotency-Key", "create-research")
	if st1 != 201 || st2 != 201 || h2.Get("Idempotent-Replayed") != "true" || !jsonEqual(b1, b2) {
		t.Fatalf("replay: %d %s / %d %v %s", st1, b1, st2, h2, b2)
	}
	if st, _, b := s.call("POST", "/api/v1/projects", alice, `{"name":"other"}`, "X-Idempotency-Key", "create-research"); st != 422 {
		t.Fatalf("reused key: %d %s", st, b)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
