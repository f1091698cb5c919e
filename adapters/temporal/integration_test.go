package temporal_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/adapters/temporal/temporaltest"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// allocations is an in-test AllocationTransitions: the real state machine
// (core/allocation) over a map, recording every call.
type allocations struct {
	mu     sync.Mutex
	states map[string]allocation.State
	codes  map[string]string
	calls  map[string][]string
}

func newAllocations() *allocations {
	return &allocations{states: map[string]allocation.State{}, codes: map[string]string{}, calls: map[string][]string{}}
}

func (a *allocations) put(id string, s allocation.State) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.states[id] = s
}

func (a *allocations) get(id string) (allocation.State, string, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.states[id], a.codes[id], append([]string(nil), a.calls[id]...)
}

func (a *allocations) move(id string, to allocation.State, code string) (allocation.Allocation, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls[id] = append(a.calls[id], string(to))
	from, ok := a.states[id]
	if !ok {
		return allocation.Allocation{}, fault.NotFound("allocation", id)
	}
	if from != to {
		if err := allocation.Transition(from, to); err != nil {
			return allocation.Allocation{}, err
		}
		a.states[id], a.codes[id] = to, code
	}
	return allocation.Allocation{ID: id, State: a.states[id], FailureCode: a.codes[id]}, nil
}

func (a *allocations) MarkProvisioning(_ context.Context, id string) (allocation.Allocation, error) {
	return a.move(id, allocation.Provisioning, "")
}
func (a *allocations) MarkActive(_ context.Context, id string) (allocation.Allocation, error) {
	return a.move(id, allocation.Active, "")
}
func (a *allocations) MarkFailed(_ context.Context, id, code string) (allocation.Allocation, error) {
	return a.move(id, allocation.Failed, code)
}
func (a *allocations) MarkReleased(_ context.Context, id string) (allocation.Allocation, error) {
	return a.move(id, allocation.Released, "")
}
func (a *allocations) MarkReleaseFailed(_ context.Context, id, code string) (allocation.Allocation, error) {
	return a.move(id, allocation.ReleaseFailed, code)
}

// node is an in-test TaskRunner: it records the tasks it gets, fails the
// types listed in fail, and blocks tasks of allocations in hold until
// released.
type node struct {
	mu    sync.Mutex
	tasks map[string][]nodetask.Type // by allocation
	fail  map[nodetask.Type]bool
	hold  map[string]chan struct{}
}

func newNode() *node {
	return &node{tasks: map[string][]nodetask.Type{}, fail: map[nodetask.Type]bool{}, hold: map[string]chan struct{}{}}
}

func (n *node) RunTask(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Result, error) {
	n.mu.Lock()
	n.tasks[allocationID] = append(n.tasks[allocationID], typ)
	failing, hold := n.fail[typ] && !strings.HasSuffix(nodeID, "-ok"), n.hold[allocationID]
	n.mu.Unlock()
	switch p := params.(type) {
	case nodetask.ProvisionUserParams:
		if p.AllocationID != allocationID || len(p.AuthorizedKeys) == 0 {
			return nodetask.Result{}, errors.New("bad provision params")
		}
	case nodetask.RevokeUserParams:
		if p.AllocationID != allocationID {
			return nodetask.Result{}, errors.New("bad revoke params")
		}
	default:
		return nodetask.Result{}, errors.New("unexpected params type")
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nodetask.Result{}, ctx.Err()
		}
	}
	if failing {
		return nodetask.Result{TaskID: "t", ErrorCode: "useradd_failed", ErrorMessage: "exit status 1"}, nil
	}
	return nodetask.Result{TaskID: "t", Succeeded: true}, nil
}

func (n *node) seen(allocationID string) []nodetask.Type {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]nodetask.Type(nil), n.tasks[allocationID]...)
}

func publicKey(t testing.TB) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// fast keeps the real retry machinery but with short intervals.
var fast = temporal.Retry{MaxAttempts: 2, InitialInterval: 100 * time.Millisecond, MaxInterval: 200 * time.Millisecond,
	TaskTimeout: 20 * time.Second, HeartbeatTimeout: 5 * time.Second, MarkTimeout: 20 * time.Second}

type harness struct {
	client *temporal.Client
	allocs *allocations
	node   *node
}

