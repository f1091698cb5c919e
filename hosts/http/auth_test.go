package httphost

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

func TestAuthentication401(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	type tc struct {
		name, header, code string
	}
	cases := []tc{
		{"no header", "", "token_missing"},
		{"empty bearer", "Bearer ", "token_missing"},
		{"basic scheme", "Basic dXNlcjpwdw==", "token_invalid"},
		{"garbage", "Bearer not-a-jwt", "token_invalid"},
	}
	for _, f := range tokens.Forgeries {
		code := "token_invalid"
		if f == tokens.ForgeExpired {
			code = "token_expired"
		}
		cases = append(cases, tc{"forged " + string(f), "Bearer " + h.iss.Forge(t, f), code})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			hdr := map[string]string{}
			if c.header != "" {
				hdr["Authorization"] = c.header
			}
			r := h.do(req{method: "GET", path: "/api/v1/users/me", header: hdr})
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", r.status, r.body)
			}
			if e := r.errBody(t); e.Code != c.code {
				t.Fatalf("code %q, want %q", e.Code, c.code)
			}
		})
	}
	if r := h.do(req{method: "GET", path: "/api/v1/users/me", bearer: h.token("ok")}); r.status != 200 {
		t.Fatalf("valid token: %d %s", r.status, r.body)
	}
}

func TestUsersMe(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	m := h.me(h.token("alice"))
	if m.User.Email != "alice@example.com" || m.User.Role != "user" || m.Tenant.Role != "owner" {
		t.Fatalf("profile %+v", m)
	}
	if len(m.Projects) != 1 || !m.Projects[0].IsDefault || m.Projects[0].Role != "admin" {
		t.Fatalf("projects %+v, want the default project with role admin", m.Projects)
	}
	wantProject := "core42:aicloud::" + m.Tenant.ID + ":" + m.Projects[0].ID + ":project:" + m.Projects[0].ID
	if m.Projects[0].ResourceID != wantProject || m.Tenant.ResourceID != "core42:aicloud::"+m.Tenant.ID+"::tenant:"+m.Tenant.ID ||
		m.User.ResourceID != "core42:aicloud::::user:"+m.User.ID {
		t.Fatalf("resource ids: user %q tenant %q project %q", m.User.ResourceID, m.Tenant.ResourceID, m.Projects[0].ResourceID)
	}
}

// TestTenantIsolation: another tenant's project is 404, never 403, through
// the header and the path alike.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	alice, bob := h.token("alice"), h.token("bob")
	aliceProject := h.me(alice).defaultProject(t)
	bobProject := h.me(bob).defaultProject(t)

	cases := []struct {
		name string
		rq   req
		want int
	}{
		{"own project via header", req{method: "GET", path: "/api/v1/users/me", bearer: alice,
			header: map[string]string{"X-Project-ID": aliceProject}}, 200},
		{"other tenant via header", req{method: "GET", path: "/api/v1/users/me", bearer: bob,
			header: map[string]string{"X-Project-ID": aliceProject}}, 404},
		{"unknown project via header", req{method: "GET", path: "/api/v1/projects", bearer: bob,
			header: map[string]string{"X-Project-ID": "does-not-exist"}}, 404},
		{"own members", req{method: "GET", path: "/api/v1/projects/" + aliceProject + "/members", bearer: alice}, 200},
		{"other tenant members", req{method: "GET", path: "/api/v1/projects/" + aliceProject + "/members", bearer: bob}, 404},
		{"other tenant add member (tenant admin elsewhere)", req{method: "POST",
			path: "/api/v1/projects/" + aliceProject + "/members", bearer: bob,
			body: `{"user_id":"x","role":"member"}`}, 404},
		{"other tenant remove member", req{method: "DELETE",
			path: "/api/v1/projects/" + bobProject + "/members/someone", bearer: alice}, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(c.rq)
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %s", r.status, c.want, r.body)
			}
			if c.want == 404 && r.errBody(t).Code != "not_found" {
				t.Fatalf("code %q, want not_found", r.errBody(t).Code)
			}
		})
	}
}

