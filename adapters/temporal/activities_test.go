package temporal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/nodetask/tasksvc"
	"github.com/gpuaas/gpuaas/ports"
)

// runnerFunc adapts a function to TaskRunner.
type runnerFunc func(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Result, error)

func (f runnerFunc) RunTask(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Result, error) {
	return f(ctx, nodeID, typ, params, allocationID)
}

// transitionsFunc answers every Mark* with err and records the calls.
type transitionsFunc struct {
	mu    sync.Mutex
	err   error
	calls []string
}

func (t *transitionsFunc) rec(s string) (allocation.Allocation, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, s)
	return allocation.Allocation{}, t.err
}
func (t *transitionsFunc) MarkProvisioning(_ context.Context, id string) (allocation.Allocation, error) {
	return t.rec("provisioning " + id)
}
func (t *transitionsFunc) MarkActive(_ context.Context, id string) (allocation.Allocation, error) {
	return t.rec("active " + id)
}
func (t *transitionsFunc) MarkFailed(_ context.Context, id, code string) (allocation.Allocation, error) {
	return t.rec("failed " + id + " " + code)
}
func (t *transitionsFunc) MarkReleased(_ context.Context, id string) (allocation.Allocation, error) {
	return t.rec("released " + id)
}
func (t *transitionsFunc) MarkReleaseFailed(_ context.Context, id, code string) (allocation.Allocation, error) {
	return t.rec("release_failed " + id + " " + code)
}

func provisionRequest(t *testing.T, keys ...string) NodeTaskRequest {
	t.Helper()
	p, err := json.Marshal(nodetask.ProvisionUserParams{AllocationID: testAlloc, Username: nodetask.UsernameFor(testAlloc), AuthorizedKeys: keys, UserCAKey: testCAKey})
	if err != nil {
		t.Fatal(err)
	}
	return NodeTaskRequest{NodeID: testNode, AllocationID: testAlloc, Type: nodetask.ProvisionUser, Params: p}
}

// appError returns the application error in err, failing the test if none.
func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("error %v (%T) carries no application error", err, err)
	}
	return app
}

func TestRunNodeTask(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		req           func(t *testing.T) NodeTaskRequest
		res           nodetask.Result
		err           error
		wantCalled    bool
		wantCode      string // "" = success
		wantRetryable bool
	}{
		{name: "succeeded", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, testKey) },
			res: nodetask.Result{Succeeded: true}, wantCalled: true},
		{name: "agent reported failure", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, testKey) },
			res: nodetask.Result{ErrorCode: "useradd_failed"}, wantCalled: true, wantCode: CodeNodeTaskFailed, wantRetryable: true},
		{name: "agent refused parameters", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, testKey) },
			res: nodetask.Result{ErrorCode: "validation_failed"}, wantCalled: true, wantCode: CodeInvalidRequest},
		{name: "queue unavailable", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, testKey) },
			err: fault.Unavailable("db down", errors.New("dial tcp postgres://secret@db")), wantCalled: true, wantCode: CodeNodeTaskError, wantRetryable: true},
		{name: "unknown node", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, testKey) },
			err: fault.NotFound("node", testNode), wantCalled: true, wantCode: CodeNodeNotFound},
		{name: "invalid params never reach the queue", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, "ssh-dss AAAA") },
			wantCode: CodeInvalidRequest},
		{name: "no node", req: func(t *testing.T) NodeTaskRequest { r := provisionRequest(t, testKey); r.NodeID = ""; return r },
			wantCode: CodeInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			called := false
			a, err := NewActivities(&transitionsFunc{}, runnerFunc(func(_ context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Result, error) {
				called = true
				if _, ok := params.(nodetask.ProvisionUserParams); !ok || nodeID != testNode || allocationID != testAlloc || typ != nodetask.ProvisionUser {
					t.Errorf("RunTask(%q, %q, %T, %q)", nodeID, typ, params, allocationID)
				}
				return c.res, c.err
			}), nil)
			if err != nil {
				t.Fatal(err)
			}
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			_, err = env.ExecuteActivity(a.RunNodeTask, c.req(t))
			if called != c.wantCalled {
				t.Fatalf("RunTask called = %v, want %v", called, c.wantCalled)
			}
			if c.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			app := appError(t, err)
			if app.Type() != c.wantCode || app.NonRetryable() == c.wantRetryable {
				t.Fatalf("error type %q non-retryable %v, want %q retryable %v", app.Type(), app.NonRetryable(), c.wantCode, c.wantRetryable)
			}
		})
	}
}

