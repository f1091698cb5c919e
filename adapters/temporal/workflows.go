package temporal

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/nodetask"
)

// Registered workflow names. They are part of every recorded history: renaming
// one orphans the workflows in flight.
const (
	ProvisionWorkflow = "ProvisionAllocation"
	ReleaseWorkflow   = "ReleaseAllocation"
)

// ProvisionWorkflowID is the workflow id of an allocation's provisioning. An
// allocation is provisioned once, so the id is the allocation id with a
// prefix that keeps it apart from its release.
func ProvisionWorkflowID(allocationID string) string { return "provision-" + allocationID }

// ReleaseWorkflowID is the workflow id of one release attempt. An allocation
// can be released more than once (release_failed → releasing is a retry),
// and each releasing transition writes exactly one
// provisioning.allocation_release_requested event; the event id therefore
// names the attempt: a redelivered event maps to the same id and is a no-op,
// a retry after release_failed gets a new one.
func ReleaseWorkflowID(allocationID, eventID string) string {
	return "release-" + allocationID + "-" + eventID
}

// Failure codes written to the allocation (MarkFailed / MarkReleaseFailed)
// and used as the Temporal application error type of activity failures.
const (
	CodeInvalidRequest       = "invalid_request"          // the input or task parameters are invalid
	CodeInvalidState         = "invalid_state_transition" // the allocation moved on elsewhere
	CodeAllocationNotFound   = "allocation_not_found"
	CodeNodeNotFound         = "node_not_found"
	CodeNoSSHKeys            = "no_ssh_keys"      // the user has no SSH key to install
	CodeNodeTaskFailed       = "node_task_failed" // the agent ran the task and reported failure
	CodeNodeUnreachable      = "node_unreachable" // no result before the task or activity timed out
	CodeNodeTaskError        = "node_task_error"  // the task could not be queued or awaited
	CodeTransitionError      = "transition_error" // recording the state change kept failing
	CodeAccessError          = "access_error"     // the user's keys or the CA key could not be read
	CodeProvisioningCanceled = "provisioning_canceled"
)

// Retry bounds a workflow's node-task attempts. Zero fields take the
// defaults below; tests shorten them. The values travel in the workflow
// input, so a change of defaults never alters a workflow already running.
type Retry struct {
	// MaxAttempts of the node task (provision_user or revoke_user).
	MaxAttempts int32 `json:"max_attempts,omitempty"`
	// InitialInterval between attempts, doubling up to MaxInterval.
	InitialInterval time.Duration `json:"initial_interval,omitempty"`
	MaxInterval     time.Duration `json:"max_interval,omitempty"`
	// TaskTimeout bounds one attempt: queueing the task and waiting for the
	// agent's result. It should exceed nodetask.DefaultTTL, after which the
	// queued task expires anyway.
	TaskTimeout time.Duration `json:"task_timeout,omitempty"`
	// HeartbeatTimeout: an attempt whose worker stops heartbeating for this
	// long is retried elsewhere.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
	// MarkTimeout bounds the retries of a state transition (Mark*) before the
	// workflow gives up on it; transitions retry on any error but a
	// non-retryable one, so a database outage shorter than this is ridden out.
	MarkTimeout time.Duration `json:"mark_timeout,omitempty"`
	// OneStepWait bounds how long ProvisionInOneStep (the first workflow
	// task) waits for the agent before the durable ProvisionAndActivate
	// activity takes over.
	OneStepWait time.Duration `json:"one_step_wait,omitempty"`
}

// Default retry values.
const (
	DefaultProvisionAttempts = 3
	DefaultReleaseAttempts   = 5
	DefaultInitialInterval   = 5 * time.Second
	DefaultMaxInterval       = time.Minute
	DefaultTaskTimeout       = nodetask.DefaultTTL + time.Minute
	DefaultHeartbeatTimeout  = 30 * time.Second
	DefaultMarkTimeout       = 24 * time.Hour
	DefaultOneStepWait       = 5 * time.Second
)

