package postgres

import (
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// PaymentsModule provides the payment store as [ports.PaymentStore] and
// the refund requests as [ports.RefundStore]. It
// needs the *DB that Module provides.
var PaymentsModule = fx.Module("postgres-payments",
	fx.Provide(fx.Annotate(NewPaymentStore, fx.As(new(ports.PaymentStore)))),
	fx.Provide(fx.Annotate(NewRefundStore, fx.As(new(ports.RefundStore)))),
)
