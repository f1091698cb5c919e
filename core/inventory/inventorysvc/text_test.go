package inventorysvc_test

import (
	"context"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/netprobe"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// TestRegisterNodeTextPolicy: a node's SKU and host are held to core/text
// before any store sees them.
func TestRegisterNodeTextPolicy(t *testing.T) {
	t.Parallel()
	db := services.Postgres(t)
	prober, _ := netprobe.New(netprobe.Config{Timeout: time.Second})
	svc, err := inventorysvc.New(inventorysvc.Config{}, inventorysvc.Deps{Tx: db, SKUs: postgres.NewSKUStore(db),
		Nodes: postgres.NewNodeStore(db), Allocations: postgres.NewAllocationStore(db),
		Bootstrap: postgres.NewBootstrapTokenStore(db), Certs: postgres.NewNodeCertificateStore(db), Prober: prober,
		Audit: postgres.NewAuditLog(db), Clock: fakes.NewClock(time.Now()), IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	admin := identity.Principal{User: identity.User{ID: system.UUIDs{}.NewID(), Role: identity.RoleAdmin}}
	for _, bad := range []string{"h100\x00", "h100\x1b", "h\u202e100", "h100\xff"} {
		_, err := svc.RegisterNode(context.Background(), admin, inventorysvc.RegisterRequest{Name: "gpu-1", SKUID: bad,
			SSHHost: "gpu-1.example.net"})
		if fe := fault.From(err); err == nil || fe.Kind != fault.KindInvalid || fe.Field != "sku_id" {
			t.Errorf("RegisterNode(sku %q) = %v, want invalid sku_id", bad, err)
		}
		_, err = svc.RegisterNode(context.Background(), admin, inventorysvc.RegisterRequest{Name: "gpu-1", SKUID: "h100",
			SSHHost: "gpu" + bad})
		if fe := fault.From(err); err == nil || fe.Kind != fault.KindInvalid || fe.Field != "ssh_host" {
			t.Errorf("RegisterNode(host %q) = %v, want invalid ssh_host", bad, err)
		}
	}
}
