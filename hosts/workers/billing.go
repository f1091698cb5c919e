package workers

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/ports"
)

// Where the billing worker reads allocation events (core/event.Streams).
const (
	BillingStream   = "PROVISIONING"
	BillingConsumer = "billing-usage"
)

// BillingConfig tunes the billing worker. The zero value is the production
// default.
type BillingConfig struct {
	// NakDelay is how long an event whose handling failed (database down)
	// waits for redelivery. Default 5s.
	NakDelay time.Duration
	// DisableCycles runs only the usage consumer (tests drive cycles
	// themselves; a deployment may split the two).
	DisableCycles bool
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *BillingConfig) CheckAndSetDefaults() error {
	if c.NakDelay < 0 {
		return errors.New("workers: NakDelay must not be negative")
	}
	if c.NakDelay == 0 {
		c.NakDelay = 5 * time.Second
	}
	return nil
}

// BillingParams is what the billing worker takes from the graph: the
// stores (postgres.Module, postgres.ComputeModule, postgres.BillingModule,
// postgres.OutboxModule), the bus (nats.Module), and the allocation use
// cases, whose ForceReleaseForTenant releases a depleted tenant's
// allocations.
type BillingParams struct {
	fx.In

	Config      BillingConfig `optional:"true"`
	Tx          ports.TxRunner
	Allocations ports.AllocationStore
	Usage       billing.UsageStore
	Accruer     billing.Accruer
	Ledger      ports.LedgerStore
	Policies    ports.PolicyStore
	Outbox      ports.Outbox
	Subscriber  ports.Subscriber
	Clock       ports.Clock
	IDs         ports.IDs
	Logger      *slog.Logger
	// Releaser defaults to AllocationService when not given.
	Releaser          billing.AllocationReleaser `optional:"true"`
	AllocationService *allocationsvc.Service     `optional:"true"`
}

// BillingUsageHandler applies one delivered allocation event to metering:
// ack when it is handled (or is not metering's), nak with a delay when the
// database failed (the event is redelivered; handling is idempotent), and
// ack a malformed event after logging it, since redelivery cannot fix it.
func BillingUsageHandler(m *billing.Metering, nakDelay time.Duration, log *slog.Logger) func(ctx context.Context, msg ports.Message) {
	return func(ctx context.Context, msg ports.Message) {
		settle(msg, m.HandleEvent(ctx, msg.Envelope), nakDelay, log)
	}
}

// NewBillingUseCases builds metering and the worker from the params.
func NewBillingUseCases(p BillingParams) (*billing.Metering, *billing.Worker, error) {
	rel := p.Releaser
	if rel == nil && p.AllocationService != nil {
		rel = p.AllocationService
	}
	if rel == nil {
		return nil, nil, errors.New("workers: the billing worker needs a billing.AllocationReleaser or *allocationsvc.Service")
	}
	m, err := billing.NewMetering(billing.MeteringDeps{Tx: p.Tx, Allocations: p.Allocations, Usage: p.Usage,
		Ledger: p.Ledger, IDs: p.IDs})
	if err != nil {
		return nil, nil, err
	}
	deps := billing.WorkerDeps{Tx: p.Tx, Accruer: p.Accruer, Releaser: rel, Policies: p.Policies,
		Outbox: p.Outbox, Clock: p.Clock, IDs: p.IDs, Logger: p.Logger.With("component", "billing-worker")}
	if p.AllocationService != nil {
		deps.CostCaps = p.AllocationService // max_total_cost releases (allocationsvc/guards.go)
	}
	w, err := billing.NewWorker(deps)
	if err != nil {
		return nil, nil, err
	}
	return m, w, nil
}

// BillingModule runs `gpuaas worker billing` for the app's lifetime: the
// durable "billing-usage" consumer (usage opens on allocation_active and
// closes on allocation_released / allocation_release_failed) and the
// accrual cycle at every billing.window_seconds boundary. Replicas are
// safe: accrual is exactly-once per (record, window) by construction, and
// tenant state changes are compare-and-set.
var BillingModule = fx.Module("billing-worker",
	fx.Invoke(func(lc fx.Lifecycle, p BillingParams) error {
		cfg := p.Config
		if err := cfg.CheckAndSetDefaults(); err != nil {
			return err
		}
		m, w, err := NewBillingUseCases(p)
		if err != nil {
			return err
		}
		log := p.Logger.With("component", "billing-worker")
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				wg.Add(1)
				go func() {
					defer wg.Done()
					consumeForever(ctx, p.Subscriber, BillingStream, BillingConsumer, BillingUsageHandler(m, cfg.NakDelay, log),
						log.With("durable", BillingConsumer))
				}()
				if !cfg.DisableCycles {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_ = w.Run(ctx, waitFor)
					}()
				}
				return nil
			},
			OnStop: func(stopCtx context.Context) error {
				cancel()
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
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

// waitFor waits d or until ctx ends (then it returns ctx's error).
func waitFor(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
