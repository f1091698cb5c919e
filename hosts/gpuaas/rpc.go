package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/core/identity/authsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	connecthost "github.com/gpuaas/gpuaas/hosts/connect"
	"github.com/gpuaas/gpuaas/ports"
)

// rpcAuthParams are the ports of the authentication use cases the RPC host
// runs: the same the HTTP host builds its own from.
type rpcAuthParams struct {
	fx.In
	Identity *identitysvc.Service
	Verifier ports.TokenVerifier
	IdP      ports.IdentityProvider
	Tokens   ports.TokenStore
	Policies ports.PolicyStore
	Accounts ports.ServiceAccountStore
	Keys     ports.APIKeyStore
	Issuer   ports.TokenIssuer
	Audit    ports.AuditLog
	Clock    ports.Clock
	IDs      ports.IDs
	Changes  ports.AccessChanges `optional:"true"`
}

func newRPCAuth(p rpcAuthParams) (*authsvc.Service, error) {
	return authsvc.New(authsvc.Config{}, authsvc.Deps{Identity: p.Identity, Verifier: p.Verifier, IdP: p.IdP,
		Tokens: p.Tokens, Policies: p.Policies, Accounts: p.Accounts, Keys: p.Keys, Issuer: p.Issuer,
		Audit: p.Audit, Clock: p.Clock, IDs: p.IDs, Changes: p.Changes})
}

// rpcOptions wire `serve rpc`: the internal Connect services over the use
// cases the API serves, authenticated by service-account tokens verified
// like the API verifies them (the platform's token issuer, the OIDC
// issuer's keys for everything else, which the listener then refuses).
func rpcOptions(s Settings, logger *slog.Logger) fx.Option {
	return fx.Options(
		baseOptions(s, logger),
		ephemeralOptions(s),
		fx.Supply(oidc.ClientConfig{Issuer: s.OIDCIssuer, ClientID: s.OIDCClientID, ClientSecret: s.OIDCSecret}),
		oidc.Module,
		machineOptions(s),
		fx.Provide(newIdentityService, newRPCAuth),
		computeOptions(s),
		paymentOptions(s, false),
		fx.Provide(func(t tracerIn, reg *prometheus.Registry) connecthost.RPCConfig {
			return connecthost.RPCConfig{Addr: s.RPCAddr, Telemetry: connecthost.Telemetry{Tracer: t.Tracer, Metrics: reg}}
		}),
		connecthost.RPCModule,
	)
}

func serveRPC(ctx context.Context, s Settings) error {
	if err := s.require("DATABASE_URL", "OIDC_ISSUER_URL"); err != nil {
		return err
	}
	return runApp(ctx, fx.New(rpcOptions(s, newLogger(s))))
}
