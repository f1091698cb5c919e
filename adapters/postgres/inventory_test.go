package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// owner is a tenant with one project and one member, for compute tests.
type owner struct{ TenantID, ProjectID, UserID string }

func seedOwner(t *testing.T, db *postgres.DB) owner {
	t.Helper()
	ctx := context.Background()
	o := owner{TenantID: newUUID(), ProjectID: newUUID(), UserID: newUUID()}
	sfx := services.RandomSuffix(4)
	if err := postgres.NewTenantStore(db).CreateTenant(ctx, identity.Tenant{ID: o.TenantID, Name: "t", Slug: "t-" + sfx}); err != nil {
		t.Fatal(err)
	}
	if err := postgres.NewProjectStore(db).CreateProject(ctx, identity.Project{ID: o.ProjectID, TenantID: o.TenantID, Name: "p"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := postgres.NewUserStore(db).UpsertByIdentity(ctx, identity.User{ID: o.UserID, Issuer: "https://iss", Subject: "s-" + sfx,
		Email: sfx + "@example.com"}); err != nil {
		t.Fatal(err)
	}
	return o
}

// seedNode registers a node of the SKU in the given state.
func seedNode(t *testing.T, db *postgres.DB, sku string, state inventory.NodeState) string {
	t.Helper()
	id := newUUID()
	n := inventory.Node{ID: id, Name: "node-" + id, SKUID: sku, State: state, SSHHost: "10.0.0.1", SSHPort: 22}
	if state == inventory.NodeActive {
		now := time.Now()
		n.LastHeartbeatAt = &now
	}
	if err := postgres.NewNodeStore(db).CreateNode(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	return id
}

func wantCode(t *testing.T, err error, kind fault.Kind, code fault.Code) {
	t.Helper()
	fe := fault.From(err)
	if err == nil || fe.Kind != kind || (code != "" && fe.Code != code) {
		t.Fatalf("error %v; want %s %s", err, kind, code)
	}
}

func TestNodeLifecycleStore(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	nodes := postgres.NewNodeStore(db)
	id := seedNode(t, db, "h100-80g-x1", inventory.NodeEnrolling)

	n, err := nodes.GetNode(ctx, id)
	if err != nil || n.State != inventory.NodeEnrolling || len(n.GPUs) != 0 {
		t.Fatalf("get: %+v %v", n, err)
	}
	// A second node with the same name is refused with a stable code.
	dup := n
	dup.ID = newUUID()
	wantCode(t, nodes.CreateNode(ctx, dup), fault.KindConflict, "node_name_taken")
	bad := n
	bad.ID, bad.Name, bad.SKUID = newUUID(), "other", "no-such-sku"
	wantCode(t, nodes.CreateNode(ctx, bad), fault.KindNotFound, "")

	// The first heartbeat makes an enrolling node active and stores the inventory.
	at := time.Now().Add(-10 * time.Minute).Truncate(time.Microsecond)
	hb := inventory.Heartbeat{AgentVersion: "1.2.3", At: at,
		GPUs:   []inventory.GPU{{Index: 0, UUID: "GPU-1", Model: "H100", MemoryMiB: 81559, Healthy: true}},
		Health: inventory.Health{OK: true, Checks: map[string]string{"nvml": "ok"}}}
	if _, err := nodes.RecordHeartbeat(ctx, id, hb); err != nil {
		t.Fatal(err)
	}
	n, _ = nodes.GetNode(ctx, id)
	if n.State != inventory.NodeActive || n.AgentVersion != "1.2.3" || len(n.GPUs) != 1 || n.GPUs[0].UUID != "GPU-1" ||
		!n.Health.OK || n.LastHeartbeatAt == nil || !n.LastHeartbeatAt.Equal(at) {
		t.Fatalf("after heartbeat: %+v", n)
	}

	// Silent for longer than the cut-off → offline, reported once.
	fresh := seedNode(t, db, "h100-80g-x1", inventory.NodeActive)
	ids, err := nodes.MarkSilentOffline(ctx, time.Now().Add(-time.Minute))
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("sweep: %v %v; want only %s (not the fresh %s)", ids, err, id, fresh)
	}
	if ids, _ := nodes.MarkSilentOffline(ctx, time.Now().Add(-time.Minute)); len(ids) != 0 {
		t.Fatalf("second sweep reported %v again", ids)
	}
	// A heartbeat brings it back.
	hb.At = time.Now()
	if _, err := nodes.RecordHeartbeat(ctx, id, hb); err != nil {
		t.Fatal(err)
	}
	if n, _ = nodes.GetNode(ctx, id); n.State != inventory.NodeActive {
		t.Fatalf("after heartbeat from offline: %s", n.State)
	}

	// Maintenance is not undone by a heartbeat.
	if _, err := nodes.UpdateNode(ctx, id, func(n *inventory.Node) error {
		if err := inventory.TransitionNode(n.State, inventory.NodeMaintenance); err != nil {
			return err
		}
		n.State = inventory.NodeMaintenance
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.RecordHeartbeat(ctx, id, hb); err != nil {
		t.Fatal(err)
	}
	if n, _ = nodes.GetNode(ctx, id); n.State != inventory.NodeMaintenance {
		t.Fatalf("heartbeat moved a node out of maintenance: %s", n.State)
	}
	// A retired node's heartbeat is refused; an unknown node is NotFound.
	if _, err := nodes.UpdateNode(ctx, id, func(n *inventory.Node) error {
		now := time.Now()
		n.State, n.RetiredAt = inventory.NodeRetired, &now
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, func() error { _, err := nodes.RecordHeartbeat(ctx, id, hb); return err }(), fault.KindConflict, "node_retired")
	wantCode(t, func() error { _, err := nodes.RecordHeartbeat(ctx, newUUID(), hb); return err }(), fault.KindNotFound, "")
	wantCode(t, func() error { _, err := nodes.RecordHeartbeat(ctx, "not-a-uuid", hb); return err }(), fault.KindNotFound, "")

	list, err := nodes.ListNodes(ctx, ports.NodeFilter{State: inventory.NodeRetired})
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].RetiredAt == nil {
		t.Fatalf("list retired: %+v %v", list, err)
	}
}

// The host key an agent reports is stored, read back by GetNode and
// ListNodes, kept when a heartbeat reports none, and each heartbeat returns
// the key stored before it.
func TestNodeSSHHostKeyStore(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	ctx := context.Background()
	nodes := postgres.NewNodeStore(db)
	id := seedNode(t, db, "h100-80g-x1", inventory.NodeEnrolling)
	const k1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	const k2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbD/o9U4v9wPFwlQVI1HKaGmC0UkXELyXT1aa9NnXsF"

	if n, _ := nodes.GetNode(ctx, id); n.SSHHostKey != "" {
		t.Fatalf("new node has host key %q", n.SSHHostKey)
	}
	hb := inventory.Heartbeat{AgentVersion: "1", At: time.Now(), SSHHostKey: k1}
	if prev, err := nodes.RecordHeartbeat(ctx, id, hb); err != nil || prev != "" {
		t.Fatalf("first key: prev %q %v", prev, err)
	}
	if n, _ := nodes.GetNode(ctx, id); n.SSHHostKey != k1 || n.State != inventory.NodeActive {
		t.Fatalf("get after first key: %+v", n)
	}
	// No key reported: the stored one stays.
	hb.SSHHostKey = ""
	if prev, err := nodes.RecordHeartbeat(ctx, id, hb); err != nil || prev != k1 {
		t.Fatalf("empty report: prev %q %v", prev, err)
	}
	hb.SSHHostKey = k2
	if prev, err := nodes.RecordHeartbeat(ctx, id, hb); err != nil || prev != k1 {
		t.Fatalf("changed key: prev %q %v", prev, err)
	}
	list, err := nodes.ListNodes(ctx, ports.NodeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range list {
		if n.ID == id {
			found = n.SSHHostKey == k2
		}
	}
	if !found {
		t.Fatalf("ListNodes does not carry the changed key: %+v", list)
	}
	// CreateNode stores a key given at registration too.
	n := inventory.Node{ID: newUUID(), Name: "keyed-" + id, SKUID: "h100-80g-x1", State: inventory.NodeEnrolling,
		SSHHost: "10.0.0.2", SSHPort: 22, SSHHostKey: k1}
	if err := nodes.CreateNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	if got, _ := nodes.GetNode(ctx, n.ID); got.SSHHostKey != k1 {
		t.Fatalf("created node key %q", got.SSHHostKey)
	}
}

func TestSKUCapacity(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	ctx := context.Background()
	skus := postgres.NewSKUStore(db)
	list, err := skus.ListSKUs(ctx)
	if err != nil || len(list) != 4 {
		t.Fatalf("seeded catalogue: %d %v", len(list), err)
	}
	k, err := skus.GetSKU(ctx, "h100-80g-x8")
	if err != nil || k.GPUCount != 8 || k.HourlyPriceMinor != 2392 || k.Currency != "usd" || !k.Active {
		t.Fatalf("get: %+v %v", k, err)
	}
	wantCode(t, func() error { _, err := skus.GetSKU(ctx, "nope"); return err }(), fault.KindNotFound, "")

	o := seedOwner(t, db)
	seedNode(t, db, "l40s-48g-x4", inventory.NodeActive)
	seedNode(t, db, "l40s-48g-x4", inventory.NodeActive)
	seedNode(t, db, "l40s-48g-x4", inventory.NodeMaintenance) // not rentable
	seedNode(t, db, "l40s-48g-x4", inventory.NodeEnrolling)   // not rentable
	allocs := postgres.NewAllocationStore(db)
	a, err := allocs.CreatePlaced(ctx, allocation.Allocation{ID: newUUID(), TenantID: o.TenantID, ProjectID: o.ProjectID,
		UserID: o.UserID, SKUID: "l40s-48g-x4", PriceMinor: 516, Currency: "usd"})
	if err != nil {
		t.Fatal(err)
	}
	if capa, err := skus.Capacity(ctx); err != nil || capa["l40s-48g-x4"] != 1 || capa["h100-80g-x8"] != 0 {
		t.Fatalf("capacity with one held: %v %v", capa, err)
	}
	// Released allocations give the node back.
	if _, err := allocs.Update(ctx, a.ID, func(a *allocation.Allocation) error { a.State = allocation.Failed; return nil }); err != nil {
		t.Fatal(err)
	}
	if capa, _ := skus.Capacity(ctx); capa["l40s-48g-x4"] != 2 {
		t.Fatalf("capacity after failure: %v", capa)
	}
}
