package workers

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/ports"
)

type recordingEngine struct{ inputs []any }

func (r *recordingEngine) Start(_ context.Context, _, _ string, input any) error {
	r.inputs = append(r.inputs, input)
	return nil
}

func (r *recordingEngine) Signal(context.Context, string, string, any) error { return nil }

func message(t *testing.T, typ string, payload any) ports.Message {
	t.Helper()
	b, _ := json.Marshal(payload)
	return ports.Message{Envelope: event.Envelope{ID: "e1", Type: typ, TenantID: "t1", ProjectID: "p1", Payload: b},
		Ack: func() error { return nil }, Nak: func(time.Duration) error { return nil }}
}

// TestConsumerCarriesTheStorageSync: with storage, the requested event's
// folder and the envelope's project reach the provisioning workflow, and
// releases push; without storage, neither.
func TestConsumerCarriesTheStorageSync(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, withStorage := range []bool{true, false} {
		eng := &recordingEngine{}
		c, err := NewProvisioningConsumer(ProvisioningConfig{StorageSync: withStorage}, eng, log)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		c.HandleRequested(ctx, message(t, event.AllocationRequested, allocationsvc.RequestedPayload{AllocationID: "a1",
			NodeID: "n1", StorageSync: "/datasets"}))
		c.HandleRelease(ctx, message(t, event.AllocationReleaseReq, allocationsvc.StatePayload{AllocationID: "a1", NodeID: "n1"}))
		if len(eng.inputs) != 2 {
			t.Fatalf("starts %d", len(eng.inputs))
		}
		in := eng.inputs[0].(temporal.ProvisionInput)
		rel := eng.inputs[1].(temporal.ReleaseInput)
		if withStorage {
			if in.StorageSync == nil || *in.StorageSync != (temporal.StorageSyncSpec{TenantID: "t1", ProjectID: "p1", Path: "/datasets"}) || !rel.StorageSync {
				t.Fatalf("with storage: %+v %+v", in.StorageSync, rel)
			}
		} else if in.StorageSync != nil || rel.StorageSync {
			t.Fatalf("without storage: %+v %+v", in.StorageSync, rel)
		}
	}
}
