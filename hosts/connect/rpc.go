package connecthost

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/machinesvc"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/allocations/v1/allocationsv1connect"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/billing/v1/billingv1connect"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/inventory/v1/inventoryv1connect"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/payments/v1/paymentsv1connect"
	"github.com/gpuaas/gpuaas/hosts/internal/httpserve"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
	"github.com/gpuaas/gpuaas/ports"
)

// RPCConfig configures the internal Connect RPC listener (`gpuaas serve
// rpc`): Connect, gRPC and gRPC-Web over HTTP/1.1 and cleartext HTTP/2 for
// callers inside the cluster (put it behind the mesh's mTLS or a network
// policy; authentication is by service-account token either way).
type RPCConfig struct {
	// Addr is the listen address. Default 127.0.0.1:8445.
	Addr string
	// Logger receives refusals and server errors. Default: discard.
	Logger *slog.Logger
	// Telemetry: spans and metrics of the RPCs (observe.go). Optional.
	Telemetry Telemetry
}

// CheckAndSetDefaults fills in defaults.
func (c *RPCConfig) CheckAndSetDefaults() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8445"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Logger = slog.New(redact.NewHandler(c.Logger.Handler()))
	return nil
}

// Authenticator resolves a bearer token to its principal
// (authsvc.Service.Authenticate: the platform's service-account tokens
// among the others).
type Authenticator interface {
	Authenticate(ctx context.Context, accessToken string) (identity.Principal, error)
}

// ProjectChecker answers whether a project is the caller's, 404 otherwise
// (identitysvc.Service.ProjectAccess).
type ProjectChecker interface {
	ProjectAccess(ctx context.Context, p identity.Principal, projectID string) (identity.Project, identity.ProjectRole, error)
}

// RPCDeps are the use cases the internal services call: the same ones the
// HTTP host calls. Payments is optional (without a provider the payments
// service answers Unavailable, as the REST routes answer 503).
type RPCDeps struct {
	Auth        Authenticator
	Projects    ProjectChecker
	Allocations *allocationsvc.Service
	Inventory   *inventorysvc.Service
	Ledger      *ledgersvc.Service
	Payments    *paymentsvc.Service
	// Idempotency keeps mutating calls' request_id (AIP-155) as the REST
	// API keeps X-Idempotency-Key; Policies says for how long.
	Idempotency ports.IdempotencyStore
	Policies    ports.PolicyStore
}

// authz is an RPC's authorisation decision; the values are the REST API's
// x-authz values (doc/api/README.md), and a test pins each RPC's decision
// and scope to its REST operation's.
type authz string

const (
	authzAuthenticated authz = "authenticated"
	authzProjectMember authz = "project_member"
	authzPlatformAdmin authz = "platform_admin"
)

type decision struct {
	authz authz
	scope identity.Scope
	// operation is the REST operation whose decision this is (pinned by
	// TestRPCDecisionsMatchTheContract).
	operation string
}

// rpcDecisions is every internal RPC's decision; a procedure missing here
// is refused.
var rpcDecisions = map[string]decision{
	allocationsv1connect.AllocationServiceCreateAllocationProcedure:  {authzProjectMember, identity.ScopeAllocations, "createAllocation"},
	allocationsv1connect.AllocationServiceGetAllocationProcedure:     {authzAuthenticated, identity.ScopeRead, "getAllocation"},
	allocationsv1connect.AllocationServiceListAllocationsProcedure:   {authzProjectMember, identity.ScopeRead, "listAllocations"},
	allocationsv1connect.AllocationServiceReleaseAllocationProcedure: {authzAuthenticated, identity.ScopeAllocations, "releaseAllocation"},
	inventoryv1connect.InventoryServiceListSkusProcedure:             {authzAuthenticated, identity.ScopeRead, "listSKUs"},
	billingv1connect.BillingServiceGetBalanceProcedure:               {authzAuthenticated, identity.ScopeBilling, "getBillingBalance"},
	billingv1connect.BillingServiceListLedgerEntriesProcedure:        {authzAuthenticated, identity.ScopeBilling, "listLedgerEntries"},
	paymentsv1connect.PaymentsAdminServiceListPaymentSessionsProcedure: {authzPlatformAdmin, identity.ScopeInteractive,
		"adminListPaymentSessions"},
}

// Codes of the RPC host's own refusals.
const (
	// CodeServiceAccountRequired: the listener serves service accounts;
	// a person's token or an API key is refused.
	CodeServiceAccountRequired fault.Code = "service_account_required"
	// CodeInsufficientScope: the credential lacks the RPC's scope (the
	// REST host's code of the same refusal).
	CodeInsufficientScope fault.Code = "insufficient_scope"
)

// RPCServer serves the internal services, gRPC health and reflection.
type RPCServer struct {
	cfg  RPCConfig
	d    RPCDeps
	h    http.Handler
	srv  *http.Server
	ln   net.Listener
	done <-chan struct{}
}

// RPCServiceNames are the services the listener serves (health and
// reflection report them).
var RPCServiceNames = []string{
	allocationsv1connect.AllocationServiceName,
	inventoryv1connect.InventoryServiceName,
	billingv1connect.BillingServiceName,
	paymentsv1connect.PaymentsAdminServiceName,
}

