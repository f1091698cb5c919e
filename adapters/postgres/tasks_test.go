package postgres_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

type taskFixture struct {
	db    *postgres.DB
	store *postgres.TaskStore
	clock *fakes.Clock
	priv  ed25519.PrivateKey
}

func newTaskFixture(t *testing.T) *taskFixture {
	t.Helper()
	db := openDB(t, nonUTC)
	clock := fakes.NewClock(time.Now())
	s, err := postgres.NewTaskStore(db, postgres.TaskStoreConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	return &taskFixture{db: db, store: s, clock: clock, priv: priv}
}

func (f *taskFixture) node(t *testing.T) string {
	t.Helper()
	id := system.UUIDs{}.NewID()
	err := postgres.NewNodeStore(f.db).CreateNode(context.Background(), inventory.Node{ID: id, Name: "n-" + id,
		SKUID: "h100-80g-x1", State: inventory.NodeActive, SSHHost: "127.0.0.1", SSHPort: 22})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *taskFixture) sign(e nodetask.Envelope) (nodetask.Envelope, error) {
	e.KeyID = "k1"
	e.Signature = ed25519.Sign(f.priv, e.SigningBytes())
	return e, nil
}

// params whose key order and spacing jsonb would change.
var unsortedParams = json.RawMessage(`{"zeta":1, "alpha":{"b":2,"a":1}}`)

func (f *taskFixture) enqueue(t *testing.T, nodeID string, ttl time.Duration) nodetask.Task {
	t.Helper()
	now := f.clock.Now()
	task, err := f.store.Enqueue(context.Background(), nodetask.Task{Envelope: nodetask.Envelope{
		TaskID: system.UUIDs{}.NewID(), NodeID: nodeID, Type: nodetask.HealthCheck, Params: unsortedParams,
		IssuedAt: now, ExpiresAt: now.Add(ttl)}}, f.sign)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// TestTaskStoreSignedRoundTrip: what Lease hands out verifies against the
// signature made at Enqueue — exact parameter bytes, times at microsecond
// precision in a non-UTC session.
func TestTaskStoreSignedRoundTrip(t *testing.T) {
	t.Parallel()
	f := newTaskFixture(t)
	nodeID := f.node(t)
	enq := f.enqueue(t, nodeID, time.Minute)
	if enq.Seq != 1 {
		t.Fatalf("first seq = %d", enq.Seq)
	}
	got, err := f.store.Lease(context.Background(), nodeID, 10, f.clock.Now().Add(time.Minute))
	if err != nil || len(got) != 1 {
		t.Fatalf("lease: %v, %v", got, err)
	}
	e := got[0].Envelope
	if string(e.Params) != string(unsortedParams) {
		t.Fatalf("params came back as %s", e.Params)
	}
	if !ed25519.Verify(f.priv.Public().(ed25519.PublicKey), e.SigningBytes(), e.Signature) {
		t.Fatal("leased envelope does not verify")
	}
	if got[0].State != nodetask.Leased || got[0].Attempts != 1 {
		t.Fatalf("leased task = %+v", got[0])
	}
}

// TestTaskStoreSequenceUnderConcurrency: 20 concurrent enqueues for one
// node get 20 distinct, gap-free sequence numbers; Lease returns them in order.
func TestTaskStoreSequenceUnderConcurrency(t *testing.T) {
	t.Parallel()
	f := newTaskFixture(t)
	nodeID := f.node(t)
	var wg sync.WaitGroup
	seqs := make([]uint64, 20)
	for i := range seqs {
		wg.Add(1)
		go func() { defer wg.Done(); seqs[i] = f.enqueue(t, nodeID, time.Minute).Seq }()
	}
	wg.Wait()
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs = %v, want 1..20", seqs)
		}
	}
	got, err := f.store.Lease(context.Background(), nodeID, 32, f.clock.Now().Add(time.Minute))
	if err != nil || len(got) != 20 {
		t.Fatalf("lease: %d, %v", len(got), err)
	}
	for i, task := range got {
		if task.Seq != uint64(i+1) {
			t.Fatalf("lease order: position %d has seq %d", i, task.Seq)
		}
	}
}

