package main

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/devpay"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/stripe"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	httphost "github.com/gpuaas/gpuaas/hosts/http"
	"github.com/gpuaas/gpuaas/ports"
)

type ledgerParams struct {
	fx.In
	Tx       ports.TxRunner
	Ledger   ports.LedgerStore
	Entries  ledgersvc.EntryReader
	Usage    ledgersvc.UsageReader
	Policies ports.PolicyStore
	Audit    ports.AuditLog
	Clock    ports.Clock
	IDs      ports.IDs
}

func newLedgerService(p ledgerParams) (*ledgersvc.Service, error) {
	return ledgersvc.New(ledgersvc.Deps{Tx: p.Tx, Ledger: p.Ledger, Entries: p.Entries, Usage: p.Usage,
		Policies: p.Policies, Audit: p.Audit, Clock: p.Clock, IDs: p.IDs})
}

type paymentParams struct {
	fx.In
	Config   paymentsvc.Config
	Tx       ports.TxRunner
	Store    ports.PaymentStore
	Ledger   ports.LedgerStore
	Provider ports.PaymentProvider
	Policies ports.PolicyStore
	Audit    ports.AuditLog
	Outbox   ports.Outbox
	Clock    ports.Clock
	IDs      ports.IDs
	Refunds  ports.RefundStore
	Credits  paymentsvc.CreditReader
}

func newPaymentService(p paymentParams) (*paymentsvc.Service, error) {
	return paymentsvc.New(p.Config, paymentsvc.Deps{Tx: p.Tx, Store: p.Store, Ledger: p.Ledger, Provider: p.Provider,
		Policies: p.Policies, Audit: p.Audit, Outbox: p.Outbox, Clock: p.Clock, IDs: p.IDs, Refunds: p.Refunds, Credits: p.Credits})
}

// paymentOptions choose the payment provider: Stripe when STRIPE_SECRET_KEY
// is set, the dev provider (a local checkout page that sends signed
// webhooks to the same endpoint) in `gpuaas dev`, else none — the payment
// routes then answer 503.
func paymentOptions(s Settings, dev bool) fx.Option {
	var provider fx.Option
	switch {
	case s.StripeSecretKey != "":
		provider = fx.Options(fx.Supply(stripe.Config{SecretKey: s.StripeSecretKey,
			WebhookSecrets: s.StripeWebhookKey, BackendURL: s.StripeBackend}), stripe.Module)
	case dev:
		provider = fx.Options(
			fx.Supply(devpay.Config{PublicBaseURL: s.PublicURL}),
			devpay.Module,
			fx.Provide(fx.Annotate(func(p *devpay.Provider, log *slog.Logger) httphost.Mount {
				return httphost.Mount{Pattern: devpay.DefaultMountPath, Handler: p.Handler(log.With("component", "devpay"))}
			}, fx.ResultTags(`group:"http_mounts"`))),
		)
	default:
		return fx.Options()
	}
	return fx.Options(
		provider,
		postgres.PaymentsModule,
		fx.Supply(paymentsvc.Config{SuccessURL: s.PublicURL + "/billing?checkout=success",
			CancelURL: s.PublicURL + "/billing?checkout=cancelled", PortalReturnURL: s.PublicURL + "/billing"}),
		fx.Provide(newPaymentService),
	)
}
