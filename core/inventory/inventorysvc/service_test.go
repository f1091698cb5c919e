package inventorysvc_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/netprobe"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func TestNodeLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	clock := fakes.NewClock(time.Now())
	prober, _ := netprobe.New(netprobe.Config{Timeout: 2 * time.Second})
	nodes := postgres.NewNodeStore(db)
	svc, err := inventorysvc.New(inventorysvc.Config{BootstrapTTL: 10 * time.Minute}, inventorysvc.Deps{Tx: db,
		SKUs: postgres.NewSKUStore(db), Nodes: nodes, Allocations: postgres.NewAllocationStore(db),
		Bootstrap: postgres.NewBootstrapTokenStore(db), Certs: postgres.NewNodeCertificateStore(db), Prober: prober,
		Audit: postgres.NewAuditLog(db), Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inventorysvc.New(inventorysvc.Config{BootstrapTTL: time.Hour}, inventorysvc.Deps{}); err == nil {
		t.Fatal("a bootstrap TTL over 30 minutes was accepted")
	}
	// A real tenant and user, so the allocation below has its owners.
	tid, pid, uid := system.UUIDs{}.NewID(), system.UUIDs{}.NewID(), system.UUIDs{}.NewID()
	_ = postgres.NewTenantStore(db).CreateTenant(ctx, identity.Tenant{ID: tid, Name: "t", Slug: "t-" + services.RandomSuffix(3)})
	_ = postgres.NewProjectStore(db).CreateProject(ctx, identity.Project{ID: pid, TenantID: tid, Name: "p"})
	u, _, _ := postgres.NewUserStore(db).UpsertByIdentity(ctx, identity.User{ID: uid, Issuer: "i", Subject: "s"})
	user := identity.Principal{User: u, TenantID: tid}
	admin := identity.Principal{User: identity.User{ID: uid, Role: identity.RoleAdmin}, TenantID: tid}

	// An SSH-speaking listener on 127.0.0.1 stands in for the node.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	req := inventorysvc.RegisterRequest{Name: "gpu-01", SKUID: "h100-80g-x1", SSHHost: "127.0.0.1", SSHPort: port}
	if _, err := svc.RegisterNode(ctx, user, req); !fault.IsKind(err, fault.KindForbidden) {
		t.Fatalf("user registers a node: %v", err)
	}
	for _, bad := range []inventorysvc.RegisterRequest{
		{Name: "Bad Name", SKUID: "h100-80g-x1", SSHHost: "h"},
		{Name: "ok", SKUID: "nope", SSHHost: "h"},
		{Name: "ok", SKUID: "h100-80g-x1", SSHHost: "a b"},
		{Name: "ok", SKUID: "h100-80g-x1", SSHHost: "h", SSHPort: 70000},
	} {
		if _, err := svc.RegisterNode(ctx, admin, bad); !fault.IsKind(err, fault.KindInvalid) {
			t.Fatalf("register %+v: %v", bad, err)
		}
	}
	reg, err := svc.RegisterNode(ctx, admin, req)
	if err != nil {
		t.Fatal(err)
	}
	if reg.Node.State != inventory.NodeEnrolling || len(reg.BootstrapToken) != 43 || !reg.ExpiresAt.Equal(clock.Now().Add(10*time.Minute)) {
		t.Fatalf("registration %+v", reg)
	}
	// Only the hash is stored.
	var stored []byte
	if err := db.Pool.QueryRow(ctx, `SELECT token_hash FROM node_bootstrap_tokens WHERE node_id = $1`, reg.Node.ID).Scan(&stored); err != nil ||
		string(stored) != string(inventorysvc.HashBootstrapToken(reg.BootstrapToken)) {
		t.Fatalf("stored token hash %x (err %v)", stored, err)
	}
	if _, err := svc.RegisterNode(ctx, admin, req); fault.From(err).Code != "node_name_taken" {
		t.Fatalf("duplicate name: %v", err)
	}

	res, err := svc.ProbeNode(ctx, admin, reg.Node.ID)
	if err != nil || !res.Reachable || res.Banner != "SSH-2.0-OpenSSH_9.6" {
		t.Fatalf("probe %+v %v", res, err)
	}

	// Enrolling nodes are not shown to users; an active one is, without its address.
	if list, _ := svc.ListNodes(ctx); len(list) != 0 {
		t.Fatalf("users see an enrolling node: %+v", list)
	}
	if _, err := nodes.RecordHeartbeat(ctx, reg.Node.ID, inventory.Heartbeat{AgentVersion: "1", At: clock.Now(),
		GPUs: []inventory.GPU{{Model: "H100", UUID: "GPU-x"}}}); err != nil {
		t.Fatal(err)
	}
	if list, _ := svc.ListNodes(ctx); len(list) != 1 || list[0].GPUModel != "H100" || list[0].GPUCount != 1 {
		t.Fatalf("user node list %+v", list)
	}
	skus, err := svc.ListSKUs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range skus {
		if want := map[bool]int{true: 1}[k.ID == "h100-80g-x1"]; k.Available != want {
			t.Fatalf("%s available %d; want %d", k.ID, k.Available, want)
		}
	}

	// Held by a live allocation → retire refused; released → retired.
	allocs := postgres.NewAllocationStore(db)
	a, err := allocs.CreatePlaced(ctx, allocation.Allocation{ID: system.UUIDs{}.NewID(), TenantID: tid, ProjectID: pid, UserID: uid,
		SKUID: "h100-80g-x1", Currency: "usd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RetireNode(ctx, admin, reg.Node.ID); fault.From(err).Code != "node_in_use" {
		t.Fatalf("retire in use: %v", err)
	}
	if _, err := allocs.Update(ctx, a.ID, func(a *allocation.Allocation) error { a.State = allocation.Failed; return nil }); err != nil {
		t.Fatal(err)
	}
	if n, err := svc.SetMaintenance(ctx, admin, reg.Node.ID, true); err != nil || n.State != inventory.NodeMaintenance {
		t.Fatalf("maintenance: %+v %v", n, err)
	}
	if err := svc.RetireNode(ctx, admin, reg.Node.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := nodes.GetNode(ctx, reg.Node.ID); n.State != inventory.NodeRetired || n.RetiredAt == nil {
		t.Fatalf("after retire: %+v", n)
	}
	if err := svc.RetireNode(ctx, admin, reg.Node.ID); err != nil {
		t.Fatalf("retire twice: %v", err)
	}
	var audited int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action IN ('node.register','node.probe','node.retire','node.maintenance_start')`).Scan(&audited)
	if audited != 4 {
		t.Fatalf("%d audit rows; want 4 (register, probe, maintenance, retire once)", audited)
	}
}

func TestSweepOffline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	clock := fakes.NewClock(time.Now())
	prober, _ := netprobe.New(netprobe.Config{})
	nodes := postgres.NewNodeStore(db)
	svc, err := inventorysvc.New(inventorysvc.Config{}, inventorysvc.Deps{Tx: db, SKUs: postgres.NewSKUStore(db), Nodes: nodes,
		Allocations: postgres.NewAllocationStore(db), Bootstrap: postgres.NewBootstrapTokenStore(db),
		Certs: postgres.NewNodeCertificateStore(db), Prober: prober, Audit: postgres.NewAuditLog(db), Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	id := system.UUIDs{}.NewID()
	at := clock.Now()
	if err := nodes.CreateNode(ctx, inventory.Node{ID: id, Name: "n1", SKUID: "h100-80g-x1", State: inventory.NodeActive,
		SSHHost: "h", SSHPort: 22, LastHeartbeatAt: &at}); err != nil {
		t.Fatal(err)
	}
	if ids, err := svc.SweepOffline(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("fresh node swept: %v %v", ids, err)
	}
	clock.Advance(inventory.OfflineAfter + time.Second)
	if ids, err := svc.SweepOffline(ctx); err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("silent node not swept: %v %v", ids, err)
	}
	if n, _ := nodes.GetNode(ctx, id); n.State != inventory.NodeOffline {
		t.Fatalf("state %s", n.State)
	}
}
