package oidc

import (
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// Module provides ports.TokenVerifier and ports.IdentityProvider. The host
// supplies a VerifierConfig and a ClientConfig (fx.Supply); only the port
// interfaces enter the graph.
var Module = fx.Module("oidc",
	fx.Provide(
		fx.Annotate(NewVerifier, fx.As(new(ports.TokenVerifier))),
		fx.Annotate(NewClient, fx.As(new(ports.IdentityProvider))),
	),
)
