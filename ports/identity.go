package ports

import (
	"context"
	"time"

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
	// TenantMemberByEmail returns the membership in tenantID of the user
	// whose email is email (case-insensitive): NotFound when the tenant has
	// none, Conflict (ambiguous_email) when several of its users share it.
	TenantMemberByEmail(ctx context.Context, tenantID, email string) (identity.TenantMembership, error)
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

// PrincipalReader is a UserStore that also reads, in the same query, the
// tenant membership of the user with an identity: the two reads that
// resolve a signed-in caller in one round trip. identitysvc uses it when
// its UserStore has it.
type PrincipalReader interface {
	// UserAndTenantByIdentity returns the user with this issuer and subject
	// and their tenant membership (hasTenant false when they have none).
	// NotFound when no user has that identity.
	UserAndTenantByIdentity(ctx context.Context, issuer, subject string) (u identity.User, m identity.TenantMembership, hasTenant bool, err error)
}

// ProjectAccessReader is a ProjectStore that also reads, in the same query,
// one user's membership of the project: what deciding a caller's access to
// a project needs, in one round trip. identitysvc uses it when its
// ProjectStore has it.
type ProjectAccessReader interface {
	// ProjectAndRole returns the project and the user's role in it (""
	// when they are not a member). NotFound when the project does not
	// exist (or the id is not one).
	ProjectAndRole(ctx context.Context, projectID, userID string) (identity.Project, identity.ProjectRole, error)
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

// ServiceAccountStore persists service accounts and their credentials
// (doc/service-accounts.md). Creating an account also creates the users
// row that acts for it (same id, issuer identity.ServiceAccountIssuer).
type ServiceAccountStore interface {
	CreateServiceAccount(ctx context.Context, sa identity.ServiceAccount) error
	// GetServiceAccount returns an account, disabled ones included.
	GetServiceAccount(ctx context.Context, id string) (identity.ServiceAccount, error)
	// ListServiceAccounts lists a project's accounts that are not disabled.
	ListServiceAccounts(ctx context.Context, projectID string) ([]identity.ServiceAccount, error)
	// DisableServiceAccount disables the account and revokes every
	// credential it holds, at at. NotFound when it is unknown or already
	// disabled.
	DisableServiceAccount(ctx context.Context, id string, at time.Time) error
	// AddCredential stores a credential unless the account already holds
	// identity.MaxActiveCredentials active ones at c.CreatedAt (Conflict
	// credential_limit_reached), decided under the account's row lock.
	AddCredential(ctx context.Context, c identity.Credential) error
	// Credentials lists an account's credentials, revoked ones included,
	// newest first.
	Credentials(ctx context.Context, serviceAccountID string) ([]identity.Credential, error)
	// GetCredential returns one credential (for token checks).
	GetCredential(ctx context.Context, id string) (identity.Credential, error)
	// TouchCredential records that the credential bought a token at at
	// (last_used_at only moves forward).
	TouchCredential(ctx context.Context, id string, at time.Time) error
	// RevokeCredential revokes one credential of the account at at.
	// NotFound when it is unknown, another account's, or already revoked.
	RevokeCredential(ctx context.Context, serviceAccountID, id string, at time.Time) error
}

// APIKeyStore persists personal API keys, hashed.
type APIKeyStore interface {
	CreateAPIKey(ctx context.Context, k identity.APIKey) error
	// APIKeyByLookup returns the key with this lookup id, revoked and
	// expired ones included (the caller decides).
	APIKeyByLookup(ctx context.Context, lookup string) (identity.APIKey, error)
	// ListAPIKeys lists a user's keys that are not revoked, newest first.
	ListAPIKeys(ctx context.Context, userID string) ([]identity.APIKey, error)
	// RevokeAPIKey revokes one of the user's keys at at. NotFound when it
	// is unknown, another user's, or already revoked.
	RevokeAPIKey(ctx context.Context, userID, id string, at time.Time) error
	// TouchAPIKey records that the key was used at at (last_used_at only
	// moves forward).
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
}

// ServiceTokenClaims are what a platform-signed service-account access
// token says.
type ServiceTokenClaims struct {
	ID               string // jti
	ServiceAccountID string // sub
	TenantID         string
	ProjectID        string
	CredentialID     string
	Scopes           []string
	IssuedAt         time.Time
	ExpiresAt        time.Time
}

// TokenIssuer signs the platform's own access tokens (service accounts)
// and publishes the keys that verify them. The verifier
// (ports.TokenVerifier) checks them next to the OIDC issuer's.
type TokenIssuer interface {
	// Issuer is the iss claim of the tokens it signs.
	Issuer() string
	IssueServiceToken(ctx context.Context, c ServiceTokenClaims) (string, error)
	// JWKS is the JSON Web Key Set of the verifying keys.
	JWKS(ctx context.Context) ([]byte, error)
}

// AccessChanges lets the hot paths cache what authentication and
// authorisation read — a verified token's principal, a caller's access to a
// project, a machine credential's record — and still refuse on the next
// request what was revoked: a cached answer is good only while the
// generation it was read at is current.
type AccessChanges interface {
	// Generation changes whenever anything those answers rest on may have
	// changed, by this process or any other: a user's status or profile, a
	// tenant or project membership, a project, a service account, a
	// credential or an API key, an announced sign-out. 0 means "unknown
	// right now" (the change feed is not connected): cache nothing. It
	// never blocks.
	Generation() uint64
	// Announce tells every process about a change no stored row records (an
	// access token signed out into the deny-list). This process's
	// generation has moved when it returns.
	Announce(ctx context.Context) error
}
