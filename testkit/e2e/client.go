// Package e2e is a small client of the platform's HTTP API for end-to-end
// scripts and tests: PKCE sign-in against the dev identity provider, JSON
// calls with the session's token, active project and idempotency keys, the
// dev checkout, and allocation helpers.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

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

// StatusError is a non-2xx answer.
type StatusError struct {
	Method, Path string
	Status       int
	Code         string
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Body)
}

// Login signs in through the API's authorize/exchange endpoints and the dev
// provider's login form, then selects the user's default project, if any.
func (c *Client) Login(ctx context.Context, user, password string) error {
	redirect := c.RedirectURI
	if redirect == "" {
		redirect = c.Base + "/auth/callback"
	}
	cb, err := signin.Login(ctx, signin.Params{StartURL: c.Base + "/api/v1/auth/oidc/authorize?" +
		url.Values{"redirect_uri": {redirect}}.Encode(), RedirectURI: redirect, Username: user, Password: password, HTTPClient: c.HTTP})
	if err != nil {
		return err
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := c.Call(ctx, "POST", "/api/v1/auth/oidc/exchange", map[string]string{"code": cb.Code, "state": cb.State,
		"redirect_uri": redirect}, &tok); err != nil {
		return fmt.Errorf("exchange: %w", err)
	}
	if tok.AccessToken == "" {
		return errors.New("exchange: the response has no access_token")
	}
	c.Token, c.RefreshToken = tok.AccessToken, tok.RefreshToken
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	// Project-scoped calls go to the default project (none: they answer
	// 400 project_required).
	for _, p := range me.Projects {
		if p.IsDefault {
			c.Project = p.ID
		}
	}
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

// Call sends a JSON request with the session's token, active project and a
// fresh idempotency key on writes, and decodes a 2xx JSON answer into out.
func (c *Client) Call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Project != "" {
		req.Header.Set("X-Project-ID", c.Project)
	}
	if method != "GET" {
		k := make([]byte, 16)
		_, _ = rand.Read(k)
		req.Header.Set("X-Idempotency-Key", hex.EncodeToString(k))
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		se := &StatusError{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
		var e struct {
			Error struct{ Code string }
		}
		if json.Unmarshal(b, &e) == nil {
			se.Code = e.Error.Code
		}
		return se
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
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
	var cs struct {
		CheckoutURL string `json:"checkout_url"`
	}
	if err := c.Call(ctx, "POST", "/api/v1/payments/checkout-session",
		map[string]any{"amount_minor": amountMinor, "currency": currency}, &cs); err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(cs.CheckoutURL, "/")+"/pay", nil)
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
	var skus struct {
		SKUs []struct {
			ID        string
			Available int
		} `json:"skus"`
	}
	if err := c.Call(ctx, "GET", "/api/v1/skus", nil, &skus); err != nil {
		return "", 0, fmt.Errorf("skus: %w", err)
	}
	for _, s := range skus.SKUs {
		if (want == "" && s.Available > 0) || s.ID == want {
			return s.ID, s.Available, nil
		}
	}
	return "", 0, errors.New("no SKU has capacity (is a node enrolled and heartbeating?)")
}

// WaitState polls the allocation until it reaches want; a terminal state
// other than want is an error.
func (c *Client) WaitState(ctx context.Context, id, want string) (Allocation, error) {
	var a Allocation
	for {
		if err := c.Call(ctx, "GET", "/api/v1/allocations/"+id, nil, &a); err != nil {
			return a, fmt.Errorf("get allocation: %w", err)
		}
		if a.State == want {
			return a, nil
		}
		if (a.State == "failed" || a.State == "release_failed" || a.State == "released") && a.State != want {
			return a, fmt.Errorf("allocation %s is %s (%s) while waiting for %s", id, a.State, a.FailureCode, want)
		}
		every := c.PollEvery
		if every <= 0 {
			every = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return a, fmt.Errorf("allocation %s still %s, waited for %s: %w", id, a.State, want, ctx.Err())
		case <-time.After(every):
		}
	}
}
