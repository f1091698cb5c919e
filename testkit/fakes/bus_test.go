package fakes_test

import (
	"context"
	"testing"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/contract"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

func TestBusContract(t *testing.T) {
	t.Parallel()
	contract.RunBusSuite(t, func(t *testing.T) (ports.Publisher, ports.Subscriber) {
		b := fakes.NewBus()
		return b, b
	})
}

func TestBusUnknownConsumer(t *testing.T) {
	t.Parallel()
	b := fakes.NewBus()
	for _, tc := range []struct{ stream, durable string }{
		{"NOPE", "notification-worker"},
		{"NOTIFICATION", "nope"},
	} {
		err := b.Consume(context.Background(), tc.stream, tc.durable, func(context.Context, ports.Message) {})
		if !fault.IsKind(err, fault.KindNotFound) {
			t.Errorf("Consume(%s, %s) = %v; want NotFound", tc.stream, tc.durable, err)
		}
	}
}

// A message left unsettled when its consumer stops goes to the next one;
// consumer filters pick subjects within the stream.
func TestBusUnsettledAndFilters(t *testing.T) {
	t.Parallel()
	b := fakes.NewBus()
	ctx := context.Background()
	req := event.Envelope{ID: "1", Type: event.AllocationRequested}
	act := event.Envelope{ID: "2", Type: event.AllocationActive}
	if errs := b.PublishBatch(ctx, fakes.Encode(t, req, act)); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	got := func(durable string, ack bool) []string {
		cctx, cancel := context.WithCancel(ctx)
		var ids []string
		want := 1
		if durable == "billing-usage" {
			want = 2
		}
		err := b.Consume(cctx, "PROVISIONING", durable, func(_ context.Context, m ports.Message) {
			ids = append(ids, m.Envelope.ID)
			if ack {
				_ = m.Ack()
			}
			if len(ids) == want {
				cancel()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if ids := got("provisioning-worker-requested", false); len(ids) != 1 || ids[0] != "1" {
		t.Fatalf("filtered consumer got %v; want [1]", ids)
	}
	if ids := got("provisioning-worker-requested", true); len(ids) != 1 || ids[0] != "1" {
		t.Fatalf("unsettled message not redelivered: %v", ids)
	}
	if ids := got("billing-usage", true); len(ids) != 2 {
		t.Fatalf("wildcard consumer got %v; want both", ids)
	}
	if errs := b.PublishBatch(ctx, fakes.Encode(t, event.Envelope{ID: "3", Type: "nowhere.x"})); !fault.IsKind(errs[0], fault.KindUnavailable) {
		t.Fatalf("publish without a stream = %v", errs[0])
	}
}
