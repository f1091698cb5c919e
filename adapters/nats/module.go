package nats

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/admin"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// HealthGroup is the fx value group hosts collect []ports.HealthCheck from
// (the same name the postgres module uses).
const HealthGroup = "health"

// Module provides the bus as ports.Publisher and ports.Subscriber, and as a
// ports.HealthCheck in the group "health". The host supplies a Config
// (fx.Supply(nats.Config{…})); a *slog.Logger is used when the graph has
// one. The connection opens, and the topology is ensured, on start; it
// drains on stop, after everything that depends on it has stopped.
var Module = fx.Module("nats",
	fx.Provide(
		fx.Private,
		fx.Annotate(provideBus, fx.ParamTags(``, ``, `optional:"true"`)),
	),
	fx.Provide(
		fx.Annotate(func(b *lazyBus) *lazyBus { return b },
			fx.As(new(ports.Publisher)), fx.As(new(ports.Subscriber)), fx.As(new(ports.ConsumerMonitor))),
		fx.Annotate(func(b *lazyBus) ports.HealthCheck { return b }, fx.ResultTags(`group:"`+HealthGroup+`"`)),
	),
)

// lazyBus lets the graph hold the bus before it connects: fx builds values
// without I/O and connects in OnStart, so an unreachable server fails the
// start, not the graph, and `fx.ValidateApp` needs no server.
type lazyBus struct{ p atomic.Pointer[Bus] }

var errNotStarted = fault.Unavailable("nats: the bus has not started", nil)

// PublishBatch implements [ports.Publisher].
func (l *lazyBus) PublishBatch(ctx context.Context, events []event.Encoded) []error {
	b := l.p.Load()
	if b == nil {
		errs := make([]error, len(events))
		for i := range errs {
			errs[i] = errNotStarted
		}
		return errs
	}
	return b.PublishBatch(ctx, events)
}

// Consume implements [ports.Subscriber].
func (l *lazyBus) Consume(ctx context.Context, stream, durable string, handle func(ctx context.Context, m ports.Message)) error {
	b := l.p.Load()
	if b == nil {
		return errNotStarted
	}
	return b.Consume(ctx, stream, durable, handle)
}

// Check implements [ports.HealthCheck].
func (l *lazyBus) Check(ctx context.Context) error {
	b := l.p.Load()
	if b == nil {
		return errNotStarted
	}
	return b.Check(ctx)
}

// ConsumerLag implements [ports.ConsumerMonitor].
func (l *lazyBus) ConsumerLag(ctx context.Context) ([]admin.ConsumerLag, error) {
	b := l.p.Load()
	if b == nil {
		return nil, errNotStarted
	}
	return b.ConsumerLag(ctx)
}

var (
	_ ports.ConsumerMonitor = (*lazyBus)(nil)
	_ ports.Publisher       = (*lazyBus)(nil)
	_ ports.Subscriber      = (*lazyBus)(nil)
	_ ports.HealthCheck     = (*lazyBus)(nil)
)

// Name implements [ports.HealthCheck] even before the bus connects.
func (l *lazyBus) Name() string { return "nats" }

func provideBus(lc fx.Lifecycle, cfg Config, logger *slog.Logger) (*lazyBus, error) {
	if logger != nil && cfg.Logger == nil {
		cfg.Logger = logger
	}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	l := &lazyBus{}
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			b, err := Connect(ctx, cfg)
			if err != nil {
				return err
			}
			if err := b.EnsureStreams(ctx); err != nil {
				_ = b.Close(ctx)
				return err
			}
			l.p.Store(b)
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if b := l.p.Swap(nil); b != nil {
				return b.Close(ctx)
			}
			return nil
		},
	})
	return l, nil
}
