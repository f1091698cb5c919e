package stepca

import (
	"fmt"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// Module provides ports.CertificateAuthority through step-ca from a Config
// the host supplies. It needs ports.Clock and a ports.NodeCertificateStore
// that also implements CertificateStore (the Postgres one does).
var Module = fx.Module("stepca",
	fx.Provide(fx.Annotate(provide, fx.As(new(ports.CertificateAuthority)))),
)

func provide(cfg Config, certs ports.NodeCertificateStore, clock ports.Clock) (*CA, error) {
	store, ok := certs.(CertificateStore)
	if !ok {
		return nil, fmt.Errorf("stepca: the NodeCertificateStore (%T) cannot revoke single serials", certs)
	}
	return New(cfg, Deps{Certificates: store, Clock: clock})
}
