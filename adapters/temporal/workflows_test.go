package temporal

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/nodetask"
)

const (
	testAlloc = "0198f3a2-7c1e-7b44-9a51-3f2b8c9d0e11"
	testNode  = "node-1"
)

// Real ed25519 public keys, so nodetask.ValidateParams accepts them.
var (
	testKey   = newPublicKey()
	testCAKey = newPublicKey()
)

func newPublicKey() string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// shortRetry keeps the simulated back-off small; the test environment skips
// timers anyway, so this only bounds simulated time.
var shortRetry = Retry{MaxAttempts: 3, InitialInterval: 1e9, MaxInterval: 2e9}

// newEnv runs ProvisionAllocation on the steps it had before changeOneStep
// — the durable steps the one-step path hands over to (newOneStepEnv).
func newEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *Activities) {
	t.Helper()
	env, a := newOneStepEnv(t)
	env.OnGetVersion(changeOneStep, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion).Maybe()
	return env, a
}

// newOneStepEnv runs the current workflow code: ProvisionInOneStep first.
func newOneStepEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *Activities) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	RegisterWorkflows(env)
	a := &Activities{}
	env.RegisterActivity(a)
	return env, a
}

// taskOfType matches a RunNodeTask request of one type.
func taskOfType(typ nodetask.Type) any {
	return mock.MatchedBy(func(r NodeTaskRequest) bool { return r.Type == typ })
}

func outcome(t *testing.T, env *testsuite.TestWorkflowEnvironment) Outcome {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var o Outcome
	if err := env.GetWorkflowResult(&o); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestProvisionSucceeds(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	var sent nodetask.ProvisionUserParams
	env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil).Once()
	env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).Run(func(args mock.Arguments) {
		req := args.Get(1).(NodeTaskRequest)
		if req.NodeID != testNode || req.AllocationID != testAlloc {
			t.Errorf("task for node %q allocation %q", req.NodeID, req.AllocationID)
		}
		if err := json.Unmarshal(req.Params, &sent); err != nil {
			t.Error(err)
		}
	}).Return(nodetask.Result{Succeeded: true}, nil).Once()

	env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{
		AllocationID: testAlloc, NodeID: testNode, UserID: "u1",
		AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey, Retry: shortRetry,
	})
	if o := outcome(t, env); o.State != allocation.Active {
		t.Fatalf("outcome %+v, want active", o)
	}
	env.AssertExpectations(t)
	env.AssertNotCalled(t, "ResolveAccess", mock.Anything, mock.Anything, mock.Anything)
	env.AssertNotCalled(t, "MarkFailed", mock.Anything, mock.Anything, mock.Anything)
	// The activity marks the allocation active: no separate step.
	env.AssertNotCalled(t, "MarkActive", mock.Anything, mock.Anything)
	env.AssertNotCalled(t, "RunNodeTask", mock.Anything, mock.Anything)
	want := nodetask.ProvisionUserParams{AllocationID: testAlloc, Username: nodetask.UsernameFor(testAlloc),
		AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey}
	if sent.Username != want.Username || sent.UserCAKey != want.UserCAKey || len(sent.AuthorizedKeys) != 1 || sent.AuthorizedKeys[0] != testKey {
		t.Fatalf("provision params %+v, want %+v", sent, want)
	}
}

func TestProvisionResolvesAccessWhenTheEventHasNoKeys(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil)
	env.OnActivity(a.ResolveAccess, mock.Anything, "u1", mock.Anything).Return(Access{AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey}, nil).Once()
	var sent nodetask.ProvisionUserParams
	env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).Run(func(args mock.Arguments) {
		_ = json.Unmarshal(args.Get(1).(NodeTaskRequest).Params, &sent)
	}).Return(nodetask.Result{Succeeded: true}, nil)

	env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode, UserID: "u1", Retry: shortRetry})
	if o := outcome(t, env); o.State != allocation.Active {
		t.Fatalf("outcome %+v", o)
	}
	if len(sent.AuthorizedKeys) != 1 || sent.AuthorizedKeys[0] != testKey || sent.UserCAKey != testCAKey {
		t.Fatalf("resolved access not used: %+v", sent)
	}
	env.AssertExpectations(t)
}