func TestRunNodeTaskHeartbeatsWhileWaiting(t *testing.T) {
	t.Parallel()
	beat := make(chan struct{}, 1)
	release := make(chan struct{})
	a, err := NewActivities(&transitionsFunc{}, runnerFunc(func(ctx context.Context, _ string, _ nodetask.Type, _ any, _ string) (nodetask.Result, error) {
		select {
		case <-release: // only after a heartbeat was seen
			return nodetask.Result{Succeeded: true}, nil
		case <-ctx.Done():
			return nodetask.Result{}, ctx.Err()
		}
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.heartbeatEvery = 5 * time.Millisecond
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	var once sync.Once
	env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) {
		once.Do(func() { close(release); beat <- struct{}{} })
	})
	if _, err := env.ExecuteActivity(a.RunNodeTask, provisionRequest(t, testKey)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-beat:
	default:
		t.Fatal("no heartbeat while waiting for the task")
	}
}

func TestTransitionErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		err           error
		wantCode      string
		wantRetryable bool
	}{
		{"refused transition", fault.Conflict("invalid_state_transition", "allocation cannot go from released to active"), CodeInvalidState, false},
		{"unknown allocation", fault.NotFound("allocation", testAlloc), CodeAllocationNotFound, false},
		{"database down", fault.Unavailable("db", errors.New("conn refused")), CodeTransitionError, true},
		{"unexpected", errors.New("boom"), CodeTransitionError, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tr := &transitionsFunc{err: c.err}
			a, err := NewActivities(tr, runnerFunc(nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			_, err = env.ExecuteActivity(a.MarkFailed, testAlloc, CodeNodeTaskFailed)
			app := appError(t, err)
			if app.Type() != c.wantCode || app.NonRetryable() == c.wantRetryable {
				t.Fatalf("type %q non-retryable %v", app.Type(), app.NonRetryable())
			}
			if len(tr.calls) != 1 || tr.calls[0] != "failed "+testAlloc+" "+CodeNodeTaskFailed {
				t.Fatalf("calls %v", tr.calls)
			}
		})
	}
}

// keyStore and caKey are in-memory ports for SSHAccess.
type keyStore map[string][]ports.SSHKey

func (k keyStore) AddSSHKey(context.Context, ports.SSHKey) error { return errors.New("read-only") }
func (k keyStore) ListSSHKeys(_ context.Context, userID string) ([]ports.SSHKey, error) {
	return k[userID], nil
}
func (k keyStore) DeleteSSHKey(context.Context, string, string) error { return errors.New("read-only") }

type caKey string

func (c caKey) PublicKey(context.Context) (string, error) { return string(c), nil }
func (c caKey) SignUserKey(context.Context, string, string, time.Duration) (string, error) {
	return "", errors.New("not used")
}

func TestResolveAccess(t *testing.T) {
	t.Parallel()
	acc, err := NewSSHAccess(keyStore{"u1": {{PublicKey: testKey}}, "u2": nil}, caKey(testCAKey))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewActivities(&transitionsFunc{}, runnerFunc(nil), acc)
	if err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.ResolveAccess, "u1", []string(nil))
	if err != nil {
		t.Fatal(err)
	}
	var got Access
	if err := v.Get(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.AuthorizedKeys) != 1 || got.AuthorizedKeys[0] != testKey || got.UserCAKey != testCAKey {
		t.Fatalf("access %+v", got)
	}
	_, err = env.ExecuteActivity(a.ResolveAccess, "u2", []string(nil))
	if app := appError(t, err); app.Type() != CodeNoSSHKeys || !app.NonRetryable() {
		t.Fatalf("no keys: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, hp := range []string{"", "localhost", ":7233", "host:0", "host:x"} {
		c := Config{HostPort: hp}
		if err := c.CheckAndSetDefaults(); err == nil {
			t.Errorf("HostPort %q accepted", hp)
		}
	}
	c := Config{HostPort: "127.0.0.1:7233"}
	if err := c.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "default" || c.TaskQueue != "gpuaas-provisioning" || c.RPCTimeout <= 0 {
		t.Fatalf("defaults %+v", c)
	}
}

