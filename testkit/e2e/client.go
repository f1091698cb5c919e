// Package e2e is the end-to-end harness of the scripts and the whole-platform
// tests: a person's session (PKCE sign-in against the dev identity
// provider, the dev checkout) over the Go client (package client), which
// carries the token, the active project, idempotency keys and retries.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
	"github.com/gpuaas/gpuaas/testkit/tokens/signin"
)

// Client talks to one platform API as one user.
type Client struct {
	Base    string
	HTTP    *http.Client
	Token   string
	Project string
	// PollEvery is how often WaitState looks (default 100 ms).
	PollEvery time.Duration
	// RedirectURI registered at the provider (default Base + "/auth/callback").
	RedirectURI string
	// RefreshToken is what the last sign-in returned.
	RefreshToken string
}

// New returns a client of the API at base.
func New(base string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// API is the Go client as this session: its token (or API key) and its
// active project, as they are now.
func (c *Client) API() *client.Client {
	opts := []client.Option{client.WithHTTPClient(c.HTTP), client.WithProject(c.Project), client.WithUserAgent("gpuaas-e2e")}
	switch {
	case strings.HasPrefix(c.Token, "gpa_"):
		opts = append(opts, client.WithAPIKey(c.Token))
	case c.Token != "":
		opts = append(opts, client.WithBearerToken(c.Token))
	}
	api, err := client.New(c.Base, opts...)
	if err != nil { // only a malformed Base: every call then fails with it
		panic(fmt.Sprintf("e2e: %v", err))
	}
	api.PollInterval = c.pollEvery()
	return api
}

func (c *Client) pollEvery() time.Duration {
	if c.PollEvery > 0 {
		return c.PollEvery
	}
	return 100 * time.Millisecond
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Method, Path string
	Status       int
	Code         string
	Body         string
	// Details are the error's details (e.g. used_bytes, limit_bytes).
	Details map[string]any
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Body)
}

// statusOf turns the Go client's error into a StatusError.
func statusOf(method, path string, err error) error {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return err
	}
	return &StatusError{Method: method, Path: path, Status: ce.StatusCode, Code: ce.Code, Details: ce.Details,
		Body: fmt.Sprintf("%s: %s (correlation %s)", ce.Code, ce.Message, ce.CorrelationID)}
}

// Login signs in through the API's authorize/exchange endpoints and the dev
// provider's login form, then selects the user's default project, if any.
func (c *Client) Login(ctx context.Context, user, password string) error {
	redirect := c.RedirectURI
	if redirect == "" {
		redirect = c.Base + "/auth/callback"
	}
	api := c.API()
	cb, err := signin.Login(ctx, signin.Params{StartURL: api.AuthorizeURL(redirect), RedirectURI: redirect,
		Username: user, Password: password, HTTPClient: c.HTTP})
	if err != nil {
		return err
	}
	tok, err := api.ExchangeCode(ctx, cb.Code, cb.State, redirect)
	if err != nil {
		return fmt.Errorf("exchange: %w", statusOf("POST", "/api/v1/auth/oidc/exchange", err))
	}
	if tok.AccessToken == "" {
		return errors.New("exchange: the response has no access_token")
	}
	c.Token, c.RefreshToken = tok.AccessToken, tok.RefreshToken
	// Project-scoped calls go to the default project (none: they answer
	// 400 project_required).
	p, err := c.API().DefaultProject(ctx)
	if err != nil {
		return statusOf("GET", "/api/v1/users/me", err)
	}
	c.Project = p
	return nil
}

// Me is the part of GET /users/me the scripts use.
type Me struct {
	User struct {
		ID, Email, Role string
	}
	Tenant struct {
		ID string
	}
	Projects []struct {
		ID        string
		IsDefault bool `json:"is_default"`
	}
}

// Me reads GET /users/me.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var me Me
	return me, c.Call(ctx, "GET", "/api/v1/users/me", nil, &me)
}

