package tokens

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/devoidc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/tokens/signin"
)

// DevOIDCPath is where NewDevOIDC mounts the provider on its test server, so
// tests also cover mounting under a path prefix as `gpuaas dev` does.
const DevOIDCPath = "/dev-oidc"

// DevOIDC is the real dev provider on an httptest server on 127.0.0.1.
type DevOIDC struct {
	*devoidc.Provider
	// RedirectURI is the registered callback. Nothing listens there: the
	// sign-in driver stops at the redirect.
	RedirectURI string
	// Server is the test server; its URL is the origin of Issuer().
	Server *httptest.Server
}

// NewDevOIDC starts the dev provider with the default demo users (alice,
// bob, admin; password = username) at <server>/dev-oidc. configure may
// change the config before the provider is built (users, TTLs, clock, …).
func NewDevOIDC(t testing.TB, configure ...func(*devoidc.Config)) *DevOIDC {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	redirect := srv.URL + "/callback"
	cfg := devoidc.Config{Issuer: srv.URL + DevOIDCPath, RedirectURIs: []string{redirect}}
	for _, c := range configure {
		c(&cfg)
	}
	p, err := devoidc.New(cfg)
	if err != nil {
		t.Fatalf("tokens: dev provider: %v", err)
	}
	mux.Handle(p.PathPrefix()+"/", p)
	mux.HandleFunc("/callback", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "the sign-in driver should have stopped at the redirect", http.StatusTeapot)
	})
	return &DevOIDC{Provider: p, RedirectURI: redirect, Server: srv}
}

// AuthorizeURL is the provider's authorization URL for the code flow with
// PKCE S256.
func (d *DevOIDC) AuthorizeURL(state, challenge string) string {
	q := url.Values{
		"client_id":             {d.ClientID()},
		"redirect_uri":          {d.RedirectURI},
		"response_type":         {"code"},
		"scope":                 {"openid profile email"},
		"state":                 {state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	return d.AuthorizationURL() + "?" + q.Encode()
}

// Login drives the login page for username and returns the callback (code
// and state), without exchanging the code.
func (d *DevOIDC) Login(ctx context.Context, username, password, state, challenge string) (signin.Callback, error) {
	return signin.Login(ctx, signin.Params{
		StartURL:    d.AuthorizeURL(state, challenge),
		RedirectURI: d.RedirectURI,
		Username:    username,
		Password:    password,
		HTTPClient:  d.Server.Client(),
	})
}

// SignInContext performs the whole authorization-code + PKCE sign-in (GET
// authorize → POST login form → callback → token exchange) and returns the
// tokens.
func (d *DevOIDC) SignInContext(ctx context.Context, username, password string) (ports.Tokens, error) {
	verifier, challenge := signin.NewPKCE()
	state, _ := signin.NewPKCE() // any unguessable string will do
	cb, err := d.Login(ctx, username, password, state, challenge)
	if err != nil {
		return ports.Tokens{}, err
	}
	if cb.State != state {
		return ports.Tokens{}, fmt.Errorf("tokens: state changed in flight")
	}
	return d.Exchange(ctx, cb.Code, verifier)
}

// SignIn is SignInContext that fails the test on error.
func (d *DevOIDC) SignIn(t testing.TB, username, password string) ports.Tokens {
	t.Helper()
	tok, err := d.SignInContext(context.Background(), username, password)
	if err != nil {
		t.Fatalf("tokens: sign in %q: %v", username, err)
	}
	return tok
}

// Exchange redeems a code at the token endpoint.
func (d *DevOIDC) Exchange(ctx context.Context, code, verifier string) (ports.Tokens, error) {
	return d.PostToken(ctx, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {d.RedirectURI},
	})
}

// Refresh redeems a refresh token.
func (d *DevOIDC) Refresh(ctx context.Context, refreshToken string) (ports.Tokens, error) {
	return d.PostToken(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// TokenError is an OAuth error from the token endpoint.
type TokenError struct {
	Status      int
	Code        string // e.g. invalid_grant
	Description string
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("token endpoint: %d %s: %s", e.Status, e.Code, e.Description)
}

// PostToken posts form (client_id added) to the token endpoint. A refusal
// is a *TokenError.
func (d *DevOIDC) PostToken(ctx context.Context, form url.Values) (ports.Tokens, error) {
	form.Set("client_id", d.ClientID())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return ports.Tokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.Server.Client().Do(req)
	if err != nil {
		return ports.Tokens{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ports.Tokens{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
			Desc  string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return ports.Tokens{}, &TokenError{Status: resp.StatusCode, Code: e.Error, Description: e.Desc}
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
		ExpiresIn    int    `json:"expires_in"`
		TokenType    string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return ports.Tokens{}, fmt.Errorf("token endpoint: %w", err)
	}
	return ports.Tokens{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, IDToken: tr.IDToken,
		ExpiresIn: tr.ExpiresIn, TokenType: tr.TokenType}, nil
}
