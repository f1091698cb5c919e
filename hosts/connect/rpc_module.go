package connecthost

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/identity/authsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	"github.com/gpuaas/gpuaas/ports"
)

// RPCParams is what RPCModule takes from the graph: the use cases the HTTP
// host takes, and the authentication use cases (authsvc) over the same
// verifier and machine-access stores.
type RPCParams struct {
	fx.In
	Config      RPCConfig
	Auth        *authsvc.Service
	Identity    *identitysvc.Service
	Allocations *allocationsvc.Service
	Inventory   *inventorysvc.Service
	Ledger      *ledgersvc.Service
	Payments    *paymentsvc.Service `optional:"true"`
	Idempotency ports.IdempotencyStore
	Policies    ports.PolicyStore
	Logger      *slog.Logger `optional:"true"`
}

// RPCModule provides *RPCServer and runs it with the app (`gpuaas serve rpc`).
var RPCModule = fx.Module("connect-rpc",
	fx.Provide(func(p RPCParams) (*RPCServer, error) {
		cfg := p.Config
		if cfg.Logger == nil && p.Logger != nil {
			cfg.Logger = p.Logger.With("component", "rpc")
		}
		return NewRPC(cfg, RPCDeps{Auth: p.Auth, Projects: p.Identity, Allocations: p.Allocations, Inventory: p.Inventory,
			Ledger: p.Ledger, Payments: p.Payments, Idempotency: p.Idempotency, Policies: p.Policies})
	}),
	fx.Invoke(func(lc fx.Lifecycle, s *RPCServer) { lc.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop}) }),
)
