package temporal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/nodetask"
)

// ---- ProvisionInOneStep, the activity ---------------------------------------

// txLog is a TxRunner and TaskQueue that record what ran inside the
// transaction: in-transaction calls see a marked context.
type txLog struct {
	mu      sync.Mutex
	calls   []string
	commits int
	failTx  error // returned by InTx after fn (a failed commit)
	result  nodetask.Result
	waitErr error
	block   bool // Wait blocks until ctx ends
}

type inTxKey struct{}

func (l *txLog) rec(ctx context.Context, s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ctx.Value(inTxKey{}) != nil {
		s += " (tx)"
	}
	l.calls = append(l.calls, s)
}

func (l *txLog) InTx(ctx context.Context, fn func(context.Context) error) error {
	if err := fn(context.WithValue(ctx, inTxKey{}, true)); err != nil {
		return err
	}
	l.mu.Lock()
	l.commits++
	l.mu.Unlock()
	return l.failTx
}

func (l *txLog) RunTask(ctx context.Context, _ string, typ nodetask.Type, _ any, _ string) (nodetask.Result, error) {
	l.rec(ctx, "run "+string(typ))
	return l.result, l.waitErr
}

func (l *txLog) Enqueue(ctx context.Context, nodeID string, typ nodetask.Type, _ any, allocationID string) (nodetask.Task, error) {
	l.rec(ctx, "enqueue "+string(typ))
	return nodetask.Task{Envelope: nodetask.Envelope{TaskID: "t1", NodeID: nodeID, Type: typ}, AllocationID: allocationID}, nil
}

func (l *txLog) Wait(ctx context.Context, taskID string) (nodetask.Result, error) {
	l.rec(ctx, "wait "+taskID)
	if l.block {
		<-ctx.Done()
		return nodetask.Result{}, ctx.Err()
	}
	return l.result, l.waitErr
}

// loggedMachine is machine recording into the same log.
type loggedMachine struct {
	*machine
	log *txLog
}

func (m loggedMachine) MarkProvisioning(ctx context.Context, id string) (allocation.Allocation, error) {
	m.log.rec(ctx, "provisioning")
	return m.machine.MarkProvisioning(ctx, id)
}

func (m loggedMachine) MarkActive(ctx context.Context, id string) (allocation.Allocation, error) {
	m.log.rec(ctx, "active")
	return m.machine.MarkActive(ctx, id)
}