func (r Retry) withDefaults(attempts int32) Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = attempts
	}
	if r.InitialInterval <= 0 {
		r.InitialInterval = DefaultInitialInterval
	}
	if r.MaxInterval <= 0 {
		r.MaxInterval = DefaultMaxInterval
	}
	if r.MaxInterval < r.InitialInterval {
		r.MaxInterval = r.InitialInterval
	}
	if r.TaskTimeout <= 0 {
		r.TaskTimeout = DefaultTaskTimeout
	}
	if r.HeartbeatTimeout <= 0 {
		r.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if r.MarkTimeout <= 0 {
		r.MarkTimeout = DefaultMarkTimeout
	}
	if r.OneStepWait <= 0 {
		r.OneStepWait = DefaultOneStepWait
	}
	return r
}

// ProvisionInput starts ProvisionAllocation. AuthorizedKeys and UserCAKey
// are fetched through the AccessResolver (by UserID and SSHKeyIDs) when
// either is empty.
type ProvisionInput struct {
	AllocationID string `json:"allocation_id"`
	NodeID       string `json:"node_id"`
	UserID       string `json:"user_id,omitempty"`
	Username     string `json:"username,omitempty"` // default nodetask.UsernameFor(AllocationID)
	// SSHKeyIDs selects which of the user's keys to install (empty: all).
	SSHKeyIDs      []string `json:"ssh_key_ids,omitempty"`
	AuthorizedKeys []string `json:"authorized_keys,omitempty"`
	UserCAKey      string   `json:"user_ca_key,omitempty"`
	// Sessions is the browser-terminal policy the node enforces for the
	// account (zero: the node's defaults).
	Sessions nodetask.SessionPolicy `json:"sessions,omitzero"`
	Retry    Retry                  `json:"retry,omitempty"`
	// StorageSync, when set, pulls that project folder into the account's
	// home once the allocation is active (StorageActivities.SyncStorageIn,
	// best effort: a failure is logged and the allocation stays active).
	StorageSync *StorageSyncSpec `json:"storage_sync,omitempty"`
}

// StorageSyncSpec names the project folder an allocation syncs.
type StorageSyncSpec struct {
	TenantID  string `json:"tenant_id"`
	ProjectID string `json:"project_id"`
	Path      string `json:"path"`
}

// ReleaseInput starts ReleaseAllocation.
type ReleaseInput struct {
	AllocationID string `json:"allocation_id"`
	NodeID       string `json:"node_id"`
	Username     string `json:"username,omitempty"` // default nodetask.UsernameFor(AllocationID)
	// GraceSeconds the account's processes get between SIGTERM and SIGKILL.
	GraceSeconds int   `json:"grace_seconds,omitempty"`
	Retry        Retry `json:"retry,omitempty"`
	// StorageSync: the worker has storage; the allocation's synced folder,
	// if it has one, is pushed back before the account is revoked
	// (StorageActivities.SyncStorageOut, best effort).
	StorageSync bool `json:"storage_sync,omitempty"`
}

// storageSyncOptions: a sync runs its node tasks (each bounded like any
// node task, heartbeating) for at most two hours, three attempts.
func storageSyncOptions(ctx workflow.Context, r Retry) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    r.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    r.InitialInterval,
			BackoffCoefficient: 2,
			MaximumInterval:    r.MaxInterval,
			MaximumAttempts:    3,
		},
	})
}

// storageActs is only used for its method values (activity names).
var storageActs *StorageActivities

// syncStorageIn pulls the allocation's folder, best effort. The steps run
// only for inputs that carry StorageSync, a field older histories do not
// have, so no version marker is needed for replay.
func syncStorageIn(ctx workflow.Context, r Retry, in ProvisionInput) {
	if in.StorageSync == nil || in.StorageSync.Path == "" {
		return
	}
	var sum StorageSyncSummary
	err := workflow.ExecuteActivity(storageSyncOptions(ctx, r), storageActs.SyncStorageIn, StorageSyncRequest{
		AllocationID: in.AllocationID, NodeID: in.NodeID, Username: in.Username, TenantID: in.StorageSync.TenantID,
		ProjectID: in.StorageSync.ProjectID, UserID: in.UserID, Path: in.StorageSync.Path}).Get(ctx, &sum)
	log := workflow.GetLogger(ctx)
	if err != nil {
		log.Warn("storage sync (pull) failed; the allocation stays active", "allocation_id", in.AllocationID, "error", err)
		return
	}
	log.Info("storage synced to the node", "allocation_id", in.AllocationID, "files", sum.Files, "bytes", sum.Bytes,
		"failed", sum.Failed)
}

