package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// CodeSessionEnded is the code of a refused refresh: the sign-in session is
// over (signed out, expired, or ended by the issuer because one of its
// refresh tokens was presented twice, which rotation treats as theft). The
// user must sign in again; retrying the refresh cannot help.
const CodeSessionEnded fault.Code = "session_ended"

// Client is the platform seen as an OAuth client of the issuer: it builds the
// sign-in URL and calls the token and revocation endpoints. It holds no
// per-user state: the host keeps the PKCE verifier (server side, keyed by
// state) and passes it back to Exchange.
type Client struct {
	cfg  ClientConfig
	disc *discoverer
}

var (
	_ ports.IdentityProvider = (*Client)(nil)
	_ ports.HealthCheck      = (*Client)(nil)
)

// NewClient builds a Client. It makes no network call; endpoints are
// discovered on first use unless ClientConfig.Endpoints is set.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, disc: &discoverer{issuer: cfg.Issuer, hc: cfg.HTTPClient}}, nil
}

// Name implements [ports.HealthCheck].
func (c *Client) Name() string { return "oidc" }

// Check implements [ports.HealthCheck]: it succeeds once the issuer's
// endpoints are known. Hosts may also call it at start-up to fail fast.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.endpoints(ctx)
	return err
}

// AuthCodeURL implements [ports.IdentityProvider]. codeChallenge is the S256
// challenge of the verifier the caller keeps. If the issuer's endpoints
// cannot be discovered it returns "" (the port has no error); hosts that want
// the reason call [Client.AuthCodeURLContext].
func (c *Client) AuthCodeURL(state, codeChallenge, redirectURI string) string {
	ctx, cancel := context.WithTimeout(context.Background(), defaultHTTPTimeout)
	defer cancel()
	u, err := c.AuthCodeURLContext(ctx, state, codeChallenge, redirectURI)
	if err != nil {
		return ""
	}
	return u
}

// AuthCodeURLContext is AuthCodeURL with a context and an error.
func (c *Client) AuthCodeURLContext(ctx context.Context, state, codeChallenge, redirectURI string) (string, error) {
	if codeChallenge == "" {
		// PKCE is not optional: without it a stolen code is a stolen session.
		return "", fault.Invalid("code_challenge", "a PKCE code challenge is required")
	}
	oc, err := c.oauthConfig(ctx, redirectURI)
	if err != nil {
		return "", err
	}
	return oc.AuthCodeURL(state,
		oauth2.SetAuthURLParam("code_challenge", codeChallenge),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"),
	), nil
}

// Exchange implements [ports.IdentityProvider]: it redeems an authorization
// code with its PKCE verifier.
func (c *Client) Exchange(ctx context.Context, code, codeVerifier, redirectURI string) (ports.Tokens, error) {
	if code == "" {
		return ports.Tokens{}, fault.Invalid("code", "an authorization code is required")
	}
	if codeVerifier == "" {
		return ports.Tokens{}, fault.Invalid("code_verifier", "a PKCE code verifier is required")
	}
	oc, err := c.oauthConfig(ctx, redirectURI)
	if err != nil {
		return ports.Tokens{}, err
	}
	tok, err := oc.Exchange(c.httpContext(ctx), code, oauth2.VerifierOption(codeVerifier))
	if err != nil {
		return ports.Tokens{}, mapTokenError(err, "exchange the authorization code")
	}
	return toTokens(tok), nil
}

// Refresh implements [ports.IdentityProvider]. Issuers that rotate refresh
// tokens (Keycloak with "revoke refresh token", the dev provider) return a
// new one; otherwise the old one is returned and stays valid.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (ports.Tokens, error) {
	if refreshToken == "" {
		return ports.Tokens{}, fault.Unauthenticated(fault.CodeTokenMissing, "a refresh token is required")
	}
	oc, err := c.oauthConfig(ctx, "")
	if err != nil {
		return ports.Tokens{}, err
	}
	// An expired token with only a refresh token makes the source refresh.
	tok, err := oc.TokenSource(c.httpContext(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		// Whatever the issuer's reason (Keycloak and the dev provider word it
		// differently), a refresh token it refuses means the session cannot go
		// on: say so, and what to do, rather than "invalid grant".
		return ports.Tokens{}, fault.Unauthenticated(CodeSessionEnded,
			"your sign-in session has ended (signed out, expired, or ended because a refresh token was used twice); sign in again").
			Wrap(fmt.Errorf("could not refresh the session: error %q: %s", re.ErrorCode, re.ErrorDescription))
	}
	if err != nil {
		return ports.Tokens{}, mapTokenError(err, "refresh the session")
	}
	return toTokens(tok), nil
}