// TestTenantRoles: a plain member of a tenant is 403 on tenant-admin routes
// and can read their project's members.
func TestTenantRoles(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	owner := h.token("owner")
	project := h.me(owner).defaultProject(t)
	r := h.do(req{method: "POST", path: "/api/v1/tenant/invitations", bearer: owner,
		body: `{"email":" Member@Example.com ","role":"member"}`})
	if r.status != 201 || !strings.Contains(string(r.body), `"email":"member@example.com"`) {
		t.Fatalf("invite: %d %s", r.status, r.body)
	}
	member := h.token("member")
	m := h.me(member)
	if m.Tenant.Role != "member" || m.defaultProject(t) != project {
		t.Fatalf("invited member joined %+v", m)
	}
	for _, rq := range []req{
		{method: "POST", path: "/api/v1/projects", bearer: member, body: `{"name":"p"}`},
		{method: "POST", path: "/api/v1/tenant/invitations", bearer: member, body: `{"email":"x@example.com","role":"member"}`},
		{method: "POST", path: "/api/v1/projects/" + project + "/members", bearer: member, body: `{"user_id":"u","role":"member"}`},
		{method: "DELETE", path: "/api/v1/projects/" + project + "/members/" + m.User.ID, bearer: member},
	} {
		if r := h.do(rq); r.status != 403 || r.errBody(t).Code != "forbidden" {
			t.Errorf("%s %s as member: %d %s, want 403 forbidden", rq.method, rq.path, r.status, r.body)
		}
	}
	if r := h.do(req{method: "GET", path: "/api/v1/projects/" + project + "/members", bearer: member}); r.status != 200 ||
		!strings.Contains(string(r.body), m.User.ID) {
		t.Fatalf("member lists members: %d %s", r.status, r.body)
	}
	// The owner manages members.
	r = h.do(req{method: "DELETE", path: "/api/v1/projects/" + project + "/members/" + m.User.ID, bearer: owner})
	if r.status != 204 {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	r = h.do(req{method: "POST", path: "/api/v1/projects/" + project + "/members", bearer: owner,
		body: `{"user_id":"` + m.User.ID + `","role":"viewer"}`})
	if r.status != 201 || !strings.Contains(string(r.body), `"role":"viewer"`) {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	r = h.do(req{method: "POST", path: "/api/v1/projects", bearer: owner, body: `{"name":"research"}`})
	if r.status != 201 || !strings.Contains(string(r.body), `"name":"research"`) {
		t.Fatalf("create project: %d %s", r.status, r.body)
	}
	if r := h.do(req{method: "GET", path: "/api/v1/projects", bearer: owner}); !strings.Contains(string(r.body), "research") {
		t.Fatalf("list projects: %s", r.body)
	}
}

func TestProjectRequired(t *testing.T) {
	t.Parallel()
	// No current route takes its project from the header alone; exercise the
	// rule on a synthetic route of that kind.
	h := newHarness(t)
	tok := h.token("alice")
	h.me(tok)
	h.srv.routes[routeKey("GET", "/api/v1/users/me")].Authz = AuthzProjectMember
	r := h.do(req{method: "GET", path: "/api/v1/users/me", bearer: tok})
	if r.status != 400 || r.errBody(t).Code != "project_required" {
		t.Fatalf("status %d %s, want 400 project_required", r.status, r.body)
	}
}

func TestAdminRoutes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	user, admin := h.token("alice"), h.adminToken("root")
	routes := []req{
		{method: "GET", path: "/api/v1/admin/audit-log"},
		{method: "GET", path: "/api/v1/admin/policies"},
		{method: "PUT", path: "/api/v1/admin/policies", body: `{"key":"auth.personal_login_enabled","value":"true"}`},
	}
	for _, rq := range routes {
		rq.bearer = user
		if r := h.do(rq); r.status != 403 || r.errBody(t).Code != "forbidden" {
			t.Errorf("%s %s as user: %d %s, want 403", rq.method, rq.path, r.status, r.body)
		}
		rq.bearer = ""
		if r := h.do(rq); r.status != 401 {
			t.Errorf("%s %s anonymous: %d, want 401", rq.method, rq.path, r.status)
		}
		rq.bearer = admin
		if r := h.do(rq); r.status != 200 {
			t.Errorf("%s %s as admin: %d %s, want 200", rq.method, rq.path, r.status, r.body)
		}
	}
	r := h.do(req{method: "GET", path: "/api/v1/admin/policies", bearer: admin})
	var pl struct {
		Policies []struct{ Key, Value, Type string } `json:"policies"`
	}
	r.json(t, &pl)
	if len(pl.Policies) != len(policy.Keys()) {
		t.Fatalf("%d policies, want %d", len(pl.Policies), len(policy.Keys()))
	}
	for _, p := range pl.Policies {
		if p.Key == policy.PersonalLoginEnabled.Name && p.Value != "true" {
			t.Fatalf("personal login = %q after PUT, want true", p.Value)
		}
	}
	for _, c := range []struct{ body, field string }{
		{`{"key":"no.such.key","value":"1"}`, "key"},
		{`{"key":"ratelimit.default_per_minute","value":"-1"}`, "value"},
	} {
		r := h.do(req{method: "PUT", path: "/api/v1/admin/policies", bearer: admin, body: c.body})
		if r.status != 400 || r.errBody(t).Field != c.field {
			t.Errorf("PUT %s: %d %s, want 400 on %s", c.body, r.status, r.body, c.field)
		}
	}
	// The audit log shows the first sign-ins; filters and bad parameters.
	r = h.do(req{method: "GET", path: "/api/v1/admin/audit-log?action=auth.first_sign_in&limit=10", bearer: admin})
	if r.status != 200 || !strings.Contains(string(r.body), "auth.first_sign_in") {
		t.Fatalf("audit log: %d %s", r.status, r.body)
	}
	for _, q := range []string{"limit=0", "limit=abc", "since=yesterday"} {
		r := h.do(req{method: "GET", path: "/api/v1/admin/audit-log?" + q, bearer: admin})
		if r.status != 400 || r.errBody(t).Code != "validation_failed" {
			t.Errorf("?%s: %d %s, want 400", q, r.status, r.body)
		}
	}
}

// TestOIDCSignIn walks authorize → exchange → refresh → logout with the
// stand-in provider.
func TestOIDCSignIn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.do(req{method: "GET", path: "/api/v1/auth/oidc/authorize?redirect_uri=" + url.QueryEscape("https://evil.example.com/cb")})
	if r.status != 400 || r.errBody(t).Field != "redirect_uri" {
		t.Fatalf("foreign redirect_uri: %d %s", r.status, r.body)
	}
	if r := h.do(req{method: "GET", path: "/api/v1/auth/oidc/authorize"}); r.status != 400 || r.errBody(t).Field != "redirect_uri" {
		t.Fatalf("missing redirect_uri: %d %s", r.status, r.body)
	}
	r = h.do(req{method: "GET", path: "/api/v1/auth/oidc/authorize?redirect_uri=" + url.QueryEscape(testRedirect)})
	if r.status != http.StatusFound {
		t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), stubIdPAuthorize) {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
	state := loc.Query().Get("state")
	if len(state) != 43 || loc.Query().Get("code_challenge_method") != "S256" || len(loc.Query().Get("code_challenge")) != 43 {
		t.Fatalf("authorize URL %s: want a 32-byte state and an S256 challenge", loc)
	}
	code := h.idp.approve(state, "carol")

	exchange := func(body string) response {
		return h.do(req{method: "POST", path: "/api/v1/auth/oidc/exchange", body: body})
	}
	if r := exchange(`{"code":"` + code + `","state":"` + state + `","redirect_uri":"https://console.example.com/other"}`); r.status != 400 ||
		r.errBody(t).Field != "redirect_uri" {
		t.Fatalf("mismatched redirect_uri: %d %s", r.status, r.body)
	}
	// The mismatch consumed the state: a sign-in attempt is single-use.
	r = h.do(req{method: "GET", path: "/api/v1/auth/oidc/authorize?redirect_uri=" + url.QueryEscape(testRedirect)})
	loc, _ = url.Parse(r.header.Get("Location"))
	state = loc.Query().Get("state")
	code = h.idp.approve(state, "carol")
	body := `{"code":"` + code + `","state":"` + state + `","redirect_uri":"` + testRedirect + `"}`
	r = exchange(body)
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
		TokenType    string `json:"token_type"`
		User         struct{ Email string }
	}
	r.json(t, &tr)
	if tr.TokenType != "Bearer" || tr.ExpiresIn != 300 || tr.User.Email != "carol@example.com" || tr.AccessToken == "" {
		t.Fatalf("token response %+v", tr)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token response Cache-Control %q", r.header.Get("Cache-Control"))
	}
	cookie := refreshCookieOf(t, r)
	if cookie.Value != tr.RefreshToken || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode ||
		cookie.Path != "/api/v1/auth" {
		t.Fatalf("refresh cookie %+v", cookie)
	}
	if m := h.me(tr.AccessToken); m.User.Email != "carol@example.com" || len(m.Projects) != 1 {
		t.Fatalf("signed-in profile %+v", m)
	}
	if r := exchange(body); r.status != 400 || r.errBody(t).Field != "state" {
		t.Fatalf("replayed state: %d %s, want 400 on state", r.status, r.body)
	}

	// Refresh from the cookie, then from the body.
	r = h.do(req{method: "POST", path: "/api/v1/auth/token/refresh", cookies: []*http.Cookie{cookie}})
	if r.status != 200 {
		t.Fatalf("refresh via cookie: %d %s", r.status, r.body)
	}
	next := refreshCookieOf(t, r)
	if r := h.do(req{method: "POST", path: "/api/v1/auth/token/refresh", cookies: []*http.Cookie{cookie}}); r.status != 401 {
		t.Fatalf("rotated-out refresh token: %d, want 401", r.status)
	}
	r = h.do(req{method: "POST", path: "/api/v1/auth/token/refresh", body: `{"refresh_token":"` + next.Value + `"}`})
	if r.status != 200 {
		t.Fatalf("refresh via body: %d %s", r.status, r.body)
	}
	if r := h.do(req{method: "POST", path: "/api/v1/auth/token/refresh"}); r.status != 401 || r.errBody(t).Code != "token_missing" {
		t.Fatalf("refresh without token: %d %s", r.status, r.body)
	}
	last := refreshCookieOf(t, r)
	r = h.do(req{method: "POST", path: "/api/v1/auth/logout", cookies: []*http.Cookie{last}})
	if r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if c := refreshCookieOf(t, r); c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("logout cookie %+v, want it cleared", c)
	}
	h.idp.mu.Lock()
	revoked := strings.Join(h.idp.revoked, ",")
	h.idp.mu.Unlock()
	if revoked != last.Value {
		t.Fatalf("revoked %q, want %q", revoked, last.Value)
	}
	if r := h.do(req{method: "POST", path: "/api/v1/auth/logout"}); r.status != 204 {
		t.Fatalf("logout without a token: %d", r.status)
	}
}