// Outcome is what a workflow left the allocation in.
type Outcome struct {
	State       allocation.State `json:"state"`
	FailureCode string           `json:"failure_code,omitempty"`
}

// acts is only used for its method values: the SDK names activities after
// the methods of the registered *Activities.
var acts *Activities

// markOptions: state transitions are quick database writes; they retry
// until MarkTimeout unless the error is non-retryable.
func markOptions(ctx workflow.Context, r Retry) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: r.MarkTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

// markLocalOptions: the same bounds as markOptions for a step run as a
// local activity — by the workflow worker inside its workflow task, so the
// step costs no round trip through the server's activity queue (and no
// extra workflow task to read its result). The steps on the way to active
// (MarkProvisioning, ResolveAccess, MarkActive) run this way; see
// changeLocalSteps.
func markLocalOptions(ctx workflow.Context, r Retry) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: r.MarkTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

// changeLocalSteps is the workflow.GetVersion change id under which
// ProvisionAllocation runs MarkProvisioning, ResolveAccess and MarkActive as
// local activities (version 1). Workflows recorded before it (no marker)
// replay with regular activities (workflow.DefaultVersion).
const changeLocalSteps = "provision-local-steps"

// changeSelfActivating is the workflow.GetVersion change id under which
// ProvisionAllocation runs the provisioning node task as
// ProvisionAndActivate, which marks the allocation active itself (version
// 1): the allocation is active when the activity completes, without a
// further workflow task for a separate MarkActive step. Workflows recorded
// before it (no marker) replay with RunNodeTask followed by MarkActive.
const changeSelfActivating = "provision-self-activating-task"

// changeOneStep is the workflow.GetVersion change id under which
// ProvisionAllocation first tries the whole way to active as one local
// activity, ProvisionInOneStep (version 1): MarkProvisioning, the keys and
// the queued provision_user task in one transaction, the wait for the agent
// and MarkActive, all inside the first workflow task — the allocation is
// active before the workflow talks to Temporal's server again. Whatever it
// cannot finish continues on the durable steps below (see oneStep).
// Workflows recorded before it (no marker) replay without it.
const changeOneStep = "provision-one-local-step"

// oneStepOptions: the local activity never retries (what it could not
// finish goes on as durable steps); its own wait is bounded by OneStepWait,
// the rest is the database's time.
func oneStepOptions(ctx workflow.Context, r Retry) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: r.OneStepWait + 30*time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
}

// taskOptions: one attempt queues the node task and waits for its result,
// heartbeating; attempts are bounded.
func taskOptions(ctx workflow.Context, r Retry, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: r.TaskTimeout,
		HeartbeatTimeout:    r.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    r.InitialInterval,
			BackoffCoefficient: 2,
			MaximumInterval:    r.MaxInterval,
			MaximumAttempts:    attempts,
		},
	})
}

