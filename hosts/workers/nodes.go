package workers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/ports"
)

// NodeSweeperConfig tunes the node sweeper.
type NodeSweeperConfig struct {
	// Interval between sweeps; 0 means DefaultNodeSweepInterval. It should
	// be well under inventory.OfflineAfter so a silent node goes offline
	// soon after the cut-off.
	Interval time.Duration
}

// DefaultNodeSweepInterval is how often the sweeper runs by default.
const DefaultNodeSweepInterval = 15 * time.Second

// CheckAndSetDefaults validates the config.
func (c *NodeSweeperConfig) CheckAndSetDefaults() error {
	if c.Interval < 0 {
		return errors.New("workers: node sweep interval must not be negative")
	}
	if c.Interval == 0 {
		c.Interval = DefaultNodeSweepInterval
	}
	return nil
}

// NodeSweeper marks silent nodes offline (inventorysvc.SweepOffline, cut-off
// inventory.OfflineAfter unless the service is configured otherwise) and,
// when a task queue is present, expires node tasks past their expiry.
// Several replicas may run it: both steps are single set-based statements.
type NodeSweeper struct {
	cfg   NodeSweeperConfig
	inv   *inventorysvc.Service
	tasks ports.TaskQueue // optional
	clock ports.Clock
	log   *slog.Logger
}

// NewNodeSweeper builds a sweeper; tasks may be nil.
func NewNodeSweeper(cfg NodeSweeperConfig, inv *inventorysvc.Service, tasks ports.TaskQueue, clock ports.Clock, log *slog.Logger) (*NodeSweeper, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if inv == nil || clock == nil || log == nil {
		return nil, errors.New("workers: node sweeper needs the inventory service, a clock and a logger")
	}
	return &NodeSweeper{cfg: cfg, inv: inv, tasks: tasks, clock: clock, log: log}, nil
}

// RunOnce does one sweep and reports what it changed.
func (s *NodeSweeper) RunOnce(ctx context.Context) (offline []string, expired int, err error) {
	offline, err = s.inv.SweepOffline(ctx)
	if err != nil {
		return nil, 0, err
	}
	if s.tasks != nil {
		expired, err = s.tasks.ExpireOverdue(ctx, s.clock.Now())
		if err != nil {
			return offline, 0, err
		}
	}
	return offline, expired, nil
}

// Run sweeps every Interval until ctx ends. A failed sweep is logged and
// retried at the next tick: the next sweep covers what this one missed.
func (s *NodeSweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		offline, expired, err := s.RunOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("node sweep failed", "error", err)
		case len(offline) > 0 || expired > 0:
			s.log.Info("node sweep", "offline", offline, "tasks_expired", expired)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// NodeSweeperParams is what the module takes from the graph.
type NodeSweeperParams struct {
	fx.In

	Config    NodeSweeperConfig `optional:"true"`
	Inventory *inventorysvc.Service
	Tasks     ports.TaskQueue `optional:"true"`
	Clock     ports.Clock
	Logger    *slog.Logger
}

// NodeSweeperModule runs the node sweeper for the app's lifetime.
var NodeSweeperModule = fx.Module("node-sweeper",
	fx.Invoke(func(lc fx.Lifecycle, p NodeSweeperParams) error {
		s, err := NewNodeSweeper(p.Config, p.Inventory, p.Tasks, p.Clock, p.Logger.With("component", "node-sweeper"))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				go func() { defer close(done); s.Run(ctx) }()
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
