package httphost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/admin/adminsvc"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/audit/auditsvc"
	"github.com/gpuaas/gpuaas/core/identity/authsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/identity/machinesvc"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/notification/notificationsvc"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	"github.com/gpuaas/gpuaas/core/policy/policysvc"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/core/terminal/terminalsvc"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/hosts/internal/httpserve"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
	"github.com/gpuaas/gpuaas/ports"
)

// Deps are the ports and use cases the host calls. Everything but the
// optional fields is required.
type Deps struct {
	// Identity runs the sign-in, tenancy and project use cases.
	Identity *identitysvc.Service
	// Verifier checks bearer tokens (JWKS, algorithms, exp/nbf/iss/aud).
	Verifier ports.TokenVerifier
	// IdP is the OIDC issuer as a client: code exchange, refresh, revoke.
	IdP ports.IdentityProvider
	// Tokens holds the OIDC state and PKCE verifier between authorize and
	// exchange.
	Tokens      ports.TokenStore
	RateLimiter ports.RateLimiter
	Policies    ports.PolicyStore
	Audit       ports.AuditLog
	Idempotency ports.IdempotencyStore
	// Health are the dependencies /healthz reports on (may be empty).
	Health []ports.HealthCheck
	Logger *slog.Logger

	// Metrics is the registry /metrics serves; optional (a private
	// registry with Go and process collectors is made when nil).
	Metrics *prometheus.Registry
	// TracerProvider is optional; the global OTel provider (a no-op unless
	// the binary configures an exporter) is used when nil.
	TracerProvider trace.TracerProvider
	// Clock is optional (wall clock when nil); it dates rate-limit headers.
	Clock ports.Clock
	// AccessChanges is optional: with it a verified token's principal and
	// machine credentials' records are reused while no change of access
	// was announced (authsvc.Deps.Changes). The Identity service should
	// be given the same feed for its project-access cache.
	AccessChanges ports.AccessChanges

	// Inventory and Allocations run the compute routes (SKUs, nodes,
	// allocations, SSH keys). Optional: without them those routes answer
	// 503 service_unavailable (a host built for identity only).
	Inventory   *inventorysvc.Service
	Allocations *allocationsvc.Service
	// Terminal mints browser terminal tokens. Optional: without it
	// POST /allocations/{id}/terminal-token answers 503 feature_disabled.
	Terminal *terminalsvc.Service
	// Payments runs the payment routes (checkout, portal, webhook, admin
	// list). Optional: without it those routes answer 503.
	Payments *paymentsvc.Service
	// Ledger runs the billing routes (balance, ledger, usage and its CSV,
	// admin credits and refunds). Optional: without it those routes
	// answer 503.
	Ledger *ledgersvc.Service

	// PolicyAdmin changes policy values (audited). Optional: without it
	// PUT /admin/policies answers 503.
	PolicyAdmin *policysvc.Service

	// Notifications runs the inbox, live stream, preferences and webhook
	// endpoint routes. Optional: without it those routes answer 503.
	Notifications *notificationsvc.Service
	// Admin runs the operators' user, tenant, policy-override, ops and
	// event-retry routes. Optional: without it those routes answer 503.
	Admin *adminsvc.Service

	// Storage runs the project storage routes (/storage/*). Optional:
	// without it those routes answer 503.
	Storage *storagesvc.Service

	// Machine access (doc/service-accounts.md), optional and together:
	// Machine manages service accounts and API keys; ServiceAccounts,
	// APIKeys and TokenIssuer let the sign-in use cases issue
	// service-account tokens and authenticate them and API keys. Without
	// them those routes answer 503 feature_disabled and API keys are
	// refused.
	Machine         *machinesvc.Service
	ServiceAccounts ports.ServiceAccountStore
	APIKeys         ports.APIKeyStore
	TokenIssuer     ports.TokenIssuer

	// Mounts are handlers served beside the API on the same listener, outside
	// the API's middleware and contract (they do their own checks): the
	// terminal WebSocket gateway and the dev payment page in `gpuaas dev`.
	Mounts []Mount
}

// Mount serves Handler for a ServeMux pattern such as "/ws/terminal/".
type Mount struct {
	Pattern string
	Handler http.Handler
}

