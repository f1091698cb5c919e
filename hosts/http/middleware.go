package httphost

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/machinesvc"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/core/text"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
	"github.com/gpuaas/gpuaas/ports"
)

// reqState is what the layers learn about a request, shared by pointer so
// the outermost layer can log what the inner ones found.
type reqState struct {
	route         *route // nil for an unknown route or method
	urlParams     chi.RouteParams
	correlationID string
	userID        string
	clientIP      string // resolved once (trusted proxies) by correlation
	errCode       string
	rec           *recorder
	aborted       bool // the handler cut the response off (http.ErrAbortHandler)
}

func (st *reqState) routeName() string {
	if st.route == nil {
		return "unmatched"
	}
	return st.route.Pattern
}

// urlParam returns a path parameter of the matched route.
func (st *reqState) urlParam(name string) string {
	for i, k := range st.urlParams.Keys {
		if k == name && i < len(st.urlParams.Values) {
			return st.urlParams.Values[i]
		}
	}
	return ""
}

type ctxKey int

const (
	stateKey ctxKey = iota
	principalKey
	projectKey
)

// stateOf returns the request state; a detached zero state when a handler
// is driven without the chain (it then logs and answers without an id).
func stateOf(ctx context.Context) *reqState {
	if st, ok := ctx.Value(stateKey).(*reqState); ok {
		return st
	}
	return &reqState{}
}

// PrincipalFrom returns the authenticated caller of the request.
func PrincipalFrom(ctx context.Context) (identity.Principal, bool) {
	p, ok := ctx.Value(principalKey).(identity.Principal)
	return p, ok
}

// ActiveProject is the project selected by X-Project-ID (or the path) and
// the caller's effective role in it.
type ActiveProject struct {
	Project identity.Project
	Role    identity.ProjectRole
}

// ActiveProjectFrom returns the request's validated active project.
func ActiveProjectFrom(ctx context.Context) (ActiveProject, bool) {
	p, ok := ctx.Value(projectKey).(ActiveProject)
	return p, ok
}

// recorder remembers the status and size of the response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flush, hijack).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// chain wraps the router in the middleware layers, outermost first.
func (s *Server) chain(router http.Handler) http.Handler {
	h := router
	for _, mw := range []func(http.Handler) http.Handler{
		s.idempotency, s.validate, s.rateLimit, s.authorize, s.authenticate, s.bodyLimit, s.headerLimit, s.cors, s.securityHeaders, s.correlation, s.tracing,
	} {
		h = mw(h)
	}
	return s.entry(h)
}

// find resolves the contract route for a method and the request's path.
func (s *Server) find(method string, r *http.Request) *route {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	if p := s.mux.Find(chi.NewRouteContext(), method, path); p != "" {
		return s.routes[routeKey(method, p)]
	}
	return nil
}

// entry is the outermost layer: it resolves the route up front (so every
// layer knows the pattern and its authorisation decision before routing),
// recovers panics into a generic 500, and writes the access log line and
// the metrics when the request ends.
func (s *Server) entry(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqState{rec: &recorder{ResponseWriter: w}}
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		rctx := chi.NewRouteContext()
		if p := s.mux.Find(rctx, r.Method, path); p != "" {
			st.route = s.routes[routeKey(r.Method, p)]
			st.urlParams = rctx.URLParams
		}
		r = r.WithContext(context.WithValue(r.Context(), stateKey, st))
		defer func() {
			p := recover()
			switch {
			case p == http.ErrAbortHandler: //nolint:errorlint // sentinel compared as net/http does
				// A response cut off on purpose (a download whose client
				// left, or whose source failed): logged and counted, then
				// raised again so net/http drops the connection.
				st.aborted = true
			case p != nil:
				s.logPanic(r, st, p)
				if st.rec.status == 0 {
					s.writeFault(st.rec, r, http.StatusInternalServerError, fault.Internal(nil))
				}
			}
			s.observe(r, st, time.Since(start))
			if st.aborted {
				panic(p)
			}
		}()
		next.ServeHTTP(st.rec, r)
	})
}