// ProvisionAllocation takes an allocation from requested to active, or to
// failed. Steps: MarkProvisioning → (ResolveAccess) → ProvisionAndActivate
// (the provision_user node task, retried with back-off up to
// Retry.MaxAttempts, then MarkActive inside the same activity; before
// changeSelfActivating: RunNodeTask provision_user → MarkActive).
// Any failure after the account may exist on the node compensates: a
// best-effort revoke_user, then MarkFailed with the failure code. The
// workflow always ends with the allocation active or failed, unless the
// allocation moved on through another path (e.g. a release during
// provisioning), in which case that path owns it.
func ProvisionAllocation(ctx workflow.Context, in ProvisionInput) (Outcome, error) {
	log := workflow.GetLogger(ctx)
	r := in.Retry.withDefaults(DefaultProvisionAttempts)
	mctx := markOptions(ctx, r)
	if in.AllocationID == "" {
		return Outcome{}, temporal.NewNonRetryableApplicationError("allocation id is required", CodeInvalidRequest, nil)
	}
	if in.Username == "" {
		in.Username = nodetask.UsernameFor(in.AllocationID)
	}

	fail := func(code string, compensate bool) (Outcome, error) {
		// Compensation runs even if the workflow was cancelled.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		if compensate {
			revoke := nodetask.RevokeUserParams{AllocationID: in.AllocationID, Username: in.Username}
			cctx := taskOptions(dctx, r, r.MaxAttempts)
			if err := workflow.ExecuteActivity(cctx, acts.RunNodeTask, NodeTaskRequest{
				NodeID: in.NodeID, AllocationID: in.AllocationID, Type: nodetask.RevokeUser, Params: mustJSON(revoke),
			}).Get(cctx, nil); err != nil {
				// Best effort: the account is tied to an allocation that is
				// about to be failed, and the node's next revoke or a
				// reinstall removes it.
				log.Warn("compensating revoke_user failed", "allocation_id", in.AllocationID, "error", err)
			}
		}
		err := workflow.ExecuteActivity(markOptions(dctx, r), acts.MarkFailed, in.AllocationID, code).Get(dctx, nil)
		switch {
		case err == nil:
			return Outcome{State: allocation.Failed, FailureCode: code}, nil
		case errorCode(err) == CodeInvalidState:
			log.Info("allocation moved on before it could be marked failed", "allocation_id", in.AllocationID)
			return Outcome{FailureCode: code}, nil
		default:
			return Outcome{FailureCode: code}, err
		}
	}

	if in.NodeID == "" {
		return fail(CodeInvalidRequest, false)
	}
	// queued: the allocation is provisioning and a provision_user task may
	// be queued already (by ProvisionInOneStep), so the steps below start at
	// the node task and any failure compensates.
	queued := false
	if workflow.GetVersion(ctx, changeOneStep, workflow.DefaultVersion, 1) >= 1 {
		o, err, next := oneStep(ctx, &in, r, fail)
		switch next {
		case resumeDone:
			return o, err
		case resumeAtTask:
			queued = true
		}
	}
	// The quick database steps on the way to active run as local activities
	// (versioned: histories from before the change replay as they ran).
	local := workflow.GetVersion(ctx, changeLocalSteps, workflow.DefaultVersion, 1) >= 1
	lctx := markLocalOptions(ctx, r)
	step := func(activity any, args ...any) workflow.Future {
		if local {
			return workflow.ExecuteLocalActivity(lctx, activity, args...)
		}
		return workflow.ExecuteActivity(mctx, activity, args...)
	}
	if !queued {
		if err := step(acts.MarkProvisioning, in.AllocationID).Get(ctx, nil); err != nil {
			if errorCode(err) == CodeInvalidState {
				// Released (or failed) before provisioning began: nothing to do.
				log.Info("allocation is no longer requested; not provisioning", "allocation_id", in.AllocationID)
				return Outcome{}, nil
			}
			return fail(failureCode(err, CodeTransitionError), false)
		}
	}

	if len(in.AuthorizedKeys) == 0 || in.UserCAKey == "" {
		var a Access
		if err := step(acts.ResolveAccess, in.UserID, in.SSHKeyIDs).Get(ctx, &a); err != nil {
			return fail(failureCode(err, CodeAccessError), queued)
		}
		if len(in.AuthorizedKeys) == 0 {
			in.AuthorizedKeys = a.AuthorizedKeys
		}
		if in.UserCAKey == "" {
			in.UserCAKey = a.UserCAKey
		}
	}

	provision := nodetask.ProvisionUserParams{
		AllocationID: in.AllocationID, Username: in.Username,
		AuthorizedKeys: in.AuthorizedKeys, UserCAKey: in.UserCAKey, Sessions: in.Sessions,
	}
	// The one-step attempt, when it queued a task, was the first attempt.
	attempts := r.MaxAttempts
	if queued {
		attempts = max(1, attempts-1)
	}
	tctx := taskOptions(ctx, r, attempts)
	req := NodeTaskRequest{
		NodeID: in.NodeID, AllocationID: in.AllocationID, Type: nodetask.ProvisionUser, Params: mustJSON(provision),
	}
	// From changeSelfActivating on, the node-task activity marks the
	// allocation active itself; older histories replay with RunNodeTask and
	// the separate MarkActive step below.
	selfActivating := workflow.GetVersion(ctx, changeSelfActivating, workflow.DefaultVersion, 1) >= 1
	task := acts.RunNodeTask
	if selfActivating {
		task = acts.ProvisionAndActivate
		// A cancelled workflow waits for the activity to stop: it may have
		// activated the allocation already, and then must not compensate.
		opts := workflow.GetActivityOptions(tctx)
		opts.WaitForCancellation = true
		tctx = workflow.WithActivityOptions(tctx, opts)
	}
	if err := workflow.ExecuteActivity(tctx, task, req).Get(ctx, nil); err != nil {
		switch {
		case selfActivating && errorCode(err) == codeActivationPending:
			// The account exists; only the transition failed, transiently:
			// retry it as its own step (below), not the node task.
		case temporal.IsCanceledError(err):
			return fail(CodeProvisioningCanceled, true)
		default:
			// Includes invalid_state_transition from ProvisionAndActivate:
			// released during provisioning, the account is revoked again.
			return fail(failureCode(err, CodeNodeTaskFailed), true)
		}
	} else if selfActivating {
		syncStorageIn(ctx, r, in)
		return Outcome{State: allocation.Active}, nil
	}

	if err := step(acts.MarkActive, in.AllocationID).Get(ctx, nil); err != nil {
		// The account exists but the allocation is not active (it may be
		// releasing already): remove the account again.
		return fail(failureCode(err, CodeTransitionError), true)
	}
	syncStorageIn(ctx, r, in)
	return Outcome{State: allocation.Active}, nil
}

