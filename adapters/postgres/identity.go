package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/ports"
)

// UserStore implements [ports.UserStore] on the users table.
type UserStore struct{ db *DB }

// TenantStore implements [ports.TenantStore] on the tenants table.
type TenantStore struct{ db *DB }

// ProjectStore implements [ports.ProjectStore] on the projects table.
type ProjectStore struct{ db *DB }

// MembershipStore implements [ports.MembershipStore] on the tenant and
// project membership and invitation tables.
type MembershipStore struct{ db *DB }

var (
	_ ports.UserStore       = (*UserStore)(nil)
	_ ports.TenantStore     = (*TenantStore)(nil)
	_ ports.ProjectStore    = (*ProjectStore)(nil)
	_ ports.MembershipStore = (*MembershipStore)(nil)
)

// NewUserStore returns a UserStore; its calls join the transaction in ctx.
func NewUserStore(db *DB) *UserStore { return &UserStore{db: db} }

// NewTenantStore returns a TenantStore; its calls join the transaction in ctx.
func NewTenantStore(db *DB) *TenantStore { return &TenantStore{db: db} }

// NewProjectStore returns a ProjectStore; its calls join the transaction in ctx.
func NewProjectStore(db *DB) *ProjectStore { return &ProjectStore{db: db} }

// NewMembershipStore returns a MembershipStore; its calls join the
// transaction in ctx.
func NewMembershipStore(db *DB) *MembershipStore { return &MembershipStore{db: db} }

const userColumns = `id, oidc_issuer, oidc_subject, email, display_name, role, status, created_at, updated_at`

func scanUser(row pgx.Row, extra ...any) (identity.User, error) {
	var u identity.User
	var role, status string
	dest := append([]any{&u.ID, &u.Issuer, &u.Subject, &u.Email, &u.DisplayName, &role, &status, &u.CreatedAt, &u.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return identity.User{}, err
	}
	u.Role, u.Status = identity.Role(role), identity.UserStatus(status)
	return u, nil
}

// UpsertByIdentity implements [ports.UserStore]. One statement does it, so
// concurrent first sign-ins of one subject end in one row: the losers wait
// on the unique index and then update the winner's row (and lock it until
// their transaction ends, which serialises what they do next). Status is
// never touched here: a suspended user stays suspended. updated_at moves
// only when something changed.
func (s *UserStore) UpsertByIdentity(ctx context.Context, u identity.User) (identity.User, bool, error) {
	defer noteAccessChange(s.db) // this process's caches see the write at once (access.go)
	if u.Role == "" {
		u.Role = identity.RoleUser
	}
	if u.Status == "" {
		u.Status = identity.UserActive
	}
	var created bool
	out, err := scanUser(s.db.Q(ctx).QueryRow(ctx, `
		INSERT INTO users (`+userColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (oidc_issuer, oidc_subject) DO UPDATE SET
			email = EXCLUDED.email,
			display_name = EXCLUDED.display_name,
			role = EXCLUDED.role,
			updated_at = CASE
				WHEN (users.email, users.display_name, users.role)
					IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.display_name, EXCLUDED.role)
				THEN EXCLUDED.updated_at ELSE users.updated_at END
		RETURNING `+userColumns+`, (xmax = 0) AS created`,
		u.ID, u.Issuer, u.Subject, u.Email, u.DisplayName, string(u.Role), string(u.Status), u.CreatedAt, u.UpdatedAt),
		&created)
	if err != nil {
		return identity.User{}, false, translate(err, "user")
	}
	return out, created, nil
}

// Get implements [ports.UserStore].
func (s *UserStore) Get(ctx context.Context, id string) (identity.User, error) {
	id, ok := canonicalID(id)
	if !ok {
		return identity.User{}, fault.NotFound("user", "")
	}
	u, err := scanUser(s.db.Q(ctx).QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	return u, translate(err, "user")
}

// GetByIdentity implements [ports.UserStore].
func (s *UserStore) GetByIdentity(ctx context.Context, issuer, subject string) (identity.User, error) {
	u, err := scanUser(s.db.Q(ctx).QueryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2`, issuer, subject))
	return u, translate(err, "user")
}