// logPanic logs a recovered panic once. The panic value is logged only when
// the runtime raised it (nil dereference, index out of range): those carry
// no request data, while a value passed to panic() by code might.
func (s *Server) logPanic(r *http.Request, st *reqState, p any) {
	val := fmt.Sprintf("withheld value of type %T", p)
	if re, ok := p.(runtime.Error); ok {
		val = re.Error()
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "panic recovered",
		slog.String("correlation_id", st.correlationID), slog.String("route", st.routeName()),
		slog.String("method", r.Method), slog.String("panic", val), slog.String("stack", string(debug.Stack())))
}

// observe writes the access log line and the request metrics. It logs the
// route pattern, never the query string or headers: those carry codes,
// states and tokens.
func (s *Server) observe(r *http.Request, st *reqState, d time.Duration) {
	status := st.rec.status
	if status == 0 {
		status = http.StatusOK
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("route", st.routeName()), slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.Int64("bytes", st.rec.bytes),
		slog.String("correlation_id", st.correlationID), slog.String("client_ip", clientIP(r)),
	}
	if st.route != nil {
		// Matched paths hold only the ids the contract declares.
		attrs = append(attrs, slog.String("path", r.URL.Path))
	}
	if st.userID != "" {
		attrs = append(attrs, slog.String("user_id", st.userID))
	}
	if st.errCode != "" {
		attrs = append(attrs, slog.String("error_code", st.errCode))
	}
	if st.aborted {
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(r.Context(), level, "http request", attrs...)
	s.metrics.observe(r.Method, st.routeName(), status, d)
}

// tracing starts a server span per request, named by method and route
// pattern, when the host has a tracer provider; without one it is not in
// the chain at all (tracing off costs nothing). The API is public: a
// caller's traceparent becomes a link, never the parent, so nobody outside
// chooses a trace's id or its sampling. It records what the access log
// does (method, route, path, status), never headers or the query string.
// (otelhttp did the same at twice the cost per request: it wraps bodies and
// computes attributes the platform does not want.)
func (s *Server) tracing(next http.Handler) http.Handler {
	if s.d.TracerProvider == nil {
		return next
	}
	tracer := s.d.TracerProvider.Tracer("github.com/gpuaas/gpuaas/hosts/http")
	server := trace.WithSpanKind(trace.SpanKindServer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r.Context())
		// What is known at the start goes in one slice (the SDK copies it
		// once); the status is the one attribute set at the end.
		var name string
		var attrs []attribute.KeyValue
		if st.route != nil {
			name = st.route.key
			attrs = []attribute.KeyValue{attribute.String("http.request.method", r.Method),
				attribute.String("http.route", st.route.Pattern),
				attribute.String("url.path", r.URL.Path)} // matched paths hold only ids
		} else {
			name = r.Method + " unmatched"
			attrs = []attribute.KeyValue{attribute.String("http.request.method", r.Method),
				attribute.String("http.route", "unmatched")}
		}
		opts := []trace.SpanStartOption{server, trace.WithAttributes(attrs...)}
		if r.Header.Get("Traceparent") != "" {
			if remote := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(r.Context(),
				propagation.HeaderCarrier(r.Header))); remote.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: remote}))
			}
		}
		ctx, span := tracer.Start(r.Context(), name, opts...)
		// Deferred, so a response cut off with http.ErrAbortHandler (or a
		// panic, which entry turns into a 500) still gets its status.
		defer func() {
			p := recover()
			abort := p == http.ErrAbortHandler //nolint:errorlint // sentinel compared as net/http does
			status := st.rec.status
			switch {
			case p != nil && !abort && status == 0:
				status = http.StatusInternalServerError // what entry answers a panic with
			case status == 0:
				status = http.StatusOK
			}
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			switch {
			case abort && r.Context().Err() == nil: // cut off by the server, not by a client that left
				span.SetStatus(codes.Error, "response aborted")
			case status >= 500:
				span.SetStatus(codes.Error, "")
			}
			span.End()
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// correlation echoes a sane X-Correlation-ID or makes one, and puts it and
// the client address in the context for use cases (audit, events).
func (s *Server) correlation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Correlation-ID")
		if !callctx.ValidCorrelationID(id) {
			id = uuid.NewString()
		}
		st := stateOf(r.Context())
		st.correlationID = id
		st.clientIP = resolveClientIP(r, s.cfg.TrustedProxies)
		w.Header().Set("X-Correlation-ID", id)
		ctx := callctx.WithCorrelationID(r.Context(), id)
		ctx = callctx.WithSourceIP(ctx, clientIP(r))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// hstsValue is sent when the public URL is https: browsers then refuse
// plain http to this host for a year (subdomains included).
const hstsValue = "max-age=31536000; includeSubDomains"

// securityHeaders sets the headers every response carries: nosniff (a
// browser never guesses a JSON or CSV body into HTML or script), no-store on
// every route that is not public (authenticated answers are the caller's
// and must not sit in a shared or browser cache; a handler may still say
// otherwise), and HSTS when the host is served over https.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	hsts := strings.HasPrefix(s.cfg.PublicBaseURL, "https://")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		// No page of another origin may frame an answer, and no URL of this
		// API leaks to another site in a Referer (the console's pages set
		// their own policy with the same frame-ancestors).
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		if hsts {
			h.Set("Strict-Transport-Security", hstsValue)
		}
		if st := stateOf(r.Context()); st.route == nil || st.route.Authz != AuthzPublic {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// clientIP is the client's address: the peer's, or — from a trusted proxy
// (Config.TrustedProxies) — the one its forwarding headers name
// (resolveClientIP, resolved once per request).
func clientIP(r *http.Request) string {
	if ip := stateOf(r.Context()).clientIP; ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

const (
	corsAllowMethods  = "GET, POST, PUT, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, X-Correlation-ID, X-Project-ID, X-Idempotency-Key"
	corsExposeHeaders = "X-Correlation-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Idempotent-Replayed, Location"
)

// cors grants cross-origin access, with credentials, to the configured
// origins only, and answers their preflights. Other origins get no CORS
// headers (the browser then refuses to expose responses) and their
// preflights are refused outright.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !s.origins[origin] {
			if preflight {
				s.fail(w, r, fault.Forbidden("origin not allowed"))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		if preflight {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}

// bodyLimit caps the request body; a declared length over the cap is
// refused before anything reads it.
func (s *Server) bodyLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := stateOf(r.Context()); st.route != nil && st.route.streamBody {
			next.ServeHTTP(w, r) // a file upload: the use case bounds it
			return
		}
		if r.ContentLength > s.cfg.BodyLimit {
			s.fail(w, r, errTooLarge(s.cfg.BodyLimit))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.BodyLimit)
		}
		next.ServeHTTP(w, r)
	})
}