func (d *Deps) check() error {
	var missing []string
	for name, nilp := range map[string]bool{
		"Identity": d.Identity == nil, "Verifier": d.Verifier == nil, "IdP": d.IdP == nil,
		"Tokens": d.Tokens == nil, "RateLimiter": d.RateLimiter == nil, "Policies": d.Policies == nil,
		"Audit": d.Audit == nil, "Idempotency": d.Idempotency == nil, "Logger": d.Logger == nil,
	} {
		if nilp {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("httphost: missing dependencies: %s", strings.Join(missing, ", "))
	}
	for i, h := range d.Health {
		if h == nil {
			return fmt.Errorf("httphost: health check %d is nil", i)
		}
	}
	if d.Clock == nil {
		d.Clock = system.Clock{}
	}
	return nil
}

// Server is the HTTP host: the router with its middleware chain and the
// listener it serves on.
type Server struct {
	cfg      Config
	d        Deps
	log      *slog.Logger
	routes   map[string]*route
	contract *contract
	mux      *chi.Mux
	handler  http.Handler
	metrics  *httpMetrics

	auth    *authsvc.Service  // sign-in use cases, built from Deps' ports
	audit   *auditsvc.Service // the audit log's reads, built from Deps.Audit
	origins map[string]bool

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	done <-chan struct{}
}

// New builds the host. It fails when the configuration is invalid, a
// dependency is missing, or a routed operation has no authorisation
// decision in the contract.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	spec, err := loadSpec()
	if err != nil {
		return nil, err
	}
	routes, err := loadRoutes(spec)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, d: d, routes: routes, contract: newContract(spec),
		log:     slog.New(redact.NewHandler(d.Logger.Handler())).With("component", "http"),
		origins: map[string]bool{},
	}
	// The sign-in use cases are built from the ports the host is given.
	ad := authsvc.Deps{Identity: d.Identity, Verifier: d.Verifier, IdP: d.IdP, Tokens: d.Tokens, Policies: d.Policies,
		Clock: d.Clock, Changes: d.AccessChanges}
	if d.ServiceAccounts != nil && d.APIKeys != nil && d.TokenIssuer != nil {
		ad.Accounts, ad.Keys, ad.Issuer, ad.Audit, ad.Clock, ad.IDs = d.ServiceAccounts, d.APIKeys, d.TokenIssuer, d.Audit, d.Clock, system.UUIDs{}
	}
	if s.auth, err = authsvc.New(authsvc.Config{RedirectURIs: cfg.AllowedRedirectURIs,
		AllowLoopbackRedirects: cfg.AllowLoopbackRedirects}, ad); err != nil {
		return nil, err
	}
	if s.audit, err = auditsvc.New(d.Audit); err != nil {
		return nil, err
	}
	for _, o := range cfg.AllowedOrigins {
		s.origins[strings.TrimRight(o, "/")] = true
	}
	if s.metrics, err = newHTTPMetrics(d.Metrics); err != nil {
		return nil, err
	}

	mux := chi.NewRouter()
	mux.NotFound(s.notFound)
	mux.MethodNotAllowed(s.methodNotAllowed)
	api.HandlerWithOptions(&handlers{s: s}, api.ChiServerOptions{BaseRouter: mux, ErrorHandlerFunc: s.paramError})
	s.mux = mux
	if err := s.checkRouted(); err != nil {
		return nil, err
	}
	s.handler = s.chain(mux)
	if len(d.Mounts) > 0 {
		top := http.NewServeMux()
		for _, m := range d.Mounts {
			top.Handle(m.Pattern, m.Handler)
		}
		top.Handle("/", s.handler)
		s.handler = top
	}
	return s, nil
}

// checkRouted makes sure the router serves exactly the contract's
// operations, so every served route has a decision from loadRoutes.
func (s *Server) checkRouted() error {
	seen := map[string]bool{}
	err := chi.Walk(s.mux, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		k := routeKey(method, pattern)
		if s.routes[k] == nil {
			return fmt.Errorf("httphost: route %s has no authorisation decision in the contract", k)
		}
		seen[k] = true
		return nil
	})
	if err != nil {
		return err
	}
	for k := range s.routes {
		if !seen[k] {
			return fmt.Errorf("httphost: contract operation %s is not routed", k)
		}
	}
	return nil
}

// Handler is the complete HTTP handler (middleware chain and routes), for
// tests and for embedding in another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Config.Addr and serves in the background. Listening
// happens before Start returns, so a port already in use fails start-up
// instead of a goroutine later.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("httphost: already started")
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes, // HeaderLimit answers below it, in the error body
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// No Read/WriteTimeout: the browser terminal will hijack long-lived
		// connections; bodies are bounded by BodyLimit instead.
	}
	ln, done, err := httpserve.Start(ctx, "http server", s.cfg.Addr, srv, s.log)
	if err != nil {
		return fmt.Errorf("httphost: %w", err)
	}
	s.ln, s.srv, s.done = ln, srv, done
	return nil
}

// Addr is the address the server listens on (useful with port 0), or ""
// before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	return err
}

// now is the injected clock's time.
func (s *Server) now() time.Time { return s.d.Clock.Now() }
