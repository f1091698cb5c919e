package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client/internal/apigen"
)

// Client talks to one GPUaaS API as one caller. It is safe for concurrent
// use; [Client.InProject] returns a copy bound to another project.
type Client struct {
	base    string
	hc      *http.Client
	auth    authenticator
	project string
	retry   RetryPolicy
	agent   string
	gen     *apigen.ClientWithResponses
	// sleep waits between attempts (a timer bound to ctx; tests replace it).
	sleep func(ctx context.Context, d time.Duration) error
	// PollInterval is how often Wait polls an allocation once it has waited
	// a while (default 1 s); the first polls come sooner (firstPoll,
	// doubling), since a node is often ready in well under a second.
	PollInterval time.Duration
}

// RetryPolicy says how often and how patiently a request is retried.
type RetryPolicy struct {
	// MaxAttempts counts the first try: 1 disables retries. Default 4.
	MaxAttempts int
	// BaseDelay is the first backoff (doubled each attempt, with jitter),
	// used when the server names no Retry-After. Default 250 ms.
	BaseDelay time.Duration
	// MaxDelay bounds one wait, Retry-After included. Default 30 s.
	MaxDelay time.Duration
}

// Option configures New.
type Option func(*Client) error

// WithHTTPClient sets the HTTP client (default: 60 s timeout).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("client: nil HTTP client")
		}
		c.hc = hc
		return nil
	}
}

// WithProject selects the active project (the X-Project-ID of every
// request). API keys and service accounts have one project; people pick
// one of theirs ([Client.Me] lists them).
func WithProject(id string) Option {
	return func(c *Client) error { c.project = id; return nil }
}

// WithRetry sets the retry policy; zero fields keep their defaults.
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) error {
		if p.MaxAttempts < 0 || p.BaseDelay < 0 || p.MaxDelay < 0 {
			return errors.New("client: negative retry policy")
		}
		if p.MaxAttempts > 0 {
			c.retry.MaxAttempts = p.MaxAttempts
		}
		if p.BaseDelay > 0 {
			c.retry.BaseDelay = p.BaseDelay
		}
		if p.MaxDelay > 0 {
			c.retry.MaxDelay = p.MaxDelay
		}
		return nil
	}
}

// WithUserAgent names the caller in the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) error { c.agent = ua; return nil }
}

// New returns a client of the API at baseURL (e.g. http://127.0.0.1:8080).
// Without an auth option only public routes answer.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: the API URL %q must be an absolute http(s) URL", baseURL)
	}
	c := &Client{base: u.String(), hc: &http.Client{Timeout: 60 * time.Second}, auth: noAuth{},
		retry: RetryPolicy{MaxAttempts: 4, BaseDelay: 250 * time.Millisecond, MaxDelay: 30 * time.Second},
		agent: "gpuaas-go-client", sleep: sleepCtx, PollInterval: time.Second}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	c.gen, err = apigen.NewClientWithResponses(c.base, apigen.WithHTTPClient(transport{c}))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// InProject returns a copy of c whose requests name another project.
func (c *Client) InProject(id string) *Client {
	cp := *c
	cp.project = id
	cp.gen, _ = apigen.NewClientWithResponses(cp.base, apigen.WithHTTPClient(transport{&cp}))
	return &cp
}

// Project is the active project ("" when none).
func (c *Client) Project() string { return c.project }

// BaseURL is the API's base URL.
func (c *Client) BaseURL() string { return c.base }

// transport is the generated client's doer: project, idempotency key,
// credentials, retries.
type transport struct{ c *Client }

// Do implements the generated client's HttpRequestDoer.
func (t transport) Do(req *http.Request) (*http.Response, error) { return t.c.do(req) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// mutating reports whether a request changes state (and so carries an
// idempotency key).
func mutating(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// newKey is a fresh idempotency key (128 random bits, hex).
func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// do sends req with the caller's project, an idempotency key on mutations
// (one per call, kept across retries), credentials, and retries: on 429
// and 503 after Retry-After (or backoff), on a network error when the
// request is safe to repeat (a read, or a mutation with its idempotency
// key), and once on 401 with a fresh service-account token.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if c.project != "" && req.Header.Get("X-Project-ID") == "" {
		req.Header.Set("X-Project-ID", c.project)
	}
	if mutating(req.Method) && req.Header.Get("X-Idempotency-Key") == "" {
		req.Header.Set("X-Idempotency-Key", newKey())
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.agent)
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	reauthed := false
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 {
			r = req.Clone(ctx)
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		if err := c.auth.authorize(ctx, c, r); err != nil {
			return nil, err
		}
		resp, err := c.hc.Do(r)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil || !replayable || attempt >= c.retry.MaxAttempts {
				return nil, err
			}
			wait = c.backoff(attempt)
		case resp.StatusCode == http.StatusUnauthorized && !reauthed && replayable && c.auth.refreshable():
			// A service-account token may have been revoked or expired
			// early: ask for a new one, once.
			reauthed = true
			c.auth.invalidate()
			drain(resp)
			continue
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) &&
			replayable && attempt < c.retry.MaxAttempts:
			wait = retryAfter(resp.Header.Get("Retry-After"), time.Now())
			if wait <= 0 {
				wait = c.backoff(attempt)
			}
			if wait > c.retry.MaxDelay {
				return resp, nil // the server asks for longer than we wait: give the caller the answer
			}
			drain(resp)
		default:
			return resp, nil
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// backoff is BaseDelay·2^(attempt-1), capped, with ±50 % jitter.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.BaseDelay << min(attempt-1, 16)
	if d > c.retry.MaxDelay || d <= 0 {
		d = c.retry.MaxDelay
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(d)+1))
	if err != nil {
		return d
	}
	return d/2 + time.Duration(n.Int64())/2
}

