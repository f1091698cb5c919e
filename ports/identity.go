package ports

import (
	"context"

	"github.com/gpuaas/gpuaas/core/identity"
)

// UserStore persists users, keyed by id and by (issuer, subject).
type UserStore interface {
	// UpsertByIdentity inserts the user or updates email, name and role of the
	// one with the same issuer and subject. created reports an insert.
	UpsertByIdentity(ctx context.Context, u identity.User) (out identity.User, created bool, err error)
	Get(ctx context.Context, id string) (identity.User, error)
	GetByIdentity(ctx context.Context, issuer, subject string) (identity.User, error)
}

// TenantStore persists tenants.
type TenantStore interface {
	CreateTenant(ctx context.Context, t identity.Tenant) error
	GetTenant(ctx context.Context, id string) (identity.Tenant, error)
}

// ProjectStore persists projects.
type ProjectStore interface {
	CreateProject(ctx context.Context, p identity.Project) error
	GetProject(ctx context.Context, id string) (identity.Project, error)
	// ListProjectsForUser lists the projects the user is a member of.
	ListProjectsForUser(ctx context.Context, userID string) ([]identity.Project, error)
	ListProjectsByTenant(ctx context.Context, tenantID string) ([]identity.Project, error)
}

// MembershipStore persists tenant and project memberships and invitations.
type MembershipStore interface {
	AddTenantMember(ctx context.Context, m identity.TenantMembership) error
	// TenantMembershipOf returns the user's (single, MVP) tenant membership.
	TenantMembershipOf(ctx context.Context, userID string) (identity.TenantMembership, error)
	AddProjectMember(ctx context.Context, m identity.ProjectMembership) error
	// RemoveProjectMember removes a membership: NotFound when there is
	// none, identity.ErrLastProjectMember (Conflict) when it is the
	// project's last, decided atomically against concurrent removals.
	RemoveProjectMember(ctx context.Context, projectID, userID string) error
	ProjectMembership(ctx context.Context, projectID, userID string) (identity.ProjectMembership, error)
	ListProjectMembers(ctx context.Context, projectID string) ([]identity.ProjectMembership, error)
	CreateInvitation(ctx context.Context, inv identity.Invitation) error
	// TakeInvitation removes and returns the pending invitation for email.
	TakeInvitation(ctx context.Context, email string) (identity.Invitation, error)
}

// TokenVerifier verifies a bearer token and returns its claims. Errors are
// fault errors with codes token_missing, token_expired or token_invalid.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (identity.Claims, error)
}

// Tokens is what an identity provider issues.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	ExpiresIn    int // seconds
	TokenType    string
}

// IdentityProvider is the OIDC issuer seen as a client: authorization code
// with PKCE, refresh and revocation.
type IdentityProvider interface {
	// AuthCodeURL is where the browser goes to sign in.
	AuthCodeURL(state, codeChallenge, redirectURI string) string
	Exchange(ctx context.Context, code, codeVerifier, redirectURI string) (Tokens, error)
	Refresh(ctx context.Context, refreshToken string) (Tokens, error)
	Revoke(ctx context.Context, refreshToken string) error
	// PasswordLogin is the personal login grant; ErrUnsupported-kind fault if
	// the issuer does not allow it.
	PasswordLogin(ctx context.Context, username, password string) (Tokens, error)
}
