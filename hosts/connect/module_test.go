package connecthost_test

import (
	"testing"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	connecthost "github.com/gpuaas/gpuaas/hosts/connect"
	"github.com/gpuaas/gpuaas/ports"
)

// TestModuleGraph: connecthost.Module is satisfiable from the ports the
// binary provides (ValidateApp checks the graph without running it).
func TestModuleGraph(t *testing.T) {
	t.Parallel()
	err := fx.ValidateApp(
		fx.Supply(connecthost.Config{}, agentsvc.Config{}),
		fx.Provide(
			func() ports.TxRunner { return nil },
			func() ports.BootstrapTokenStore { return nil },
			func() ports.CertificateAuthority { return nil },
			func() ports.NodeCertificateStore { return nil },
			func() ports.NodeStore { return nil },
			func() ports.TaskQueue { return nil },
			func() ports.Signer { return nil },
			func() ports.AuditLog { return nil },
			func() ports.Clock { return nil },
			func() ports.IDs { return nil },
		),
		connecthost.Module,
	)
	if err != nil {
		t.Fatal(err)
	}
}
