// Package auditsvc holds the audit log's read use case: platform operators
// list events with filters and a cursor.
package auditsvc

import (
	"context"
	"errors"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/text"
	"github.com/gpuaas/gpuaas/ports"
)

// Page sizes of List.
const (
	DefaultLimit = 100
	MaxLimit     = 500
)

// Service reads the audit log.
type Service struct{ log ports.AuditLog }

// New returns the service over the audit log.
func New(log ports.AuditLog) (*Service, error) {
	if log == nil {
		return nil, errors.New("auditsvc: the audit log is required")
	}
	return &Service{log: log}, nil
}

// List returns one page of events, newest first, and the cursor of the
// next page ("" on the last). Platform operators only. A zero Limit is
// DefaultLimit; Since must be before Until when both are set.
func (s *Service) List(ctx context.Context, p identity.Principal, f audit.Filter) ([]audit.Event, string, error) {
	if !p.User.IsAdmin() {
		return nil, "", fault.Forbidden("the audit log is for platform operators")
	}
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	if f.Limit < 1 || f.Limit > MaxLimit {
		return nil, "", fault.Invalid("limit", "limit must be between 1 and 500")
	}
	if err := checkFilter(f); err != nil {
		return nil, "", err
	}
	return s.log.List(ctx, f)
}

// ResourceIDMaxLength bounds the resource_id filter (a canonical
// identifier is seven segments).
const ResourceIDMaxLength = 512

func checkFilter(f audit.Filter) error {
	for _, c := range []struct {
		field, v string
		max      int
	}{{"tenant_id", f.TenantID, identity.IDMaxLength}, {"actor_id", f.ActorID, identity.IDMaxLength},
		{"action", f.Action, identity.IDMaxLength}, {"resource_type", f.ResourceType, identity.IDMaxLength},
		{"resource_id", f.ResourceID, ResourceIDMaxLength}} {
		if err := text.Line(c.field, c.v, 0, c.max); err != nil {
			return err
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fault.Invalid("until", "until must be after since")
	}
	return nil
}

// Export calls fn for every event the filter selects (Limit and Cursor are
// ignored), newest first, streamed from the store without buffering the
// whole log. Platform operators only.
func (s *Service) Export(ctx context.Context, p identity.Principal, f audit.Filter, fn func(audit.Event) error) error {
	if !p.User.IsAdmin() {
		return fault.Forbidden("the audit log is for platform operators")
	}
	if err := checkFilter(f); err != nil {
		return err
	}
	ex, ok := s.log.(ports.AuditExporter)
	if !ok {
		return fault.Unavailable("this audit log cannot be exported", nil)
	}
	f.Limit, f.Cursor = 0, ""
	return ex.Each(ctx, f, fn)
}
