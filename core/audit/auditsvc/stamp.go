package auditsvc

import (
	"context"
	"maps"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// StampActor wraps an audit log so that rows written while a machine
// credential acts (callctx.WithActor, set by the hosts at authentication)
// name it: a row whose actor is the credential's user becomes actor_type
// service_account for a service account, and gains metadata api_key_id
// for a person's API key. Use cases keep recording "the principal's user";
// the wrapper is the one place that knows how the principal signed in.
func StampActor(log ports.AuditLog) ports.AuditLog { return stamped{log} }

type stamped struct{ ports.AuditLog }

// Record implements [ports.AuditLog].
func (s stamped) Record(ctx context.Context, e audit.Event) error {
	if a, ok := callctx.ActorOf(ctx); ok && e.ActorType == audit.ActorUser && e.ActorID == a.UserID {
		switch a.Kind {
		case string(audit.ActorServiceAccount):
			e.ActorType = audit.ActorServiceAccount
		case "api_key":
			md := maps.Clone(e.Metadata)
			if md == nil {
				md = map[string]any{}
			}
			md["api_key_id"] = a.ID
			e.Metadata = md
		}
	}
	return s.AuditLog.Record(ctx, e)
}

// Each implements [ports.AuditExporter] by passing through to the wrapped
// log (the export reads; there is nothing to stamp).
func (s stamped) Each(ctx context.Context, f audit.Filter, fn func(audit.Event) error) error {
	ex, ok := s.AuditLog.(ports.AuditExporter)
	if !ok {
		return fault.Unavailable("this audit log cannot be exported", nil)
	}
	return ex.Each(ctx, f, fn)
}