// bearerToken extracts the access token from the Authorization header.
func bearerToken(r *http.Request) (string, error) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" || strings.EqualFold(h, "Bearer") {
		return "", fault.Unauthenticated(fault.CodeTokenMissing, "an access token is required")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fault.Unauthenticated(fault.CodeTokenInvalid, "the Authorization header must be \"Bearer <token>\"")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fault.Unauthenticated(fault.CodeTokenMissing, "an access token is required")
	}
	return tok, nil
}

// authenticate verifies the bearer token of every non-public route and
// resolves the caller. Public routes never read the Authorization header.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r.Context())
		if st.route == nil || st.route.Authz == AuthzPublic {
			next.ServeHTTP(w, r)
			return
		}
		// Requests without a valid token are counted per client address,
		// and an address over its budget is refused before its token's
		// signature is checked: forged tokens cost a lookup, not a verify.
		if !s.unauthAllowed(w, r) {
			return
		}
		raw, err := bearerToken(r)
		if err != nil {
			s.countUnauth(r)
			s.fail(w, r, err)
			return
		}
		p, err := s.auth.Authenticate(r.Context(), raw)
		if err != nil {
			if fault.IsKind(err, fault.KindUnauthenticated) {
				s.countUnauth(r)
			}
			s.fail(w, r, err)
			return
		}
		st.userID = p.User.ID
		ctx := context.WithValue(r.Context(), principalKey, p)
		if m := p.Machine; m != nil {
			// Audit rows written during the request name the credential
			// (auditsvc.StampActor).
			ctx = callctx.WithActor(ctx, callctx.Actor{UserID: p.User.ID, Kind: string(m.Kind), ID: m.ID})
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// unauthKey is the budget of requests without a valid token from the
// request's client address.
func unauthKey(r *http.Request) string { return "rl:" + string(classUnauth) + ":ip:" + clientIP(r) }

// unauthAllowed refuses (429) a client address that has spent its budget of
// requests without a valid token, without counting this one. The limiter
// failing lets the request through (fail open, as rateLimit does).
func (s *Server) unauthAllowed(w http.ResponseWriter, r *http.Request) bool {
	ctx := r.Context()
	dec, err := s.d.RateLimiter.Peek(ctx, unauthKey(r), s.rateLimitFor(ctx, classUnauth, ""), time.Minute)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "rate limiter failed; allowing request",
			slog.String("correlation_id", stateOf(ctx).correlationID), slog.String("error", redact.Text(err.Error())))
		return true
	}
	if dec.Allowed {
		return true
	}
	s.tooMany(w, r, dec)
	return false
}