// The real use cases plug in without adapters.
var (
	_ AllocationTransitions = (*allocationsvc.Service)(nil)
	_ TaskRunner            = (*tasksvc.Service)(nil)
)

func TestSSHAccessSelectsKeys(t *testing.T) {
	t.Parallel()
	other := newPublicKey()
	acc, err := NewSSHAccess(keyStore{"u1": {{ID: "k1", PublicKey: testKey}, {ID: "k2", PublicKey: other}}}, caKey(testCAKey))
	if err != nil {
		t.Fatal(err)
	}
	got, err := acc.ResolveAccess(context.Background(), "u1", []string{"k2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.AuthorizedKeys) != 1 || got.AuthorizedKeys[0] != other || got.UserCAKey != testCAKey {
		t.Fatalf("selected %+v", got)
	}
	all, err := acc.ResolveAccess(context.Background(), "u1", nil)
	if err != nil || len(all.AuthorizedKeys) != 2 {
		t.Fatalf("all keys: %+v %v", all, err)
	}
}

func TestProvisionAndActivate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		req           func(t *testing.T) NodeTaskRequest
		res           nodetask.Result
		markErr       error
		wantCalled    bool
		wantMarks     []string
		wantCode      string // "" = success
		wantRetryable bool
	}{
		{name: "task succeeded: marked active", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, testKey) },
			res: nodetask.Result{Succeeded: true}, wantCalled: true, wantMarks: []string{"active " + testAlloc}},
		{name: "task failed: not marked", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, testKey) },
			res: nodetask.Result{ErrorCode: "useradd_failed"}, wantCalled: true, wantCode: CodeNodeTaskFailed, wantRetryable: true},
		{name: "released during provisioning", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, testKey) },
			res: nodetask.Result{Succeeded: true}, markErr: fault.Conflict("invalid_state_transition", "allocation cannot go from releasing to active"),
			wantCalled: true, wantMarks: []string{"active " + testAlloc}, wantCode: CodeInvalidState},
		{name: "allocation gone", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, testKey) },
			res: nodetask.Result{Succeeded: true}, markErr: fault.NotFound("allocation", testAlloc),
			wantCalled: true, wantMarks: []string{"active " + testAlloc}, wantCode: CodeAllocationNotFound},
		{name: "transient mark failure: activation pending, not retried", req: func(t *testing.T) NodeTaskRequest { return provisionRequest(t, testKey) },
			res: nodetask.Result{Succeeded: true}, markErr: fault.Unavailable("db down", errors.New("dial tcp postgres://secret@db")),
			wantCalled: true, wantMarks: []string{"active " + testAlloc}, wantCode: codeActivationPending},
		{name: "only provision_user", req: func(t *testing.T) NodeTaskRequest {
			r := provisionRequest(t, testKey)
			r.Type = nodetask.RevokeUser
			return r
		}, wantCode: CodeInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			called := false
			tr := &transitionsFunc{err: c.markErr}
			a, err := NewActivities(tr, runnerFunc(func(context.Context, string, nodetask.Type, any, string) (nodetask.Result, error) {
				called = true
				return c.res, nil
			}), nil)
			if err != nil {
				t.Fatal(err)
			}
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			_, err = env.ExecuteActivity(a.ProvisionAndActivate, c.req(t))
			if called != c.wantCalled {
				t.Fatalf("RunTask called = %v, want %v", called, c.wantCalled)
			}
			if fmt.Sprint(tr.calls) != fmt.Sprint(c.wantMarks) {
				t.Fatalf("transitions %v, want %v", tr.calls, c.wantMarks)
			}
			if c.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			app := appError(t, err)
			if app.Type() != c.wantCode || app.NonRetryable() == c.wantRetryable {
				t.Fatalf("error type %q non-retryable %v, want %q retryable %v", app.Type(), app.NonRetryable(), c.wantCode, c.wantRetryable)
			}
		})
	}
}

