package identitysvc

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/cache"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/core/text"
	"github.com/gpuaas/gpuaas/ports"
)

// Deps are the ports the service needs.
type Deps struct {
	Tx       ports.TxRunner
	Users    ports.UserStore
	Tenants  ports.TenantStore
	Projects ports.ProjectStore
	Members  ports.MembershipStore
	Audit    ports.AuditLog
	Outbox   ports.Outbox
	Clock    ports.Clock
	IDs      ports.IDs
	// Pending, when set, lets a user an operator created (by email) take
	// their account at their first sign-in. Optional.
	Pending ports.PendingUsers
	// Changes, when set, lets ProjectAccess reuse what it read about a
	// project and the caller's membership while the access generation
	// stays where it was (any membership or project change moves it).
	// Optional: without it every call reads the store.
	Changes ports.AccessChanges
}

// Bounds of the project-access cache (with Deps.Changes).
const (
	// accessCacheSize bounds the entries (one per project and user).
	accessCacheSize = 10000
	// accessCacheTTL is the safety net behind the change feed: an entry is
	// read again after this long even when no change was announced.
	accessCacheTTL = 30 * time.Second
)

// Service implements the identity use cases.
type Service struct {
	d Deps
	// access caches ProjectAccess's reads by project and user (nil
	// without Deps.Changes).
	access *cache.Bounded[accessKey, accessEntry]
}

type accessKey struct{ project, user string }

type accessEntry struct {
	project identity.Project
	role    identity.ProjectRole // "" when the user is not a member
	gen     uint64
	at      time.Time
}

// New checks that every dependency is present.
func New(d Deps) (*Service, error) {
	if d.Tx == nil || d.Users == nil || d.Tenants == nil || d.Projects == nil || d.Members == nil ||
		d.Audit == nil || d.Outbox == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("identitysvc: every dependency is required")
	}
	s := &Service{d: d}
	if d.Changes != nil {
		s.access = cache.NewBounded[accessKey, accessEntry](accessCacheSize)
	}
	return s, nil
}

// DefaultProjectName is the project every new tenant starts with.
const DefaultProjectName = "default"

// SignIn upserts the user behind verified claims. A user signing in for the
// first time joins the tenant that invited their email, or else gets a tenant
// of their own with a default project. Everything happens in one
// transaction, with audit and outbox rows.
func (s *Service) SignIn(ctx context.Context, c identity.Claims) (identity.Principal, error) {
	if c.Issuer == "" || c.Subject == "" {
		return identity.Principal{}, fault.Unauthenticated(fault.CodeTokenInvalid, "token has no issuer or subject")
	}
	var p identity.Principal
	email := strings.ToLower(strings.TrimSpace(text.Clean(c.Email, identity.EmailMaxLength)))
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		now := s.d.Clock.Now()
		claimed, err := s.claimPending(ctx, c, email)
		if err != nil {
			return err
		}
		u, created, err := s.d.Users.UpsertByIdentity(ctx, identity.User{
			ID: s.d.IDs.NewID(), Issuer: c.Issuer, Subject: c.Subject,
			// The provider's profile is text from outside: cleaned to the
			// text policy (never refused: the person did nothing wrong).
			Email:       email,
			DisplayName: strings.TrimSpace(text.Clean(c.Name, identity.DisplayNameMaxLength)),
			Role:        identity.MapRole(c.Roles), Status: identity.UserActive, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return err
		}
		if u.Status != identity.UserActive {
			return fault.Forbidden("this account is suspended")
		}
		m, err := s.d.Members.TenantMembershipOf(ctx, u.ID)
		switch {
		case err == nil:
		case fault.IsKind(err, fault.KindNotFound):
			m, err = s.provisionTenant(ctx, u)
			if err != nil {
				return err
			}
		default:
			return err
		}
		p = identity.Principal{User: u, TenantID: m.TenantID, TenantRole: m.Role}
		if created || claimed {
			if err := s.d.Audit.Record(ctx, s.auditEvent(ctx, p, "auth.first_sign_in", resource.TypeUser, u.ID, "")); err != nil {
				return err
			}
		}
		return nil
	})
	return p, err
}

