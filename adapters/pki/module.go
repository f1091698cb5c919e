package pki

import (
	"context"
	"fmt"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// Module provides both built-in CAs: CAModule and SSHModule.
var Module = fx.Module("pki", CAModule, SSHModule)

// CAModule provides the X.509 CA from a Config the host supplies. It needs
// ports.KMS, ports.SecretStore, ports.Clock and a ports.NodeCertificateStore
// that also implements CertificateStore (postgres.SecurityModule's does), and
// loads or creates the CA keys on start. Hosts that issue node certificates
// through step-ca use stepca.Module instead, with SSHModule alone.
//
// Provided: *CA, ports.CertificateAuthority.
var CAModule = fx.Module("pki-ca",
	fx.Provide(
		provideCA,
		fx.Annotate(func(ca *CA) *CA { return ca }, fx.As(new(ports.CertificateAuthority))),
	),
)

// SSHModule provides the SSH user CA from Config.SSH; it needs ports.KMS,
// ports.SecretStore and ports.Clock, and loads or creates its key on start.
//
// Provided: *SSHCA, ports.SSHCertificateAuthority.
var SSHModule = fx.Module("pki-ssh",
	fx.Provide(
		provideSSHCA,
		fx.Annotate(func(c *SSHCA) *SSHCA { return c }, fx.As(new(ports.SSHCertificateAuthority))),
	),
)

func provideCA(lc fx.Lifecycle, cfg Config, kms ports.KMS, secrets ports.SecretStore, certs ports.NodeCertificateStore, clock ports.Clock) (*CA, error) {
	store, ok := certs.(CertificateStore)
	if !ok {
		return nil, fmt.Errorf("pki: the NodeCertificateStore (%T) cannot revoke single serials", certs)
	}
	ca, err := New(cfg, Deps{KMS: kms, Secrets: secrets, Certificates: store, Clock: clock})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStart: ca.Init})
	return ca, nil
}

func provideSSHCA(lc fx.Lifecycle, cfg Config, kms ports.KMS, secrets ports.SecretStore, clock ports.Clock) (*SSHCA, error) {
	c, err := NewSSHCA(cfg.SSH, SSHDeps{KMS: kms, Secrets: secrets, Clock: clock})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStart: func(ctx context.Context) error { return c.Init(ctx) }})
	return c, nil
}

// TokenModule provides the platform's access-token issuer (service
// accounts) from a TokenConfig the host supplies; it needs ports.KMS and
// ports.SecretStore, and loads or creates its signing key on start.
//
// Provided: *TokenIssuer, ports.TokenIssuer.
var TokenModule = fx.Module("pki-tokens",
	fx.Provide(
		provideTokenIssuer,
		fx.Annotate(func(t *TokenIssuer) *TokenIssuer { return t }, fx.As(new(ports.TokenIssuer))),
	),
)

func provideTokenIssuer(lc fx.Lifecycle, cfg TokenConfig, kms ports.KMS, secrets ports.SecretStore) (*TokenIssuer, error) {
	t, err := NewTokenIssuer(cfg, kms, secrets)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStart: t.Init})
	return t, nil
}
