package stripe

import (
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// Module provides the Stripe provider as [ports.PaymentProvider]. The host
// supplies a Config (fx.Supply(stripe.Config{…})) built from its secrets.
var Module = fx.Module("stripe",
	fx.Provide(fx.Annotate(New, fx.As(new(ports.PaymentProvider)))),
)
