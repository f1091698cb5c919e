package temporal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/ports"
)

// AllocationTransitions records the allocation state changes the workflows
// decide on (each with its audit entry and outbox event, in one
// transaction). *allocationsvc.Service implements it. A transition the
// state machine refuses must be a fault Conflict (code
// invalid_state_transition); the workflows stop retrying it. A transition to
// the state the allocation is already in must succeed without effect, since
// an activity may run again after a worker crash.
type AllocationTransitions interface {
	MarkProvisioning(ctx context.Context, id string) (allocation.Allocation, error)
	MarkActive(ctx context.Context, id string) (allocation.Allocation, error)
	MarkFailed(ctx context.Context, id, code string) (allocation.Allocation, error)
	MarkReleased(ctx context.Context, id string) (allocation.Allocation, error)
	MarkReleaseFailed(ctx context.Context, id, code string) (allocation.Allocation, error)
}

// TaskRunner enqueues a signed node task and waits for the agent's result
// (or the task's expiry). core/nodetask/tasksvc implements it.
type TaskRunner interface {
	RunTask(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Result, error)
}

// TaskQueue splits RunTask in two so the provisioning task can be queued
// inside the transaction that moves the allocation to provisioning
// (ProvisionInOneStep) and awaited after it commits. *tasksvc.Service
// implements it; a TaskRunner that does not leaves ProvisionInOneStep
// with one transaction fewer shared (it then calls RunTask).
type TaskQueue interface {
	// Enqueue queues the signed task, joining the transaction in ctx.
	Enqueue(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Task, error)
	// Wait blocks until the task has its outcome, it expires, or ctx ends.
	Wait(ctx context.Context, taskID string) (nodetask.Result, error)
}

// Access is what a per-allocation account needs: the user's public keys and
// the platform SSH user CA key (for browser-terminal certificates).
type Access struct {
	AuthorizedKeys []string `json:"authorized_keys"`
	UserCAKey      string   `json:"user_ca_key"`
}

// AccessResolver fetches a user's Access when the event did not carry it:
// the keys named by keyIDs (all the user's keys when keyIDs is empty).
// SSHAccess implements it over ports.SSHKeyStore and
// ports.SSHCertificateAuthority.
type AccessResolver interface {
	ResolveAccess(ctx context.Context, userID string, keyIDs []string) (Access, error)
}

// NodeTaskRequest is the RunNodeTask activity's input. Params is the JSON of
// the type's parameter struct; it is validated (nodetask.ValidateParams)
// before anything is queued.
type NodeTaskRequest struct {
	NodeID       string          `json:"node_id"`
	AllocationID string          `json:"allocation_id"`
	Type         nodetask.Type   `json:"type"`
	Params       json.RawMessage `json:"params"`
}

// Activities are the provisioning workflows' side effects. The worker
// registers a *Activities; each method is an activity named after it.
type Activities struct {
	transitions AllocationTransitions
	tasks       TaskRunner
	access      AccessResolver
	// tx, when set (UseTransactions), lets ProvisionInOneStep move the
	// allocation, read the keys and queue the task in one transaction.
	tx ports.TxRunner
	// heartbeatEvery overrides the heartbeat period (tests); zero derives it
	// from the activity's heartbeat timeout.
	heartbeatEvery time.Duration
}

// NewActivities builds the activities. access may be nil when every
// provisioning input carries the keys and the CA key; a workflow that
// needs it then fails with access_error.
func NewActivities(transitions AllocationTransitions, tasks TaskRunner, access AccessResolver) (*Activities, error) {
	if transitions == nil || tasks == nil {
		return nil, errors.New("temporal: activities need AllocationTransitions and a TaskRunner")
	}
	return &Activities{transitions: transitions, tasks: tasks, access: access}, nil
}

// UseTransactions lets a's ProvisionInOneStep run its first steps —
// MarkProvisioning, the keys, queueing the node task — in one transaction
// of tx, when the TaskRunner is also a TaskQueue. The stores behind the
// transitions, the access resolver and the task queue must join the
// transaction tx puts in ctx (the postgres adapters do). Without it each
// step commits on its own. (A function, not a method: every exported
// method of Activities is registered as an activity.)
func UseTransactions(a *Activities, tx ports.TxRunner) { a.tx = tx }

// MarkProvisioning moves the allocation requested → provisioning.
func (a *Activities) MarkProvisioning(ctx context.Context, id string) error {
	_, err := a.transitions.MarkProvisioning(ctx, id)
	return classifyTransition(ctx, err)
}

// MarkActive moves the allocation provisioning → active.
func (a *Activities) MarkActive(ctx context.Context, id string) error {
	_, err := a.transitions.MarkActive(ctx, id)
	return classifyTransition(ctx, err)
}

// MarkFailed moves the allocation to failed with a failure code.
func (a *Activities) MarkFailed(ctx context.Context, id, code string) error {
	_, err := a.transitions.MarkFailed(ctx, id, code)
	return classifyTransition(ctx, err)
}