// Where ProvisionAllocation goes on after oneStep.
const (
	resumeDone      = iota // the workflow ends with oneStep's outcome
	resumeFromStart        // nothing was queued: the durable steps from MarkProvisioning
	resumeAtTask           // provisioning, a task may be queued: from the node task on
)

// oneStep runs ProvisionInOneStep and acts on its result: it ends the
// workflow (resumeDone, with the outcome), or hands over to the durable
// steps — from the start when nothing was queued, else at the node task
// (ProvisionAndActivate with its retries) with in holding the keys.
func oneStep(ctx workflow.Context, in *ProvisionInput, r Retry,
	fail func(code string, compensate bool) (Outcome, error)) (o Outcome, err error, next int) {
	log := workflow.GetLogger(ctx)
	var res OneStepResult
	err = workflow.ExecuteLocalActivity(oneStepOptions(ctx, r), acts.ProvisionInOneStep, OneStepRequest{
		AllocationID: in.AllocationID, NodeID: in.NodeID, UserID: in.UserID, SSHKeyIDs: in.SSHKeyIDs,
		Params: nodetask.ProvisionUserParams{AllocationID: in.AllocationID, Username: in.Username,
			AuthorizedKeys: in.AuthorizedKeys, UserCAKey: in.UserCAKey, Sessions: in.Sessions},
		Wait: r.OneStepWait,
	}).Get(ctx, &res)
	switch {
	case temporal.IsCanceledError(err):
		// The activity stopped before marking the allocation active (a
		// cancelled local activity is waited for).
		o, err = fail(CodeProvisioningCanceled, true)
		return o, err, resumeDone
	case err != nil:
		// Timed out (or the worker lost it): how far it got is unknown.
		// Provisioning if it was not yet, else find out whether it is
		// active already; in any case a task may be queued.
		log.Warn("the one-step provisioning ended without a result; going on durably", "allocation_id", in.AllocationID, "error", err)
		lctx := markLocalOptions(ctx, r)
		if err := workflow.ExecuteLocalActivity(lctx, acts.MarkProvisioning, in.AllocationID).Get(ctx, nil); err != nil {
			if errorCode(err) != CodeInvalidState {
				o, err = fail(failureCode(err, CodeTransitionError), true)
				return o, err, resumeDone
			}
			if err := workflow.ExecuteLocalActivity(lctx, acts.MarkActive, in.AllocationID).Get(ctx, nil); err != nil {
				// Not active and not provisioning: moved on (released).
				o, err = fail(failureCode(err, CodeTransitionError), true)
				return o, err, resumeDone
			}
			syncStorageIn(ctx, r, *in)
			return Outcome{State: allocation.Active}, nil, resumeDone
		}
		return Outcome{}, nil, resumeAtTask
	case res.Active:
		syncStorageIn(ctx, r, *in)
		return Outcome{State: allocation.Active}, nil, resumeDone
	case res.Code == codeNotRequested:
		// Released (or failed) before provisioning began: nothing to do.
		log.Info("allocation is no longer requested; not provisioning", "allocation_id", in.AllocationID)
		return Outcome{}, nil, resumeDone
	}
	if len(in.AuthorizedKeys) == 0 {
		in.AuthorizedKeys = res.Access.AuthorizedKeys
	}
	if in.UserCAKey == "" {
		in.UserCAKey = res.Access.UserCAKey
	}
	switch {
	case !res.TaskQueued && res.Final:
		o, err = fail(res.Code, false)
		return o, err, resumeDone
	case !res.TaskQueued:
		// Nothing queued (a transient error before the task): the durable
		// steps from MarkProvisioning on.
		log.Info("one-step provisioning did not begin; going on durably", "allocation_id", in.AllocationID, "code", res.Code)
		return Outcome{}, nil, resumeFromStart
	case res.Code == codeActivationPending:
		// The account exists; only the transition failed, transiently.
		if err := workflow.ExecuteLocalActivity(markLocalOptions(ctx, r), acts.MarkActive, in.AllocationID).Get(ctx, nil); err != nil {
			o, err = fail(failureCode(err, CodeTransitionError), true)
			return o, err, resumeDone
		}
		syncStorageIn(ctx, r, *in)
		return Outcome{State: allocation.Active}, nil, resumeDone
	case res.Final:
		o, err = fail(res.Code, true)
		return o, err, resumeDone
	case res.Code == CodeNodeTaskFailed:
		// The agent ran it and failed: back off as a retry would.
		log.Info("one-step provisioning failed on the node; retrying durably", "allocation_id", in.AllocationID, "message", res.Message)
		if err := workflow.Sleep(ctx, r.InitialInterval); err != nil {
			o, err = fail(CodeProvisioningCanceled, true)
			return o, err, resumeDone
		}
	default:
		log.Info("one-step provisioning unfinished; going on durably", "allocation_id", in.AllocationID, "code", res.Code)
	}
	return Outcome{}, nil, resumeAtTask
}

