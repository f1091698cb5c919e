package postgres

import (
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/admin/adminsvc"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
)

// BillingModule provides the money path's stores as the interfaces their
// use cases declare. It needs the *DB that Module provides:
//
//	fx.Options(postgres.Module, postgres.ComputeModule, postgres.BillingModule)
//
// Provided: billing.Accruer, billing.UsageStore, ledgersvc.EntryReader,
// ledgersvc.UsageReader, paymentsvc.CreditReader, adminsvc.CreditRefunds.
// (ports.LedgerStore comes from ComputeModule.)
var BillingModule = fx.Module("postgres-billing",
	fx.Provide(
		fx.Annotate(NewBillingStore, fx.As(new(billing.Accruer))),
		fx.Annotate(NewUsageStore, fx.As(new(billing.UsageStore)), fx.As(new(ledgersvc.UsageReader))),
		fx.Annotate(NewLedgerStore, fx.As(new(ledgersvc.EntryReader)), fx.As(new(paymentsvc.CreditReader)),
			fx.As(new(adminsvc.CreditRefunds))),
	),
)