// countUnauth counts a request that had no valid token.
func (s *Server) countUnauth(r *http.Request) {
	ctx := r.Context()
	if _, err := s.d.RateLimiter.Allow(ctx, unauthKey(r), s.rateLimitFor(ctx, classUnauth, ""), time.Minute); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "rate limiter failed to count a request without a valid token",
			slog.String("correlation_id", stateOf(ctx).correlationID), slog.String("error", redact.Text(err.Error())))
	}
}

// CodeInsufficientScope refuses a machine credential without the scope a
// route needs (x-scope).
const CodeInsufficientScope fault.Code = "insufficient_scope"

// authorize applies the route's decision and the project context. Projects
// are checked before roles so a project of another tenant is 404 to
// everyone; platform routes are checked first since they are not scoped to
// any project.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r.Context())
		p, ok := PrincipalFrom(r.Context())
		if st.route == nil || st.route.Authz == AuthzPublic {
			next.ServeHTTP(w, r)
			return
		}
		if !ok { // unreachable behind authenticate; fail closed if the chain is ever rearranged
			s.fail(w, r, fault.Unauthenticated(fault.CodeTokenMissing, "an access token is required"))
			return
		}
		// A machine credential (service-account token, API key) never
		// reaches a route for people only: every tenant-admin and
		// platform-admin route is one, whatever the holder's roles.
		if st.route.Scope == identity.ScopeInteractive && !p.Interactive() {
			s.fail(w, r, machinesvc.ErrInteractiveRequired())
			return
		}
		if st.route.Authz == AuthzPlatformAdmin && !p.IsPlatformAdmin() {
			s.fail(w, r, fault.Forbidden("this route is for platform administrators"))
			return
		}
		ctx := r.Context()
		scoped := false
		// The project ids are checked against the text policy here, before
		// they reach a store; the rest of the request is validated after
		// the decision (validate), so a caller who may not use the route
		// learns nothing from its input rules.
		if hdr := r.Header.Get("X-Project-ID"); hdr != "" {
			if err := text.Line("X-Project-ID", hdr, 1, identity.IDMaxLength); err != nil {
				s.fail(w, r, err)
				return
			}
			pr, role, err := s.d.Identity.ProjectAccess(ctx, p, hdr)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			ctx = context.WithValue(ctx, projectKey, ActiveProject{Project: pr, Role: role})
			scoped = true
		}
		if pid := st.urlParam("project_id"); pid != "" {
			if err := text.Line("project_id", pid, 1, identity.IDMaxLength); err != nil {
				s.fail(w, r, err)
				return
			}
			pr, role, err := s.d.Identity.ProjectAccess(ctx, p, pid)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			// The path names the project the route acts on; it wins over the header.
			ctx = context.WithValue(ctx, projectKey, ActiveProject{Project: pr, Role: role})
			scoped = true
		}
		// Scopes after projects: a credential of another project learns
		// nothing (404) before it learns what it may not do (403).
		if !p.Allows(st.route.Scope) {
			s.fail(w, r, (&fault.Error{Kind: fault.KindForbidden, Code: CodeInsufficientScope,
				Message: "this credential lacks the scope this route needs"}).With("required_scope", string(st.route.Scope)))
			return
		}
		switch st.route.Authz {
		case AuthzProjectMember:
			if !scoped {
				s.fail(w, r, &fault.Error{Kind: fault.KindInvalid, Code: fault.CodeProjectRequired,
					Message: "this route needs a project: send X-Project-ID", Field: "X-Project-ID"})
				return
			}
		case AuthzTenantAdmin:
			if !p.CanManageTenant() {
				s.fail(w, r, fault.Forbidden("this route is for tenant owners and admins"))
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// rateLimit counts the request against the caller's budget for the route
// class. It fails open: a limiter outage must not take the API down, so the
// request proceeds and a warning is logged.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r.Context())
		if st.route == nil || st.route.Class == classNone {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		subject, tenant := "ip:"+clientIP(r), ""
		if p, ok := PrincipalFrom(ctx); ok {
			subject, tenant = "user:"+p.User.ID, p.TenantID
		}
		limit := s.rateLimitFor(ctx, st.route.Class, tenant)
		dec, err := s.d.RateLimiter.Allow(ctx, "rl:"+string(st.route.Class)+":"+subject, limit, time.Minute)
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "rate limiter failed; allowing request",
				slog.String("correlation_id", st.correlationID), slog.String("error", redact.Text(err.Error())))
			next.ServeHTTP(w, r)
			return
		}
		if !dec.Allowed {
			s.tooMany(w, r, dec)
			return
		}
		s.rateHeaders(w, dec)
		next.ServeHTTP(w, r)
	})
}