// claimPending binds an operator-created user with this email to the
// identity signing in for the first time (the same trust in the issuer's
// email as an invitation). claimed reports that it did.
func (s *Service) claimPending(ctx context.Context, c identity.Claims, email string) (bool, error) {
	if s.d.Pending == nil || email == "" {
		return false, nil
	}
	_, err := s.d.Users.GetByIdentity(ctx, c.Issuer, c.Subject)
	if !fault.IsKind(err, fault.KindNotFound) {
		return false, err // known already (or a database error)
	}
	_, err = s.d.Pending.ClaimPending(ctx, email, c.Issuer, c.Subject)
	switch {
	case err == nil:
		return true, nil
	case fault.IsKind(err, fault.KindNotFound):
		return false, nil
	default:
		return false, err
	}
}

// provisionTenant gives a user with no tenant membership one: the inviting
// tenant's, or a new tenant with a default project.
func (s *Service) provisionTenant(ctx context.Context, u identity.User) (identity.TenantMembership, error) {
	now := s.d.Clock.Now()
	if u.Email != "" {
		inv, err := s.d.Members.TakeInvitation(ctx, u.Email)
		switch {
		case err == nil:
			m := identity.TenantMembership{TenantID: inv.TenantID, UserID: u.ID, Role: inv.Role, CreatedAt: now}
			if err := s.d.Members.AddTenantMember(ctx, m); err != nil {
				return m, err
			}
			// Invited users join the tenant's default project as members.
			projects, err := s.d.Projects.ListProjectsByTenant(ctx, inv.TenantID)
			if err != nil {
				return m, err
			}
			for _, pr := range projects {
				if pr.IsDefault {
					if err := s.d.Members.AddProjectMember(ctx, identity.ProjectMembership{
						ProjectID: pr.ID, UserID: u.ID, Role: identity.ProjectMember, CreatedAt: now}); err != nil {
						return m, err
					}
				}
			}
			return m, s.emit(ctx, event.UserSignedUp, inv.TenantID, "", "user", u.ID,
				map[string]any{"user_id": u.ID, "tenant_id": inv.TenantID, "invited": true})
		case fault.IsKind(err, fault.KindNotFound):
		default:
			return identity.TenantMembership{}, err
		}
	}
	name := u.DisplayName
	if name == "" {
		name = u.Email
	}
	if name == "" {
		name = "tenant"
	}
	if len([]rune(name)) > 80 {
		name = string([]rune(name)[:80])
	}
	t := identity.Tenant{ID: s.d.IDs.NewID(), Name: name + "'s organisation", CreatedAt: now}
	t.Slug = identity.Slugify(name) + "-" + t.ID[len(t.ID)-8:]
	if err := s.d.Tenants.CreateTenant(ctx, t); err != nil {
		return identity.TenantMembership{}, err
	}
	m := identity.TenantMembership{TenantID: t.ID, UserID: u.ID, Role: identity.TenantOwner, CreatedAt: now}
	if err := s.d.Members.AddTenantMember(ctx, m); err != nil {
		return m, err
	}
	pr := identity.Project{ID: s.d.IDs.NewID(), TenantID: t.ID, Name: DefaultProjectName, IsDefault: true, CreatedAt: now}
	if err := s.d.Projects.CreateProject(ctx, pr); err != nil {
		return m, err
	}
	if err := s.d.Members.AddProjectMember(ctx, identity.ProjectMembership{
		ProjectID: pr.ID, UserID: u.ID, Role: identity.ProjectAdmin, CreatedAt: now}); err != nil {
		return m, err
	}
	return m, s.emit(ctx, event.UserSignedUp, t.ID, pr.ID, "user", u.ID,
		map[string]any{"user_id": u.ID, "tenant_id": t.ID, "default_project_id": pr.ID, "invited": false})
}

// Resolve returns the principal for a verified token. A valid token of a
// user the platform has not seen yet signs them in, so tokens minted by the
// issuer directly (CLI, service clients) work without a prior exchange.
//
// The user and their tenant membership are one read when the UserStore is
// a ports.PrincipalReader.
func (s *Service) Resolve(ctx context.Context, c identity.Claims) (identity.Principal, error) {
	u, m, hasTenant, err := s.userAndTenant(ctx, c.Issuer, c.Subject)
	if fault.IsKind(err, fault.KindNotFound) {
		return s.SignIn(ctx, c)
	}
	if err != nil {
		return identity.Principal{}, err
	}
	if u.Status != identity.UserActive {
		return identity.Principal{}, fault.Forbidden("this account is suspended")
	}
	// The token is the source of truth for the platform role.
	u.Role = identity.MapRole(c.Roles)
	if !hasTenant {
		return s.SignIn(ctx, c)
	}
	return identity.Principal{User: u, TenantID: m.TenantID, TenantRole: m.Role}, nil
}

