package httphost

import (
	"net/http"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/hosts/http/api"
)

// Audit-log page sizes.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 500
)

// ListAuditLog implements [api.ServerInterface].
func (h *handlers) ListAuditLog(w http.ResponseWriter, r *http.Request, params api.ListAuditLogParams) {
	s := h.s
	f := audit.Filter{TenantID: deref(params.TenantId), ActorID: deref(params.ActorId), Action: deref(params.Action),
		Cursor: deref(params.Cursor), Limit: defaultAuditLimit}
	if params.Limit != nil {
		if *params.Limit < 1 || *params.Limit > maxAuditLimit {
			s.fail(w, r, fault.Invalid("limit", "limit must be between 1 and 500"))
			return
		}
		f.Limit = *params.Limit
	}
	if params.Since != nil {
		f.Since = *params.Since
	}
	if params.Until != nil {
		f.Until = *params.Until
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		s.fail(w, r, fault.Invalid("until", "until must be after since"))
		return
	}
	events, next, err := s.d.Audit.List(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := api.AuditLogPage{Events: make([]api.AuditEvent, 0, len(events))}
	if next != "" {
		page.NextCursor = &next
	}
	for _, e := range events {
		ev := api.AuditEvent{Id: e.ID, OccurredAt: e.OccurredAt, ActorType: api.AuditEventActorType(e.ActorType),
			ActorId: e.ActorID, Action: e.Action, ResourceType: e.ResourceType, ResourceId: e.ResourceID,
			Outcome: api.AuditEventOutcome(e.Outcome)}
		ev.TenantId = optional(e.TenantID)
		ev.ProjectId = optional(e.ProjectID)
		ev.CorrelationId = optional(e.CorrelationID)
		ev.SourceIp = optional(e.SourceIP)
		if len(e.Metadata) > 0 {
			// Metadata must never hold secrets (audit.Event); redact anyway
			// in case a writer forgot.
			if md, ok := Redact(e.Metadata).(map[string]any); ok {
				ev.Metadata = &md
			}
		}
		page.Events = append(page.Events, ev)
	}
	writeJSON(w, http.StatusOK, page)
}

// ListPolicies implements [api.ServerInterface].
func (h *handlers) ListPolicies(w http.ResponseWriter, r *http.Request) {
	s := h.s
	vals, err := s.d.Policies.Values(r.Context(), "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.PolicyList{Policies: []api.Policy{}}
	for _, k := range policy.Keys() {
		out.Policies = append(out.Policies, policyView(k, vals.String(k)))
	}
	writeJSON(w, http.StatusOK, out)
}

// SetPolicy implements [api.ServerInterface].
func (h *handlers) SetPolicy(w http.ResponseWriter, r *http.Request, _ api.SetPolicyParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	var req api.SetPolicyRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.d.PolicyAdmin == nil {
		s.fail(w, r, fault.Unavailable("policy administration is not configured on this host", nil))
		return
	}
	k, err := s.d.PolicyAdmin.Set(r.Context(), p, req.Key, req.Value)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, policyView(k, req.Value))
}

func policyView(k policy.Key, value string) api.Policy {
	v := api.Policy{Key: k.Name, Type: api.PolicyType(k.Type), Default: k.Default, Value: value, Description: k.Description}
	if k.Type == policy.Int {
		minV := k.Min
		v.Min = &minV
		if k.Max > 0 {
			maxV := k.Max
			v.Max = &maxV
		}
	}
	return v
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
