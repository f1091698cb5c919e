package agentsvc_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/ports"
)

// pollTasks is a task queue whose waits end at once, woken or not, and
// which counts leases.
type pollTasks struct {
	ports.TaskQueue
	mu     sync.Mutex
	leases int
	queued []nodetask.Task // handed to the next lease
	onWait func()          // runs in each wait (queue a task, say)
}

func (q *pollTasks) Lease(context.Context, string, int, time.Time) ([]nodetask.Task, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.leases++
	out := q.queued
	q.queued = nil
	return out, nil
}

func (q *pollTasks) WaitForTasks(_ context.Context, _ string, timeout time.Duration) error {
	if q.onWait != nil {
		q.onWait()
		return nil
	}
	time.Sleep(timeout)
	return nil
}

// An idle poll leases once, waits, and answers empty when the wait runs out
// — not a second lease per idle poll of every agent; a poll woken within
// its wait leases again and answers the task.
func TestPollLeasesOncePerIdleWait(t *testing.T) {
	t.Parallel()
	newSvc := func(q *pollTasks) *agentsvc.Service {
		t.Helper()
		signer, err := keyfile.NewSigner(keyfile.SignerConfig{Path: filepath.Join(t.TempDir(), "task.key")})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := agentsvc.New(agentsvc.Config{RootsPEM: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")},
			agentsvc.Deps{Tx: passTx{}, Tokens: unusedTokens{}, CA: unusedCA{}, Certs: unusedCerts{},
				Nodes: struct{ ports.NodeStore }{}, Tasks: q, Signer: signer, Audit: struct{ ports.AuditLog }{},
				Clock: system.Clock{}, IDs: system.UUIDs{}})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	idle := &pollTasks{}
	if tasks, err := newSvc(idle).PollTasks(context.Background(), "node", 1, 20*time.Millisecond); err != nil || len(tasks) != 0 {
		t.Fatalf("idle poll: %v, %v", tasks, err)
	}
	if idle.leases != 1 {
		t.Fatalf("an idle poll leased %d times, want once", idle.leases)
	}

	woken := &pollTasks{}
	woken.onWait = func() {
		woken.mu.Lock()
		woken.queued = []nodetask.Task{{AllocationID: "t1"}}
		woken.mu.Unlock()
	}
	tasks, err := newSvc(woken).PollTasks(context.Background(), "node", 1, time.Minute)
	if err != nil || len(tasks) != 1 || tasks[0].AllocationID != "t1" || woken.leases != 2 {
		t.Fatalf("woken poll: %v, %v after %d leases; want t1 after 2", tasks, err, woken.leases)
	}
}
