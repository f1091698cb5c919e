package httphost

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/admin/adminsvc"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/identity/machinesvc"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/notification/notificationsvc"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	"github.com/gpuaas/gpuaas/core/policy/policysvc"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/core/terminal/terminalsvc"
	"github.com/gpuaas/gpuaas/ports"
)

// Params is what the fx Module takes from the graph. Adapters contribute
// health checks to the "health" value group:
//
//	fx.Provide(fx.Annotate(newPing, fx.As(new(ports.HealthCheck)), fx.ResultTags(`group:"health"`)))
type Params struct {
	fx.In

	Config      Config
	Identity    *identitysvc.Service
	Verifier    ports.TokenVerifier
	IdP         ports.IdentityProvider
	Tokens      ports.TokenStore
	RateLimiter ports.RateLimiter
	Policies    ports.PolicyStore
	Audit       ports.AuditLog
	Idempotency ports.IdempotencyStore
	Health      []ports.HealthCheck `group:"health"`
	Logger      *slog.Logger

	Metrics        *prometheus.Registry `optional:"true"`
	TracerProvider trace.TracerProvider `optional:"true"`
	Clock          ports.Clock          `optional:"true"`
	AccessChanges  ports.AccessChanges  `optional:"true"`

	Inventory   *inventorysvc.Service  `optional:"true"`
	Allocations *allocationsvc.Service `optional:"true"`
	Terminal    *terminalsvc.Service   `optional:"true"`
	Payments    *paymentsvc.Service    `optional:"true"`
	Ledger      *ledgersvc.Service     `optional:"true"`
	Mounts      []Mount                `group:"http_mounts"`
	PolicyAdmin *policysvc.Service     `optional:"true"`
	Storage     *storagesvc.Service    `optional:"true"`

	Notifications *notificationsvc.Service `optional:"true"`
	Admin         *adminsvc.Service        `optional:"true"`

	// Machine access (doc/service-accounts.md), all or none.
	Machine         *machinesvc.Service       `optional:"true"`
	ServiceAccounts ports.ServiceAccountStore `optional:"true"`
	APIKeys         ports.APIKeyStore         `optional:"true"`
	TokenIssuer     ports.TokenIssuer         `optional:"true"`
}

// NewFromParams builds the server from the fx graph.
func NewFromParams(p Params) (*Server, error) {
	health := make([]ports.HealthCheck, 0, len(p.Health))
	for _, h := range p.Health {
		if h != nil { // an adapter that is not configured may contribute nil
			health = append(health, h)
		}
	}
	return New(p.Config, Deps{
		Identity: p.Identity, Verifier: p.Verifier, IdP: p.IdP, Tokens: p.Tokens, RateLimiter: p.RateLimiter,
		Policies: p.Policies, Audit: p.Audit, Idempotency: p.Idempotency, Health: health, Logger: p.Logger,
		Metrics: p.Metrics, TracerProvider: p.TracerProvider, Clock: p.Clock, AccessChanges: p.AccessChanges,
		Inventory: p.Inventory, Allocations: p.Allocations, Terminal: p.Terminal, Payments: p.Payments,
		Mounts: p.Mounts, PolicyAdmin: p.PolicyAdmin, Ledger: p.Ledger, Storage: p.Storage,
		Notifications: p.Notifications, Admin: p.Admin,
		Machine: p.Machine, ServiceAccounts: p.ServiceAccounts, APIKeys: p.APIKeys, TokenIssuer: p.TokenIssuer,
	})
}

// Module provides *Server and ties it to the app's lifecycle: it listens on
// start (so a taken port fails start-up) and drains in-flight requests on
// stop within fx's stop timeout.
var Module = fx.Module("http",
	fx.Provide(NewFromParams),
	fx.Invoke(func(lc fx.Lifecycle, s *Server) {
		lc.Append(fx.Hook{OnStart: s.Start, OnStop: s.Shutdown})
	}),
)
