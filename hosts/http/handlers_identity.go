package httphost

import (
	"net/http"
	"strings"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/hosts/http/api"
)

// handlers implements the generated server interface. Each method decodes,
// calls one use case (authorisation already ran in the middleware, and the
// use cases check again) and encodes.
type handlers struct{ s *Server }

var _ api.ServerInterface = (*handlers)(nil)

// principal returns the caller; the authenticate layer guarantees one on
// every non-public route, so its absence is a wiring bug (500).
func (s *Server) principal(w http.ResponseWriter, r *http.Request) (identity.Principal, bool) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		s.fail(w, r, fault.Internal(errNoPrincipal))
	}
	return p, ok
}

type wiringError string

func (e wiringError) Error() string { return string(e) }

const errNoPrincipal = wiringError("httphost: handler reached without a principal")

func userView(u identity.User) api.User {
	return api.User{Id: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: api.UserRole(u.Role),
		ResourceId: resource.New("", "", "", resource.TypeUser, u.ID).String()}
}

func projectView(v identitysvc.ProjectView) api.Project {
	return api.Project{Id: v.Project.ID, Name: v.Project.Name, IsDefault: v.Project.IsDefault,
		Role:       api.ProjectRole(v.Role),
		ResourceId: resource.New("", v.Project.TenantID, v.Project.ID, resource.TypeProject, v.Project.ID).String()}
}

func projectViews(vs []identitysvc.ProjectView) []api.Project {
	out := make([]api.Project, 0, len(vs))
	for _, v := range vs {
		out = append(out, projectView(v))
	}
	return out
}

// GetMe implements [api.ServerInterface].
func (h *handlers) GetMe(w http.ResponseWriter, r *http.Request, _ api.GetMeParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	prof, err := s.d.Identity.Me(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Me{
		User: userView(prof.User),
		Tenant: api.Tenant{Id: prof.Tenant.ID, Name: prof.Tenant.Name, Slug: prof.Tenant.Slug,
			Role:       api.TenantRole(prof.TenantRole),
			ResourceId: resource.New("", prof.Tenant.ID, "", resource.TypeTenant, prof.Tenant.ID).String()},
		Projects: projectViews(prof.Projects),
	})
}

// ListProjects implements [api.ServerInterface].
func (h *handlers) ListProjects(w http.ResponseWriter, r *http.Request, _ api.ListProjectsParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	vs, err := s.d.Identity.ListProjects(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ProjectList{Projects: projectViews(vs)})
}

// CreateProject implements [api.ServerInterface].
func (h *handlers) CreateProject(w http.ResponseWriter, r *http.Request, _ api.CreateProjectParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	var req api.CreateProjectRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	pr, err := s.d.Identity.CreateProject(r.Context(), p, req.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The creator becomes the project's admin (identitysvc.CreateProject).
	writeJSON(w, http.StatusCreated, projectView(identitysvc.ProjectView{Project: pr, Role: identity.ProjectAdmin}))
}

// ListProjectMembers implements [api.ServerInterface].
func (h *handlers) ListProjectMembers(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, _ api.ListProjectMembersParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	ms, err := s.d.Identity.ListMembers(r.Context(), p, projectID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.MemberList{Members: make([]api.Member, 0, len(ms))}
	for _, m := range ms {
		out.Members = append(out.Members, api.Member{UserId: m.User.ID, Email: m.User.Email,
			DisplayName: m.User.DisplayName, Role: api.MemberRole(m.Role)})
	}
	writeJSON(w, http.StatusOK, out)
}

// AddProjectMember implements [api.ServerInterface].
func (h *handlers) AddProjectMember(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, _ api.AddProjectMemberParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	var req api.AddMemberRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.d.Identity.AddMember(r.Context(), p, projectID, identitysvc.NewMember{
		UserID: deref(req.UserId), Email: deref(req.Email), Role: identity.ProjectRole(req.Role)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.ProjectMembership{ProjectId: m.ProjectID, UserId: m.UserID,
		Role: api.ProjectMembershipRole(m.Role)})
}

// RemoveProjectMember implements [api.ServerInterface].
func (h *handlers) RemoveProjectMember(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, userID string, _ api.RemoveProjectMemberParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	if err := s.d.Identity.RemoveMember(r.Context(), p, projectID, userID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// CreateInvitation implements [api.ServerInterface].
func (h *handlers) CreateInvitation(w http.ResponseWriter, r *http.Request, _ api.CreateInvitationParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	var req api.InvitationRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	role := identity.TenantRole(req.Role)
	if err := s.d.Identity.Invite(r.Context(), p, req.Email, role); err != nil {
		s.fail(w, r, err)
		return
	}
	// Invite stores the address trimmed and lower-cased; answer with what it stored.
	writeJSON(w, http.StatusCreated, api.Invitation{TenantId: p.TenantID,
		Email: strings.ToLower(strings.TrimSpace(req.Email)), Role: api.InvitationRole(role)})
}
