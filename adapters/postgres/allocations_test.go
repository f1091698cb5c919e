package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/ports"
)

func newAlloc(o owner, sku string) allocation.Allocation {
	return allocation.Allocation{ID: newUUID(), TenantID: o.TenantID, ProjectID: o.ProjectID, UserID: o.UserID,
		SKUID: sku, PriceMinor: 299, Currency: "usd"}
}

// TestPlacementRace: 20 concurrent placements for 5 free nodes, each in its
// own transaction → exactly 5 succeed on 5 distinct nodes and 15 get
// no_capacity; nodes that are not active are never picked.
func TestPlacementRace(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	o := seedOwner(t, db)
	const sku = "h100-80g-x1"
	free := map[string]bool{}
	for i := 0; i < 5; i++ {
		free[seedNode(t, db, sku, inventory.NodeActive)] = true
	}
	seedNode(t, db, sku, inventory.NodeOffline)
	seedNode(t, db, sku, inventory.NodeMaintenance)
	seedNode(t, db, "a100-80g-x8", inventory.NodeActive) // another SKU
	store := postgres.NewAllocationStore(db)

	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	var noCap, other atomic.Int32
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a allocation.Allocation
			err := db.InTx(ctx, func(ctx context.Context) error {
				var err error
				a, err = store.CreatePlaced(ctx, newAlloc(o, sku))
				return err
			})
			switch {
			case err == nil:
				mu.Lock()
				got[a.NodeID]++
				mu.Unlock()
			case fault.From(err).Code == "no_capacity":
				noCap.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	if len(got) != 5 || noCap.Load() != 15 {
		t.Fatalf("placed on %v, %d no_capacity; want 5 distinct nodes and 15 refusals", got, noCap.Load())
	}
	for n, c := range got {
		if !free[n] || c != 1 {
			t.Fatalf("node %s got %d allocations (free: %v)", n, c, free[n])
		}
	}
	var dup int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT node_id FROM allocations
		WHERE state IN ('requested','provisioning','active','releasing','release_failed')
		GROUP BY node_id HAVING count(*) > 1) d`).Scan(&dup); err != nil || dup != 0 {
		t.Fatalf("double-booked nodes: %d %v", dup, err)
	}
}

func TestAllocationStoreRoundTrip(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	o, other := seedOwner(t, db), seedOwner(t, db)
	store := postgres.NewAllocationStore(db)
	node := seedNode(t, db, "h100-80g-x8", inventory.NodeActive)

	a, err := store.CreatePlaced(ctx, newAlloc(o, "h100-80g-x8"))
	if err != nil {
		t.Fatal(err)
	}
	if a.NodeID != node || a.State != allocation.Requested || a.PriceMinor != 299 || a.CreatedAt.IsZero() {
		t.Fatalf("created %+v", a)
	}
	var sshUser string
	var gpus int
	if err := db.Pool.QueryRow(ctx, `SELECT ssh_user, gpu_count FROM allocations WHERE id = $1`, a.ID).Scan(&sshUser, &gpus); err != nil ||
		sshUser != nodetask.UsernameFor(a.ID) || gpus != 8 {
		t.Fatalf("ssh_user %q gpu_count %d err %v", sshUser, gpus, err)
	}
	// The node is held: the next placement finds none.
	_, err = store.CreatePlaced(ctx, newAlloc(o, "h100-80g-x8"))
	wantCode(t, err, fault.KindConflict, "no_capacity")

	// Tenant scoping: another tenant's id reads as not found; admins ("") see it.
	if _, err := store.Get(ctx, other.TenantID, a.ID); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("cross-tenant get: %v", err)
	}
	if g, err := store.Get(ctx, "", a.ID); err != nil || g.ID != a.ID {
		t.Fatalf("admin get: %v", err)
	}
	if _, err := store.Get(ctx, o.TenantID, "nope"); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("bad id: %v", err)
	}

	// Counts per scope, and a state filter.
	c, err := store.CountLive(ctx, o.TenantID, o.ProjectID, o.UserID)
	if err != nil || c != (ports.LiveCounts{User: 1, Project: 1, Tenant: 1}) {
		t.Fatalf("counts %+v %v", c, err)
	}
	if c, _ := store.CountLive(ctx, o.TenantID, newUUID(), newUUID()); c != (ports.LiveCounts{Tenant: 1}) {
		t.Fatalf("counts for another user/project %+v", c)
	}
	list, _, err := store.List(ctx, ports.AllocationFilter{TenantID: o.TenantID, NodeID: node, States: []allocation.State{allocation.Requested}})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if list, _, _ := store.List(ctx, ports.AllocationFilter{TenantID: other.TenantID}); len(list) != 0 {
		t.Fatalf("other tenant lists %v", list)
	}

	// Update under lock; the state leaves the live set and frees the node.
	up, err := store.Update(ctx, a.ID, func(a *allocation.Allocation) error {
		if err := allocation.Transition(a.State, allocation.Failed); err != nil {
			return err
		}
		a.State, a.FailureCode = allocation.Failed, "agent_unreachable"
		return nil
	})
	if err != nil || up.State != allocation.Failed || up.FailureCode != "agent_unreachable" || !up.UpdatedAt.After(a.UpdatedAt) {
		t.Fatalf("update: %+v %v", up, err)
	}
	if _, err := store.CreatePlaced(ctx, newAlloc(o, "h100-80g-x8")); err != nil {
		t.Fatalf("node not freed by a failed allocation: %v", err)
	}
}

func TestAllocationListPages(t *testing.T) {
	t.Parallel()
	db := openDB(t, "UTC")
	ctx := context.Background()
	o := seedOwner(t, db)
	store := postgres.NewAllocationStore(db)
	for i := 0; i < 5; i++ {
		seedNode(t, db, "l40s-48g-x4", inventory.NodeActive)
		if _, err := store.CreatePlaced(ctx, newAlloc(o, "l40s-48g-x4")); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	cursor := ""
	pages := 0
	for {
		page, next, err := store.List(ctx, ports.AllocationFilter{ProjectID: o.ProjectID, Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range page {
			if seen[a.ID] {
				t.Fatalf("%s on two pages", a.ID)
			}
			seen[a.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 5 || pages != 3 {
		t.Fatalf("%d allocations over %d pages; want 5 over 3", len(seen), pages)
	}
	if _, _, err := store.List(ctx, ports.AllocationFilter{Cursor: "garbage"}); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}
}