// TestLogoutSignsOutTheAccessToken: the access token presented to logout
// is refused from then on (it used to work until it expired); another
// session's token is untouched, and a logout without one, or with a forged
// one, still succeeds.
func TestLogoutSignsOutTheAccessToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	session := h.token("dave", tokens.Set("jti", "session-1"))
	other := h.token("dave", tokens.Set("jti", "session-2"))
	h.me(session)
	r := h.do(req{method: "POST", path: "/api/v1/auth/logout", bearer: session})
	if r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	r = h.do(req{method: "GET", path: "/api/v1/users/me", bearer: session})
	if e := r.errBody(t); r.status != 401 || e.Code != "token_invalid" {
		t.Fatalf("the signed-out token: %d %s", r.status, r.body)
	}
	h.me(other)
	if r := h.do(req{method: "POST", path: "/api/v1/auth/logout", bearer: session[:len(session)-3] + "xyz"}); r.status != 204 {
		t.Fatalf("logout with a forged token: %d %s", r.status, r.body)
	}
	h.me(other)
}

func refreshCookieOf(t *testing.T, r response) *http.Cookie {
	t.Helper()
	for _, c := range r.cookie {
		if c.Name == RefreshCookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", RefreshCookieName, r.header["Set-Cookie"])
	return nil
}

func TestPersonalLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	body := `{"username":"dave","password":"pw-dave"}`
	r := h.do(req{method: "POST", path: "/api/v1/auth/personal/login", body: body})
	if r.status != 403 || r.errBody(t).Code != "feature_disabled" {
		t.Fatalf("disabled: %d %s, want 403 feature_disabled", r.status, r.body)
	}
	h.store.setPolicy(policy.PersonalLoginEnabled, "true")
	if r := h.do(req{method: "POST", path: "/api/v1/auth/personal/login", body: body}); r.status != 200 {
		t.Fatalf("enabled: %d %s", r.status, r.body)
	}
	r = h.do(req{method: "POST", path: "/api/v1/auth/personal/login", body: `{"username":"dave","password":"wrong"}`})
	if r.status != 401 || r.errBody(t).Code != "token_invalid" {
		t.Fatalf("wrong password: %d %s", r.status, r.body)
	}
	if r := h.do(req{method: "POST", path: "/api/v1/auth/personal/login", body: `{"username":"dave"}`}); r.status != 400 ||
		r.errBody(t).Field != "password" {
		t.Fatalf("missing password: %d %s", r.status, r.body)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	preflight := func(origin string) response {
		return h.do(req{method: "OPTIONS", path: "/api/v1/users/me", header: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "GET",
			"Access-Control-Request-Headers": "authorization"}})
	}
	r := preflight(testOrigin)
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != testOrigin ||
		r.header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("allowed preflight: %d %v", r.status, r.header)
	}
	r = preflight("https://evil.example.com")
	if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign preflight: %d %v", r.status, r.header)
	}
	r = h.do(req{method: "GET", path: "/api/v1/healthz", header: map[string]string{"Origin": "https://evil.example.com"}})
	if r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("foreign simple request got CORS headers: %v", r.header)
	}
	r = h.do(req{method: "GET", path: "/api/v1/healthz", header: map[string]string{"Origin": testOrigin}})
	if r.header.Get("Access-Control-Allow-Origin") != testOrigin || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "X-Correlation-ID") {
		t.Fatalf("allowed simple request: %v", r.header)
	}
}
