package httphost

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity/authsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/policy/policysvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines decodes the JSON log lines.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// testRedirect is the redirect URI the harness allows.
const testRedirect = "https://console.example.com/auth/callback"

// testOrigin is the browser origin the harness allows.
const testOrigin = "https://console.example.com"

// harness is one host under test on an httptest server (127.0.0.1), with
// in-memory stores, the real OIDC verifier over a test issuer, in-process
// token store and rate limiter, and a stand-in identity provider.
type harness struct {
	t       *testing.T
	srv     *Server
	ts      *httptest.Server
	store   *memStore
	idp     *stubIdP
	iss     *tokens.Issuer
	logs    *syncBuffer
	clock   *fakes.Clock
	limiter ports.RateLimiter
}

type harnessOption func(*Config, *Deps)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, store: newMemStore(), iss: tokens.NewIssuer(t), logs: &syncBuffer{},
		clock: fakes.NewClock(time.Time{})}
	h.idp = newStubIdP(t, h.iss)
	verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: h.iss.URL(), Audience: h.iss.Audience(),
		StaticKeys: h.iss.PublicKeys()})
	if err != nil {
		t.Fatalf("verifier: %v", err)
	}
	svc, err := identitysvc.New(identitysvc.Deps{Tx: h.store, Users: h.store, Tenants: h.store, Projects: h.store,
		Members: h.store, Audit: h.store, Outbox: h.store, Clock: h.clock, IDs: &fakes.IDs{}})
	if err != nil {
		t.Fatalf("identity service: %v", err)
	}
	policyAdmin, err := policysvc.New(policysvc.Deps{Tx: h.store, Policies: h.store, Audit: h.store, Clock: h.clock, IDs: &fakes.IDs{}})
	if err != nil {
		t.Fatalf("policy service: %v", err)
	}
	cfg := Config{Addr: "127.0.0.1:0", PublicBaseURL: testOrigin, AllowedRedirectURIs: []string{testRedirect}}
	deps := Deps{Identity: svc, PolicyAdmin: policyAdmin, Verifier: verifier, IdP: h.idp, Tokens: inproc.NewTokenStore(h.clock),
		RateLimiter: inproc.NewRateLimiter(h.clock), Policies: h.store, Audit: h.store, Idempotency: h.store,
		Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Clock: h.clock}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	h.limiter = deps.RateLimiter
	h.srv, err = New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.ts = httptest.NewServer(h.srv.ContractChecked(t))
	t.Cleanup(h.ts.Close)
	return h
}

// token mints a valid access token for subject sub (email sub@example.com).
func (h *harness) token(sub string, extra ...tokens.Claim) string {
	h.t.Helper()
	return h.iss.Mint(h.t, append([]tokens.Claim{tokens.Subject(sub), tokens.Email(sub + "@example.com"),
		tokens.Name(strings.ToUpper(sub[:1]) + sub[1:])}, extra...)...)
}

// adminToken mints a token of a platform operator.
func (h *harness) adminToken(sub string) string { return h.token(sub, tokens.Roles("admin")) }

// response is a finished request.
type response struct {
	status int
	header http.Header
	body   []byte
	cookie []*http.Cookie
}

