package httphost

import (
	"net/http"
	"sort"
	"time"

	"github.com/gpuaas/gpuaas/core/admin"
	"github.com/gpuaas/gpuaas/core/admin/adminsvc"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/hosts/http/api"
)

// errAdminOff answers the operators' user, tenant and ops routes on a host
// built without them (Deps.Admin nil).
var errAdminOff = fault.Unavailable("operator administration is not configured on this host", nil)

func (s *Server) adminReady(w http.ResponseWriter, r *http.Request) bool {
	if s.d.Admin == nil {
		s.fail(w, r, errAdminOff)
		return false
	}
	return true
}

func adminUserView(row admin.UserRow) api.AdminUser {
	v := api.AdminUser{Id: row.User.ID, Email: row.User.Email, DisplayName: row.User.DisplayName,
		Role: api.AdminUserRole(row.User.Role), Status: api.AdminUserStatus(row.User.Status), Pending: row.Pending,
		CreatedAt: row.User.CreatedAt, TenantId: optional(row.TenantID), TenantName: optional(row.TenantName)}
	if row.TenantRole != "" {
		role := api.AdminUserTenantRole(row.TenantRole)
		v.TenantRole = &role
	}
	return v
}

func adminTenantView(t admin.TenantRow) api.AdminTenant {
	return api.AdminTenant{Id: t.Tenant.ID, Name: t.Tenant.Name, Slug: t.Tenant.Slug, Members: t.Members,
		BalanceMinor: t.BalanceMinor, Currency: t.Currency, LiveAllocations: t.LiveAllocs, CreatedAt: t.Tenant.CreatedAt}
}

func allocationViews(as []allocation.Allocation) []api.Allocation {
	out := make([]api.Allocation, 0, len(as))
	for _, a := range as {
		out = append(out, allocationView(a, nil))
	}
	return out
}

// AdminListUsers implements [api.ServerInterface].
func (h *handlers) AdminListUsers(w http.ResponseWriter, r *http.Request, params api.AdminListUsersParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	f := admin.UserFilter{Email: deref(params.Email), TenantID: deref(params.TenantId), Cursor: deref(params.Cursor)}
	if params.Status != nil {
		f.Status = identity.UserStatus(*params.Status)
	}
	if params.Limit != nil {
		f.Limit = *params.Limit
	}
	rows, next, err := s.d.Admin.ListUsers(r.Context(), p, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.AdminUserPage{Users: make([]api.AdminUser, 0, len(rows)), NextCursor: optional(next)}
	for _, row := range rows {
		out.Users = append(out.Users, adminUserView(row))
	}
	writeJSON(w, http.StatusOK, out)
}

// AdminCreateUser implements [api.ServerInterface].
func (h *handlers) AdminCreateUser(w http.ResponseWriter, r *http.Request, _ api.AdminCreateUserParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	var req api.AdminCreateUserRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.adminReady(w, r) {
		return
	}
	cr := adminsvc.CreateUserRequest{Email: req.Email, DisplayName: deref(req.DisplayName), TenantID: deref(req.TenantId),
		NewTenantName: deref(req.NewTenantName)}
	if req.Role != nil {
		cr.Role = identity.TenantRole(*req.Role)
	}
	row, err := s.d.Admin.CreateUser(r.Context(), p, cr)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, adminUserView(row))
}