// machine is an in-test AllocationTransitions over the real state machine.
type machine struct {
	mu    sync.Mutex
	state allocation.State
	calls []string
}

func (m *machine) move(to allocation.State) (allocation.Allocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, string(to))
	if m.state != to {
		if err := allocation.Transition(m.state, to); err != nil {
			return allocation.Allocation{}, err
		}
		m.state = to
	}
	return allocation.Allocation{ID: testAlloc, State: m.state}, nil
}

func (m *machine) set(s allocation.State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = s
}

func (m *machine) MarkProvisioning(context.Context, string) (allocation.Allocation, error) {
	return m.move(allocation.Provisioning)
}
func (m *machine) MarkActive(context.Context, string) (allocation.Allocation, error) {
	return m.move(allocation.Active)
}
func (m *machine) MarkFailed(context.Context, string, string) (allocation.Allocation, error) {
	return m.move(allocation.Failed)
}
func (m *machine) MarkReleased(context.Context, string) (allocation.Allocation, error) {
	return m.move(allocation.Released)
}
func (m *machine) MarkReleaseFailed(context.Context, string, string) (allocation.Allocation, error) {
	return m.move(allocation.ReleaseFailed)
}

// A retried ProvisionAndActivate attempt (the real activity, retried by the
// workflow test environment) asks where the allocation stands first: still
// provisioning → runs the task again; already active (an earlier attempt's
// MarkActive landed, its completion did not) → succeeds without the task;
// moved on → invalid_state_transition, and the workflow compensates.
func TestProvisionAndActivateRetryIsIdempotent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// afterFirst is the allocation's state once the first attempt failed
		// ("" leaves it as the attempt left it).
		afterFirst allocation.State
		wantTasks  []nodetask.Type
		wantCalls  []string
		wantState  allocation.State
		wantFinal  allocation.State
	}{
		{name: "still provisioning", wantState: allocation.Active, wantFinal: allocation.Active,
			wantTasks: []nodetask.Type{nodetask.ProvisionUser, nodetask.ProvisionUser},
			wantCalls: []string{"provisioning", "provisioning", "active"}},
		{name: "already active", afterFirst: allocation.Active, wantState: allocation.Active, wantFinal: allocation.Active,
			wantTasks: []nodetask.Type{nodetask.ProvisionUser},
			wantCalls: []string{"provisioning", "provisioning", "active"}},
		{name: "released meanwhile", afterFirst: allocation.Releasing, wantState: "", wantFinal: allocation.Releasing,
			wantTasks: []nodetask.Type{nodetask.ProvisionUser, nodetask.RevokeUser},
			wantCalls: []string{"provisioning", "provisioning", "active", "failed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := &machine{state: allocation.Requested}
			var mu sync.Mutex
			var tasks []nodetask.Type
			a, err := NewActivities(m, runnerFunc(func(_ context.Context, _ string, typ nodetask.Type, _ any, _ string) (nodetask.Result, error) {
				mu.Lock()
				defer mu.Unlock()
				tasks = append(tasks, typ)
				if len(tasks) == 1 {
					if c.afterFirst != "" {
						m.set(c.afterFirst)
					}
					return nodetask.Result{ErrorCode: "lost"}, nil // retryable
				}
				return nodetask.Result{Succeeded: true}, nil
			}), nil)
			if err != nil {
				t.Fatal(err)
			}
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			RegisterWorkflows(env)
			env.RegisterActivity(a)
			// The durable path on its own (the one-step path is
			// TestOneStepHandsOverToTheDurablePath).
			env.OnGetVersion(changeOneStep, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode,
				AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey, Retry: shortRetry})
			if o := outcome(t, env); o.State != c.wantState {
				t.Fatalf("outcome %+v, want %q", o, c.wantState)
			}
			if fmt.Sprint(tasks) != fmt.Sprint(c.wantTasks) {
				t.Fatalf("node tasks %v, want %v", tasks, c.wantTasks)
			}
			if fmt.Sprint(m.calls) != fmt.Sprint(c.wantCalls) || m.state != c.wantFinal {
				t.Fatalf("transitions %v ending %s, want %v ending %s", m.calls, m.state, c.wantCalls, c.wantFinal)
			}
		})
	}
}
