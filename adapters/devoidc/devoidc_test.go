package devoidc_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/devoidc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/testkit/tokens"
	"github.com/gpuaas/gpuaas/testkit/tokens/signin"
)

// fakeClock is moved by tests instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// noRedirects is a client that shows redirects instead of following them.
func noRedirects(dev *tokens.DevOIDC) *http.Client {
	c := *dev.Server.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func verifierFor(t *testing.T, dev *tokens.DevOIDC) *oidc.Verifier {
	t.Helper()
	v, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: dev.Issuer(), Audience: dev.ClientID()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var te *tokens.TokenError
	if !errors.As(err, &te) || te.Code != code {
		t.Fatalf("error = %v, want OAuth error %q", err, code)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	dev := tokens.NewDevOIDC(t)
	resp, err := http.Get(dev.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"issuer":                 dev.Issuer(),
		"authorization_endpoint": dev.Issuer() + "/authorize",
		"token_endpoint":         dev.Issuer() + "/token",
		"jwks_uri":               dev.Issuer() + "/jwks",
		"revocation_endpoint":    dev.Issuer() + "/revoke",
		"end_session_endpoint":   dev.Issuer() + "/end_session",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %s", k, doc[k], v)
		}
	}
	if m, _ := doc["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v, want [S256]", m)
	}
	if !strings.HasPrefix(dev.Issuer(), "http://127.0.0.1:") || dev.PathPrefix() != tokens.DevOIDCPath {
		t.Errorf("issuer %s / prefix %s", dev.Issuer(), dev.PathPrefix())
	}
}

func TestCodeFlowWithPKCE(t *testing.T) {
	t.Parallel()
	dev := tokens.NewDevOIDC(t)
	v := verifierFor(t, dev)
	ctx := context.Background()

	tok := dev.SignIn(t, "alice", "alice")
	c, err := v.Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != devoidc.SubjectFor("alice") || c.Email != "alice@example.com" || c.Name != "Alice Example" || !slices.Equal(c.Roles, []string{"user"}) {
		t.Fatalf("claims = %+v", c)
	}
	if tok.ExpiresIn != 300 || tok.TokenType != "Bearer" || tok.IDToken == "" {
		t.Fatalf("token response: expires_in=%d type=%q id_token=%t", tok.ExpiresIn, tok.TokenType, tok.IDToken != "")
	}
	// Subjects are stable per user and distinct between users.
	if bob, _ := v.Verify(ctx, dev.SignIn(t, "bob", "bob").AccessToken); bob.Subject == c.Subject || bob.Subject != devoidc.SubjectFor("bob") {
		t.Fatalf("bob's subject %q", bob.Subject)
	}
}

func TestCodeRedemptionRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &fakeClock{t: time.Now()}
	dev := tokens.NewDevOIDC(t, func(c *devoidc.Config) { c.Clock = clock })
	login := func() (code, verifier string) {
		t.Helper()
		verifier, challenge := signin.NewPKCE()
		cb, err := dev.Login(ctx, "alice", "alice", "s", challenge)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		return cb.Code, verifier
	}

	t.Run("wrong verifier", func(t *testing.T) {
		code, _ := login()
		other, _ := signin.NewPKCE()
		_, err := dev.Exchange(ctx, code, other)
		wantOAuthError(t, err, "invalid_grant")
	})
	t.Run("missing verifier", func(t *testing.T) {
		code, _ := login()
		_, err := dev.Exchange(ctx, code, "")
		wantOAuthError(t, err, "invalid_request")
	})
	t.Run("wrong redirect uri", func(t *testing.T) {
		code, verifier := login()
		_, err := dev.PostToken(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"code_verifier": {verifier}, "redirect_uri": {"http://127.0.0.1/elsewhere"}})
		wantOAuthError(t, err, "invalid_grant")
	})
	t.Run("reuse revokes the first redemption", func(t *testing.T) {
		code, verifier := login()
		first, err := dev.Exchange(ctx, code, verifier)
		if err != nil {
			t.Fatal(err)
		}
		_, err = dev.Exchange(ctx, code, verifier)
		wantOAuthError(t, err, "invalid_grant")
		_, err = dev.Refresh(ctx, first.RefreshToken)
		wantOAuthError(t, err, "invalid_grant")
	})
	t.Run("expired code", func(t *testing.T) {
		code, verifier := login()
		clock.Advance(2 * time.Minute)
		_, err := dev.Exchange(ctx, code, verifier)
		wantOAuthError(t, err, "invalid_grant")
	})
}

