package oidc_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/devoidc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/tokens"
	"github.com/gpuaas/gpuaas/testkit/tokens/signin"
)

// devPair is the dev provider with the production client and verifier
// pointed at it, all discovering endpoints over HTTP.
type devPair struct {
	dev      *tokens.DevOIDC
	client   *oidc.Client
	verifier *oidc.Verifier
}

func newDevPair(t *testing.T, configure ...func(*devoidc.Config)) devPair {
	t.Helper()
	dev := tokens.NewDevOIDC(t, configure...)
	c, err := oidc.NewClient(oidc.ClientConfig{Issuer: dev.Issuer(), ClientID: dev.ClientID(), HTTPClient: dev.Server.Client()})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	v, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: dev.Issuer(), Audience: dev.ClientID(), HTTPClient: dev.Server.Client()})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return devPair{dev: dev, client: c, verifier: v}
}

// signIn runs the browser part against the URL the client built and
// exchanges the code through the client.
func (p devPair) signIn(t *testing.T, user string) ports.Tokens {
	t.Helper()
	ctx := context.Background()
	verifier, challenge := signin.NewPKCE()
	start := p.client.AuthCodeURL("st-1", challenge, p.dev.RedirectURI)
	cb, err := signin.Login(ctx, signin.Params{StartURL: start, RedirectURI: p.dev.RedirectURI, Username: user, Password: user})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if cb.State != "st-1" {
		t.Fatalf("state = %q", cb.State)
	}
	tok, err := p.client.Exchange(ctx, cb.Code, verifier, p.dev.RedirectURI)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

func TestClientAuthCodeURL(t *testing.T) {
	t.Parallel()
	p := newDevPair(t)
	raw := p.client.AuthCodeURL("the-state", "the-challenge", "http://127.0.0.1/cb")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"client_id": devoidc.DefaultClientID, "redirect_uri": "http://127.0.0.1/cb", "response_type": "code",
		"state": "the-state", "code_challenge": "the-challenge", "code_challenge_method": "S256",
		"scope": "openid profile email",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != p.dev.AuthorizationURL() {
		t.Errorf("endpoint = %s, want %s", got, p.dev.AuthorizationURL())
	}
	if got := p.client.AuthCodeURL("s", "", "http://127.0.0.1/cb"); got != "" {
		t.Errorf("AuthCodeURL without a challenge = %q, want empty", got)
	}
}

func TestClientFullFlowAgainstDevProvider(t *testing.T) {
	t.Parallel()
	p := newDevPair(t)
	ctx := context.Background()
	tok := p.signIn(t, "admin")
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "" || tok.ExpiresIn <= 0 || tok.TokenType != "Bearer" {
		t.Fatalf("tokens incomplete: access=%t refresh=%t id=%t expires_in=%d type=%q",
			tok.AccessToken != "", tok.RefreshToken != "", tok.IDToken != "", tok.ExpiresIn, tok.TokenType)
	}
	claims, err := p.verifier.Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.Subject != devoidc.SubjectFor("admin") || claims.Email != "admin@example.com" || !slices.Equal(claims.Roles, []string{"admin"}) || claims.Issuer != p.dev.Issuer() {
		t.Fatalf("claims = %+v", claims)
	}
	// The ID token has aud = client id too, but it is not an access token.
	_, err = p.verifier.Verify(ctx, tok.IDToken)
	wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)

	// Refresh rotates; the old refresh token is then refused.
	next, err := p.client.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh token was not rotated")
	}
	if _, err := p.verifier.Verify(ctx, next.AccessToken); err != nil {
		t.Fatalf("Verify refreshed: %v", err)
	}
	_, err = p.client.Refresh(ctx, tok.RefreshToken)
	wantSessionEnded(t, err)
	// Reuse revoked the session: the newest refresh token is dead too, and
	// the answer says the session was ended and to sign in again.
	_, err = p.client.Refresh(ctx, next.RefreshToken)
	wantSessionEnded(t, err)
}

// wantSessionEnded checks a refused refresh: 401 session_ended with a message
// that tells the user to sign in again.
func wantSessionEnded(t *testing.T, err error) {
	t.Helper()
	wantFault(t, err, fault.KindUnauthenticated, oidc.CodeSessionEnded)
	var fe *fault.Error
	if errors.As(err, &fe); !strings.Contains(fe.Message, "session has ended") || !strings.Contains(fe.Message, "sign in again") {
		t.Fatalf("message %q does not say the session ended and to sign in again", fe.Message)
	}
}

func TestClientExchangeRefusesWrongVerifier(t *testing.T) {
	t.Parallel()
	p := newDevPair(t)
	ctx := context.Background()
	_, challenge := signin.NewPKCE()
	cb, err := signin.Login(ctx, signin.Params{StartURL: p.client.AuthCodeURL("s", challenge, p.dev.RedirectURI),
		RedirectURI: p.dev.RedirectURI, Username: "alice", Password: "alice"})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	other, _ := signin.NewPKCE()
	_, err = p.client.Exchange(ctx, cb.Code, other, p.dev.RedirectURI)
	wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)
	_, err = p.client.Exchange(ctx, cb.Code, "", p.dev.RedirectURI)
	wantFault(t, err, fault.KindInvalid, fault.CodeValidationFailed)
}

