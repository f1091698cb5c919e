package temporal

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/nodetask"
)

// OneStepRequest is ProvisionInOneStep's input.
type OneStepRequest struct {
	AllocationID string   `json:"allocation_id"`
	NodeID       string   `json:"node_id"`
	UserID       string   `json:"user_id,omitempty"`
	SSHKeyIDs    []string `json:"ssh_key_ids,omitempty"`
	// Params of the provision_user task; AuthorizedKeys and UserCAKey are
	// resolved (by UserID and SSHKeyIDs) when either is empty.
	Params nodetask.ProvisionUserParams `json:"params"`
	// Wait bounds the wait for the agent's result; a node slower than this
	// is left to the durable ProvisionAndActivate activity.
	Wait time.Duration `json:"wait"`
}

// OneStepResult is how far ProvisionInOneStep got. Failures are results,
// not errors, so the workflow learns whether a task may be queued and the
// keys it resolved whatever happened.
type OneStepResult struct {
	// Active: the allocation is active; provisioning is done.
	Active bool `json:"active,omitempty"`
	// TaskQueued: the allocation is provisioning and a provision_user task
	// may be queued (or done) on the node. Anything after this point that
	// does not end active must compensate or carry on with the task.
	TaskQueued bool `json:"task_queued,omitempty"`
	// Access is what the task installs (resolved or from the request).
	Access Access `json:"access"`
	// Code says why the allocation is not active: a failure code of the
	// table in doc/provisioning.md, codeNotRequested or
	// codeActivationPending.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Final: Code is not worth another attempt.
	Final bool `json:"final,omitempty"`
}

// codeNotRequested: MarkProvisioning was refused — the allocation was
// released (or failed) before provisioning began. Never recorded.
const codeNotRequested = "not_requested"

// ProvisionInOneStep is the whole way to active as one local activity of
// the first workflow task (ProvisionAllocation from changeOneStep on): it
// moves the allocation to provisioning, resolves the keys and queues the
// signed provision_user task — in one transaction when UseTransactions was
// given a runner and the TaskRunner is a TaskQueue, so the agent is woken by
// that commit —, waits up to req.Wait for the agent's result and marks the
// allocation active. No round trip through Temporal's server lies between
// the start of the workflow and the activation.
//
// It never retries (a local activity holds the workflow task): anything but
// success comes back as a result the workflow acts on — the durable path
// (ProvisionAndActivate, with its retries and heartbeats) for a slow node or
// a transient error, compensation for a final one. A cancelled context
// returns its error before the allocation is marked active.
func (a *Activities) ProvisionInOneStep(ctx context.Context, req OneStepRequest) (OneStepResult, error) {
	var out OneStepResult
	if req.AllocationID == "" || req.NodeID == "" {
		return OneStepResult{Code: CodeInvalidRequest, Final: true, Message: "node id and allocation id are required"}, nil
	}
	queue, shared := a.tasks.(TaskQueue)
	shared = shared && a.tx != nil

	// The first steps, up to the queued task. stage says which one an error
	// came from; access and parameter errors are classified where they
	// happen (they are no database errors a transaction would retry).
	var (
		stage  string
		params nodetask.ProvisionUserParams
		taskID string
	)
	begin := func(ctx context.Context) error {
		params, taskID = req.Params, ""
		stage = "transition"
		if _, err := a.transitions.MarkProvisioning(ctx, req.AllocationID); err != nil {
			return err
		}
		stage = "access"
		if len(params.AuthorizedKeys) == 0 || params.UserCAKey == "" {
			acc, err := a.ResolveAccess(ctx, req.UserID, req.SSHKeyIDs)
			if err != nil {
				return err
			}
			if len(params.AuthorizedKeys) == 0 {
				params.AuthorizedKeys = acc.AuthorizedKeys
			}
			if params.UserCAKey == "" {
				params.UserCAKey = acc.UserCAKey
			}
		}
		stage = "params"
		if _, err := nodetask.ValidateParams(nodetask.ProvisionUser, mustJSON(params)); err != nil {
			return temporal.NewNonRetryableApplicationError(safeMessage(err), CodeInvalidRequest, nil)
		}
		if !shared {
			return nil
		}
		stage = "enqueue"
		t, err := queue.Enqueue(ctx, req.NodeID, nodetask.ProvisionUser, params, req.AllocationID)
		if err != nil {
			return err
		}
		taskID = t.TaskID
		return nil
	}
	var err error
	if shared {
		err = a.tx.InTx(ctx, begin)
	} else {
		err = begin(ctx)
	}
	out.Access = Access{AuthorizedKeys: params.AuthorizedKeys, UserCAKey: params.UserCAKey}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return OneStepResult{}, cerr
		}
		switch stage {
		case "transition":
			if fault.KindOf(err) == fault.KindConflict {
				return OneStepResult{Code: codeNotRequested, Final: true, Message: safeMessage(err)}, nil
			}
			err = classifyTransition(ctx, err)
		case "enqueue":
			err = classifyTask(ctx, err)
		}
		out.Code, out.Final, out.Message = appErrorOf(err, CodeTransitionError)
		// Nothing was queued: a shared transaction rolled back, and without
		// one the task is queued only below.
		return out, nil
	}

	// From here a task may be queued: every outcome but success says so.
	out.TaskQueued = true
	wctx, cancel := context.WithTimeout(ctx, max(req.Wait, time.Millisecond))
	defer cancel()
	var res nodetask.Result
	if shared {
		res, err = queue.Wait(wctx, taskID)
	} else {
		res, err = a.tasks.RunTask(wctx, req.NodeID, nodetask.ProvisionUser, params, req.AllocationID)
	}
	switch {
	case ctx.Err() != nil:
		// Cancelled (or out of time) while the task ran: not marked active;
		// the workflow compensates.
		return OneStepResult{}, ctx.Err()
	case err != nil && wctx.Err() != nil:
		out.Code, out.Message = CodeNodeUnreachable, "the node did not report within the first wait"
		return out, nil
	case err != nil:
		out.Code, out.Final, out.Message = appErrorOf(classifyTask(ctx, err), CodeNodeTaskError)
		return out, nil
	case !res.Succeeded:
		out.Code, out.Message = CodeNodeTaskFailed, "node task provision_user failed: "+res.ErrorCode
		if res.ErrorMessage != "" {
			out.Message += ": " + res.ErrorMessage
		}
		if nonRetryableTaskCodes[res.ErrorCode] {
			out.Code, out.Final = CodeInvalidRequest, true
		}
		return out, nil
	}
	if _, err := a.transitions.MarkActive(ctx, req.AllocationID); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return OneStepResult{}, cerr
		}
		switch fault.KindOf(err) {
		case fault.KindConflict, fault.KindNotFound, fault.KindInvalid:
			// Released during provisioning (or gone): final, compensated.
			out.Code, out.Final, out.Message = appErrorOf(classifyTransition(ctx, err), CodeInvalidState)
		default:
			logCause(ctx, err)
			out.Code, out.Message = codeActivationPending, "the node task succeeded; marking the allocation active failed: "+safeMessage(err)
		}
		return out, nil
	}
	out.Active = true
	return out, nil
}

// appErrorOf splits an activity error into code, finality and message.
func appErrorOf(err error, fallback string) (code string, final bool, msg string) {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type(), app.NonRetryable(), app.Message()
	}
	return fallback, false, safeMessage(err)
}