// errBody decodes the error body.
func (r response) errBody(t *testing.T) errorJSON {
	t.Helper()
	var e struct {
		Error errorJSON `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error body (status %d): %s", r.status, r.body)
	}
	return e.Error
}

type errorJSON struct {
	Code          string         `json:"code"`
	Message       string         `json:"message"`
	Field         string         `json:"field"`
	Details       map[string]any `json:"details"`
	CorrelationID string         `json:"correlation_id"`
}

// json decodes the body into v.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode body (status %d): %v: %s", r.status, err, r.body)
	}
}

// req describes a request; zero fields are omitted.
type req struct {
	method, path, body string
	bearer             string
	header             map[string]string
	cookies            []*http.Cookie
	contentType        string // default application/json when body is set
}

func (h *harness) do(rq req) response {
	h.t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r, err := http.NewRequestWithContext(context.Background(), rq.method, h.ts.URL+rq.path, body)
	if err != nil {
		h.t.Fatalf("request: %v", err)
	}
	if rq.body != "" {
		ct := rq.contentType
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	if rq.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+rq.bearer)
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	for _, c := range rq.cookies {
		r.AddCookie(c)
	}
	client := *h.ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(r)
	if err != nil {
		h.t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, cookie: resp.Cookies()}
}

// me signs sub in (first call provisions the tenant) and returns the profile.
func (h *harness) me(tok string) meJSON {
	h.t.Helper()
	r := h.do(req{method: "GET", path: "/api/v1/users/me", bearer: tok})
	if r.status != http.StatusOK {
		h.t.Fatalf("GET /users/me: %d %s", r.status, r.body)
	}
	var m meJSON
	r.json(h.t, &m)
	return m
}

type meJSON struct {
	User struct {
		ID, Email, Role string
		ResourceID      string `json:"resource_id"`
	} `json:"user"`
	Tenant struct {
		ID, Name, Slug, Role string
		ResourceID           string `json:"resource_id"`
	} `json:"tenant"`
	Projects []struct {
		ID, Name, Role string
		IsDefault      bool   `json:"is_default"`
		ResourceID     string `json:"resource_id"`
	} `json:"projects"`
}

// defaultProject is the id of the caller's default project.
func (m meJSON) defaultProject(t *testing.T) string {
	t.Helper()
	for _, p := range m.Projects {
		if p.IsDefault {
			return p.ID
		}
	}
	t.Fatalf("no default project in %+v", m)
	return ""
}

// stubIdP stands in for the OIDC issuer's client side: it remembers the
// PKCE challenge per state, hands out codes bound to it, and mints real
// tokens from the test issuer.
type stubIdP struct {
	t   *testing.T
	iss *tokens.Issuer

	mu         sync.Mutex
	challenges map[string]string // state → challenge
	codes      map[string][2]string
	refresh    map[string]string // refresh token → subject
	revoked    []string
	panicWith  any // PasswordLogin panics with it when set
	n          int
}

var _ ports.IdentityProvider = (*stubIdP)(nil)

func newStubIdP(t *testing.T, iss *tokens.Issuer) *stubIdP {
	return &stubIdP{t: t, iss: iss, challenges: map[string]string{}, codes: map[string][2]string{},
		refresh: map[string]string{}}
}

const stubIdPAuthorize = "https://idp.example.com/authorize"

func (s *stubIdP) AuthCodeURL(state, challenge, redirect string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.challenges[state] = challenge
	q := url.Values{"state": {state}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
		"redirect_uri": {redirect}}
	return stubIdPAuthorize + "?" + q.Encode()
}

// approve is the user signing in at the provider: it returns the code the
// provider would send to the redirect URI.
func (s *stubIdP) approve(state, subject string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	code := "code-" + subject + "-" + string(rune('a'+s.n))
	s.codes[code] = [2]string{s.challenges[state], subject}
	return code
}

func (s *stubIdP) tokensFor(subject string) ports.Tokens {
	s.n++
	rt := "refresh-" + subject + "-" + string(rune('a'+s.n))
	s.refresh[rt] = subject
	return ports.Tokens{AccessToken: s.iss.Mint(s.t, tokens.Subject(subject), tokens.Email(subject+"@example.com")),
		RefreshToken: rt, ExpiresIn: 300, TokenType: "Bearer"}
}

func (s *stubIdP) Exchange(_ context.Context, code, verifier, _ string) (ports.Tokens, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.codes[code]
	if !ok || authsvc.S256(verifier) != g[0] {
		return ports.Tokens{}, fault.Unauthenticated(fault.CodeTokenInvalid, "the sign-in grant is invalid or has expired")
	}
	delete(s.codes, code)
	return s.tokensFor(g[1]), nil
}

func (s *stubIdP) Refresh(_ context.Context, rt string) (ports.Tokens, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.refresh[rt]
	if !ok {
		return ports.Tokens{}, fault.Unauthenticated(fault.CodeTokenInvalid, "the sign-in grant is invalid or has expired")
	}
	delete(s.refresh, rt)
	return s.tokensFor(sub), nil
}

func (s *stubIdP) Revoke(_ context.Context, rt string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = append(s.revoked, rt)
	delete(s.refresh, rt)
	return nil
}

func (s *stubIdP) PasswordLogin(_ context.Context, user, password string) (ports.Tokens, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.panicWith != nil {
		panic(s.panicWith)
	}
	if password != "pw-"+user {
		return ports.Tokens{}, fault.Unauthenticated(fault.CodeTokenInvalid, "the sign-in grant is invalid or has expired")
	}
	return s.tokensFor(user), nil
}

// decodeInto runs the strict decoder on body and returns its raw error.
func decodeInto(t *testing.T, body string, dst any) error {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// serveChunked posts body without a Content-Length and returns the status.
func serveChunked(t *testing.T, h *harness, path, body string) int {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(body))
		_ = pw.Close()
	}()
	r, err := http.NewRequestWithContext(context.Background(), "POST", h.ts.URL+path, pr)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	resp, err := h.ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
