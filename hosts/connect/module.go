package connecthost

import (
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/ports"
)

// Params are the ports the gateway's use cases take from the graph. The
// host supplies Config and agentsvc.Config (fx.Supply); the stores come
// from adapters/postgres (Module, TasksModule and the node stores), the CA
// and signer from adapters/pki and adapters/keyfile.
type Params struct {
	fx.In
	Config    Config
	AgentsCfg agentsvc.Config
	Tx        ports.TxRunner
	Tokens    ports.BootstrapTokenStore
	CA        ports.CertificateAuthority
	Certs     ports.NodeCertificateStore
	Nodes     ports.NodeStore
	Tasks     ports.TaskQueue
	Signer    ports.Signer
	Audit     ports.AuditLog
	Clock     ports.Clock
	IDs       ports.IDs
}

// NewFromParams builds the agent use cases and the gateway over them.
func NewFromParams(p Params) (*Server, *agentsvc.Service, error) {
	svc, err := agentsvc.New(p.AgentsCfg, agentsvc.Deps{
		Tx: p.Tx, Tokens: p.Tokens, CA: p.CA, Certs: p.Certs, Nodes: p.Nodes, Tasks: p.Tasks,
		Signer: p.Signer, Audit: p.Audit, Clock: p.Clock, IDs: p.IDs,
	})
	if err != nil {
		return nil, nil, err
	}
	cfg := p.Config
	if cfg.Clock == nil {
		cfg.Clock = p.Clock
	}
	s, err := New(cfg, svc)
	return s, svc, err
}

// Module provides *Server (and the *agentsvc.Service it serves) and ties
// the server to the app's lifecycle: it listens on start and drains on
// stop. This is what `gpuaas serve agent-gateway` wires.
var Module = fx.Module("connecthost",
	fx.Provide(NewFromParams),
	fx.Invoke(func(lc fx.Lifecycle, s *Server) {
		lc.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	}),
)
