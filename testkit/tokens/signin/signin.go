// Package signin drives a browser sign-in without a browser: it follows the
// redirects of an authorization-code flow to the dev provider's login page,
// submits the login form and stops at the redirect back to the client,
// returning the code and state. Tests and scripts/pkce-login use it; it does
// not import testing so a command can link it.
package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"

	"github.com/gpuaas/gpuaas/adapters/devoidc"
)

// Params describe one sign-in.
type Params struct {
	// StartURL is where a browser would go first: the provider's
	// authorization URL, or an API endpoint that redirects to it.
	StartURL string
	// RedirectURI is the client's callback. The driver stops at the first
	// redirect to it and does not request it.
	RedirectURI string
	Username    string
	Password    string
	// HTTPClient is copied (its Transport and Jar are reused); default
	// http.DefaultClient's transport with a fresh cookie jar.
	HTTPClient *http.Client
}

// Callback is what the provider sent back to the client.
type Callback struct {
	Code  string
	State string
	// URL is the full callback URL.
	URL *url.URL
}

// maxHops bounds the redirects followed before the login page.
const maxHops = 10

// Login performs the sign-in and returns the callback parameters. An error
// response from the provider (error=…) or a refused password is an error.
func Login(ctx context.Context, p Params) (Callback, error) {
	if p.StartURL == "" || p.RedirectURI == "" {
		return Callback{}, errors.New("signin: StartURL and RedirectURI are required")
	}
	redirect, err := url.Parse(p.RedirectURI)
	if err != nil {
		return Callback{}, fmt.Errorf("signin: redirect URI: %w", err)
	}
	hc := client(p.HTTPClient)

	// Walk the redirect chain by hand so we can stop at the callback.
	next := p.StartURL
	var page []byte
	var pageURL *url.URL
	for hop := 0; ; hop++ {
		if hop == maxHops {
			return Callback{}, fmt.Errorf("signin: more than %d redirects from %s", maxHops, p.StartURL)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return Callback{}, fmt.Errorf("signin: %w", err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return Callback{}, fmt.Errorf("signin: GET %s: %w", redactQuery(next), err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if loc, ok := location(resp); ok {
			if isCallback(loc, redirect) {
				return callback(loc)
			}
			next = loc.String()
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return Callback{}, fmt.Errorf("signin: GET %s: %s: %s", redactQuery(next), resp.Status, excerpt(body))
		}
		page, pageURL = body, resp.Request.URL
		break
	}

	form, err := parseLoginForm(page, pageURL)
	if err != nil {
		return Callback{}, err
	}
	values := url.Values{
		devoidc.FieldRequestID: {form.requestID},
		devoidc.FieldUsername:  {p.Username},
		devoidc.FieldPassword:  {p.Password},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, form.action.String(), strings.NewReader(values.Encode()))
	if err != nil {
		return Callback{}, fmt.Errorf("signin: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return Callback{}, fmt.Errorf("signin: POST login form: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	loc, ok := location(resp)
	if !ok {
		if resp.StatusCode == http.StatusUnauthorized {
			return Callback{}, fmt.Errorf("signin: the provider refused the username or password for %q", p.Username)
		}
		return Callback{}, fmt.Errorf("signin: POST login form: %s: %s", resp.Status, excerpt(body))
	}
	if !isCallback(loc, redirect) {
		return Callback{}, fmt.Errorf("signin: login redirected to %s, not to the redirect URI", redactQuery(loc.String()))
	}
	return callback(loc)
}

// NewPKCE returns a fresh PKCE verifier (43 characters) and its S256 challenge.
func NewPKCE() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	verifier = base64.RawURLEncoding.EncodeToString(b)
	return verifier, S256(verifier)
}

// S256 is the PKCE S256 challenge of verifier.
func S256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func client(base *http.Client) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	if c.Jar == nil {
		c.Jar, _ = cookiejar.New(nil) // never fails with nil options
	}
	// Redirects are followed by Login itself.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func location(resp *http.Response) (*url.URL, bool) {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return nil, false
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, false
	}
	return loc, true
}

func isCallback(u, redirect *url.URL) bool {
	return u.Scheme == redirect.Scheme && u.Host == redirect.Host && u.Path == redirect.Path
}

func callback(u *url.URL) (Callback, error) {
	q := u.Query()
	if e := q.Get("error"); e != "" {
		return Callback{}, fmt.Errorf("signin: the provider returned error %q: %s", e, q.Get("error_description"))
	}
	if q.Get("code") == "" {
		return Callback{}, errors.New("signin: the callback has no code")
	}
	return Callback{Code: q.Get("code"), State: q.Get("state"), URL: u}, nil
}

type loginForm struct {
	action    *url.URL
	requestID string
}

var (
	formRE      = regexp.MustCompile(`<form[^>]*\bid="` + regexp.QuoteMeta(devoidc.LoginFormID) + `"[^>]*>`)
	actionRE    = regexp.MustCompile(`\baction="([^"]*)"`)
	requestIDRE = regexp.MustCompile(`<input[^>]*\bname="` + regexp.QuoteMeta(devoidc.FieldRequestID) + `"[^>]*\bvalue="([^"]*)"`)
)

// parseLoginForm finds the dev provider's login form. The page is ours and
// has a fixed shape (see devoidc), so a pattern match is enough.
func parseLoginForm(page []byte, base *url.URL) (loginForm, error) {
	f := formRE.Find(page)
	if f == nil {
		return loginForm{}, fmt.Errorf("signin: %s did not return the dev provider's login page: %s", redactQuery(base.String()), excerpt(page))
	}
	m := actionRE.FindSubmatch(f)
	if m == nil {
		return loginForm{}, errors.New("signin: the login form has no action")
	}
	action, err := base.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		return loginForm{}, fmt.Errorf("signin: login form action: %w", err)
	}
	id := requestIDRE.FindSubmatch(page)
	if id == nil {
		return loginForm{}, errors.New("signin: the login form has no request id")
	}
	return loginForm{action: action, requestID: html.UnescapeString(string(id[1]))}, nil
}

// redactQuery drops the query from URLs put into errors: callback and
// authorization URLs carry codes and state.
func redactQuery(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i] + "?…"
	}
	return raw
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if m := regexp.MustCompile(`role="alert">([^<]*)<`).FindStringSubmatch(s); m != nil {
		return html.UnescapeString(m[1])
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
