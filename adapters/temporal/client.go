package temporal

import (
	"context"
	"errors"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Client starts and signals workflows on Temporal. It is the platform's
// ports.WorkflowEngine and reports Temporal's health as "temporal".
type Client struct {
	cfg Config
	sdk client.Client
}

var (
	_ ports.WorkflowEngine = (*Client)(nil)
	_ ports.HealthCheck    = (*Client)(nil)
)

// New builds a client without I/O: the connection opens on first use, so a
// process can be wired (and fx.ValidateApp run) while Temporal is down.
func New(cfg Config) (*Client, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	c, err := client.NewLazyClient(client.Options{
		HostPort:  cfg.HostPort,
		Namespace: cfg.Namespace,
		Identity:  cfg.Identity,
		Logger:    tlog.NewStructuredLogger(cfg.Logger.With("component", "temporal")),
		// Worker interceptors among them apply to workers made from this client.
		Interceptors: cfg.Interceptors,
	})
	if err != nil {
		return nil, fault.Internal(err)
	}
	return &Client{cfg: cfg, sdk: c}, nil
}

// Config returns the validated config (defaults filled in).
func (c *Client) Config() Config { return c.cfg }

// SDK is the underlying Temporal client, for the worker and for tests.
func (c *Client) SDK() client.Client { return c.sdk }

// Close releases the connection.
func (c *Client) Close() { c.sdk.Close() }

// Start implements [ports.WorkflowEngine]. It starts workflow (a registered
// workflow name, e.g. ProvisionWorkflow) with the given id on the task
// queue. Starting an id that is running, or that has already completed,
// returns nil without starting anything: the id is the idempotency key, so
// a redelivered event can never run a workflow twice.
func (c *Client) Start(ctx context.Context, workflow, id string, input any) error {
	if workflow == "" || id == "" {
		return fault.Invalid("workflow", "workflow name and id are required")
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	_, err := c.sdk.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: c.cfg.TaskQueue,
		// A running workflow with this id: attach to it instead of failing.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A closed one (whatever its outcome): never run the id again.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		// With both policies above the server answers "already started"
		// for duplicates; the SDK then returns the existing run, no error.
		WorkflowExecutionErrorWhenAlreadyStarted: false,
		// When this client also runs the worker for the task queue (the
		// provisioning worker does), the server hands the first workflow
		// task back in the start response instead of through matching.
		// Without a local worker with a free slot this is a plain start.
		EnableEagerStart: true,
	}, workflow, input)
	return translate(err, "start workflow "+workflow)
}

// Signal implements [ports.WorkflowEngine]: it signals the current run of
// the workflow with that id. An unknown or closed workflow is NotFound.
func (c *Client) Signal(ctx context.Context, id, signal string, arg any) error {
	if id == "" || signal == "" {
		return fault.Invalid("signal", "workflow id and signal name are required")
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	return translate(c.sdk.SignalWorkflow(ctx, id, "", signal, arg), "signal workflow")
}

// Name implements [ports.HealthCheck].
func (c *Client) Name() string { return "temporal" }

// Check implements [ports.HealthCheck]: the frontend answers its health RPC.
func (c *Client) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	_, err := c.sdk.CheckHealth(ctx, &client.CheckHealthRequest{})
	return translate(err, "health check")
}

// translate maps Temporal's service errors to fault kinds at the boundary.
func translate(err error, op string) error {
	if err == nil {
		return nil
	}
	var (
		notFound    *serviceerror.NotFound
		unavailable *serviceerror.Unavailable
		deadline    *serviceerror.DeadlineExceeded
		busy        *serviceerror.ResourceExhausted
		invalid     *serviceerror.InvalidArgument
	)
	switch {
	case errors.As(err, &notFound):
		return fault.NotFound("workflow", "").Wrap(err)
	case errors.As(err, &invalid):
		return fault.Internal(errors.Join(errors.New("temporal: "+op+": invalid argument"), err))
	case errors.As(err, &unavailable), errors.As(err, &deadline), errors.As(err, &busy),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fault.Unavailable("temporal: "+op+" failed; try again", err)
	}
	// Connection failures of the lazy client surface as plain gRPC errors;
	// anything not classified above is treated as an outage, because every
	// call here is safe to retry (Start is idempotent by workflow id).
	return fault.Unavailable("temporal: "+op+" failed", err)
}