// userAndTenant reads the user with an identity and their tenant
// membership: one query through a ports.PrincipalReader, else two.
func (s *Service) userAndTenant(ctx context.Context, issuer, subject string) (identity.User, identity.TenantMembership, bool, error) {
	if r, ok := s.d.Users.(ports.PrincipalReader); ok {
		return r.UserAndTenantByIdentity(ctx, issuer, subject)
	}
	u, err := s.d.Users.GetByIdentity(ctx, issuer, subject)
	if err != nil {
		return identity.User{}, identity.TenantMembership{}, false, err
	}
	if u.Status != identity.UserActive {
		return u, identity.TenantMembership{}, false, nil
	}
	m, err := s.d.Members.TenantMembershipOf(ctx, u.ID)
	if fault.IsKind(err, fault.KindNotFound) {
		return u, identity.TenantMembership{}, false, nil
	}
	return u, m, err == nil, err
}

// PrincipalOf resolves an active user by id with their tenant membership:
// the holder behind an API key. Suspended users are Forbidden; a user
// without a tenant is NotFound.
func (s *Service) PrincipalOf(ctx context.Context, userID string) (identity.Principal, error) {
	u, err := s.d.Users.Get(ctx, userID)
	if err != nil {
		return identity.Principal{}, err
	}
	if u.Status != identity.UserActive {
		return identity.Principal{}, fault.Forbidden("this account is suspended")
	}
	m, err := s.d.Members.TenantMembershipOf(ctx, u.ID)
	if err != nil {
		return identity.Principal{}, err
	}
	return identity.Principal{User: u, TenantID: m.TenantID, TenantRole: m.Role}, nil
}

// ProjectView is a project with the caller's role in it.
type ProjectView struct {
	Project identity.Project
	Role    identity.ProjectRole
}

// Profile is what GET /users/me shows.
type Profile struct {
	User       identity.User
	Tenant     identity.Tenant
	TenantRole identity.TenantRole
	Projects   []ProjectView
}

// Me returns the caller's user, tenant and projects with roles.
func (s *Service) Me(ctx context.Context, p identity.Principal) (Profile, error) {
	t, err := s.d.Tenants.GetTenant(ctx, p.TenantID)
	if err != nil {
		return Profile{}, err
	}
	projects, err := s.ListProjects(ctx, p)
	if err != nil {
		return Profile{}, err
	}
	return Profile{User: p.User, Tenant: t, TenantRole: p.TenantRole, Projects: projects}, nil
}

