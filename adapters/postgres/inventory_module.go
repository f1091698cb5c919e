package postgres

import (
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// ComputeModule provides the inventory, allocation, SSH-key and ledger
// stores as their ports. It needs the *DB that Module provides; hosts add
// both:
//
//	fx.Options(postgres.Module, postgres.ComputeModule)
//
// Provided: ports.SKUStore, ports.NodeStore, ports.AllocationStore,
// ports.SSHKeyStore, ports.LedgerStore.
var ComputeModule = fx.Module("postgres-compute",
	fx.Provide(
		fx.Annotate(NewSKUStore, fx.As(new(ports.SKUStore))),
		fx.Annotate(NewNodeStore, fx.As(new(ports.NodeStore))),
		fx.Annotate(NewAllocationStore, fx.As(new(ports.AllocationStore))),
		fx.Annotate(NewSSHKeyStore, fx.As(new(ports.SSHKeyStore))),
		fx.Annotate(NewLedgerStore, fx.As(new(ports.LedgerStore))),
	),
)
