package workers

import (
	"context"
	"log/slog"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/event/relay"
	"github.com/gpuaas/gpuaas/ports"
)

// OutboxRelayParams is what the relay takes from the graph.
type OutboxRelayParams struct {
	fx.In

	Config    relay.Config `optional:"true"`
	Claimer   ports.OutboxClaimer
	Publisher ports.Publisher
	Logger    *slog.Logger
}

// OutboxRelayModule runs one outbox relay for the app's lifetime. It stops
// on app stop and waits for the batch in hand to settle.
var OutboxRelayModule = fx.Module("outbox-relay",
	fx.Invoke(func(lc fx.Lifecycle, p OutboxRelayParams) error {
		r, err := relay.New(p.Config, p.Claimer, p.Publisher, p.Logger.With("component", "outbox-relay"))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				go func() {
					defer close(done)
					if err := r.Run(ctx); err != nil && ctx.Err() == nil {
						p.Logger.Error("outbox relay stopped", "err", err)
					}
				}()
				return nil
			},
			OnStop: func(stopCtx context.Context) error {
				cancel()
				select {
				case <-done:
					return nil
				case <-stopCtx.Done():
					return stopCtx.Err()
				}
			},
		})
		return nil
	}),
)
