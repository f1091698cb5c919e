package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/hosts/http/client/internal/apigen"
)

// authenticator puts the caller's credential on a request.
type authenticator interface {
	authorize(ctx context.Context, c *Client, r *http.Request) error
	// refreshable reports whether a 401 may be cured by a new credential.
	refreshable() bool
	invalidate()
}

type noAuth struct{}

func (noAuth) authorize(context.Context, *Client, *http.Request) error { return nil }
func (noAuth) refreshable() bool                                       { return false }
func (noAuth) invalidate()                                             {}

// WithAPIKey authenticates with a personal API key (gpa_…): it acts as its
// holder in its one project, with its scopes. Select that project with
// [WithProject] (the CLI remembers it at login).
func WithAPIKey(key string) Option {
	return func(c *Client) error {
		key = strings.TrimSpace(key)
		if !strings.HasPrefix(key, "gpa_") {
			return errors.New("client: an API key starts with gpa_")
		}
		c.auth = bearer(key)
		return nil
	}
}

// WithBearerToken authenticates with an access token as is (no renewal).
func WithBearerToken(tok string) Option {
	return func(c *Client) error { c.auth = bearer(strings.TrimSpace(tok)); return nil }
}

type bearer string

func (b bearer) authorize(_ context.Context, _ *Client, r *http.Request) error {
	r.Header.Set("Authorization", "Bearer "+string(b))
	return nil
}
func (bearer) refreshable() bool { return false }
func (bearer) invalidate()       {}

// WithTokenSource authenticates with tokens from an OAuth2/OIDC token
// source (for example an oauth2.Config's TokenSource after a sign-in, which
// refreshes them).
func WithTokenSource(ts oauth2.TokenSource) Option {
	return func(c *Client) error {
		if ts == nil {
			return errors.New("client: nil token source")
		}
		c.auth = &tokenSource{ts: oauth2.ReuseTokenSource(nil, ts)}
		return nil
	}
}

type tokenSource struct{ ts oauth2.TokenSource }

func (t *tokenSource) authorize(_ context.Context, _ *Client, r *http.Request) error {
	tok, err := t.ts.Token()
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return nil
}
func (*tokenSource) refreshable() bool { return false }
func (*tokenSource) invalidate()       {}

// WithServiceAccount authenticates as a service account: its client id and
// secret (gps_…) are exchanged at POST /auth/service-token for a
// short-lived token, kept and renewed a minute before it expires (or at
// once after a 401). The account's project is selected automatically.
func WithServiceAccount(clientID, secret string) Option {
	return func(c *Client) error {
		if clientID == "" || !strings.HasPrefix(secret, "gps_") {
			return errors.New("client: a service account needs its client id and a secret starting with gps_")
		}
		c.auth = &serviceAccount{id: clientID, secret: secret}
		return nil
	}
}

// renewBefore is how long before expiry a service-account token is renewed.
const renewBefore = time.Minute

type serviceAccount struct {
	id, secret string

	mu      sync.Mutex
	token   string
	expires time.Time
}

func (s *serviceAccount) authorize(ctx context.Context, c *Client, r *http.Request) error {
	tok, err := s.current(ctx, c)
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

func (s *serviceAccount) refreshable() bool { return true }

func (s *serviceAccount) invalidate() {
	s.mu.Lock()
	s.token = ""
	s.mu.Unlock()
}

func (s *serviceAccount) current(ctx context.Context, c *Client) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && time.Until(s.expires) > renewBefore {
		return s.token, nil
	}
	tok, err := c.ServiceToken(ctx, s.id, s.secret)
	if err != nil {
		return "", err
	}
	s.token, s.expires = tok.AccessToken, time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second)
	return s.token, nil
}

// anonymous is a copy of c that sends no credentials and no project: for
// the public sign-in routes.
func (c *Client) anonymous() (*apigen.Client, error) {
	anon := *c
	anon.auth = noAuth{}
	anon.project = ""
	return apigen.NewClient(c.base, apigen.WithHTTPClient(transport{&anon}))
}

// SignIn is what the platform answers a completed sign-in or a refresh:
// the identity provider's tokens and the user.
type SignIn = api.TokenResponse

// AuthorizeURL is where a person's browser starts a sign-in that ends at
// redirectURI (a registered URI, or a loopback one such as
// http://127.0.0.1:<port>/callback where the platform allows them). The
// platform keeps the PKCE verifier; the redirect brings code and state for
// [Client.ExchangeCode].
func (c *Client) AuthorizeURL(redirectURI string) string {
	return c.base + "/api/v1/auth/oidc/authorize?" + url.Values{"redirect_uri": {redirectURI}}.Encode()
}

// ExchangeCode finishes a sign-in started at AuthorizeURL.
func (c *Client) ExchangeCode(ctx context.Context, code, state, redirectURI string) (SignIn, error) {
	gen, err := c.anonymous()
	if err != nil {
		return SignIn{}, err
	}
	resp, err := gen.ExchangeOIDCCode(ctx, api.ExchangeRequest{Code: code, State: state, RedirectUri: redirectURI})
	var out SignIn
	return out, decode(resp, err, &out, http.StatusOK)
}

// RefreshSignIn trades a refresh token for new tokens.
func (c *Client) RefreshSignIn(ctx context.Context, refreshToken string) (SignIn, error) {
	gen, err := c.anonymous()
	if err != nil {
		return SignIn{}, err
	}
	resp, err := gen.RefreshToken(ctx, &api.RefreshTokenParams{}, api.RefreshRequest{RefreshToken: &refreshToken})
	var out SignIn
	return out, decode(resp, err, &out, http.StatusOK)
}

// ServiceToken is the client-credentials grant as is: one token for a
// service account's id and secret. [WithServiceAccount] calls it for you.
func (c *Client) ServiceToken(ctx context.Context, clientID, secret string) (ServiceTokenResponse, error) {
	grant := api.ServiceTokenRequestGrantType("client_credentials")
	// The token route is public: sent without credentials, so a token is
	// never asked for to get a token.
	gen, err := c.anonymous()
	if err != nil {
		return ServiceTokenResponse{}, err
	}
	resp, err := gen.CreateServiceToken(ctx, api.ServiceTokenRequest{ClientId: clientID, ClientSecret: secret, GrantType: &grant})
	var out ServiceTokenResponse
	return out, decode(resp, err, &out, http.StatusOK)
}
