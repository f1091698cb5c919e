package lambdahost

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/event/relay"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	httphost "github.com/gpuaas/gpuaas/hosts/http"
	"github.com/gpuaas/gpuaas/hosts/workers"
)

// The modules each provide one function's handler from the graph the
// `gpuaas` binary builds for the API and the workers: the same use cases
// and stores, without the loops (the function's trigger replaces them).

// APIModule provides *API over the HTTP host's handler (*httphost.Server).
var APIModule = fx.Module("lambda-api",
	fx.Provide(func(s *httphost.Server) (*API, error) { return NewAPI(s.Handler()) }),
)

// WebhookModule provides *Webhook over the payment use cases.
var WebhookModule = fx.Module("lambda-webhook",
	fx.Provide(func(p *paymentsvc.Service, log *slog.Logger) (*Webhook, error) { return NewWebhook(p, log) }),
)

// BillingTickModule provides *BillingTick over the billing worker the
// `worker billing` process runs in a loop.
var BillingTickModule = fx.Module("lambda-billing-tick",
	fx.Provide(func(p workers.BillingParams) (*BillingTick, error) {
		_, w, err := workers.NewBillingUseCases(p)
		if err != nil {
			return nil, err
		}
		return NewBillingTick(w)
	}),
)

// OutboxDrainModule provides *OutboxDrain over the relay the `worker
// outbox` process runs in a loop.
var OutboxDrainModule = fx.Module("lambda-outbox-drain",
	fx.Provide(func(p workers.OutboxRelayParams) (*OutboxDrain, error) {
		r, err := relay.New(p.Config, p.Claimer, p.Publisher, p.Logger)
		if err != nil {
			return nil, err
		}
		return NewOutboxDrain(r)
	}),
)