// rateHeaders describes the caller's budget; it returns the seconds until
// the window ends.
func (s *Server) rateHeaders(w http.ResponseWriter, dec ports.RateDecision) int {
	reset := int(max(0, dec.ResetAt.Sub(s.now()).Round(time.Second)/time.Second))
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(dec.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, dec.Remaining)))
	h.Set("X-RateLimit-Reset", strconv.Itoa(reset))
	return reset
}

// tooMany answers 429 rate_limited with Retry-After.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, dec ports.RateDecision) {
	reset := s.rateHeaders(w, dec)
	w.Header().Set("Retry-After", strconv.Itoa(max(1, reset)))
	s.fail(w, r, (&fault.Error{Kind: fault.KindRateLimited, Code: fault.CodeRateLimited,
		Message: "too many requests; retry later"}).With("retry_after_seconds", max(1, reset)))
}

// policyIntReader is a PolicyStore that reads one value without copying
// them all (postgres.PolicyStore): rate limits are read on every request.
type policyIntReader interface {
	Int(ctx context.Context, tenantID string, k policy.Key) (int64, error)
}

// rateLimitFor reads the class's per-minute limit from policy (the tenant's
// effective values for signed-in callers), falling back to the defaults when
// the policy store fails.
func (s *Server) rateLimitFor(ctx context.Context, c rateClass, tenantID string) int {
	key := policy.RateLimitDefaultRPM
	switch c {
	case classMutate:
		key = policy.RateLimitMutateRPM
	case classAuth:
		key = policy.RateLimitAuthRPM
	case classUnauth:
		key = policy.RateLimitUnauthRPM
	}
	if r, ok := s.d.Policies.(policyIntReader); ok {
		n, err := r.Int(ctx, tenantID, key)
		if err == nil {
			return int(n)
		}
		// The store failed: Values below fails too, and says so.
	}
	vals, err := s.d.Policies.Values(ctx, tenantID)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "policy store failed; using default rate limits",
			slog.String("correlation_id", callctx.CorrelationID(ctx)), slog.String("error", redact.Text(err.Error())))
		vals = nil
	}
	return int(vals.Int(key))
}