func TestProvisionFailsAfterRetriesAndCompensates(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil)
	env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).
		Return(nodetask.Result{}, temporal.NewApplicationError("node task failed: useradd", CodeNodeTaskFailed))
	revoke := env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
	env.OnActivity(a.MarkFailed, mock.Anything, testAlloc, CodeNodeTaskFailed).Return(nil).Once().NotBefore(revoke)

	env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode,
		AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey, Retry: shortRetry})
	o := outcome(t, env)
	if o.State != allocation.Failed || o.FailureCode != CodeNodeTaskFailed {
		t.Fatalf("outcome %+v, want failed/node_task_failed", o)
	}
	env.AssertExpectations(t)
	// Three attempts of provision_user plus one compensating revoke_user.
	env.AssertActivityNumberOfCalls(t, "ProvisionAndActivate", 3)
	env.AssertActivityNumberOfCalls(t, "RunNodeTask", 1)
	env.AssertNotCalled(t, "MarkActive", mock.Anything, mock.Anything)
}

func TestProvisionDoesNotRetryInvalidParameters(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil)
	env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).
		Return(nodetask.Result{}, temporal.NewNonRetryableApplicationError("bad key", CodeInvalidRequest, nil)).Once()
	env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
	env.OnActivity(a.MarkFailed, mock.Anything, testAlloc, CodeInvalidRequest).Return(nil).Once()

	env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode,
		AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey, Retry: shortRetry})
	if o := outcome(t, env); o.State != allocation.Failed || o.FailureCode != CodeInvalidRequest {
		t.Fatalf("outcome %+v", o)
	}
	env.AssertExpectations(t)
}

func TestProvisionStopsWhenTheAllocationMovedOn(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).
		Return(temporal.NewNonRetryableApplicationError("allocation cannot go from releasing to provisioning", CodeInvalidState, nil)).Once()

	env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode,
		AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey, Retry: shortRetry})
	if o := outcome(t, env); o.State != "" {
		t.Fatalf("outcome %+v, want no state change", o)
	}
	env.AssertExpectations(t)
	env.AssertNotCalled(t, "RunNodeTask", mock.Anything, mock.Anything)
	env.AssertNotCalled(t, "MarkFailed", mock.Anything, mock.Anything, mock.Anything)
}

func TestProvisionReleasedDuringProvisioningRevokesTheAccount(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	invalid := temporal.NewNonRetryableApplicationError("allocation cannot go from releasing to active", CodeInvalidState, nil)
	env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil)
	// The task ran; the MarkActive inside the activity was refused.
	env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).Return(nodetask.Result{Succeeded: true}, invalid).Once()
	env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
	env.OnActivity(a.MarkFailed, mock.Anything, testAlloc, CodeInvalidState).Return(invalid).Once()

	env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode,
		AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey, Retry: shortRetry})
	if o := outcome(t, env); o.State != "" {
		t.Fatalf("outcome %+v: the release owns the allocation", o)
	}
	env.AssertExpectations(t)
	env.AssertNotCalled(t, "MarkActive", mock.Anything, mock.Anything)
}

// Workflows that took the node task before changeSelfActivating keep
// RunNodeTask followed by a separate MarkActive step.
func TestProvisionBeforeSelfActivatingMarksActiveAsAStep(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		markActive error
		wantState  allocation.State
		wantRevoke bool
	}{
		{name: "success", wantState: allocation.Active},
		{name: "released during provisioning", markActive: temporal.NewNonRetryableApplicationError("releasing", CodeInvalidState, nil), wantRevoke: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env, a := newEnv(t)
			env.OnGetVersion(changeSelfActivating, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil).Once()
			env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.ProvisionUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
			env.OnActivity(a.MarkActive, mock.Anything, testAlloc).Return(c.markActive).Once()
			if c.wantRevoke {
				env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).Return(nodetask.Result{Succeeded: true}, nil).Once()
				env.OnActivity(a.MarkFailed, mock.Anything, testAlloc, CodeInvalidState).Return(c.markActive).Once()
			}

			env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode,
				AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey, Retry: shortRetry})
			if o := outcome(t, env); o.State != c.wantState {
				t.Fatalf("outcome %+v, want %q", o, c.wantState)
			}
			env.AssertExpectations(t)
			env.AssertNotCalled(t, "ProvisionAndActivate", mock.Anything, mock.Anything)
		})
	}
}

// The node task succeeded but MarkActive failed transiently inside the
// activity: the workflow retries the transition as a step (with
// MarkTimeout's patience), never the node task.
func TestProvisionRetriesAPendingActivationAsAStep(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil).Once()
	env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).
		Return(nodetask.Result{Succeeded: true}, temporal.NewNonRetryableApplicationError("database down", codeActivationPending, nil)).Once()
	env.OnActivity(a.MarkActive, mock.Anything, testAlloc).Return(temporal.NewApplicationError("database down", CodeTransitionError)).Twice()
	env.OnActivity(a.MarkActive, mock.Anything, testAlloc).Return(nil).Once()

	env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode,
		AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey, Retry: shortRetry})
	if o := outcome(t, env); o.State != allocation.Active {
		t.Fatalf("outcome %+v, want active", o)
	}
	env.AssertExpectations(t)
	env.AssertNotCalled(t, "RunNodeTask", mock.Anything, mock.Anything)
	env.AssertNotCalled(t, "MarkFailed", mock.Anything, mock.Anything, mock.Anything)
}