// retryAfter reads Retry-After: delta seconds or an HTTP date (0 when
// absent or unreadable).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// Error is a non-2xx answer of the API: its status and the stable error
// body every route uses (doc/api/README.md).
type Error struct {
	StatusCode    int
	Code          string
	Message       string
	Field         string
	Details       map[string]any
	CorrelationID string
	// RetryAfter is the server's Retry-After on 429/503, when it gave one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s (%d %s)", e.Message, e.StatusCode, e.Code)
	if e.Field != "" {
		s += " field " + e.Field
	}
	return s
}

// ErrorCode returns the API's code of err ("" when err is not an *Error).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Codes callers commonly switch on (doc/api/README.md lists them all).
const (
	CodeValidationFailed     = "validation_failed"
	CodeTokenMissing         = "token_missing"
	CodeTokenExpired         = "token_expired"
	CodeTokenInvalid         = "token_invalid"
	CodeInvalidClient        = "invalid_client"
	CodeForbidden            = "forbidden"
	CodeInsufficientScope    = "insufficient_scope"
	CodeInteractiveRequired  = "interactive_required"
	CodeNotFound             = "not_found"
	CodeConflict             = "conflict"
	CodeNoCapacity           = "no_capacity"
	CodeInsufficientBalance  = "insufficient_balance"
	CodeSpendCapReached      = "spend_cap_reached"
	CodeMaxHourlyPrice       = "max_hourly_price_exceeded"
	CodeAllocationCapReached = "allocation_cap_reached"
	CodeSSHKeyRequired       = "ssh_key_required"
	CodeRateLimited          = "rate_limited"
	CodeUnavailable          = "service_unavailable"
	CodeFeatureDisabled      = "feature_disabled"
	// CodeIdempotencyResponseLost: an earlier attempt of this call (same
	// idempotency key) saved its changes but its answer was lost; look the
	// result up (Allocations, …) instead of calling again.
	CodeIdempotencyResponseLost = "idempotency_response_lost"
)

// decode turns a response into out (nil: no body expected) when its status
// is one of ok, and into an *Error otherwise.
func decode(resp *http.Response, err error, out any, ok ...int) error {
	if err != nil {
		return err
	}
	defer drain(resp)
	for _, s := range ok {
		if resp.StatusCode == s {
			if out == nil {
				return nil
			}
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				return fmt.Errorf("client: decode %s %s: %w", resp.Request.Method, resp.Request.URL.Path, err)
			}
			return nil
		}
	}
	return errorOf(resp)
}

// errorOf reads the error body of a non-2xx answer.
func errorOf(resp *http.Response) *Error {
	e := &Error{StatusCode: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: http.StatusText(resp.StatusCode),
		CorrelationID: resp.Header.Get("X-Correlation-ID"), RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var body struct {
		Error struct {
			Code          string         `json:"code"`
			Message       string         `json:"message"`
			Field         string         `json:"field"`
			Details       map[string]any `json:"details"`
			CorrelationID string         `json:"correlation_id"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Field, e.Details = body.Error.Code, body.Error.Message, body.Error.Field, body.Error.Details
		if body.Error.CorrelationID != "" {
			e.CorrelationID = body.Error.CorrelationID
		}
	}
	return e
}

// Call sends one request to any route of the API — those the typed
// methods do not cover — with the client's credentials, project,
// idempotency key and retries: body (when not nil) is sent as JSON, a 2xx
// answer is decoded into out (when not nil), any other is an *Error.
func (c *Client) Call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return errorOf(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("client: decode %s %s: %w", method, path, err)
	}
	return nil
}