// TestTaskStoreLeaseCompleteExpire covers lease expiry, completion rules
// and expiry of overdue tasks.
func TestTaskStoreLeaseCompleteExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newTaskFixture(t)
	nodeID, other := f.node(t), f.node(t)
	a := f.enqueue(t, nodeID, 10*time.Minute)

	if got, _ := f.store.Lease(ctx, nodeID, 5, f.clock.Now().Add(time.Minute)); len(got) != 1 {
		t.Fatalf("first lease got %d", len(got))
	}
	if got, _ := f.store.Lease(ctx, nodeID, 5, f.clock.Now().Add(time.Minute)); len(got) != 0 {
		t.Fatalf("a leased task was handed out again before its lease ran out")
	}
	f.clock.Advance(2 * time.Minute)
	got, _ := f.store.Lease(ctx, nodeID, 5, f.clock.Now().Add(time.Minute))
	if len(got) != 1 || got[0].Attempts != 2 {
		t.Fatalf("after lease expiry: %+v", got)
	}

	if err := f.store.Complete(ctx, other, nodetask.Result{TaskID: a.TaskID, Succeeded: true}); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("another node completed the task: %v", err)
	}
	if err := f.store.Complete(ctx, nodeID, nodetask.Result{TaskID: a.TaskID, Succeeded: false, ErrorCode: "execution_failed",
		ErrorMessage: "boom", Output: json.RawMessage(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	err := f.store.Complete(ctx, nodeID, nodetask.Result{TaskID: a.TaskID, Succeeded: true})
	if fe := fault.From(err); fe.Kind != fault.KindConflict || fe.Code != "task_already_done" {
		t.Fatalf("second result: %v", err)
	}
	done, err := f.store.GetTask(ctx, a.TaskID)
	if err != nil || done.State != nodetask.Failed || done.Result == nil || done.Result.ErrorCode != "execution_failed" ||
		string(done.Result.Output) != `{"x": 1}` {
		t.Fatalf("completed task = %+v (result %+v), %v", done, done.Result, err)
	}

	b := f.enqueue(t, nodeID, time.Minute)
	f.clock.Advance(2 * time.Minute)
	if got, _ := f.store.Lease(ctx, nodeID, 5, f.clock.Now().Add(time.Minute)); len(got) != 0 {
		t.Fatal("an expired task was leased")
	}
	n, err := f.store.ExpireOverdue(ctx, f.clock.Now())
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	if bt, _ := f.store.GetTask(ctx, b.TaskID); bt.State != nodetask.Expired || bt.Result == nil || bt.Result.ErrorCode != "expired" {
		t.Fatalf("expired task = %+v", bt)
	}

	if _, err := f.store.Enqueue(ctx, nodetask.Task{Envelope: nodetask.Envelope{TaskID: system.UUIDs{}.NewID(),
		NodeID: system.UUIDs{}.NewID(), Type: nodetask.HealthCheck, Params: json.RawMessage(`{}`)}}, f.sign); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("enqueue for an unknown node: %v", err)
	}
	if _, err := f.store.Enqueue(ctx, nodetask.Task{Envelope: nodetask.Envelope{TaskID: system.UUIDs{}.NewID(),
		NodeID: nodeID, Type: nodetask.HealthCheck, Params: json.RawMessage(`{}`)}},
		func(e nodetask.Envelope) (nodetask.Envelope, error) { e.Seq = 99; return f.sign(e) }); err == nil {
		t.Fatal("a signer that altered the envelope was accepted")
	}
}

// TestTaskStoreWaits: WaitForTasks returns when a task is inserted and
// WaitForDone when one completes, long before their timeouts.
func TestTaskStoreWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newTaskFixture(t)
	nodeID := f.node(t)

	woke := make(chan error, 1)
	start := time.Now()
	go func() { woke <- f.store.WaitForTasks(ctx, nodeID, 30*time.Second) }()
	// Enqueue while the waiter may or may not have subscribed yet: either
	// way it must return promptly (subscribe-then-check closes the gap).
	task := f.enqueue(t, nodeID, time.Minute)
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitForTasks slept through an insert")
	}

	done := make(chan error, 1)
	go func() { done <- f.store.WaitForDone(ctx, task.TaskID, 30*time.Second) }()
	if err := f.store.Complete(ctx, nodeID, nodetask.Result{TaskID: task.TaskID, Succeeded: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitForDone slept through a completion")
	}
	if time.Since(start) > 15*time.Second {
		t.Fatal("waits took too long")
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.store.WaitForTasks(cctx, f.node(t), time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}
