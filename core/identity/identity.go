// Package identity holds the tenancy model: tenants own, projects scope,
// users act. It has the rules for roles and memberships and no I/O.
package identity

import (
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/text"
)

// Role is a platform-wide role carried by the user's identity token.
type Role string

const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin" // platform operator
)

// TenantRole is a user's role inside their tenant.
type TenantRole string

const (
	TenantOwner  TenantRole = "owner"
	TenantAdmin  TenantRole = "admin"
	TenantMember TenantRole = "member"
)

// Valid reports whether r is a known tenant role.
func (r TenantRole) Valid() bool { return r == TenantOwner || r == TenantAdmin || r == TenantMember }

// CanManage reports whether the tenant role may manage projects and members.
func (r TenantRole) CanManage() bool { return r == TenantOwner || r == TenantAdmin }

// ProjectRole is a user's role inside one project.
type ProjectRole string

const (
	ProjectAdmin  ProjectRole = "admin"
	ProjectMember ProjectRole = "member"
	ProjectViewer ProjectRole = "viewer"
)

// Valid reports whether r is a known project role.
func (r ProjectRole) Valid() bool {
	return r == ProjectAdmin || r == ProjectMember || r == ProjectViewer
}

// User is a person (or, later, a service account) who acts on resources.
type User struct {
	ID          string
	Issuer      string // OIDC issuer
	Subject     string // OIDC subject
	Email       string
	DisplayName string
	Role        Role
	Status      UserStatus
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// UserStatus is whether the user may sign in.
type UserStatus string

const (
	UserActive    UserStatus = "active"
	UserSuspended UserStatus = "suspended"
)

// IsAdmin reports whether the user is a platform operator.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

// Tenant is the ownership root: it owns projects, balances and resources.
type Tenant struct {
	ID        string
	Name      string
	Slug      string
	CreatedAt time.Time
}

// Project scopes resources inside a tenant.
type Project struct {
	ID        string
	TenantID  string
	Name      string
	IsDefault bool
	CreatedAt time.Time
}

// TenantMembership binds a user to a tenant. MVP: one tenant per user.
type TenantMembership struct {
	TenantID  string
	UserID    string
	Role      TenantRole
	CreatedAt time.Time
}

// ProjectMembership binds a user to a project.
type ProjectMembership struct {
	ProjectID string
	UserID    string
	Role      ProjectRole
	CreatedAt time.Time
}

// Invitation lets a not-yet-registered user join a tenant at first sign-in.
type Invitation struct {
	TenantID  string
	Email     string
	Role      TenantRole
	InvitedBy string
	CreatedAt time.Time
}

// Claims is what a verified identity token says about its bearer.
type Claims struct {
	Issuer   string
	Subject  string
	Email    string
	Name     string
	Roles    []string // raw roles from the token (realm_access.roles or roles)
	TenantID string   // optional tenant claim

	// The platform's own tokens (service accounts) also carry these;
	// tokens of the OIDC issuer leave them empty.
	ActorType    string   // actor_type: "service_account"
	ProjectID    string   // project_id
	Scopes       []string // scope, split on spaces
	CredentialID string   // cred: the credential the token was issued from

	// ExpiresAt is the token's exp (zero when the verifier did not say):
	// a cache of the verification must not outlive it.
	ExpiresAt time.Time
}

// MapRole maps token roles to the platform role: "admin" (or "gpuaas-admin")
// makes an operator; everything else is a user.
func MapRole(roles []string) Role {
	for _, r := range roles {
		switch strings.ToLower(r) {
		case "admin", "gpuaas-admin", "platform-admin":
			return RoleAdmin
		}
	}
	return RoleUser
}

// Lengths of identity inputs, in characters (code points). The API
// contract's maxLength values equal them (hosts/http checks).
const (
	NameMaxLength  = 100 // project names
	EmailMaxLength = 254 // RFC 5321's path limit
	IDMaxLength    = 128 // any id a caller names

	// DisplayNameMaxLength bounds the name taken from the identity provider.
	DisplayNameMaxLength = 200
)

// ValidateName checks a human-facing name (project or tenant): single-line
// text (core/text) of 1..NameMaxLength characters without surrounding
// spaces.
func ValidateName(field, name string) error {
	if err := text.Line(field, name, 1, NameMaxLength); err != nil {
		return err
	}
	n := strings.TrimSpace(name)
	if n == "" {
		return fault.Invalid(field, field+" must not be empty")
	}
	if n != name {
		return fault.Invalid(field, field+" must not start or end with spaces")
	}
	return nil
}

// ValidateID checks an id a caller names (a user, a project): single-line
// text of 1..IDMaxLength characters. Whether it exists is the store's to say.
func ValidateID(field, id string) error { return text.Line(field, id, 1, IDMaxLength) }

// CodeLastProjectMember refuses removing a project's last member: a project
// nobody belongs to can be reached only by tenant admins and is easy to
// lose track of. Remove the project instead (or add someone first).
const CodeLastProjectMember fault.Code = "last_project_member"

// ErrLastProjectMember is the refusal stores return for the last member.
func ErrLastProjectMember() *fault.Error {
	return fault.Conflict(CodeLastProjectMember, "the last member of a project cannot be removed; add another member first")
}

// Slugify derives a URL-safe slug from a name.
func Slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
		if b.Len() >= 40 {
			break
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if s == "" {
		s = "tenant"
	}
	return s
}

// Principal is the authenticated caller of a request, resolved from a token
// and the user's memberships.
type Principal struct {
	User       User
	TenantID   string
	TenantRole TenantRole
	// Machine is set when the caller authenticated with a service-account
	// token or an API key (machine.go): it limits the principal to one
	// project and a set of scopes. Nil for people signed in interactively.
	Machine *Machine
}

// CanManageTenant reports whether the principal may manage its tenant's
// projects and members. Machine credentials never may, whatever their
// holder's role.
func (p Principal) CanManageTenant() bool { return p.Machine == nil && p.TenantRole.CanManage() }

// IsPlatformAdmin reports whether the principal may use platform operator
// routes: an operator signed in interactively, never a machine credential.
func (p Principal) IsPlatformAdmin() bool { return p.Machine == nil && p.User.IsAdmin() }
