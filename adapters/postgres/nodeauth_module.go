package postgres

import (
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// SecurityModule provides the stores behind node enrolment and platform
// secrets; it needs the *DB that Module provides.
//
// Provided: ports.SecretStore, ports.BootstrapTokenStore,
// ports.NodeCertificateStore and *NodeCertificateStore (the built-in CA
// also revokes single serials, see pki.CertificateStore).
var SecurityModule = fx.Module("postgres-security",
	fx.Provide(
		fx.Annotate(NewSecretStore, fx.As(new(ports.SecretStore))),
		fx.Annotate(NewBootstrapTokenStore, fx.As(new(ports.BootstrapTokenStore))),
		func(lc fx.Lifecycle, db *DB) *NodeCertificateStore {
			s := NewNodeCertificateStore(db)
			lc.Append(fx.StopHook(s.Close))
			return s
		},
		fx.Annotate(func(s *NodeCertificateStore) *NodeCertificateStore { return s }, fx.As(new(ports.NodeCertificateStore))),
	),
)
