package temporal_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/adapters/temporal/temporaltest"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func noop(workflow.Context) error { return nil }

// BenchmarkWorkflowRoundTrip measures, against the dev server, the floor
// that Temporal puts under request → active: "noop" starts a workflow with
// no activities and waits for its result; "provision" runs
// ProvisionAllocation with in-memory transitions and an instant node (three
// activities), i.e. everything but the database writes and the agent.
func BenchmarkWorkflowRoundTrip(b *testing.B) {
	srv := temporaltest.DevServer(b)
	c, err := temporal.New(temporal.Config{HostPort: srv.HostPort(), TaskQueue: "bench-" + services.RandomSuffix(4)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	allocs, n := newAllocations(), newNode()
	acts, err := temporal.NewActivities(allocs, n, nil)
	if err != nil {
		b.Fatal(err)
	}
	w, err := temporal.NewWorker(c, acts)
	if err != nil {
		b.Fatal(err)
	}
	w.RegisterWorkflowWithOptions(noop, workflow.RegisterOptions{Name: "noop"})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	key, caKey := publicKey(b), publicKey(b)
	prefix := services.RandomSuffix(4)

	b.Run("noop", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			run, err := c.SDK().ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: "noop-" + prefix + "-" + strconv.Itoa(i), TaskQueue: c.Config().TaskQueue,
			}, "noop")
			if err != nil {
				b.Fatal(err)
			}
			if err := run.Get(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("provision", func(b *testing.B) {
		retry := temporal.Retry{TaskTimeout: 30 * time.Second}
		for i := 0; i < b.N; i++ {
			id := "bench-" + prefix + "-" + strconv.Itoa(i)
			allocs.put(id, allocation.Requested)
			wid := temporal.ProvisionWorkflowID(id)
			if err := c.Start(ctx, temporal.ProvisionWorkflow, wid, temporal.ProvisionInput{
				AllocationID: id, NodeID: "node-1", AuthorizedKeys: []string{key}, UserCAKey: caKey, Retry: retry,
			}); err != nil {
				b.Fatal(err)
			}
			var o temporal.Outcome
			if err := c.SDK().GetWorkflow(ctx, wid, "").Get(ctx, &o); err != nil || o.State != allocation.Active {
				b.Fatalf("outcome %+v: %v", o, err)
			}
		}
	})
}