// ListProjects lists the projects the caller may see: all of the tenant's
// for tenant admins, else those they are a member of.
//
// A machine credential sees its one project.
func (s *Service) ListProjects(ctx context.Context, p identity.Principal) ([]ProjectView, error) {
	if p.Machine != nil {
		pr, role, err := s.ProjectAccess(ctx, p, p.Machine.ProjectID)
		if fault.IsKind(err, fault.KindNotFound) {
			return []ProjectView{}, nil
		}
		if err != nil {
			return nil, err
		}
		return []ProjectView{{Project: pr, Role: role}}, nil
	}
	mine, err := s.d.Projects.ListProjectsForUser(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	out := make([]ProjectView, 0, len(mine))
	seen := map[string]bool{}
	for _, pr := range mine {
		if pr.TenantID != p.TenantID {
			continue
		}
		m, err := s.d.Members.ProjectMembership(ctx, pr.ID, p.User.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, ProjectView{Project: pr, Role: m.Role})
		seen[pr.ID] = true
	}
	if p.CanManageTenant() {
		all, err := s.d.Projects.ListProjectsByTenant(ctx, p.TenantID)
		if err != nil {
			return nil, err
		}
		for _, pr := range all {
			if !seen[pr.ID] {
				out = append(out, ProjectView{Project: pr, Role: identity.ProjectAdmin})
			}
		}
	}
	return out, nil
}

// ProjectAccess returns the caller's effective role in a project. A project
// of another tenant, or one the caller is not a member of, is NotFound (not
// Forbidden), so ids do not leak across tenants.
//
// A machine credential (service account, API key) reaches its one project
// only: any other is NotFound. A service account's role is its own; an API
// key acts with its holder's role, which the holder's memberships decide
// as for the holder signed in.
//
// What it reads — the project and the caller's membership, one query when
// the ProjectStore is a ports.ProjectAccessReader — is cached per project
// and user while the access generation (Deps.Changes) stays where it was;
// the decision is made again from it on every call.
func (s *Service) ProjectAccess(ctx context.Context, p identity.Principal, projectID string) (identity.Project, identity.ProjectRole, error) {
	if p.Machine != nil && p.Machine.ProjectID != projectID {
		return identity.Project{}, "", fault.NotFound("project", "")
	}
	pr, member, err := s.projectAndRole(ctx, projectID, p.User.ID)
	if err != nil || pr.TenantID != p.TenantID {
		if err == nil || fault.IsKind(err, fault.KindNotFound) || fault.IsKind(err, fault.KindInvalid) {
			return identity.Project{}, "", fault.NotFound("project", "")
		}
		return identity.Project{}, "", err
	}
	if m := p.Machine; m != nil && m.Kind == identity.CallerServiceAccount {
		return pr, m.ProjectRole, nil
	}
	if p.TenantRole.CanManage() { // an API key of a tenant admin acts as its holder in the project
		return pr, identity.ProjectAdmin, nil
	}
	if member == "" {
		return identity.Project{}, "", fault.NotFound("project", "")
	}
	return pr, member, nil
}

// projectAndRole reads a project and the user's role in it ("" when not a
// member), through the cache when there is one. Only a project that
// exists is cached.
func (s *Service) projectAndRole(ctx context.Context, projectID, userID string) (identity.Project, identity.ProjectRole, error) {
	var gen uint64
	now := s.d.Clock.Now()
	k := accessKey{project: projectID, user: userID}
	if s.access != nil {
		gen = s.d.Changes.Generation() // before the read: a change during it leaves the entry stale
		if e, ok := s.access.Get(k); ok && gen != 0 && e.gen == gen && !now.Before(e.at) && now.Sub(e.at) < accessCacheTTL {
			return e.project, e.role, nil
		}
	}
	pr, role, err := s.readProjectAndRole(ctx, projectID, userID)
	if err != nil {
		return pr, role, err
	}
	// Never cache what a transaction read: it may not commit.
	if s.access != nil && gen != 0 && !inTransaction(ctx, s.d.Tx) {
		s.access.Put(k, accessEntry{project: pr, role: role, gen: gen, at: now})
	}
	return pr, role, nil
}

// inTransaction reports whether ctx carries a transaction of tx, when tx
// can tell (postgres.DB can); a runner that cannot is assumed to.
func inTransaction(ctx context.Context, tx ports.TxRunner) bool {
	r, ok := tx.(interface{ InTransaction(context.Context) bool })
	return !ok || r.InTransaction(ctx)
}

func (s *Service) readProjectAndRole(ctx context.Context, projectID, userID string) (identity.Project, identity.ProjectRole, error) {
	if r, ok := s.d.Projects.(ports.ProjectAccessReader); ok {
		return r.ProjectAndRole(ctx, projectID, userID)
	}
	pr, err := s.d.Projects.GetProject(ctx, projectID)
	if err != nil {
		return pr, "", err
	}
	m, err := s.d.Members.ProjectMembership(ctx, projectID, userID)
	if fault.IsKind(err, fault.KindNotFound) {
		return pr, "", nil
	}
	if err != nil {
		return identity.Project{}, "", err
	}
	return pr, m.Role, nil
}

// CreateProject creates a project in the caller's tenant. Tenant owners and
// admins only; the creator becomes its admin.
func (s *Service) CreateProject(ctx context.Context, p identity.Principal, name string) (identity.Project, error) {
	if err := identity.ValidateName("name", name); err != nil {
		return identity.Project{}, err
	}
	if !p.CanManageTenant() {
		return identity.Project{}, fault.Forbidden("only tenant owners and admins can create projects")
	}
	pr := identity.Project{ID: s.d.IDs.NewID(), TenantID: p.TenantID, Name: name, CreatedAt: s.d.Clock.Now()}
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Projects.CreateProject(ctx, pr); err != nil {
			if fault.IsKind(err, fault.KindConflict) {
				fe := fault.Conflict("project_name_taken", "a project with this name already exists").With("name", name)
				fe.Field = "name"
				return fe
			}
			return err
		}
		if err := s.d.Members.AddProjectMember(ctx, identity.ProjectMembership{
			ProjectID: pr.ID, UserID: p.User.ID, Role: identity.ProjectAdmin, CreatedAt: pr.CreatedAt}); err != nil {
			return err
		}
		if err := s.d.Audit.Record(ctx, s.auditEvent(ctx, p, "project.create", resource.TypeProject, pr.ID, pr.ID)); err != nil {
			return err
		}
		return s.emit(ctx, event.ProjectCreated, p.TenantID, pr.ID, "project", pr.ID,
			map[string]any{"project_id": pr.ID, "name": pr.Name, "created_by": p.User.ID})
	})
	return pr, err
}

