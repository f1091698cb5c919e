package workers_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/netprobe"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/hosts/workers"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func TestNodeSweeperRunOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	clock := fakes.NewClock(time.Now())
	prober, _ := netprobe.New(netprobe.Config{})
	nodes := postgres.NewNodeStore(db)
	inv, err := inventorysvc.New(inventorysvc.Config{}, inventorysvc.Deps{Tx: db, SKUs: postgres.NewSKUStore(db), Nodes: nodes,
		Allocations: postgres.NewAllocationStore(db), Bootstrap: postgres.NewBootstrapTokenStore(db),
		Certs: postgres.NewNodeCertificateStore(db), Prober: prober, Audit: postgres.NewAuditLog(db), Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	at := clock.Now()
	id := system.UUIDs{}.NewID()
	if err := nodes.CreateNode(ctx, inventory.Node{ID: id, Name: "n", SKUID: "h100-80g-x1", State: inventory.NodeActive,
		SSHHost: "h", SSHPort: 22, LastHeartbeatAt: &at}); err != nil {
		t.Fatal(err)
	}
	s, err := workers.NewNodeSweeper(workers.NodeSweeperConfig{}, inv, nil, clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if off, _, err := s.RunOnce(ctx); err != nil || len(off) != 0 {
		t.Fatalf("fresh node: %v %v", off, err)
	}
	clock.Advance(inventory.OfflineAfter + time.Second)
	if off, _, err := s.RunOnce(ctx); err != nil || len(off) != 1 || off[0] != id {
		t.Fatalf("silent node: %v %v", off, err)
	}
	if _, err := workers.NewNodeSweeper(workers.NodeSweeperConfig{Interval: -1}, inv, nil, clock, slog.Default()); err == nil {
		t.Fatal("negative interval accepted")
	}
}

func TestNodeSweeperModuleValidates(t *testing.T) {
	t.Parallel()
	err := fx.ValidateApp(
		fx.Provide(
			func() *inventorysvc.Service { return nil },
			func() ports.Clock { return system.Clock{} },
			func() *slog.Logger { return slog.Default() },
		),
		workers.NodeSweeperModule,
	)
	if err != nil {
		t.Fatal(err)
	}
}