// MarkReleased moves the allocation releasing → released.
func (a *Activities) MarkReleased(ctx context.Context, id string) error {
	_, err := a.transitions.MarkReleased(ctx, id)
	return classifyTransition(ctx, err)
}

// MarkReleaseFailed moves the allocation releasing → release_failed.
func (a *Activities) MarkReleaseFailed(ctx context.Context, id, code string) error {
	_, err := a.transitions.MarkReleaseFailed(ctx, id, code)
	return classifyTransition(ctx, err)
}

// ResolveAccess fetches the user's keys and the SSH user CA key. A user
// without keys cannot be provisioned (the node task needs at least one).
func (a *Activities) ResolveAccess(ctx context.Context, userID string, keyIDs []string) (Access, error) {
	if a.access == nil {
		return Access{}, temporal.NewNonRetryableApplicationError("no access resolver is configured", CodeAccessError, nil)
	}
	if userID == "" {
		return Access{}, temporal.NewNonRetryableApplicationError("the input has no keys and no user id", CodeInvalidRequest, nil)
	}
	acc, err := a.access.ResolveAccess(ctx, userID, keyIDs)
	if err != nil {
		switch fault.KindOf(err) {
		case fault.KindNotFound, fault.KindInvalid:
			return Access{}, temporal.NewNonRetryableApplicationError(safeMessage(err), CodeAccessError, nil)
		}
		return Access{}, temporal.NewApplicationError(safeMessage(err), CodeAccessError)
	}
	if len(acc.AuthorizedKeys) == 0 {
		return Access{}, temporal.NewNonRetryableApplicationError("the user has no SSH public key", CodeNoSSHKeys, nil)
	}
	return acc, nil
}

// RunNodeTask validates the task's parameters, enqueues the signed task
// through the TaskRunner and waits for its result, heartbeating so a lost
// worker is noticed within the heartbeat timeout. Invalid parameters are
// not retried; a failed or expired task is (the workflow bounds attempts).
func (a *Activities) RunNodeTask(ctx context.Context, req NodeTaskRequest) (nodetask.Result, error) {
	return a.runTask(ctx, req)
}

// codeActivationPending is the error type ProvisionAndActivate returns when
// the node task succeeded but MarkActive failed with a transient error. It
// is non-retryable (a retry would run the node task again) and never
// recorded on an allocation: the workflow reacts by running the MarkActive
// step on its own, with MarkTimeout's retries, as versions before
// changeSelfActivating did.
const codeActivationPending = "activation_pending"

// ProvisionAndActivate is the provisioning node task made idempotent and
// self-completing (ProvisionAllocation from changeSelfActivating on): it
// runs the provision_user task like RunNodeTask and, once the agent
// reports success, moves the allocation provisioning → active itself, so
// the workflow needs no further step — and no further workflow task —
// before the allocation is active.
//
// A retried attempt first asks where the allocation stands, through the
// transitions' own idempotency: MarkProvisioning succeeds without effect
// while it is still provisioning (run the task); refused, MarkActive
// succeeds without effect if an earlier attempt already activated it
// (return success without re-running the task) and is refused otherwise
// (the allocation moved on, e.g. a release: invalid_state_transition, which
// the workflow compensates). MarkActive refused after the task (released
// during provisioning) is invalid_state_transition too; MarkActive failing
// transiently is activation_pending.
func (a *Activities) ProvisionAndActivate(ctx context.Context, req NodeTaskRequest) (nodetask.Result, error) {
	if req.Type != nodetask.ProvisionUser {
		return nodetask.Result{}, temporal.NewNonRetryableApplicationError("ProvisionAndActivate runs provision_user only", CodeInvalidRequest, nil)
	}
	if req.AllocationID == "" {
		return nodetask.Result{}, temporal.NewNonRetryableApplicationError("node id and allocation id are required", CodeInvalidRequest, nil)
	}
	if activity.GetInfo(ctx).Attempt > 1 {
		_, err := a.transitions.MarkProvisioning(ctx, req.AllocationID)
		if err != nil {
			if fault.KindOf(err) != fault.KindConflict {
				return nodetask.Result{}, classifyTransition(ctx, err)
			}
			// Not provisioning: active already (an earlier attempt got as
			// far as MarkActive), or moved on.
			if _, err := a.transitions.MarkActive(ctx, req.AllocationID); err != nil {
				return nodetask.Result{}, classifyTransition(ctx, err)
			}
			return nodetask.Result{Succeeded: true}, nil
		}
	}
	res, err := a.runTask(ctx, req)
	if err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		// Cancelled or timed out while the task ran: leave the allocation
		// provisioning; the workflow compensates, or the next attempt
		// provisions again.
		return nodetask.Result{}, err
	}
	if _, err := a.transitions.MarkActive(ctx, req.AllocationID); err != nil {
		switch fault.KindOf(err) {
		case fault.KindConflict, fault.KindNotFound, fault.KindInvalid:
			return res, classifyTransition(ctx, err) // final: the workflow compensates
		}
		logCause(ctx, err)
		return res, temporal.NewNonRetryableApplicationError("the node task succeeded; marking the allocation active failed: "+safeMessage(err),
			codeActivationPending, nil)
	}
	return res, nil
}