// changeStopBeforePush is the workflow.GetVersion change id under which a
// release with storage sync stops the account's processes (stop_user)
// before pushing its files back.
const changeStopBeforePush = "release-stop-before-push"

// ReleaseAllocation takes a releasing allocation to released: RunNodeTask
// revoke_user, retried with back-off up to Retry.MaxAttempts, then
// MarkReleased. Retries exhausted → MarkReleaseFailed with the failure code
// (an operator or the user retries, which starts a new release). An
// allocation that was never placed on a node has nothing to revoke.
func ReleaseAllocation(ctx workflow.Context, in ReleaseInput) (Outcome, error) {
	r := in.Retry.withDefaults(DefaultReleaseAttempts)
	mctx := markOptions(ctx, r)
	if in.AllocationID == "" {
		return Outcome{}, temporal.NewNonRetryableApplicationError("allocation id is required", CodeInvalidRequest, nil)
	}
	if in.Username == "" {
		in.Username = nodetask.UsernameFor(in.AllocationID)
	}
	if in.NodeID != "" && in.StorageSync {
		// First stop everything the account runs (its home stays), so no
		// process is still writing the files the push takes. Versioned:
		// releases recorded before it push without stopping. Best effort:
		// revoke_user below ends the processes anyway.
		if workflow.GetVersion(ctx, changeStopBeforePush, workflow.DefaultVersion, 1) >= 1 {
			stop := nodetask.StopUserParams{AllocationID: in.AllocationID, Username: in.Username, GraceSeconds: in.GraceSeconds}
			tctx := taskOptions(ctx, r, r.MaxAttempts)
			if err := workflow.ExecuteActivity(tctx, acts.RunNodeTask, NodeTaskRequest{
				NodeID: in.NodeID, AllocationID: in.AllocationID, Type: nodetask.StopUser, Params: mustJSON(stop),
			}).Get(ctx, nil); err != nil {
				workflow.GetLogger(ctx).Warn("stop_user failed; pushing files anyway", "allocation_id", in.AllocationID, "error", err)
			}
		}
		// Before the account (and its home) goes: push the synced folder
		// back. Best effort; the release goes on whatever happens.
		var sum StorageSyncSummary
		if err := workflow.ExecuteActivity(storageSyncOptions(ctx, r), storageActs.SyncStorageOut, StorageSyncRequest{
			AllocationID: in.AllocationID, NodeID: in.NodeID, Username: in.Username}).Get(ctx, &sum); err != nil {
			workflow.GetLogger(ctx).Warn("storage sync (push) failed; releasing anyway", "allocation_id", in.AllocationID, "error", err)
		} else if sum.Files+sum.Failed+sum.Skipped > 0 {
			workflow.GetLogger(ctx).Info("storage synced back from the node", "allocation_id", in.AllocationID,
				"files", sum.Files, "bytes", sum.Bytes, "failed", sum.Failed, "skipped", sum.Skipped)
		}
	}
	if in.NodeID != "" {
		revoke := nodetask.RevokeUserParams{AllocationID: in.AllocationID, Username: in.Username,
			GraceSeconds: in.GraceSeconds}
		tctx := taskOptions(ctx, r, r.MaxAttempts)
		if err := workflow.ExecuteActivity(tctx, acts.RunNodeTask, NodeTaskRequest{
			NodeID: in.NodeID, AllocationID: in.AllocationID, Type: nodetask.RevokeUser, Params: mustJSON(revoke),
		}).Get(ctx, nil); err != nil {
			code := failureCode(err, CodeNodeTaskFailed)
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			if err := workflow.ExecuteActivity(markOptions(dctx, r), acts.MarkReleaseFailed, in.AllocationID, code).Get(dctx, nil); err != nil {
				return Outcome{FailureCode: code}, err
			}
			return Outcome{State: allocation.ReleaseFailed, FailureCode: code}, nil
		}
	}
	if err := workflow.ExecuteActivity(mctx, acts.MarkReleased, in.AllocationID).Get(ctx, nil); err != nil {
		return Outcome{}, err
	}
	return Outcome{State: allocation.Released}, nil
}

// errorCode is the application error type carried by err ("" if none).
func errorCode(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}

// failureCode picks the code recorded on the allocation for err: the
// activity's own code when it gave one, node_unreachable for timeouts.
func failureCode(err error, fallback string) string {
	if c := errorCode(err); c != "" && knownCodes[c] {
		return c
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return CodeNodeUnreachable
	}
	return fallback
}

var knownCodes = map[string]bool{
	CodeInvalidRequest: true, CodeInvalidState: true, CodeAllocationNotFound: true, CodeNodeNotFound: true,
	CodeNoSSHKeys: true, CodeNodeTaskFailed: true, CodeNodeUnreachable: true, CodeNodeTaskError: true,
	CodeTransitionError: true, CodeAccessError: true, CodeProvisioningCanceled: true,
}
