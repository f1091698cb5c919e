package workers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Durable consumers the provisioning worker reads (core/event.Streams).
const (
	RequestedConsumer = "provisioning-worker-requested"
	ReleaseConsumer   = "provisioning-worker-release"
)

// ProvisioningConfig tunes the provisioning worker. The zero value is the
// production default.
type ProvisioningConfig struct {
	// NakDelay is how long a message waits for redelivery after its
	// workflow could not be started (Temporal down). Default 5s.
	NakDelay time.Duration
	// Retry overrides the workflows' node-task retry bounds (zero fields
	// keep the workflow defaults); tests shorten it.
	Retry temporal.Retry
	// StorageSync: the worker runs the storage sync activities, so
	// workflows pull an allocation's storage_sync folder at activation and
	// push it back at release. The module sets it when the graph has
	// *temporal.StorageActivities.
	StorageSync bool
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *ProvisioningConfig) CheckAndSetDefaults() error {
	if c.NakDelay < 0 {
		return errors.New("workers: NakDelay must not be negative")
	}
	if c.NakDelay == 0 {
		c.NakDelay = 5 * time.Second
	}
	return nil
}

// ProvisioningConsumer turns allocation events into workflow starts. It is
// idempotent by event: the workflow id derives from the allocation (and,
// for releases, the event id), and the engine treats a start of a known id
// as done, so a redelivered event starts nothing new.
type ProvisioningConsumer struct {
	cfg    ProvisioningConfig
	engine ports.WorkflowEngine
	log    *slog.Logger
}

// NewProvisioningConsumer builds the consumer over a workflow engine.
func NewProvisioningConsumer(cfg ProvisioningConfig, engine ports.WorkflowEngine, logger *slog.Logger) (*ProvisioningConsumer, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if engine == nil || logger == nil {
		return nil, errors.New("workers: the provisioning consumer needs a WorkflowEngine and a logger")
	}
	return &ProvisioningConsumer{cfg: cfg, engine: engine, log: logger}, nil
}

// HandleRequested starts ProvisionAllocation for a
// provisioning.allocation_requested event.
func (c *ProvisioningConsumer) HandleRequested(ctx context.Context, m ports.Message) {
	var p allocationsvc.RequestedPayload
	id, ok := c.decode(m, &p, func() string { return p.AllocationID })
	if !ok {
		return
	}
	in := temporal.ProvisionInput{
		AllocationID: id, NodeID: p.NodeID, UserID: p.UserID, Username: p.Username,
		SSHKeyIDs: p.SSHKeyIDs, Sessions: p.Sessions, Retry: c.cfg.Retry,
	}
	if p.StorageSync != "" && c.cfg.StorageSync {
		in.StorageSync = &temporal.StorageSyncSpec{TenantID: m.Envelope.TenantID, ProjectID: m.Envelope.ProjectID, Path: p.StorageSync}
	}
	c.start(ctx, m, temporal.ProvisionWorkflow, temporal.ProvisionWorkflowID(id), in)
}

// HandleRelease starts ReleaseAllocation for a
// provisioning.allocation_release_requested event.
func (c *ProvisioningConsumer) HandleRelease(ctx context.Context, m ports.Message) {
	var p allocationsvc.StatePayload
	id, ok := c.decode(m, &p, func() string { return p.AllocationID })
	if !ok {
		return
	}
	c.start(ctx, m, temporal.ReleaseWorkflow, temporal.ReleaseWorkflowID(id, m.Envelope.ID), temporal.ReleaseInput{
		AllocationID: id, NodeID: p.NodeID, Username: p.Username, GraceSeconds: p.GraceSeconds, Retry: c.cfg.Retry,
		StorageSync: c.cfg.StorageSync,
	})
}

