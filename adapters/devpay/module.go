package devpay

import (
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// Module provides *Provider (for mounting Handler) and the same value as
// [ports.PaymentProvider]. The host supplies a Config.
var Module = fx.Module("devpay",
	fx.Provide(
		New,
		fx.Annotate(func(p *Provider) *Provider { return p }, fx.As(new(ports.PaymentProvider))),
	),
)