func TestClientRevoke(t *testing.T) {
	t.Parallel()
	p := newDevPair(t)
	ctx := context.Background()
	tok := p.signIn(t, "bob")
	if err := p.client.Revoke(ctx, tok.RefreshToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	_, err := p.client.Refresh(ctx, tok.RefreshToken)
	wantSessionEnded(t, err)
	// Unknown and empty tokens are not errors (RFC 7009).
	if err := p.client.Revoke(ctx, "no-such-token"); err != nil {
		t.Fatalf("Revoke unknown: %v", err)
	}
	if err := p.client.Revoke(ctx, ""); err != nil {
		t.Fatalf("Revoke empty: %v", err)
	}
}

func TestClientRevokeWithoutEndpointIsNoop(t *testing.T) {
	t.Parallel()
	dev := tokens.NewDevOIDC(t)
	c, err := oidc.NewClient(oidc.ClientConfig{Issuer: dev.Issuer(), ClientID: dev.ClientID(),
		Endpoints: &oidc.Endpoints{AuthURL: dev.AuthorizationURL(), TokenURL: dev.TokenURL()}})
	if err != nil {
		t.Fatal(err)
	}
	tok := dev.SignIn(t, "alice", "alice")
	if err := c.Revoke(context.Background(), tok.RefreshToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	// Nothing was revoked: the static endpoints name no revocation URL.
	if _, err := c.Refresh(context.Background(), tok.RefreshToken); err != nil {
		t.Fatalf("Refresh after no-op revoke: %v", err)
	}
}

func TestClientPasswordLogin(t *testing.T) {
	t.Parallel()
	p := newDevPair(t)
	ctx := context.Background()
	tok, err := p.client.PasswordLogin(ctx, "alice", "alice")
	if err != nil {
		t.Fatalf("PasswordLogin: %v", err)
	}
	if c, err := p.verifier.Verify(ctx, tok.AccessToken); err != nil || c.Subject != devoidc.SubjectFor("alice") {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	_, err = p.client.PasswordLogin(ctx, "alice", "wrong")
	wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)
	_, err = p.client.PasswordLogin(ctx, "nobody", "nobody")
	wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)

	off := newDevPair(t, func(c *devoidc.Config) { c.DisablePasswordGrant = true })
	_, err = off.client.PasswordLogin(ctx, "alice", "alice")
	wantFault(t, err, fault.KindForbidden, fault.CodeFeatureDisabled)
}

func TestClientConfidential(t *testing.T) {
	t.Parallel()
	dev := tokens.NewDevOIDC(t, func(c *devoidc.Config) { c.ClientSecret = "s3cret" })
	ctx := context.Background()
	for _, tc := range []struct {
		secret string
		ok     bool
	}{{"s3cret", true}, {"wrong", false}} {
		c, err := oidc.NewClient(oidc.ClientConfig{Issuer: dev.Issuer(), ClientID: dev.ClientID(), ClientSecret: tc.secret})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.PasswordLogin(ctx, "bob", "bob")
		if tc.ok {
			if err != nil {
				t.Fatalf("secret %q: %v", tc.secret, err)
			}
			continue
		}
		// invalid_client is our misconfiguration, not the user's fault.
		wantFault(t, err, fault.KindInternal, fault.CodeInternal)
	}
}

func TestClientUnreachableIssuer(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(nil)
	dead.Close()
	c, err := oidc.NewClient(oidc.ClientConfig{Issuer: dead.URL, ClientID: "gpuaas"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Refresh(ctx, "rt")
	wantFault(t, err, fault.KindUnavailable, fault.CodeUnavailable)
	wantFault(t, c.Check(ctx), fault.KindUnavailable, fault.CodeUnavailable)
	if got := c.AuthCodeURL("s", "c", "http://127.0.0.1/cb"); got != "" {
		t.Fatalf("AuthCodeURL = %q, want empty when the issuer is down", got)
	}
	// With static endpoints the token call itself fails on the network.
	c2, err := oidc.NewClient(oidc.ClientConfig{Issuer: dead.URL, ClientID: "gpuaas",
		Endpoints: &oidc.Endpoints{AuthURL: dead.URL + "/auth", TokenURL: dead.URL + "/token", RevocationURL: dead.URL + "/revoke"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c2.PasswordLogin(ctx, "a", "b")
	wantFault(t, err, fault.KindUnavailable, fault.CodeUnavailable)
	wantFault(t, c2.Revoke(ctx, "rt"), fault.KindUnavailable, fault.CodeUnavailable)
}

func TestClientConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  oidc.ClientConfig
		ok   bool
	}{
		{"ok", oidc.ClientConfig{Issuer: "https://sso.example.com", ClientID: "gpuaas"}, true},
		{"no client", oidc.ClientConfig{Issuer: "https://sso.example.com"}, false},
		{"no issuer", oidc.ClientConfig{ClientID: "gpuaas"}, false},
		{"issuer with query", oidc.ClientConfig{Issuer: "https://sso.example.com?x=1", ClientID: "gpuaas"}, false},
		{"partial endpoints", oidc.ClientConfig{Issuer: "https://sso.example.com", ClientID: "gpuaas", Endpoints: &oidc.Endpoints{AuthURL: "https://sso.example.com/auth"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			if err := cfg.CheckAndSetDefaults(); (err == nil) != tc.ok {
				t.Fatalf("CheckAndSetDefaults() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
