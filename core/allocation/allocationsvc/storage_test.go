package allocationsvc_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
)

// TestCreateCarriesTheStorageSync: a storage_sync folder travels, canonical,
// in the requested event; an odd one is refused before anything is made.
func TestCreateCarriesTheStorageSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.addNodes("h100-80g-x1", 1)
	m := e.newMember(10_000)
	e.addKey(m)
	_, err := e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1", StorageSync: "/a/../../etc"})
	wantFault(t, err, fault.KindInvalid, storage.CodePathTraversal)
	a, err := e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1", StorageSync: "datasets/train/"})
	if err != nil {
		t.Fatal(err)
	}
	evs := e.events(a.ID)
	if len(evs) != 1 || evs[0].Type != event.AllocationRequested {
		t.Fatalf("events %+v", evs)
	}
	var p allocationsvc.RequestedPayload
	if err := json.Unmarshal(evs[0].Payload, &p); err != nil || p.StorageSync != "/datasets/train" {
		t.Fatalf("payload %s: %v", evs[0].Payload, err)
	}
}
