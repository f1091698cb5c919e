package postgres

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// OutboxModule provides the transactional outbox as [ports.Outbox] (for use
// cases) and [ports.OutboxClaimer] (for relays). It needs *DB from [Module]
// and an OutboxConfig (optional) in the graph.
var OutboxModule = fx.Module("postgres-outbox",
	fx.Provide(
		fx.Private,
		fx.Annotate(provideOutbox, fx.ParamTags(``, ``, `optional:"true"`, `optional:"true"`)),
	),
	fx.Provide(
		fx.Annotate(func(o *Outbox) *Outbox { return o }, fx.As(new(ports.Outbox)), fx.As(new(ports.OutboxClaimer))),
	),
)

func provideOutbox(lc fx.Lifecycle, db *DB, cfg *OutboxConfig, logger *slog.Logger) (*Outbox, error) {
	c := OutboxConfig{}
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil && logger != nil {
		c.Logger = logger.With("component", "outbox")
	}
	o, err := NewOutbox(db, c)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(o.Close))
	return o, nil
}