// Call sends a JSON request through the Go client (the session's token,
// active project, a fresh idempotency key on writes, retries on 429/503)
// and decodes a 2xx JSON answer into out; other answers are *StatusError.
func (c *Client) Call(ctx context.Context, method, path string, body, out any) error {
	return statusOf(method, path, c.API().Call(ctx, method, path, body, out))
}

// Balance is GET /billing/balance.
type Balance struct {
	BalanceMinor  int64  `json:"balance_minor"`
	Currency      string `json:"currency"`
	BurnPerHour   int64  `json:"burn_rate_minor_per_hour"`
	RunwaySeconds *int64 `json:"runway_seconds"`
	RunwayText    string `json:"runway_text"`
}

// Balance reads the tenant's balance.
func (c *Client) Balance(ctx context.Context) (Balance, error) {
	var b Balance
	return b, c.Call(ctx, "GET", "/api/v1/billing/balance", nil, &b)
}

// TopUp buys credit through the dev checkout: it creates a checkout session
// and "presses" Pay on the dev provider's page, which delivers a signed
// webhook to the platform.
func (c *Client) TopUp(ctx context.Context, amountMinor int64, currency string) error {
	cs, err := c.API().TopUp(ctx, amountMinor, currency)
	if err != nil {
		return fmt.Errorf("checkout: %w", statusOf("POST", "/api/v1/payments/checkout-session", err))
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(cs.CheckoutUrl, "/")+"/pay", nil)
	if err != nil {
		return err
	}
	hc := *c.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("dev checkout: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("dev checkout: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// Allocation is the part of an allocation the scripts use.
type Allocation struct {
	ID          string
	State       string
	SKUID       string `json:"sku_id"`
	PriceMinor  int64  `json:"price_minor"`
	FailureCode string `json:"failure_code"`
	Access      struct {
		Host    string
		Port    int
		User    string
		Command string
	}
}

// PickSKU returns a SKU with capacity (or want) and how many nodes of it are
// available.
func (c *Client) PickSKU(ctx context.Context, want string) (string, int, error) {
	skus, err := c.API().SKUs(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("skus: %w", statusOf("GET", "/api/v1/skus", err))
	}
	for _, s := range skus {
		if (want == "" && s.Available > 0) || s.Id == want {
			return s.Id, s.Available, nil
		}
	}
	return "", 0, errors.New("no SKU has capacity (is a node enrolled and heartbeating?)")
}

// WaitState polls the allocation until it reaches want; a terminal state
// other than want is an error.
func (c *Client) WaitState(ctx context.Context, id, want string) (Allocation, error) {
	var a Allocation
	got, err := c.API().WaitFor(ctx, id, func(x client.Allocation) bool {
		return string(x.State) == want || x.State == client.StateFailed || x.State == client.StateReleaseFailed ||
			x.State == client.StateReleased
	}, nil)
	a = allocationOf(got)
	if err != nil {
		if ctx.Err() != nil {
			return a, fmt.Errorf("allocation %s still %s, waited for %s: %w", id, a.State, want, ctx.Err())
		}
		return a, fmt.Errorf("get allocation: %w", statusOf("GET", "/api/v1/allocations/"+id, err))
	}
	if a.State != want {
		return a, fmt.Errorf("allocation %s is %s (%s) while waiting for %s", id, a.State, a.FailureCode, want)
	}
	return a, nil
}

// allocationOf is the scripts' view of the client's allocation.
func allocationOf(x client.Allocation) Allocation {
	a := Allocation{ID: x.Id, State: string(x.State), SKUID: x.SkuId, PriceMinor: x.PriceMinor}
	if x.FailureCode != nil {
		a.FailureCode = *x.FailureCode
	}
	if x.Access != nil {
		a.Access.Host, a.Access.Port, a.Access.User, a.Access.Command = x.Access.Host, x.Access.Port, x.Access.User, x.Access.Command
	}
	return a
}
