package terminalhost

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/terminal/terminalsvc"
	"github.com/gpuaas/gpuaas/ports"
)

// ServiceParams are the ports the terminal use cases take from the graph.
type ServiceParams struct {
	fx.In

	Allocations ports.AllocationStore
	Tokens      ports.TokenStore
	Audit       ports.AuditLog
	Clock       ports.Clock
	IDs         ports.IDs
}

// NewService builds the terminal use cases from the graph. Both the API
// (mint) and the gateway (consume) need it; they must share one TokenStore
// backend (Redis when they run as separate processes).
func NewService(p ServiceParams) (*terminalsvc.Service, error) {
	return terminalsvc.New(terminalsvc.Deps{Allocations: p.Allocations, Tokens: p.Tokens, Audit: p.Audit,
		Clock: p.Clock, IDs: p.IDs})
}

// ServiceModule provides *terminalsvc.Service.
var ServiceModule = fx.Module("terminalsvc", fx.Provide(NewService))

// Params is what the gateway takes from the graph.
type Params struct {
	fx.In

	Config   Config
	Terminal *terminalsvc.Service
	Nodes    ports.NodeStore
	CA       ports.SSHCertificateAuthority
	Logger   *slog.Logger
	Users    ports.UserStore      `optional:"true"`
	Metrics  *prometheus.Registry `optional:"true"`
}

// NewFromParams builds the gateway from the graph.
func NewFromParams(p Params) (*Server, error) {
	d := Deps{Terminal: p.Terminal, Nodes: p.Nodes, CA: p.CA, Logger: p.Logger, Users: p.Users}
	if p.Metrics != nil {
		d.Metrics = p.Metrics
	}
	return New(p.Config, d)
}

// Module provides *Server and ties it to the app's lifecycle: it listens on
// start and, on stop, closes live sessions with 1001 and drains them within
// fx's stop timeout. To mount the gateway on another server instead (the API
// in development), provide *Server with NewFromParams and route Path to
// Server.Handler without this Module's listener.
var Module = fx.Module("terminal-gateway",
	fx.Provide(NewFromParams),
	fx.Invoke(func(lc fx.Lifecycle, s *Server) {
		lc.Append(fx.Hook{OnStart: s.Start, OnStop: s.Shutdown})
	}),
)