func TestProvisionInOneStep(t *testing.T) {
	t.Parallel()
	ok := nodetask.Result{TaskID: "t1", Succeeded: true}
	cases := []struct {
		name   string
		start  allocation.State
		noTx   bool                   // no TxRunner: each step commits alone, RunTask waits
		setup  func(*txLog, *machine) // before the activity
		during func(*machine)         // after the task, before MarkActive
		want   OneStepResult          // Access is not compared
		calls  string
		final  allocation.State
	}{
		{name: "success: one transaction up to the queued task", start: allocation.Requested,
			setup: func(l *txLog, _ *machine) { l.result = ok },
			want:  OneStepResult{Active: true, TaskQueued: true},
			calls: "[provisioning (tx) enqueue allocation.provision_user (tx) wait t1 active]", final: allocation.Active},
		{name: "success without a transaction runner", start: allocation.Requested, noTx: true,
			setup: func(l *txLog, _ *machine) { l.result = ok },
			want:  OneStepResult{Active: true, TaskQueued: true},
			calls: "[provisioning run allocation.provision_user active]", final: allocation.Active},
		{name: "released before: nothing queued", start: allocation.Releasing,
			want:  OneStepResult{Code: codeNotRequested, Final: true},
			calls: "[provisioning (tx)]", final: allocation.Releasing},
		{name: "the commit fails: nothing queued, not final", start: allocation.Requested,
			setup: func(l *txLog, _ *machine) { l.failTx = errors.New("connection reset") },
			want:  OneStepResult{Code: CodeNodeTaskError},
			calls: "[provisioning (tx) enqueue allocation.provision_user (tx)]", final: allocation.Provisioning},
		{name: "the node is slow: queued, left to the durable path", start: allocation.Requested,
			setup: func(l *txLog, _ *machine) { l.block = true },
			want:  OneStepResult{TaskQueued: true, Code: CodeNodeUnreachable},
			calls: "[provisioning (tx) enqueue allocation.provision_user (tx) wait t1]", final: allocation.Provisioning},
		{name: "the task failed on the node: retryable", start: allocation.Requested,
			setup: func(l *txLog, _ *machine) { l.result = nodetask.Result{TaskID: "t1", ErrorCode: "execution_failed"} },
			want:  OneStepResult{TaskQueued: true, Code: CodeNodeTaskFailed},
			calls: "[provisioning (tx) enqueue allocation.provision_user (tx) wait t1]", final: allocation.Provisioning},
		{name: "the agent refused the parameters: final", start: allocation.Requested,
			setup: func(l *txLog, _ *machine) { l.result = nodetask.Result{TaskID: "t1", ErrorCode: "invalid_params"} },
			want:  OneStepResult{TaskQueued: true, Code: CodeInvalidRequest, Final: true},
			calls: "[provisioning (tx) enqueue allocation.provision_user (tx) wait t1]", final: allocation.Provisioning},
		{name: "released during provisioning: final, compensated", start: allocation.Requested,
			setup:  func(l *txLog, _ *machine) { l.result = ok },
			during: func(m *machine) { m.set(allocation.Releasing) },
			want:   OneStepResult{TaskQueued: true, Code: CodeInvalidState, Final: true},
			calls:  "[provisioning (tx) enqueue allocation.provision_user (tx) wait t1 active]", final: allocation.Releasing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := &txLog{}
			m := &machine{state: c.start}
			if c.setup != nil {
				c.setup(l, m)
			}
			var tasks TaskRunner = l
			if c.noTx {
				tasks = runnerFunc(l.RunTask) // not a TaskQueue
			}
			var during func()
			if c.during != nil {
				during = func() { c.during(m) }
			}
			a, err := NewActivities(loggedMachine{m, l}, afterTask{tasks, during}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !c.noTx {
				UseTransactions(a, l)
			}
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			v, err := env.ExecuteActivity(a.ProvisionInOneStep, OneStepRequest{AllocationID: testAlloc, NodeID: testNode,
				Params: nodetask.ProvisionUserParams{AllocationID: testAlloc, Username: nodetask.UsernameFor(testAlloc),
					AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey},
				Wait: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			var got OneStepResult
			if err := v.Get(&got); err != nil {
				t.Fatal(err)
			}
			if got.Active != c.want.Active || got.TaskQueued != c.want.TaskQueued || got.Code != c.want.Code || got.Final != c.want.Final {
				t.Fatalf("result %+v, want %+v", got, c.want)
			}
			if fmt.Sprint(l.calls) != c.calls {
				t.Fatalf("calls %v, want %s", l.calls, c.calls)
			}
			if m.state != c.final {
				t.Fatalf("allocation %s, want %s", m.state, c.final)
			}
		})
	}
}

// afterTask runs fn once the task has its result (a release racing the
// activation).
type afterTask struct {
	TaskRunner
	fn func()
}

func (a afterTask) Enqueue(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Task, error) {
	return a.TaskRunner.(TaskQueue).Enqueue(ctx, nodeID, typ, params, allocationID)
}

func (a afterTask) Wait(ctx context.Context, taskID string) (nodetask.Result, error) {
	r, err := a.TaskRunner.(TaskQueue).Wait(ctx, taskID)
	if a.fn != nil {
		a.fn()
	}
	return r, err
}

func (a afterTask) RunTask(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Result, error) {
	r, err := a.TaskRunner.RunTask(ctx, nodeID, typ, params, allocationID)
	if a.fn != nil {
		a.fn()
	}
	return r, err
}

// ---- ProvisionAllocation's one-step path, the workflow -----------------------

func oneStepResult(r OneStepResult) OneStepResult {
	r.Access = Access{AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey}
	return r
}

func TestOneStepPath(t *testing.T) {
	t.Parallel()
	invalid := temporal.NewNonRetryableApplicationError("allocation cannot go from releasing to active", CodeInvalidState, nil)
	cases := []struct {
		name  string
		res   OneStepResult
		err   error
		mocks func(env *testsuite.TestWorkflowEnvironment, a *Activities)
		want  Outcome
		// activities the workflow must run after the one step, by name:
		// number of calls.
		calls map[string]int
	}{
		{name: "active in one step", res: OneStepResult{Active: true, TaskQueued: true},
			want: Outcome{State: allocation.Active}},
		{name: "released before provisioning", res: OneStepResult{Code: codeNotRequested, Final: true},
			want: Outcome{}},
		{name: "no keys: failed without a revoke", res: OneStepResult{Code: CodeNoSSHKeys, Final: true},
			mocks: func(env *testsuite.TestWorkflowEnvironment, a *Activities) {
				env.OnActivity(a.MarkFailed, mock.Anything, testAlloc, CodeNoSSHKeys).Return(nil).Once()
			},
			want: Outcome{State: allocation.Failed, FailureCode: CodeNoSSHKeys}, calls: map[string]int{"MarkFailed": 1}},
		{name: "nothing queued, transient: the durable steps from the start", res: OneStepResult{Code: CodeTransitionError},
			mocks: func(env *testsuite.TestWorkflowEnvironment, a *Activities) {
				env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil).Once()
				env.OnActivity(a.ResolveAccess, mock.Anything, "u1", mock.Anything).Return(Access{AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey}, nil).Once()
				env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
			},
			want: Outcome{State: allocation.Active}, calls: map[string]int{"MarkProvisioning": 1, "ResolveAccess": 1, "ProvisionAndActivate": 1}},
		{name: "slow node: the durable task with the keys it resolved", res: oneStepResult(OneStepResult{TaskQueued: true, Code: CodeNodeUnreachable}),
			mocks: func(env *testsuite.TestWorkflowEnvironment, a *Activities) {
				env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
			},
			want: Outcome{State: allocation.Active}, calls: map[string]int{"ProvisionAndActivate": 1, "MarkProvisioning": 0, "ResolveAccess": 0}},
		{name: "failed on the node: the durable task has the attempts left", res: oneStepResult(OneStepResult{TaskQueued: true, Code: CodeNodeTaskFailed}),
			mocks: func(env *testsuite.TestWorkflowEnvironment, a *Activities) {
				env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).
					Return(nodetask.Result{}, temporal.NewApplicationError("node task failed", CodeNodeTaskFailed))
				env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
				env.OnActivity(a.MarkFailed, mock.Anything, testAlloc, CodeNodeTaskFailed).Return(nil).Once()
			},
			want:  Outcome{State: allocation.Failed, FailureCode: CodeNodeTaskFailed},
			calls: map[string]int{"ProvisionAndActivate": 2, "RunNodeTask": 1, "MarkFailed": 1}},
		{name: "released during provisioning: revoked", res: oneStepResult(OneStepResult{TaskQueued: true, Code: CodeInvalidState, Final: true}),
			mocks: func(env *testsuite.TestWorkflowEnvironment, a *Activities) {
				env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
				env.OnActivity(a.MarkFailed, mock.Anything, testAlloc, CodeInvalidState).Return(invalid).Once()
			},
			want: Outcome{FailureCode: CodeInvalidState}, calls: map[string]int{"RunNodeTask": 1, "ProvisionAndActivate": 0}},
		{name: "activation pending: MarkActive as a step", res: oneStepResult(OneStepResult{TaskQueued: true, Code: codeActivationPending}),
			mocks: func(env *testsuite.TestWorkflowEnvironment, a *Activities) {
				env.OnActivity(a.MarkActive, mock.Anything, testAlloc).Return(temporal.NewApplicationError("db down", CodeTransitionError)).Once()
				env.OnActivity(a.MarkActive, mock.Anything, testAlloc).Return(nil).Once()
			},
			want: Outcome{State: allocation.Active}, calls: map[string]int{"MarkActive": 2, "ProvisionAndActivate": 0, "RunNodeTask": 0}},
		{name: "no result (timed out), active meanwhile", err: errors.New("lost"),
			mocks: func(env *testsuite.TestWorkflowEnvironment, a *Activities) {
				env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(temporal.NewNonRetryableApplicationError("active", CodeInvalidState, nil)).Once()
				env.OnActivity(a.MarkActive, mock.Anything, testAlloc).Return(nil).Once()
			},
			want: Outcome{State: allocation.Active}, calls: map[string]int{"ProvisionAndActivate": 0, "RunNodeTask": 0}},
		{name: "no result (timed out), released meanwhile: revoked", err: errors.New("lost"),
			mocks: func(env *testsuite.TestWorkflowEnvironment, a *Activities) {
				env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(temporal.NewNonRetryableApplicationError("releasing", CodeInvalidState, nil)).Once()
				env.OnActivity(a.MarkActive, mock.Anything, testAlloc).Return(invalid).Once()
				env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
				env.OnActivity(a.MarkFailed, mock.Anything, testAlloc, CodeInvalidState).Return(invalid).Once()
			},
			want: Outcome{FailureCode: CodeInvalidState}, calls: map[string]int{"RunNodeTask": 1}},
		{name: "no result (timed out), still provisioning: the durable task", err: errors.New("lost"),
			mocks: func(env *testsuite.TestWorkflowEnvironment, a *Activities) {
				env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil).Once()
				env.OnActivity(a.ResolveAccess, mock.Anything, "u1", mock.Anything).Return(Access{AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey}, nil).Once()
				env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
			},
			want: Outcome{State: allocation.Active}, calls: map[string]int{"MarkProvisioning": 1, "ProvisionAndActivate": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env, a := newOneStepEnv(t)
			env.OnActivity(a.ProvisionInOneStep, mock.Anything, mock.MatchedBy(func(r OneStepRequest) bool {
				return r.AllocationID == testAlloc && r.NodeID == testNode && r.UserID == "u1" && r.Wait == DefaultOneStepWait
			})).Return(c.res, c.err).Once()
			if c.mocks != nil {
				c.mocks(env, a)
			}
			env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode, UserID: "u1", Retry: shortRetry})
			if o := outcome(t, env); o != c.want {
				t.Fatalf("outcome %+v, want %+v", o, c.want)
			}
			env.AssertExpectations(t)
			for name, n := range c.calls {
				env.AssertActivityNumberOfCalls(t, name, n)
			}
		})
	}
}