// PasswordLogin implements [ports.IdentityProvider] with the resource-owner
// password grant. It exists only for the feature-flagged personal login;
// issuers that refuse the grant yield a feature_disabled fault.
func (c *Client) PasswordLogin(ctx context.Context, username, password string) (ports.Tokens, error) {
	if username == "" || password == "" {
		return ports.Tokens{}, fault.Invalid("username", "username and password are required")
	}
	oc, err := c.oauthConfig(ctx, "")
	if err != nil {
		return ports.Tokens{}, err
	}
	tok, err := oc.PasswordCredentialsToken(c.httpContext(ctx), username, password)
	if err != nil {
		return ports.Tokens{}, mapTokenError(err, "sign in with a password")
	}
	return toTokens(tok), nil
}

// Revoke implements [ports.IdentityProvider] with RFC 7009. When the issuer
// publishes no revocation endpoint it is a no-op: the refresh token then
// stays valid until it expires, which is all such an issuer offers. An
// unknown or already revoked token is success, as RFC 7009 specifies.
func (c *Client) Revoke(ctx context.Context, refreshToken string) error {
	if refreshToken == "" {
		return nil
	}
	ep, err := c.endpoints(ctx)
	if err != nil {
		return err
	}
	if ep.RevocationURL == "" {
		return nil
	}
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	if c.cfg.ClientSecret == "" {
		form.Set("client_id", c.cfg.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.RevocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fault.Internal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.cfg.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fault.Unavailable("the identity provider is unreachable", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fault.Unavailable("the identity provider could not revoke the session", fmt.Errorf("revocation: %s", resp.Status))
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Error == "unsupported_token_type" {
		return nil // nothing the issuer can revoke; same as no endpoint
	}
	return fault.Internal(fmt.Errorf("revocation: %s %s", resp.Status, e.Error))
}

func (c *Client) endpoints(ctx context.Context) (Endpoints, error) {
	if c.cfg.Endpoints != nil {
		return *c.cfg.Endpoints, nil
	}
	m, err := c.disc.get(ctx)
	if err != nil {
		return Endpoints{}, fault.Unavailable("the identity provider is unreachable", err)
	}
	return Endpoints{AuthURL: m.authURL, TokenURL: m.tokenURL, RevocationURL: m.revocationURL}, nil
}

func (c *Client) oauthConfig(ctx context.Context, redirectURI string) (*oauth2.Config, error) {
	ep, err := c.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	style := oauth2.AuthStyleInParams // public client: client_id in the form
	if c.cfg.ClientSecret != "" {
		style = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: ep.AuthURL, TokenURL: ep.TokenURL, AuthStyle: style},
		RedirectURL:  redirectURI,
		Scopes:       c.cfg.Scopes,
	}, nil
}

func (c *Client) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient)
}

func toTokens(t *oauth2.Token) ports.Tokens {
	idToken, _ := t.Extra("id_token").(string)
	expiresIn := int(t.ExpiresIn)
	if expiresIn == 0 && !t.Expiry.IsZero() {
		expiresIn = int(time.Until(t.Expiry).Round(time.Second) / time.Second)
	}
	return ports.Tokens{
		AccessToken:  t.AccessToken,
		RefreshToken: t.RefreshToken,
		IDToken:      idToken,
		ExpiresIn:    expiresIn,
		TokenType:    t.Type(),
	}
}

// mapTokenError turns a token endpoint failure into a fault. The cause keeps
// the OAuth error code and description (never a token or password) for logs.
func mapTokenError(err error, doing string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		cause := fmt.Errorf("could not %s: status %d, error %q: %s", doing, status, re.ErrorCode, re.ErrorDescription)
		switch re.ErrorCode {
		case "invalid_grant":
			// Bad, used, expired or revoked code or refresh token; wrong
			// PKCE verifier; wrong username or password.
			return fault.Unauthenticated(fault.CodeTokenInvalid, "the sign-in grant is invalid or has expired").Wrap(cause)
		case "unsupported_grant_type", "unauthorized_client":
			return fault.New(fault.KindForbidden, fault.CodeFeatureDisabled,
				"the identity provider does not allow this sign-in method").Wrap(cause)
		}
		switch {
		case status == http.StatusTooManyRequests:
			return fault.New(fault.KindRateLimited, fault.CodeRateLimited, "the identity provider is rate limiting sign-ins").Wrap(cause)
		case status >= 500:
			return fault.Unavailable("the identity provider failed", cause)
		}
		// invalid_client, invalid_request, invalid_scope: our configuration
		// or request is wrong, not the user's credentials.
		return fault.Internal(cause)
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return fault.Unavailable("the identity provider is unreachable", err)
	}
	if errors.Is(err, context.Canceled) {
		return fault.Unavailable("the request was cancelled", err)
	}
	return fault.Internal(fmt.Errorf("could not %s: %w", doing, err))
}