func (a *Activities) runTask(ctx context.Context, req NodeTaskRequest) (nodetask.Result, error) {
	if req.NodeID == "" || req.AllocationID == "" {
		return nodetask.Result{}, temporal.NewNonRetryableApplicationError("node id and allocation id are required", CodeInvalidRequest, nil)
	}
	params, err := nodetask.ValidateParams(req.Type, req.Params)
	if err != nil {
		return nodetask.Result{}, temporal.NewNonRetryableApplicationError(safeMessage(err), CodeInvalidRequest, nil)
	}

	type outcome struct {
		res nodetask.Result
		err error
	}
	done := make(chan outcome, 1)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		res, err := a.tasks.RunTask(runCtx, req.NodeID, req.Type, params, req.AllocationID)
		done <- outcome{res, err}
	}()

	tick := time.NewTicker(a.heartbeatPeriod(ctx))
	defer tick.Stop()
	var o outcome
wait:
	for {
		select {
		case o = <-done:
			break wait
		case <-tick.C:
			activity.RecordHeartbeat(ctx, string(req.Type))
		case <-ctx.Done():
			// Cancelled or timed out: RunTask sees runCtx end; the queued
			// task expires on its own if the agent never takes it.
			cancel()
			o = <-done
			if o.err == nil && o.res.Succeeded {
				return o.res, nil
			}
			return nodetask.Result{}, ctx.Err()
		}
	}
	if o.err != nil {
		return nodetask.Result{}, classifyTask(ctx, o.err)
	}
	if !o.res.Succeeded {
		msg := fmt.Sprintf("node task %s failed: %s", req.Type, o.res.ErrorCode)
		if o.res.ErrorMessage != "" {
			msg += ": " + o.res.ErrorMessage
		}
		if nonRetryableTaskCodes[o.res.ErrorCode] {
			return o.res, temporal.NewNonRetryableApplicationError(msg, CodeInvalidRequest, nil)
		}
		return o.res, temporal.NewApplicationError(msg, CodeNodeTaskFailed)
	}
	return o.res, nil
}

// nonRetryableTaskCodes are agent result codes that a retry cannot fix: the
// agent refused the parameters themselves.
var nonRetryableTaskCodes = map[string]bool{
	string(fault.CodeValidationFailed): true,
	"invalid_params":                   true,
}

func (a *Activities) heartbeatPeriod(ctx context.Context) time.Duration {
	if a.heartbeatEvery > 0 {
		return a.heartbeatEvery
	}
	if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 {
		return max(hb/3, 100*time.Millisecond)
	}
	return 10 * time.Second
}

// classifyTransition maps a use-case error to a Temporal error: refused
// transitions and unknown allocations are final, anything else (a database
// outage) is retried.
func classifyTransition(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	logCause(ctx, err)
	f := fault.From(err)
	switch f.Kind {
	case fault.KindConflict:
		return temporal.NewNonRetryableApplicationError(f.Message, CodeInvalidState, nil)
	case fault.KindNotFound:
		return temporal.NewNonRetryableApplicationError(f.Message, CodeAllocationNotFound, nil)
	case fault.KindInvalid:
		return temporal.NewNonRetryableApplicationError(f.Message, CodeInvalidRequest, nil)
	}
	return temporal.NewApplicationError(safeMessage(err), CodeTransitionError)
}

// classifyTask maps a TaskRunner error.
func classifyTask(ctx context.Context, err error) error {
	logCause(ctx, err)
	switch fault.KindOf(err) {
	case fault.KindInvalid, fault.KindUnprocessable:
		return temporal.NewNonRetryableApplicationError(safeMessage(err), CodeInvalidRequest, nil)
	case fault.KindNotFound:
		return temporal.NewNonRetryableApplicationError(safeMessage(err), CodeNodeNotFound, nil)
	}
	return temporal.NewApplicationError(safeMessage(err), CodeNodeTaskError)
}

// logCause logs an unexpected error once, here at the edge, because only
// its public message travels into Temporal's history.
func logCause(ctx context.Context, err error) {
	if fault.KindOf(err) == fault.KindInternal || fault.KindOf(err) == fault.KindUnavailable {
		activity.GetLogger(ctx).Warn("activity failed", "error", err.Error())
	}
}

// safeMessage is what goes into Temporal's history: the fault's public
// message, never a wrapped cause (which may hold connection strings).
func safeMessage(err error) string {
	f := fault.From(err)
	if f.Kind == fault.KindInternal {
		return "internal error"
	}
	return f.Message
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs of strings and slices are marshalled
	}
	return b
}