// Member is a project member with the user's public details.
type Member struct {
	User identity.User
	Role identity.ProjectRole
}

// ListMembers lists a project's members; any member may read them.
func (s *Service) ListMembers(ctx context.Context, p identity.Principal, projectID string) ([]Member, error) {
	if _, _, err := s.ProjectAccess(ctx, p, projectID); err != nil {
		return nil, err
	}
	ms, err := s.d.Members.ListProjectMembers(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		u, err := s.d.Users.Get(ctx, m.UserID)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{User: u, Role: m.Role})
	}
	return out, nil
}

// NewMember names the user AddMember adds — by id or by email, exactly
// one — and the project role it gives them.
type NewMember struct {
	UserID string
	Email  string
	Role   identity.ProjectRole
}

// AddMember adds a user of the same tenant to a project. Tenant admins only.
// A user named by email is looked up among the tenant's users (a tenant
// admin sees their colleagues' emails, not their ids); a user of another
// tenant, or nobody, is NotFound either way.
func (s *Service) AddMember(ctx context.Context, p identity.Principal, projectID string, m NewMember) (identity.ProjectMembership, error) {
	if !m.Role.Valid() {
		return identity.ProjectMembership{}, fault.Invalid("role", "role must be admin, member or viewer")
	}
	switch {
	case m.UserID != "" && m.Email != "":
		return identity.ProjectMembership{}, fault.Invalid("user_id", "give the user's id or their email, not both")
	case m.UserID == "" && m.Email == "":
		return identity.ProjectMembership{}, fault.Invalid("user_id", "give the user's id or their email")
	case m.Email != "":
		email, err := normalEmail(m.Email)
		if err != nil {
			return identity.ProjectMembership{}, err
		}
		m.Email = email
	default:
		if err := identity.ValidateID("user_id", m.UserID); err != nil {
			return identity.ProjectMembership{}, err
		}
	}
	if _, _, err := s.ProjectAccess(ctx, p, projectID); err != nil {
		return identity.ProjectMembership{}, err
	}
	if !p.CanManageTenant() {
		return identity.ProjectMembership{}, fault.Forbidden("only tenant owners and admins can manage members")
	}
	var added identity.ProjectMembership
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		var tm identity.TenantMembership
		var err error
		if m.Email != "" {
			tm, err = s.d.Members.TenantMemberByEmail(ctx, p.TenantID, m.Email)
		} else {
			tm, err = s.d.Members.TenantMembershipOf(ctx, m.UserID)
		}
		if err != nil || tm.TenantID != p.TenantID {
			if err == nil || fault.IsKind(err, fault.KindNotFound) || fault.IsKind(err, fault.KindInvalid) {
				nf := fault.NotFound("user", "")
				if m.Email != "" {
					nf.Message = "no user of your organisation has this email: invite them (they join at their first sign-in)"
				}
				return nf
			}
			return err
		}
		added = identity.ProjectMembership{ProjectID: projectID, UserID: tm.UserID, Role: m.Role, CreatedAt: s.d.Clock.Now()}
		if err := s.d.Members.AddProjectMember(ctx, added); err != nil {
			if fault.IsKind(err, fault.KindConflict) {
				return fault.Conflict("already_member", "the user is already a member of this project")
			}
			return err
		}
		ev := s.auditEvent(ctx, p, "project.member_add", resource.TypeProject, projectID, projectID)
		ev.Metadata = map[string]any{"user_id": tm.UserID, "role": string(m.Role)}
		if err := s.d.Audit.Record(ctx, ev); err != nil {
			return err
		}
		return s.emit(ctx, event.ProjectMemberAdded, p.TenantID, projectID, "project", projectID,
			map[string]any{"project_id": projectID, "user_id": tm.UserID, "role": m.Role})
	})
	if err != nil {
		return identity.ProjectMembership{}, err
	}
	return added, nil
}