// AdminGetUser implements [api.ServerInterface].
func (h *handlers) AdminGetUser(w http.ResponseWriter, r *http.Request, userID api.UserIDPath) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	d, err := s.d.Admin.User(r.Context(), p, userID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.AdminUserDetail{User: adminUserView(d.Row), Balance: balanceView(d.Balance),
		Projects: make([]api.AdminProjectRole, 0, len(d.Projects)), LiveAllocations: allocationViews(d.LiveAllocations)}
	for _, pr := range d.Projects {
		out.Projects = append(out.Projects, api.AdminProjectRole{Id: pr.Project.ID, Name: pr.Project.Name,
			Role: api.AdminProjectRoleRole(pr.Role)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handlers) setSuspended(w http.ResponseWriter, r *http.Request, userID string, suspend bool) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	row, err := s.d.Admin.SetSuspended(r.Context(), p, userID, suspend)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, adminUserView(row))
}

// AdminSuspendUser implements [api.ServerInterface].
func (h *handlers) AdminSuspendUser(w http.ResponseWriter, r *http.Request, userID api.UserIDPath, _ api.AdminSuspendUserParams) {
	h.setSuspended(w, r, userID, true)
}

// AdminUnsuspendUser implements [api.ServerInterface].
func (h *handlers) AdminUnsuspendUser(w http.ResponseWriter, r *http.Request, userID api.UserIDPath, _ api.AdminUnsuspendUserParams) {
	h.setSuspended(w, r, userID, false)
}

// AdminListTenants implements [api.ServerInterface].
func (h *handlers) AdminListTenants(w http.ResponseWriter, r *http.Request, params api.AdminListTenantsParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	f := admin.TenantFilter{Name: deref(params.Name), Cursor: deref(params.Cursor)}
	if params.Limit != nil {
		f.Limit = *params.Limit
	}
	rows, next, err := s.d.Admin.ListTenants(r.Context(), p, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.AdminTenantPage{Tenants: make([]api.AdminTenant, 0, len(rows)), NextCursor: optional(next)}
	for _, t := range rows {
		out.Tenants = append(out.Tenants, adminTenantView(t))
	}
	writeJSON(w, http.StatusOK, out)
}

// AdminGetTenant implements [api.ServerInterface].
func (h *handlers) AdminGetTenant(w http.ResponseWriter, r *http.Request, tenantID api.TenantIDPath) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	d, err := s.d.Admin.Tenant(r.Context(), p, tenantID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.AdminTenantDetail{Tenant: adminTenantView(d.Row), Balance: balanceView(d.Balance),
		Projects: make([]api.AdminProjectRole, 0, len(d.Projects)), Members: make([]api.AdminMember, 0, len(d.Members)),
		LiveAllocations: allocationViews(d.LiveAllocations), PolicyOverrides: d.Overrides}
	if out.PolicyOverrides == nil {
		out.PolicyOverrides = map[string]string{}
	}
	for _, pr := range d.Projects {
		// An operator sees every project as its admins would.
		out.Projects = append(out.Projects, api.AdminProjectRole{Id: pr.ID, Name: pr.Name, Role: api.AdminProjectRoleRoleAdmin})
	}
	for _, m := range d.Members {
		out.Members = append(out.Members, api.AdminMember{User: adminUserView(admin.UserRow{User: m.User, TenantID: tenantID,
			TenantName: d.Row.Tenant.Name, TenantRole: m.Role, Pending: m.User.Issuer == ""}), Role: api.AdminMemberRole(m.Role)})
	}
	writeJSON(w, http.StatusOK, out)
}

// AdminListTenantLedger implements [api.ServerInterface].
func (h *handlers) AdminListTenantLedger(w http.ResponseWriter, r *http.Request, tenantID api.TenantIDPath,
	params api.AdminListTenantLedgerParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	limit, err := listLimit(params.Limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pg, err := s.d.Admin.TenantLedger(r.Context(), p, tenantID, deref(params.Cursor), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := ledgerPageView(pg.Entries, pg.Next)
	for i := range out.Entries {
		if left, ok := pg.Refundable[out.Entries[i].Id]; ok {
			out.Entries[i].RefundableMinor = &left
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func tenantPolicyView(tp adminsvc.TenantPolicy) api.TenantPolicy {
	return api.TenantPolicy{Key: tp.Key.Name, Type: api.TenantPolicyType(tp.Key.Type), Default: tp.Key.Default, Value: tp.Value,
		Overridden: tp.Overridden, Description: tp.Key.Description}
}

// AdminListTenantPolicies implements [api.ServerInterface].
func (h *handlers) AdminListTenantPolicies(w http.ResponseWriter, r *http.Request, tenantID api.TenantIDPath) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	ps, err := s.d.Admin.TenantPolicies(r.Context(), p, tenantID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.TenantPolicyList{Policies: make([]api.TenantPolicy, 0, len(ps))}
	for _, tp := range ps {
		out.Policies = append(out.Policies, tenantPolicyView(tp))
	}
	writeJSON(w, http.StatusOK, out)
}

// AdminSetTenantPolicy implements [api.ServerInterface].
func (h *handlers) AdminSetTenantPolicy(w http.ResponseWriter, r *http.Request, tenantID api.TenantIDPath, _ api.AdminSetTenantPolicyParams) {
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
	if !s.adminReady(w, r) {
		return
	}
	tp, err := s.d.Admin.SetTenantPolicy(r.Context(), p, tenantID, req.Key, &req.Value)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tenantPolicyView(tp))
}

// AdminResetTenantPolicy implements [api.ServerInterface].
func (h *handlers) AdminResetTenantPolicy(w http.ResponseWriter, r *http.Request, tenantID api.TenantIDPath, key string,
	_ api.AdminResetTenantPolicyParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	tp, err := s.d.Admin.SetTenantPolicy(r.Context(), p, tenantID, key, nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tenantPolicyView(tp))
}

// auditCSVHeader is the audit export's first row.
var auditCSVHeader = []string{"id", "occurred_at", "actor_type", "actor_id", "tenant_id", "project_id", "action",
	"resource_type", "resource_id", "outcome", "correlation_id", "source_ip", "metadata"}

// ExportAuditLog implements [api.ServerInterface]: the same filters as the
// list, streamed as CSV with the formula guard on every text cell.
func (h *handlers) ExportAuditLog(w http.ResponseWriter, r *http.Request, params api.ExportAuditLogParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	f := audit.Filter{TenantID: deref(params.TenantId), ActorID: deref(params.ActorId), Action: deref(params.Action),
		ResourceType: deref(params.ResourceType), ResourceID: deref(params.ResourceId)}
	if params.Since != nil {
		f.Since = *params.Since
	}
	if params.Until != nil {
		f.Until = *params.Until
	}
	name := "audit-" + s.d.Clock.Now().UTC().Format("2006-01-02") + ".csv"
	s.streamCSV(w, r, name, auditCSVHeader, "audit export", func(write func([]string) error) error {
		return s.audit.Export(r.Context(), p, f, func(e audit.Event) error {
			md := ""
			if len(e.Metadata) > 0 {
				if b, err := jsonMarshalRedacted(e.Metadata); err == nil {
					md = string(b)
				}
			}
			return write([]string{e.ID, e.OccurredAt.UTC().Format(time.RFC3339Nano), string(e.ActorType), csvText(e.ActorID),
				e.TenantID, e.ProjectID, csvText(e.Action), csvText(e.ResourceType), csvText(e.ResourceID), string(e.Outcome),
				csvText(e.CorrelationID), csvText(e.SourceIP), csvText(md)})
		})
	})
}

// AdminOps implements [api.ServerInterface].
func (h *handlers) AdminOps(w http.ResponseWriter, r *http.Request, params api.AdminOpsParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	var stuck time.Duration
	if params.StuckAfterMinutes != nil {
		stuck = time.Duration(*params.StuckAfterMinutes) * time.Minute
	}
	v, err := s.d.Admin.Ops(r.Context(), p, stuck)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	counts := func(cs []admin.Count) []api.OpsCount {
		out := make([]api.OpsCount, 0, len(cs))
		for _, c := range cs {
			out = append(out, api.OpsCount{Name: c.Name, Count: c.Count})
		}
		return out
	}
	out := api.OpsView{At: v.At, NodesByState: counts(v.Snapshot.NodesByState), NodesByHealth: counts(v.Snapshot.NodesByHealth),
		AllocationsByState: counts(v.Snapshot.AllocationsByState), Entries: make([]api.OpsEntry, 0, len(v.Entries)),
		FailedEvents: make([]api.FailedEvent, 0, len(v.Snapshot.FailedEvents)), Consumers: make([]api.ConsumerLag, 0, len(v.Consumers))}
	for _, e := range v.Entries {
		out.Entries = append(out.Entries, api.OpsEntry{Name: e.Name, Status: api.OpsEntryStatus(e.Status), Value: e.Value,
			Detail: optional(e.Detail), Runbook: optional(e.Runbook)})
	}
	for _, f := range v.Snapshot.FailedEvents {
		out.FailedEvents = append(out.FailedEvents, failedEventView(f))
	}
	for _, c := range v.Consumers {
		out.Consumers = append(out.Consumers, api.ConsumerLag{Stream: c.Stream, Durable: c.Durable, Pending: int64(c.Pending),
			AckPending: c.AckPending, Redelivered: c.Redelivered})
	}
	writeJSON(w, http.StatusOK, out)
}

func failedEventView(f admin.FailedEvent) api.FailedEvent {
	return api.FailedEvent{Id: f.ID, Subject: f.Subject, OccurredAt: f.OccurredAt, RetryCount: f.RetryCount, LastError: f.LastError}
}

// AdminListRunbooks implements [api.ServerInterface].
func (h *handlers) AdminListRunbooks(w http.ResponseWriter, r *http.Request) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	rbs, err := s.d.Admin.Runbooks(p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.RunbookList{Runbooks: make([]api.Runbook, 0, len(rbs))}
	for _, rb := range rbs {
		out.Runbooks = append(out.Runbooks, api.Runbook{Id: rb.ID, Title: rb.Title, Url: "doc/runbook.md#" + rb.Anchor})
	}
	sort.Slice(out.Runbooks, func(i, j int) bool { return out.Runbooks[i].Id < out.Runbooks[j].Id })
	writeJSON(w, http.StatusOK, out)
}

// AdminRetryEvent implements [api.ServerInterface].
func (h *handlers) AdminRetryEvent(w http.ResponseWriter, r *http.Request, eventID string, _ api.AdminRetryEventParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.adminReady(w, r) {
		return
	}
	ev, err := s.d.Admin.RetryEvent(r.Context(), p, eventID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, failedEventView(ev))
}