func TestAuthorizeRequestValidation(t *testing.T) {
	t.Parallel()
	dev := tokens.NewDevOIDC(t)
	hc := noRedirects(dev)
	_, challenge := signin.NewPKCE()
	base := func() url.Values {
		return url.Values{"client_id": {dev.ClientID()}, "redirect_uri": {dev.RedirectURI}, "response_type": {"code"},
			"state": {"st"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	}
	cases := []struct {
		name   string
		change func(url.Values)
		status int
		error  string // error param on the redirect, for 302s
	}{
		{"valid shows the login page", func(url.Values) {}, http.StatusOK, ""},
		{"unknown client is not redirected", func(q url.Values) { q.Set("client_id", "evil") }, http.StatusBadRequest, ""},
		{"unregistered redirect is not redirected", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1/evil") }, http.StatusBadRequest, ""},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, http.StatusFound, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, http.StatusFound, "invalid_request"},
		{"short challenge", func(q url.Values) { q.Set("code_challenge", "abc") }, http.StatusFound, "invalid_request"},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "token") }, http.StatusFound, "unsupported_response_type"},
		{"prompt none", func(q url.Values) { q.Set("prompt", "none") }, http.StatusFound, "login_required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := base()
			tc.change(q)
			resp, err := hc.Get(dev.AuthorizationURL() + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == http.StatusFound {
				loc, _ := resp.Location()
				if !strings.HasPrefix(loc.String(), dev.RedirectURI) || loc.Query().Get("error") != tc.error || loc.Query().Get("state") != "st" {
					t.Fatalf("redirect = %s, want error %s with state", loc, tc.error)
				}
			}
		})
	}
}

