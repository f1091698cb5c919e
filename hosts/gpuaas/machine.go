package main

import (
	"context"
	"crypto"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/audit/auditsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/identity/machinesvc"
	"github.com/gpuaas/gpuaas/ports"
)

// machineOptions wire machine access for the API (doc/service-accounts.md):
// the platform's token issuer (its ES256 key sealed in platform_secrets,
// shared by every replica), one verifier that trusts the OIDC issuer's
// tokens and the platform's, the service-account and API-key stores, the
// use cases, and the audit log stamped with the machine actor of each
// request. The issuer and the audience of the platform's tokens are the
// public URL.
func machineOptions(s Settings) fx.Option {
	return fx.Options(
		fx.Supply(pki.TokenConfig{Issuer: s.PublicURL, Audience: s.PublicURL}),
		pki.TokenModule,
		fx.Provide(
			func(t *pki.TokenIssuer) oidc.VerifierConfig {
				return oidc.VerifierConfig{Issuer: s.OIDCIssuer, Audience: s.OIDCAudience,
					Trusted: []oidc.TrustedIssuer{{Issuer: t.Issuer(), Audience: s.PublicURL,
						Keys: func(ctx context.Context) ([]crypto.PublicKey, error) { return t.PublicKeys(ctx) }}}}
			},
			fx.Annotate(postgres.NewServiceAccountStore, fx.As(new(ports.ServiceAccountStore))),
			fx.Annotate(postgres.NewAPIKeyStore, fx.As(new(ports.APIKeyStore))),
			newMachineService,
		),
		fx.Decorate(auditsvc.StampActor),
	)
}

type machineParams struct {
	fx.In
	Tx       ports.TxRunner
	Accounts ports.ServiceAccountStore
	Keys     ports.APIKeyStore
	Identity *identitysvc.Service
	Audit    ports.AuditLog
	Clock    ports.Clock
	IDs      ports.IDs
}

func newMachineService(p machineParams) (*machinesvc.Service, error) {
	return machinesvc.New(machinesvc.Deps{Tx: p.Tx, Accounts: p.Accounts, Keys: p.Keys, Identity: p.Identity,
		Audit: p.Audit, Clock: p.Clock, IDs: p.IDs})
}