// decode reads the payload and the allocation id (payload first, else the
// envelope's aggregate id). A message that cannot name an allocation is
// acked and logged: redelivering it cannot fix it.
func (c *ProvisioningConsumer) decode(m ports.Message, payload any, idOf func() string) (string, bool) {
	log := c.log.With("event_id", m.Envelope.ID, "type", m.Envelope.Type)
	if err := json.Unmarshal(m.Envelope.Payload, payload); err != nil {
		log.Error("dropping an allocation event whose payload does not decode", "err", err)
		c.ack(m, log)
		return "", false
	}
	id := idOf()
	if id == "" {
		id = m.Envelope.AggregateID
	}
	if id == "" {
		log.Error("dropping an allocation event without an allocation id")
		c.ack(m, log)
		return "", false
	}
	return id, true
}

func (c *ProvisioningConsumer) start(ctx context.Context, m ports.Message, workflow, id string, input any) {
	log := c.log.With("event_id", m.Envelope.ID, "workflow", workflow, "workflow_id", id)
	err := c.engine.Start(ctx, workflow, id, input)
	if err == nil {
		log.Debug("workflow started (or already known)")
	}
	// Redelivery of an acked-then-lost event starts the same workflow id
	// again: harmless.
	settle(m, err, c.cfg.NakDelay, log)
}

func (c *ProvisioningConsumer) ack(m ports.Message, log *slog.Logger) {
	if err := m.Ack(); err != nil {
		// Redelivery then starts the same workflow id again: harmless.
		log.Warn("ack failed", "err", err)
	}
}

// ProvisioningParams is what the provisioning worker takes from the graph:
// the Temporal client (temporal.Module), the bus (nats.Module), and the two
// use cases its activities call, provided by the host as
// temporal.AllocationTransitions (*allocationsvc.Service) and
// temporal.TaskRunner (*tasksvc.Service). An AccessResolver
// (temporal.NewSSHAccess) is needed because allocation events carry key ids,
// not keys.
type ProvisioningParams struct {
	fx.In

	Config      ProvisioningConfig `optional:"true"`
	Client      *temporal.Client
	Subscriber  ports.Subscriber
	Transitions temporal.AllocationTransitions
	Tasks       temporal.TaskRunner
	Access      temporal.AccessResolver
	Logger      *slog.Logger
	// Storage runs allocations' storage syncs (optional: a host without
	// project storage).
	Storage *temporal.StorageActivities `optional:"true"`
	// Tx, when the graph has one (the postgres module), lets the one-step
	// provisioning move the allocation, read the keys and queue the node
	// task in one transaction (temporal.UseTransactions).
	Tx ports.TxRunner `optional:"true"`
}

// ProvisioningModule runs the provisioning worker for the app's lifetime:
// the Temporal worker for the provisioning task queue (workflows and
// activities) and the two durable consumers that start workflows. On stop
// the consumers end first, then the worker drains its in-flight tasks.
var ProvisioningModule = fx.Module("provisioning-worker",
	fx.Invoke(func(lc fx.Lifecycle, p ProvisioningParams) error {
		log := p.Logger.With("component", "provisioning-worker")
		p.Config.StorageSync = p.Storage != nil
		consumer, err := NewProvisioningConsumer(p.Config, p.Client, log)
		if err != nil {
			return err
		}
		acts, err := temporal.NewActivities(p.Transitions, p.Tasks, p.Access)
		if err != nil {
			return err
		}
		if p.Tx != nil {
			temporal.UseTransactions(acts, p.Tx)
		}
		w, err := temporal.NewWorker(p.Client, acts, p.Storage)
		if err != nil {
			return err
		}
		stream, ok := event.StreamFor(event.AllocationRequested)
		if !ok {
			return errors.New("workers: no stream holds " + event.AllocationRequested)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				if err := w.Start(); err != nil {
					return fault.Unavailable("temporal worker did not start", err)
				}
				for durable, handle := range map[string]func(context.Context, ports.Message){
					RequestedConsumer: consumer.HandleRequested,
					ReleaseConsumer:   consumer.HandleRelease,
				} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						consumeForever(ctx, p.Subscriber, stream.Name, durable, handle, log.With("durable", durable))
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
				case <-stopCtx.Done():
					return stopCtx.Err()
				}
				w.Stop()
				return nil
			},
		})
		return nil
	}),
)