// CreateTenant implements [ports.TenantStore].
func (s *TenantStore) CreateTenant(ctx context.Context, t identity.Tenant) error {
	_, err := s.db.Q(ctx).Exec(ctx,
		`INSERT INTO tenants (id, name, slug, created_at) VALUES ($1, $2, $3, $4)`,
		t.ID, t.Name, t.Slug, t.CreatedAt)
	return translate(err, "tenant")
}

// GetTenant implements [ports.TenantStore].
func (s *TenantStore) GetTenant(ctx context.Context, id string) (identity.Tenant, error) {
	id, ok := canonicalID(id)
	if !ok {
		return identity.Tenant{}, fault.NotFound("tenant", "")
	}
	var t identity.Tenant
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT id, name, slug, created_at FROM tenants WHERE id = $1`, id).
		Scan(&t.ID, &t.Name, &t.Slug, &t.CreatedAt)
	return t, translate(err, "tenant")
}

const projectColumns = `p.id, p.tenant_id, p.name, p.is_default, p.created_at`

func collectProjects(rows pgx.Rows, err error) ([]identity.Project, error) {
	if err != nil {
		return nil, translate(err, "project")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (identity.Project, error) {
		var p identity.Project
		err := r.Scan(&p.ID, &p.TenantID, &p.Name, &p.IsDefault, &p.CreatedAt)
		return p, err
	})
	return out, translate(err, "project")
}

// CreateProject implements [ports.ProjectStore]. A duplicate name in the
// tenant is a Conflict with code project_name_taken.
func (s *ProjectStore) CreateProject(ctx context.Context, p identity.Project) error {
	_, err := s.db.Q(ctx).Exec(ctx,
		`INSERT INTO projects (id, tenant_id, name, is_default, created_at) VALUES ($1, $2, $3, $4, $5)`,
		p.ID, p.TenantID, p.Name, p.IsDefault, p.CreatedAt)
	return translate(err, "project")
}

// GetProject implements [ports.ProjectStore].
func (s *ProjectStore) GetProject(ctx context.Context, id string) (identity.Project, error) {
	id, ok := canonicalID(id)
	if !ok {
		return identity.Project{}, fault.NotFound("project", "")
	}
	ps, err := collectProjects(s.db.Q(ctx).Query(ctx, `SELECT `+projectColumns+` FROM projects p WHERE p.id = $1`, id))
	if err != nil {
		return identity.Project{}, err
	}
	if len(ps) == 0 {
		return identity.Project{}, fault.NotFound("project", "")
	}
	return ps[0], nil
}

// ListProjectsForUser implements [ports.ProjectStore], oldest first (ids
// break ties so pages are stable).
func (s *ProjectStore) ListProjectsForUser(ctx context.Context, userID string) ([]identity.Project, error) {
	userID, ok := canonicalID(userID)
	if !ok {
		return []identity.Project{}, nil
	}
	return collectProjects(s.db.Q(ctx).Query(ctx, `
		SELECT `+projectColumns+` FROM projects p
		JOIN project_memberships m ON m.project_id = p.id
		WHERE m.user_id = $1
		ORDER BY p.created_at, p.id`, userID))
}

// ListProjectsByTenant implements [ports.ProjectStore], oldest first.
func (s *ProjectStore) ListProjectsByTenant(ctx context.Context, tenantID string) ([]identity.Project, error) {
	tenantID, ok := canonicalID(tenantID)
	if !ok {
		return []identity.Project{}, nil
	}
	return collectProjects(s.db.Q(ctx).Query(ctx,
		`SELECT `+projectColumns+` FROM projects p WHERE p.tenant_id = $1 ORDER BY p.created_at, p.id`, tenantID))
}

// AddTenantMember implements [ports.MembershipStore]. A user already in a
// tenant is a Conflict (already_in_tenant): MVP users have one tenant.
func (s *MembershipStore) AddTenantMember(ctx context.Context, m identity.TenantMembership) error {
	defer noteAccessChange(s.db) // this process's caches see the write at once (access.go)
	if !m.Role.Valid() {
		return fault.Invalid("role", "role must be owner, admin or member")
	}
	_, err := s.db.Q(ctx).Exec(ctx,
		`INSERT INTO tenant_memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
		m.TenantID, m.UserID, string(m.Role), m.CreatedAt)
	return translate(err, "tenant membership")
}