func TestProvisionWithoutSSHKeysFails(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil)
	env.OnActivity(a.ResolveAccess, mock.Anything, "u1", mock.Anything).
		Return(Access{}, temporal.NewNonRetryableApplicationError("the user has no SSH public key", CodeNoSSHKeys, nil)).Once()
	env.OnActivity(a.MarkFailed, mock.Anything, testAlloc, CodeNoSSHKeys).Return(nil).Once()

	env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode, UserID: "u1", Retry: shortRetry})
	if o := outcome(t, env); o.State != allocation.Failed || o.FailureCode != CodeNoSSHKeys {
		t.Fatalf("outcome %+v", o)
	}
	env.AssertExpectations(t)
	env.AssertNotCalled(t, "RunNodeTask", mock.Anything, mock.Anything)
}

func TestReleaseSucceeds(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	var sent nodetask.RevokeUserParams
	revoke := env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).Run(func(args mock.Arguments) {
		_ = json.Unmarshal(args.Get(1).(NodeTaskRequest).Params, &sent)
	}).Return(nodetask.Result{Succeeded: true}, nil).Once()
	env.OnActivity(a.MarkReleased, mock.Anything, testAlloc).Return(nil).Once().NotBefore(revoke)

	env.ExecuteWorkflow(ReleaseAllocation, ReleaseInput{AllocationID: testAlloc, NodeID: testNode, Retry: shortRetry})
	if o := outcome(t, env); o.State != allocation.Released {
		t.Fatalf("outcome %+v", o)
	}
	if sent.Username != nodetask.UsernameFor(testAlloc) || sent.AllocationID != testAlloc {
		t.Fatalf("revoke params %+v", sent)
	}
	env.AssertExpectations(t)
}

func TestReleaseExhaustingRetriesMarksReleaseFailed(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).
		Return(nodetask.Result{}, temporal.NewApplicationError("node task expired", CodeNodeTaskFailed))
	env.OnActivity(a.MarkReleaseFailed, mock.Anything, testAlloc, CodeNodeTaskFailed).Return(nil).Once()

	env.ExecuteWorkflow(ReleaseAllocation, ReleaseInput{AllocationID: testAlloc, NodeID: testNode, Retry: Retry{MaxAttempts: 4}})
	o := outcome(t, env)
	if o.State != allocation.ReleaseFailed || o.FailureCode != CodeNodeTaskFailed {
		t.Fatalf("outcome %+v", o)
	}
	env.AssertExpectations(t)
	env.AssertActivityNumberOfCalls(t, "RunNodeTask", 4)
	env.AssertNotCalled(t, "MarkReleased", mock.Anything, mock.Anything)
}

func TestReleaseRidesOutATransientTransitionError(t *testing.T) {
	t.Parallel()
	env, a := newEnv(t)
	env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).Return(nodetask.Result{Succeeded: true}, nil)
	env.OnActivity(a.MarkReleased, mock.Anything, testAlloc).Return(temporal.NewApplicationError("database down", CodeTransitionError)).Twice()
	env.OnActivity(a.MarkReleased, mock.Anything, testAlloc).Return(nil).Once()

	env.ExecuteWorkflow(ReleaseAllocation, ReleaseInput{AllocationID: testAlloc, NodeID: testNode, Retry: shortRetry})
	if o := outcome(t, env); o.State != allocation.Released {
		t.Fatalf("outcome %+v", o)
	}
	env.AssertActivityNumberOfCalls(t, "MarkReleased", 3)
}

func TestFailureCode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"known code", temporal.NewApplicationError("x", CodeNoSSHKeys), CodeNoSSHKeys},
		{"unknown code", temporal.NewApplicationError("x", "somethingElse"), CodeNodeTaskFailed},
		{"timeout", temporal.NewTimeoutError(0, nil), CodeNodeUnreachable},
		{"plain", errors.New("x"), CodeNodeTaskFailed},
	}
	for _, c := range cases {
		if got := failureCode(c.err, CodeNodeTaskFailed); got != c.want {
			t.Errorf("%s: failureCode = %q, want %q", c.name, got, c.want)
		}
	}
}
