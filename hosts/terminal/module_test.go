package terminalhost_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	terminalhost "github.com/gpuaas/gpuaas/hosts/terminal"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

// TestModuleWiring checks that ServiceModule and Module resolve from the
// ports the binary provides.
func TestModuleWiring(t *testing.T) {
	t.Parallel()
	clock := fakes.NewClock(time.Time{})
	err := fx.ValidateApp(
		fx.NopLogger,
		fx.Supply(terminalhost.Config{AllowedOrigins: []string{"https://console.example"},
			HostKeys: terminalhost.InsecureAcceptAnyHostKey(nil)}),
		fx.Supply(slog.New(slog.NewTextHandler(io.Discard, nil))),
		fx.Provide(
			fx.Annotate(func() *allocations { return &allocations{} }, fx.As(new(ports.AllocationStore))),
			fx.Annotate(func() *nodes { return &nodes{} }, fx.As(new(ports.NodeStore))),
			fx.Annotate(func() *inproc.TokenStore { return inproc.NewTokenStore(clock) }, fx.As(new(ports.TokenStore))),
			fx.Annotate(func() *testCA { return newTestCA(t) }, fx.As(new(ports.SSHCertificateAuthority))),
			func() ports.AuditLog { return nil }, // ValidateApp never calls constructors
			fx.Annotate(func() *fakes.Clock { return clock }, fx.As(new(ports.Clock))),
			fx.Annotate(func() *fakes.IDs { return &fakes.IDs{} }, fx.As(new(ports.IDs))),
		),
		terminalhost.ServiceModule,
		terminalhost.Module,
	)
	if err != nil {
		t.Fatal(err)
	}
}