// RemoveMember removes a user from a project. Tenant admins only.
func (s *Service) RemoveMember(ctx context.Context, p identity.Principal, projectID, userID string) error {
	if err := identity.ValidateID("user_id", userID); err != nil {
		return err
	}
	if _, _, err := s.ProjectAccess(ctx, p, projectID); err != nil {
		return err
	}
	if !p.CanManageTenant() {
		return fault.Forbidden("only tenant owners and admins can manage members")
	}
	return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Members.RemoveProjectMember(ctx, projectID, userID); err != nil {
			return err
		}
		ev := s.auditEvent(ctx, p, "project.member_remove", resource.TypeProject, projectID, projectID)
		ev.Metadata = map[string]any{"user_id": userID}
		if err := s.d.Audit.Record(ctx, ev); err != nil {
			return err
		}
		return s.emit(ctx, event.ProjectMemberRemoved, p.TenantID, projectID, "project", projectID,
			map[string]any{"project_id": projectID, "user_id": userID})
	})
}

// normalEmail checks an email address as the "email" field and returns it
// trimmed and lower-cased.
func normalEmail(email string) (string, error) {
	// Checked before lowering: strings.ToLower turns invalid UTF-8 into U+FFFD.
	email = strings.TrimSpace(email)
	if err := text.Line("email", email, 1, identity.EmailMaxLength); err != nil {
		return "", err
	}
	email = strings.ToLower(email)
	if at := strings.IndexByte(email, '@'); at < 1 || at == len(email)-1 || strings.Count(email, "@") != 1 || strings.Contains(email, " ") {
		return "", fault.Invalid("email", "a valid email address is required")
	}
	return email, nil
}

// Invite lets a person with this email join the caller's tenant at their
// first sign-in. Tenant admins only.
func (s *Service) Invite(ctx context.Context, p identity.Principal, email string, role identity.TenantRole) error {
	email, err := normalEmail(email)
	if err != nil {
		return err
	}
	if role != identity.TenantAdmin && role != identity.TenantMember {
		return fault.Invalid("role", "role must be admin or member")
	}
	if !p.CanManageTenant() {
		return fault.Forbidden("only tenant owners and admins can invite")
	}
	return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Members.CreateInvitation(ctx, identity.Invitation{
			TenantID: p.TenantID, Email: email, Role: role, InvitedBy: p.User.ID, CreatedAt: s.d.Clock.Now()}); err != nil {
			if fault.IsKind(err, fault.KindConflict) {
				return fault.Conflict("already_invited", "this email already has a pending invitation")
			}
			return err
		}
		return s.d.Audit.Record(ctx, s.auditEvent(ctx, p, "tenant.invite", resource.TypeTenant, p.TenantID, ""))
	})
}

func (s *Service) auditEvent(ctx context.Context, p identity.Principal, action, typ, id, projectID string) audit.Event {
	return audit.Event{
		ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorUser, ActorID: p.User.ID,
		TenantID: p.TenantID, ProjectID: projectID, Action: action, ResourceType: typ,
		ResourceID: resource.New("", p.TenantID, projectID, typ, id).String(), Outcome: audit.Success,
		CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx),
	}
}

func (s *Service) emit(ctx context.Context, typ, tenantID, projectID, aggType, aggID string, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fault.Internal(err)
	}
	return s.d.Outbox.Append(ctx, event.Envelope{
		ID: s.d.IDs.NewID(), Type: typ, Version: 1, OccurredAt: s.d.Clock.Now(), TenantID: tenantID,
		ProjectID: projectID, AggregateType: aggType, AggregateID: aggID, CorrelationID: callctx.CorrelationID(ctx),
		Payload: body,
	})
}