func startHarness(t *testing.T) *harness {
	t.Helper()
	srv := temporaltest.DevServer(t)
	c, err := temporal.New(temporal.Config{HostPort: srv.HostPort(), TaskQueue: "it-" + services.RandomSuffix(4)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := &harness{client: c, allocs: newAllocations(), node: newNode()}
	acts, err := temporal.NewActivities(h.allocs, h.node, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := temporal.NewWorker(c, acts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return h
}

// result waits for the workflow's outcome.
func (h *harness) result(t *testing.T, id string) temporal.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var o temporal.Outcome
	if err := h.client.SDK().GetWorkflow(ctx, id, "").Get(ctx, &o); err != nil {
		t.Fatalf("workflow %s: %v", id, err)
	}
	return o
}

// record exports the workflow's history into testdata when
// GPUAAS_RECORD_TEMPORAL_HISTORIES=1, for the replay test.
func (h *harness) record(t *testing.T, id, name string) {
	t.Helper()
	if os.Getenv("GPUAAS_RECORD_TEMPORAL_HISTORIES") != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it := h.client.SDK().GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, ev)
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name+".json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s", name)
}

func TestDevServerIntegration(t *testing.T) {
	h := startHarness(t)
	ctx := context.Background()
	key, caKey := publicKey(t), publicKey(t)

	t.Run("health", func(t *testing.T) {
		if err := h.client.Check(ctx); err != nil {
			t.Fatalf("health: %v", err)
		}
		if h.client.Name() != "temporal" {
			t.Fatal(h.client.Name())
		}
	})

	t.Run("provision succeeds", func(t *testing.T) {
		id := "alloc-ok-" + services.RandomSuffix(4)
		h.allocs.put(id, allocation.Requested)
		wid := temporal.ProvisionWorkflowID(id)
		if err := h.client.Start(ctx, temporal.ProvisionWorkflow, wid, temporal.ProvisionInput{
			AllocationID: id, NodeID: "node-1", AuthorizedKeys: []string{key}, UserCAKey: caKey, Retry: fast,
		}); err != nil {
			t.Fatal(err)
		}
		if o := h.result(t, wid); o.State != allocation.Active {
			t.Fatalf("outcome %+v", o)
		}
		state, _, calls := h.allocs.get(id)
		if state != allocation.Active || strings.Join(calls, ",") != "provisioning,active" {
			t.Fatalf("state %s calls %v", state, calls)
		}
		if got := h.node.seen(id); len(got) != 1 || got[0] != nodetask.ProvisionUser {
			t.Fatalf("node tasks %v", got)
		}
		h.record(t, wid, "provision_success")

		// A redelivered event starts the same id again: nothing runs.
		if err := h.client.Start(ctx, temporal.ProvisionWorkflow, wid, temporal.ProvisionInput{
			AllocationID: id, NodeID: "node-1", AuthorizedKeys: []string{key}, UserCAKey: caKey, Retry: fast,
		}); err != nil {
			t.Fatalf("duplicate start after completion: %v", err)
		}
		if o := h.result(t, wid); o.State != allocation.Active {
			t.Fatalf("outcome after duplicate %+v", o)
		}
		if got := h.node.seen(id); len(got) != 1 {
			t.Fatalf("duplicate start ran the workflow again: %v", got)
		}
	})

	t.Run("duplicate start while running attaches", func(t *testing.T) {
		id := "alloc-dup-" + services.RandomSuffix(4)
		h.allocs.put(id, allocation.Requested)
		hold := make(chan struct{})
		h.node.mu.Lock()
		h.node.hold[id] = hold
		h.node.mu.Unlock()
		wid := temporal.ProvisionWorkflowID(id)
		in := temporal.ProvisionInput{AllocationID: id, NodeID: "node-1", AuthorizedKeys: []string{key}, UserCAKey: caKey, Retry: fast}
		if err := h.client.Start(ctx, temporal.ProvisionWorkflow, wid, in); err != nil {
			t.Fatal(err)
		}
		firstRun := h.client.SDK().GetWorkflow(ctx, wid, "").GetRunID()
		if err := h.client.Start(ctx, temporal.ProvisionWorkflow, wid, in); err != nil {
			t.Fatalf("duplicate start while running: %v", err)
		}
		close(hold)
		if o := h.result(t, wid); o.State != allocation.Active {
			t.Fatalf("outcome %+v", o)
		}
		if run := h.client.SDK().GetWorkflow(ctx, wid, "").GetRunID(); run != firstRun {
			t.Fatalf("a second run %s was started (first %s)", run, firstRun)
		}
		if got := h.node.seen(id); len(got) != 1 {
			t.Fatalf("node tasks %v", got)
		}
	})

	t.Run("provision fails after retries and compensates", func(t *testing.T) {
		id := "alloc-bad-" + services.RandomSuffix(4)
		h.allocs.put(id, allocation.Requested)
		h.node.mu.Lock()
		h.node.fail[nodetask.ProvisionUser] = true
		h.node.mu.Unlock()
		wid := temporal.ProvisionWorkflowID(id)
		if err := h.client.Start(ctx, temporal.ProvisionWorkflow, wid, temporal.ProvisionInput{
			AllocationID: id, NodeID: "node-2", AuthorizedKeys: []string{key}, UserCAKey: caKey, Retry: fast,
		}); err != nil {
			t.Fatal(err)
		}
		o := h.result(t, wid)
		if o.State != allocation.Failed || o.FailureCode != temporal.CodeNodeTaskFailed {
			t.Fatalf("outcome %+v", o)
		}
		state, code, _ := h.allocs.get(id)
		if state != allocation.Failed || code != temporal.CodeNodeTaskFailed {
			t.Fatalf("allocation %s %s", state, code)
		}
		got := h.node.seen(id)
		want := []nodetask.Type{nodetask.ProvisionUser, nodetask.ProvisionUser, nodetask.RevokeUser}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("node tasks %v, want %v", got, want)
		}
		h.record(t, wid, "provision_failed")
	})

	t.Run("release succeeds", func(t *testing.T) {
		id := "alloc-rel-" + services.RandomSuffix(4)
		h.allocs.put(id, allocation.Releasing)
		wid := temporal.ReleaseWorkflowID(id, "evt-1")
		if err := h.client.Start(ctx, temporal.ReleaseWorkflow, wid, temporal.ReleaseInput{AllocationID: id, NodeID: "node-1", Retry: fast}); err != nil {
			t.Fatal(err)
		}
		if o := h.result(t, wid); o.State != allocation.Released {
			t.Fatalf("outcome %+v", o)
		}
		if state, _, _ := h.allocs.get(id); state != allocation.Released {
			t.Fatalf("state %s", state)
		}
		h.record(t, wid, "release_success")
	})

	t.Run("release exhausting retries marks release_failed, a retry releases", func(t *testing.T) {
		id := "alloc-relbad-" + services.RandomSuffix(4)
		h.allocs.put(id, allocation.Releasing)
		h.node.mu.Lock()
		h.node.fail[nodetask.RevokeUser] = true
		h.node.mu.Unlock()
		wid := temporal.ReleaseWorkflowID(id, "evt-1")
		if err := h.client.Start(ctx, temporal.ReleaseWorkflow, wid, temporal.ReleaseInput{AllocationID: id, NodeID: "node-3", Retry: fast}); err != nil {
			t.Fatal(err)
		}
		if o := h.result(t, wid); o.State != allocation.ReleaseFailed || o.FailureCode != temporal.CodeNodeTaskFailed {
			t.Fatalf("outcome %+v", o)
		}
		if state, code, _ := h.allocs.get(id); state != allocation.ReleaseFailed || code != temporal.CodeNodeTaskFailed {
			t.Fatalf("allocation %s %s", state, code)
		}
		if got := h.node.seen(id); len(got) != 2 {
			t.Fatalf("revoke attempts %v, want 2", got)
		}
		h.record(t, wid, "release_failed")

		// Operator retry: release_failed → releasing writes a new event,
		// hence a new workflow id; the node is healthy now.
		if _, err := h.allocs.move(id, allocation.Releasing, ""); err != nil {
			t.Fatal(err)
		}
		retry := temporal.ReleaseWorkflowID(id, "evt-2")
		if err := h.client.Start(ctx, temporal.ReleaseWorkflow, retry, temporal.ReleaseInput{AllocationID: id, NodeID: "node-3-ok", Retry: fast}); err != nil {
			t.Fatal(err)
		}
		if o := h.result(t, retry); o.State != allocation.Released {
			t.Fatalf("retry outcome %+v", o)
		}
	})

	t.Run("signal to an unknown workflow is not found", func(t *testing.T) {
		err := h.client.Signal(ctx, "no-such-workflow-"+services.RandomSuffix(4), "x", nil)
		if !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("signal: %v", err)
		}
	})
}

func TestClientUnreachable(t *testing.T) {
	t.Parallel()
	// A port nothing listens on.
	c, err := temporal.New(temporal.Config{HostPort: "127.0.0.1:1", RPCTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Check(context.Background()); !fault.IsKind(err, fault.KindUnavailable) {
		t.Fatalf("health against nothing: %v", err)
	}
	if err := c.Start(context.Background(), temporal.ProvisionWorkflow, "provision-x", temporal.ProvisionInput{}); !fault.IsKind(err, fault.KindUnavailable) {
		t.Fatalf("start against nothing: %v", err)
	}
}