// TenantMembershipOf implements [ports.MembershipStore].
func (s *MembershipStore) TenantMembershipOf(ctx context.Context, userID string) (identity.TenantMembership, error) {
	userID, ok := canonicalID(userID)
	if !ok {
		return identity.TenantMembership{}, fault.NotFound("tenant membership", "")
	}
	m, err := scanTenantMembership(s.db.Q(ctx).QueryRow(ctx,
		`SELECT tenant_id, user_id, role, created_at FROM tenant_memberships WHERE user_id = $1`, userID))
	return m, translate(err, "tenant membership")
}

// scanTenantMembership reads tenant_id, user_id, role, created_at.
func scanTenantMembership(r pgx.Row) (identity.TenantMembership, error) {
	var m identity.TenantMembership
	var role string
	err := r.Scan(&m.TenantID, &m.UserID, &role, &m.CreatedAt)
	m.Role = identity.TenantRole(role)
	return m, err
}

// TenantMemberByEmail implements [ports.MembershipStore] (users_email_idx
// finds the users with the email; the tenant's membership picks its own).
func (s *MembershipStore) TenantMemberByEmail(ctx context.Context, tenantID, email string) (identity.TenantMembership, error) {
	tenantID, ok := canonicalID(tenantID)
	if !ok {
		return identity.TenantMembership{}, fault.NotFound("user", "")
	}
	rows, err := s.db.Q(ctx).Query(ctx,
		`SELECT m.tenant_id, m.user_id, m.role, m.created_at
		   FROM users u JOIN tenant_memberships m ON m.user_id = u.id
		  WHERE lower(u.email) = lower($2) AND m.tenant_id = $1
		  LIMIT 2`, tenantID, strings.TrimSpace(email))
	if err != nil {
		return identity.TenantMembership{}, translate(err, "user")
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (identity.TenantMembership, error) {
		return scanTenantMembership(r)
	})
	switch {
	case err != nil:
		return identity.TenantMembership{}, translate(err, "user")
	case len(ms) == 0:
		return identity.TenantMembership{}, fault.NotFound("user", "")
	case len(ms) > 1:
		return identity.TenantMembership{}, fault.Conflict("ambiguous_email",
			"more than one user of the organisation has this email: give the user id instead")
	}
	return ms[0], nil
}

// AddProjectMember implements [ports.MembershipStore]. A second membership
// of the same user is a Conflict (already_member).
func (s *MembershipStore) AddProjectMember(ctx context.Context, m identity.ProjectMembership) error {
	defer noteAccessChange(s.db) // this process's caches see the write at once (access.go)
	if !m.Role.Valid() {
		return fault.Invalid("role", "role must be admin, member or viewer")
	}
	_, err := s.db.Q(ctx).Exec(ctx,
		`INSERT INTO project_memberships (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
		m.ProjectID, m.UserID, string(m.Role), m.CreatedAt)
	return translate(err, "project membership")
}

// RemoveProjectMember implements [ports.MembershipStore]. Removing someone
// who is not a member is NotFound, so callers can tell a no-op from success;
// removing the last member is identity.ErrLastProjectMember. The project row
// is locked first and the count is a later statement (a fresh snapshot under
// READ COMMITTED), so two removals of a project's last two members cannot
// both see the other still there.
func (s *MembershipStore) RemoveProjectMember(ctx context.Context, projectID, userID string) error {
	defer noteAccessChange(s.db) // this process's caches see the write at once (access.go)
	projectID, ok1 := canonicalID(projectID)
	userID, ok2 := canonicalID(userID)
	if !ok1 || !ok2 {
		return fault.NotFound("project membership", "")
	}
	return s.db.InTx(ctx, func(ctx context.Context) error {
		q := s.db.Q(ctx)
		if _, err := q.Exec(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR UPDATE`, projectID); err != nil {
			return translate(err, "project")
		}
		var member, others bool
		if err := q.QueryRow(ctx, `SELECT
				EXISTS (SELECT 1 FROM project_memberships WHERE project_id = $1 AND user_id = $2),
				EXISTS (SELECT 1 FROM project_memberships WHERE project_id = $1 AND user_id <> $2)`,
			projectID, userID).Scan(&member, &others); err != nil {
			return translate(err, "project membership")
		}
		switch {
		case !member:
			return fault.NotFound("project membership", "")
		case !others:
			return identity.ErrLastProjectMember()
		}
		_, err := q.Exec(ctx, `DELETE FROM project_memberships WHERE project_id = $1 AND user_id = $2`, projectID, userID)
		return translate(err, "project membership")
	})
}

