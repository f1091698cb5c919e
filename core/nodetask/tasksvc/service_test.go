package tasksvc_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/nodetask/tasksvc"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func setup(t *testing.T, cfg tasksvc.Config, clock *fakes.Clock) (*tasksvc.Service, *postgres.TaskStore, *keyfile.Signer, string) {
	t.Helper()
	db := services.Postgres(t)
	store, err := postgres.NewTaskStore(db, postgres.TaskStoreConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer := keyfile.NewSignerFromKey(priv)
	svc, err := tasksvc.New(cfg, tasksvc.Deps{Tasks: store, Signer: signer, Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	nodeID := system.UUIDs{}.NewID()
	if err := postgres.NewNodeStore(db).CreateNode(context.Background(), inventory.Node{ID: nodeID, Name: "n-" + nodeID,
		SKUID: "h100-80g-x1", State: inventory.NodeActive, SSHHost: "127.0.0.1", SSHPort: 22}); err != nil {
		t.Fatal(err)
	}
	return svc, store, signer, nodeID
}

// TestRunTask: RunTask returns the agent's result as soon as it is
// reported; the envelope it queued is signed by the signer.
func TestRunTask(t *testing.T) {
	t.Parallel()
	clock := fakes.NewClock(time.Now())
	svc, store, signer, nodeID := setup(t, tasksvc.Config{}, clock)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	agentDone := make(chan error, 1)
	go func() {
		// A minimal agent: wait for work, verify, report.
		for ctx.Err() == nil {
			tasks, err := store.Lease(ctx, nodeID, 1, clock.Now().Add(time.Minute))
			if err != nil {
				agentDone <- err
				return
			}
			if len(tasks) == 0 {
				_ = store.WaitForTasks(ctx, nodeID, 5*time.Second)
				continue
			}
			e := tasks[0].Envelope
			if !ed25519.Verify(signer.Public().(ed25519.PublicKey), e.SigningBytes(), e.Signature) || e.KeyID != signer.KeyID() {
				agentDone <- fault.Invalid("signature", "does not verify")
				return
			}
			agentDone <- store.Complete(ctx, nodeID, nodetask.Result{TaskID: e.TaskID, Succeeded: true,
				Output: json.RawMessage(`{"ok":true}`)})
			return
		}
	}()
	res, err := svc.RunTask(ctx, nodeID, nodetask.HealthCheck, nodetask.HealthCheckParams{}, "")
	if err != nil || !res.Succeeded || string(res.Output) != `{"ok": true}` {
		t.Fatalf("RunTask = %+v, %v", res, err)
	}
	if err := <-agentDone; err != nil {
		t.Fatal(err)
	}
}

// TestWaitReportsExpiry: nobody runs the task; once the clock passes its
// expiry Wait marks it expired and returns that outcome.
func TestWaitReportsExpiry(t *testing.T) {
	t.Parallel()
	clock := fakes.NewClock(time.Now())
	svc, _, _, nodeID := setup(t, tasksvc.Config{TTL: time.Minute, WaitSlice: 50 * time.Millisecond}, clock)
	task, err := svc.Enqueue(context.Background(), nodeID, nodetask.HealthCheck, nodetask.HealthCheckParams{}, "")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := svc.Wait(ctx, task.TaskID)
	if err != nil || res.Succeeded || res.ErrorCode != "expired" {
		t.Fatalf("Wait = %+v, %v", res, err)
	}
}

func TestEnqueueRefusals(t *testing.T) {
	t.Parallel()
	clock := fakes.NewClock(time.Now())
	svc, _, _, nodeID := setup(t, tasksvc.Config{}, clock)
	ctx := context.Background()
	cases := []struct {
		name   string
		typ    nodetask.Type
		params any
		kind   fault.Kind
	}{
		{"unknown type", "node.reboot", json.RawMessage(`{}`), fault.KindInvalid},
		{"bad username", nodetask.RevokeUser, nodetask.RevokeUserParams{AllocationID: "a", Username: "root"}, fault.KindInvalid},
		{"unknown field", nodetask.HealthCheck, json.RawMessage(`{"cmd":"x"}`), fault.KindInvalid},
		{"not JSON", nodetask.HealthCheck, json.RawMessage(`{`), fault.KindInvalid},
		{"unknown node", nodetask.HealthCheck, nodetask.HealthCheckParams{}, fault.KindNotFound},
	}
	for _, tc := range cases {
		node := nodeID
		if tc.kind == fault.KindNotFound {
			node = system.UUIDs{}.NewID()
		}
		if _, err := svc.Enqueue(ctx, node, tc.typ, tc.params, ""); !fault.IsKind(err, tc.kind) {
			t.Errorf("%s: err = %v, want kind %v", tc.name, err, tc.kind)
		}
	}
}

type rsaLikeSigner struct{ *keyfile.Signer }

func (rsaLikeSigner) Public() crypto.PublicKey { return "not ed25519" }

func TestNewRefusesNonEd25519Signer(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s := rsaLikeSigner{keyfile.NewSignerFromKey(priv)}
	if _, err := tasksvc.New(tasksvc.Config{}, tasksvc.Deps{Tasks: &postgres.TaskStore{}, Signer: s,
		Clock: system.Clock{}, IDs: system.UUIDs{}}); err == nil {
		t.Fatal("a non-Ed25519 signer was accepted")
	}
}