func TestLoginForm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev := tokens.NewDevOIDC(t)
	strict := tokens.NewDevOIDC(t, func(c *devoidc.Config) { c.RequirePassword = true })

	_, challenge := signin.NewPKCE()
	if _, err := dev.Login(ctx, "alice", "wrong", "s", challenge); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := dev.Login(ctx, "mallory", "mallory", "s", challenge); err == nil {
		t.Fatal("unknown user signed in")
	}

	// One-click sign-in posts request_id and pick. A typed username takes
	// precedence (Enter in the password field also sends the first pick).
	pick := func(d *tokens.DevOIDC, extra ...string) *http.Response {
		t.Helper()
		hc := noRedirects(d)
		resp, err := hc.Get(d.AuthorizeURL("s", challenge))
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`name="` + devoidc.FieldRequestID + `"`, `name="` + devoidc.FieldUsername + `"`, `name="` + devoidc.FieldPassword + `"`, `id="` + devoidc.LoginFormID + `"`} {
			if !strings.Contains(string(page), want) {
				t.Fatalf("login page lacks %s", want)
			}
		}
		if strings.Contains(string(page), "<script") {
			t.Fatal("login page has a script")
		}
		id := string(page)[strings.Index(string(page), `name="request_id" value="`)+len(`name="request_id" value="`):]
		id = id[:strings.IndexByte(id, '"')]
		form := url.Values{devoidc.FieldRequestID: {id}, devoidc.FieldPick: {"bob"}}
		if len(extra) == 2 {
			form.Set(devoidc.FieldUsername, extra[0])
			form.Set(devoidc.FieldPassword, extra[1])
		}
		resp, err = hc.PostForm(d.Issuer()+"/login", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := pick(dev); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("pick: status %d, want 303", resp.StatusCode)
	} else if loc, _ := resp.Location(); loc.Query().Get("code") == "" || loc.Query().Get("iss") != dev.Issuer() {
		t.Fatalf("pick redirect %s", loc)
	}
	if resp := pick(dev, "alice", "wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("pick with a typed wrong password: status %d, want 401", resp.StatusCode)
	}
	if resp := pick(strict); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("pick with RequirePassword: status %d, want 401", resp.StatusCode)
	}

	// A request id is single use.
	hc := noRedirects(dev)
	resp, err := hc.PostForm(dev.Issuer()+"/login", url.Values{devoidc.FieldRequestID: {"made-up"}, devoidc.FieldUsername: {"alice"}, devoidc.FieldPassword: {"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown request id: status %d", resp.StatusCode)
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &fakeClock{t: time.Now()}
	dev := tokens.NewDevOIDC(t, func(c *devoidc.Config) { c.Clock = clock; c.RefreshTTL = time.Hour })
	v := verifierFor(t, dev)

	first := dev.SignIn(t, "alice", "alice")
	second, err := dev.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	if _, err := v.Verify(ctx, second.AccessToken); err != nil {
		t.Fatalf("Verify refreshed access token: %v", err)
	}
	third, err := dev.Refresh(ctx, second.RefreshToken)
	if err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	// Presenting a rotated token again is refused and ends the session.
	_, err = dev.Refresh(ctx, first.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	_, err = dev.Refresh(ctx, third.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")

	// Refresh tokens expire.
	fresh := dev.SignIn(t, "bob", "bob")
	clock.Advance(time.Hour + time.Second)
	_, err = dev.Refresh(ctx, fresh.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	_, err = dev.Refresh(ctx, "never-issued")
	wantOAuthError(t, err, "invalid_grant")
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev := tokens.NewDevOIDC(t)
	tok := dev.SignIn(t, "alice", "alice")
	revoke := func(form url.Values) int {
		t.Helper()
		resp, err := dev.Server.Client().PostForm(dev.RevocationURL(), form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := revoke(url.Values{"token": {tok.RefreshToken}, "client_id": {dev.ClientID()}}); s != http.StatusOK {
		t.Fatalf("revoke: %d", s)
	}
	_, err := dev.Refresh(ctx, tok.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	if s := revoke(url.Values{"token": {"unknown"}, "client_id": {dev.ClientID()}}); s != http.StatusOK {
		t.Fatalf("revoke unknown: %d, want 200 (RFC 7009)", s)
	}
	if s := revoke(url.Values{"token": {"x"}, "client_id": {"other"}}); s != http.StatusUnauthorized {
		t.Fatalf("revoke by another client: %d, want 401", s)
	}
}

func TestEndSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev := tokens.NewDevOIDC(t)
	hc := noRedirects(dev)
	tok := dev.SignIn(t, "alice", "alice")
	other := dev.SignIn(t, "alice", "alice")

	q := url.Values{"id_token_hint": {tok.IDToken}, "post_logout_redirect_uri": {dev.RedirectURI}, "state": {"bye"}}
	resp, err := hc.Get(dev.EndSessionURL() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("state") != "bye" {
		t.Fatalf("end_session: %d %v", resp.StatusCode, loc)
	}
	_, err = dev.Refresh(ctx, tok.RefreshToken)
	wantOAuthError(t, err, "invalid_grant")
	// Only that session ended.
	if _, err := dev.Refresh(ctx, other.RefreshToken); err != nil {
		t.Fatalf("other session: %v", err)
	}

	for name, q := range map[string]url.Values{
		"forged hint":             {"id_token_hint": {tok.IDToken + "x"}},
		"unregistered redirect":   {"post_logout_redirect_uri": {"http://127.0.0.1/evil"}},
		"access token is no hint": {"id_token_hint": {"a.b.c"}},
	} {
		resp, err := hc.Get(dev.EndSessionURL() + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
	}
	resp, err = hc.Get(dev.EndSessionURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("plain end_session: %d", resp.StatusCode)
	}
}

func TestPasswordGrant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev := tokens.NewDevOIDC(t)
	v := verifierFor(t, dev)
	tok, err := dev.PostToken(ctx, url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, tok.AccessToken)
	if err != nil || !slices.Equal(c.Roles, []string{"admin"}) {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	_, err = dev.PostToken(ctx, url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"nope"}})
	wantOAuthError(t, err, "invalid_grant")
	_, err = dev.PostToken(ctx, url.Values{"grant_type": {"client_credentials"}})
	wantOAuthError(t, err, "unsupported_grant_type")

	off := tokens.NewDevOIDC(t, func(c *devoidc.Config) { c.DisablePasswordGrant = true })
	_, err = off.PostToken(ctx, url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"admin"}})
	wantOAuthError(t, err, "unsupported_grant_type")
}

func TestSigningKeys(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.Signer{"RS256": rsaKey, "EdDSA": edKey} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dev := tokens.NewDevOIDC(t, func(c *devoidc.Config) { c.SigningKey = key })
			// Static keys: no HTTP for verification, as an in-process host may do.
			v, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: dev.Issuer(), Audience: dev.ClientID(),
				StaticKeys: []crypto.PublicKey{dev.PublicKey()}, Algorithms: []string{name}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(context.Background(), dev.SignIn(t, "alice", "alice").AccessToken); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestMountedBehindStripPrefix(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, err := devoidc.New(devoidc.Config{Issuer: srv.URL + "/auth/dev", RedirectURIs: []string{srv.URL + "/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/auth/dev/", http.StripPrefix("/auth/dev", p))
	for _, path := range []string{"/auth/dev/.well-known/openid-configuration", "/auth/dev/jwks"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(srv.URL + "/auth/dev/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL+"/auth/dev/jwks", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST jwks: %d", resp.StatusCode)
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	if _, err := devoidc.Serve(devoidc.Config{RedirectURIs: []string{"http://127.0.0.1/cb"}}, "0.0.0.0:0"); err == nil {
		t.Fatal("Serve on 0.0.0.0 was allowed")
	}
	s, err := devoidc.Serve(devoidc.Config{RedirectURIs: []string{"http://127.0.0.1/cb"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	if !strings.HasPrefix(s.Issuer(), "http://127.0.0.1:") {
		t.Fatalf("issuer %s", s.Issuer())
	}
	v, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: s.Issuer(), Audience: devoidc.DefaultClientID})
	if err != nil {
		t.Fatal(err)
	}
	// Discovery works against the standalone listener: the verifier fails
	// only on the token, not on reaching the issuer.
	if _, err := v.Verify(context.Background(), "a.b.c"); err == nil || !strings.Contains(err.Error(), "token_invalid") {
		t.Fatalf("Verify = %v, want token_invalid", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	ok := func() devoidc.Config {
		return devoidc.Config{Issuer: "http://127.0.0.1:8080/dev-oidc", RedirectURIs: []string{"http://127.0.0.1:8080/cb"}}
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(*devoidc.Config)
		ok     bool
	}{
		{"defaults", func(*devoidc.Config) {}, true},
		{"no issuer", func(c *devoidc.Config) { c.Issuer = "" }, false},
		{"trailing slash", func(c *devoidc.Config) { c.Issuer += "/" }, false},
		{"no redirect", func(c *devoidc.Config) { c.RedirectURIs = nil }, false},
		{"relative redirect", func(c *devoidc.Config) { c.RedirectURIs = []string{"/cb"} }, false},
		{"duplicate user", func(c *devoidc.Config) {
			c.Users = []devoidc.DemoUser{{Username: "a", Password: "a"}, {Username: "a", Password: "b"}}
		}, false},
		{"user without password", func(c *devoidc.Config) { c.Users = []devoidc.DemoUser{{Username: "a"}} }, false},
		{"weak RSA key", func(c *devoidc.Config) { c.SigningKey = small }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok()
			tc.change(&cfg)
			err := cfg.CheckAndSetDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("CheckAndSetDefaults() = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (cfg.ClientID != devoidc.DefaultClientID || len(cfg.Users) != 3 || cfg.SigningKey == nil || cfg.AccessTTL != 5*time.Minute) {
				t.Fatalf("defaults not applied: %+v", cfg)
			}
		})
	}
}

func TestModule(t *testing.T) {
	t.Parallel()
	var p *devoidc.Provider
	app := fx.New(fx.NopLogger,
		fx.Supply(devoidc.Config{Issuer: "http://127.0.0.1:8080/dev-oidc", RedirectURIs: []string{"http://127.0.0.1:8080/auth/callback"}}),
		devoidc.Module, fx.Populate(&p))
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if p.PathPrefix() != "/dev-oidc" || p.Issuer() != "http://127.0.0.1:8080/dev-oidc" {
		t.Fatalf("provider %s %s", p.Issuer(), p.PathPrefix())
	}
}

// TestLoopbackRedirects: a native app's loopback redirect (any port) is
// admitted only when the provider allows them.
func TestLoopbackRedirects(t *testing.T) {
	t.Parallel()
	_, challenge := signin.NewPKCE()
	for _, allow := range []bool{false, true} {
		dev := tokens.NewDevOIDC(t, func(c *devoidc.Config) { c.AllowLoopbackRedirects = allow })
		hc := noRedirects(dev)
		for uri, ok := range map[string]bool{"http://127.0.0.1:49213/callback": allow, "http://localhost:49213/callback": false,
			"http://127.0.0.1:49213/other": false} {
			q := url.Values{"client_id": {dev.ClientID()}, "redirect_uri": {uri}, "response_type": {"code"},
				"state": {"st"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			resp, err := hc.Get(dev.AuthorizationURL() + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.StatusCode == http.StatusOK; got != ok {
				t.Errorf("allow=%v %s: status %d", allow, uri, resp.StatusCode)
			}
		}
	}
}