func collectProjectMembers(rows pgx.Rows, err error) ([]identity.ProjectMembership, error) {
	if err != nil {
		return nil, translate(err, "project membership")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (identity.ProjectMembership, error) {
		var m identity.ProjectMembership
		var role string
		err := r.Scan(&m.ProjectID, &m.UserID, &role, &m.CreatedAt)
		m.Role = identity.ProjectRole(role)
		return m, err
	})
	return out, translate(err, "project membership")
}

// ProjectMembership implements [ports.MembershipStore].
func (s *MembershipStore) ProjectMembership(ctx context.Context, projectID, userID string) (identity.ProjectMembership, error) {
	projectID, ok1 := canonicalID(projectID)
	userID, ok2 := canonicalID(userID)
	if !ok1 || !ok2 {
		return identity.ProjectMembership{}, fault.NotFound("project membership", "")
	}
	ms, err := collectProjectMembers(s.db.Q(ctx).Query(ctx,
		`SELECT project_id, user_id, role, created_at FROM project_memberships WHERE project_id = $1 AND user_id = $2`,
		projectID, userID))
	if err != nil {
		return identity.ProjectMembership{}, err
	}
	if len(ms) == 0 {
		return identity.ProjectMembership{}, fault.NotFound("project membership", "")
	}
	return ms[0], nil
}

// ListProjectMembers implements [ports.MembershipStore], in joining order.
func (s *MembershipStore) ListProjectMembers(ctx context.Context, projectID string) ([]identity.ProjectMembership, error) {
	projectID, ok := canonicalID(projectID)
	if !ok {
		return []identity.ProjectMembership{}, nil
	}
	return collectProjectMembers(s.db.Q(ctx).Query(ctx,
		`SELECT project_id, user_id, role, created_at FROM project_memberships
		 WHERE project_id = $1 ORDER BY created_at, user_id`, projectID))
}

// CreateInvitation implements [ports.MembershipStore]. Emails are matched
// case-insensitively, so they are stored lower-case; one pending invitation
// per email (a second is Conflict already_invited).
func (s *MembershipStore) CreateInvitation(ctx context.Context, inv identity.Invitation) error {
	if inv.Role != identity.TenantAdmin && inv.Role != identity.TenantMember {
		return fault.Invalid("role", "role must be admin or member")
	}
	_, err := s.db.Q(ctx).Exec(ctx,
		`INSERT INTO tenant_invitations (tenant_id, email, role, invited_by, created_at) VALUES ($1, $2, $3, $4, $5)`,
		inv.TenantID, strings.ToLower(strings.TrimSpace(inv.Email)), string(inv.Role), nullableID(inv.InvitedBy), inv.CreatedAt)
	return translate(err, "invitation")
}

// TakeInvitation implements [ports.MembershipStore]. DELETE … RETURNING is
// one atomic step: of concurrent takers exactly one gets the invitation.
func (s *MembershipStore) TakeInvitation(ctx context.Context, email string) (identity.Invitation, error) {
	var inv identity.Invitation
	var role string
	var invitedBy *string
	err := s.db.Q(ctx).QueryRow(ctx,
		`DELETE FROM tenant_invitations WHERE email = $1
		 RETURNING tenant_id, email, role, invited_by, created_at`, strings.ToLower(strings.TrimSpace(email))).
		Scan(&inv.TenantID, &inv.Email, &role, &invitedBy, &inv.CreatedAt)
	if err != nil {
		return identity.Invitation{}, translate(err, "invitation")
	}
	inv.Role = identity.TenantRole(role)
	if invitedBy != nil {
		inv.InvitedBy = *invitedBy
	}
	return inv, nil
}