// NewRPC builds the listener over the use cases.
func NewRPC(cfg RPCConfig, d RPCDeps) (*RPCServer, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if d.Auth == nil || d.Projects == nil || d.Allocations == nil || d.Inventory == nil || d.Ledger == nil ||
		d.Idempotency == nil || d.Policies == nil {
		return nil, errors.New("connecthost: the RPC host needs Auth, Projects, Allocations, Inventory, Ledger, Idempotency and Policies")
	}
	s := &RPCServer{cfg: cfg, d: d}
	obs, err := newObserver("internal", cfg.Telemetry)
	if err != nil {
		return nil, err
	}
	opts := []connect.HandlerOption{connect.WithInterceptors(interceptors(obs, s.authorizer())...), connect.WithReadMaxBytes(1 << 20)}
	mux := http.NewServeMux()
	mux.Handle(allocationsv1connect.NewAllocationServiceHandler(&allocationRPC{d: d, log: cfg.Logger}, opts...))
	mux.Handle(inventoryv1connect.NewInventoryServiceHandler(&inventoryRPC{d: d}, opts...))
	mux.Handle(billingv1connect.NewBillingServiceHandler(&billingRPC{d: d}, opts...))
	mux.Handle(paymentsv1connect.NewPaymentsAdminServiceHandler(&paymentsRPC{d: d}, opts...))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(RPCServiceNames...)))
	reflector := grpcreflect.NewStaticReflector(RPCServiceNames...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	s.h = mux
	return s, nil
}

// Handler is the listener's handler (tests serve it themselves).
func (s *RPCServer) Handler() http.Handler { return s.h }

// Start listens on cfg.Addr.
func (s *RPCServer) Start(ctx context.Context) error {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s.srv = &http.Server{Handler: s.h, Protocols: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn)}
	ln, done, err := httpserve.Start(ctx, "rpc listener", s.cfg.Addr, s.srv, s.cfg.Logger)
	if err != nil {
		return err
	}
	s.ln, s.done = ln, done
	return nil
}

// Addr is the bound address after Start.
func (s *RPCServer) Addr() string {
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// Stop drains in-flight calls until ctx ends.
func (s *RPCServer) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

type principalKey struct{}

func principalFrom(ctx context.Context) identity.Principal {
	p, _ := ctx.Value(principalKey{}).(identity.Principal)
	return p
}

// projectScoped is a request that names the project it acts in.
type projectScoped interface{ GetProjectId() string }

// authorizer authenticates every call by its service-account token and
// applies the RPC's decision, in the REST host's order: the credential,
// then the project (404 for one that is not the caller's), then the scope,
// then the role.
func (s *RPCServer) authorizer() connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			procedure := req.Spec().Procedure
			if host, _, err := net.SplitHostPort(req.Peer().Addr); err == nil {
				ctx = callctx.WithSourceIP(ctx, host)
			}
			if cid := req.Header().Get("X-Correlation-Id"); callctx.ValidCorrelationID(cid) {
				ctx = callctx.WithCorrelationID(ctx, cid)
			}
			p, err := s.authorize(ctx, procedure, req.Header().Get("Authorization"), req.Any())
			if err != nil {
				return nil, s.fail(ctx, procedure, err)
			}
			ctx = context.WithValue(ctx, principalKey{}, p)
			ctx = callctx.WithActor(ctx, callctx.Actor{UserID: p.User.ID, Kind: string(p.Machine.Kind), ID: p.Machine.ID})
			res, err := next(ctx, req)
			if err != nil {
				return nil, s.fail(ctx, procedure, err)
			}
			return res, nil
		}
	})
}

func (s *RPCServer) authorize(ctx context.Context, procedure, authorization string, msg any) (identity.Principal, error) {
	dec, ok := rpcDecisions[procedure]
	if !ok {
		return identity.Principal{}, fault.NotFound("procedure", "")
	}
	token, found := strings.CutPrefix(authorization, "Bearer ")
	if !found || strings.TrimSpace(token) == "" {
		return identity.Principal{}, fault.Unauthenticated(fault.CodeTokenMissing, "a service-account token is required")
	}
	p, err := s.d.Auth.Authenticate(ctx, strings.TrimSpace(token))
	if err != nil {
		return identity.Principal{}, err
	}
	if p.Machine == nil || p.Machine.Kind != identity.CallerServiceAccount {
		return identity.Principal{}, &fault.Error{Kind: fault.KindForbidden, Code: CodeServiceAccountRequired,
			Message: "this listener serves service accounts; use the REST API with this credential"}
	}
	if dec.scope == identity.ScopeInteractive && !p.Interactive() {
		return identity.Principal{}, machinesvc.ErrInteractiveRequired()
	}
	if dec.authz == authzPlatformAdmin && !p.IsPlatformAdmin() {
		return identity.Principal{}, fault.Forbidden("this call is for platform administrators")
	}
	if dec.authz == authzProjectMember {
		ps, _ := msg.(projectScoped)
		if ps == nil || ps.GetProjectId() == "" {
			return identity.Principal{}, &fault.Error{Kind: fault.KindInvalid, Code: fault.CodeProjectRequired,
				Message: "this call needs a project: set project_id", Field: "project_id"}
		}
		if _, _, err := s.d.Projects.ProjectAccess(ctx, p, ps.GetProjectId()); err != nil {
			return identity.Principal{}, err
		}
	}
	if !p.Allows(dec.scope) {
		return identity.Principal{}, (&fault.Error{Kind: fault.KindForbidden, Code: CodeInsufficientScope,
			Message: "this credential lacks the scope this call needs"}).With("required_scope", string(dec.scope))
	}
	return p, nil
}

// fail turns err into the Connect error of the one table (toConnect, the
// agent gateway's too), logging server-side failures once.
func (s *RPCServer) fail(ctx context.Context, procedure string, err error) error {
	ce := toConnect(err)
	if k := fault.From(err).Kind; k == fault.KindInternal || k == fault.KindUnavailable {
		s.cfg.Logger.ErrorContext(ctx, "rpc failed", "procedure", procedure,
			"correlation_id", callctx.CorrelationID(ctx), "error", redact.Text(err.Error()))
	}
	return ce
}
