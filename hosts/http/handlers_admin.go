package httphost

import (
	"encoding/json"
	"net/http"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
)

// ListAuditLog implements [api.ServerInterface].
func (h *handlers) ListAuditLog(w http.ResponseWriter, r *http.Request, params api.ListAuditLogParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	f := audit.Filter{TenantID: deref(params.TenantId), ActorID: deref(params.ActorId), Action: deref(params.Action),
		ResourceType: deref(params.ResourceType), ResourceID: deref(params.ResourceId), Cursor: deref(params.Cursor)}
	if params.Limit != nil {
		f.Limit = *params.Limit
	}
	if params.Since != nil {
		f.Since = *params.Since
	}
	if params.Until != nil {
		f.Until = *params.Until
	}
	events, next, err := s.audit.List(r.Context(), p, f)
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
			if md, ok := redact.Redact(e.Metadata).(map[string]any); ok {
				ev.Metadata = &md
			}
		}
		page.Events = append(page.Events, ev)
	}
	writeJSON(w, http.StatusOK, page)
}

// errPolicyAdminOff answers the policy routes on a host built without
// policy administration (Deps.PolicyAdmin nil).
var errPolicyAdminOff = fault.Unavailable("policy administration is not configured on this host", nil)

// ListPolicies implements [api.ServerInterface].
func (h *handlers) ListPolicies(w http.ResponseWriter, r *http.Request) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	if s.d.PolicyAdmin == nil {
		s.fail(w, r, errPolicyAdminOff)
		return
	}
	settings, err := s.d.PolicyAdmin.List(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.PolicyList{Policies: make([]api.Policy, 0, len(settings))}
	for _, st := range settings {
		out.Policies = append(out.Policies, policyView(st.Key, st.Value))
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
		s.fail(w, r, errPolicyAdminOff)
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

// jsonMarshalRedacted encodes audit metadata with anything secret-looking
// withheld (Redact), for the CSV export.
func jsonMarshalRedacted(md map[string]any) ([]byte, error) { return json.Marshal(redact.Redact(md)) }
