// Package machinesvc holds the use cases of machine access: service
// accounts with their client-secret credentials (tenant admins manage
// them; doc/service-accounts.md) and personal API keys (people manage their
// own). Secrets are drawn here, returned once and stored as SHA-256
// hashes; authenticating them is core/identity/authsvc's.
package machinesvc

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"time"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/ports"
)

// Deps are the ports the service needs; all are required but Rand.
type Deps struct {
	Tx       ports.TxRunner
	Accounts ports.ServiceAccountStore
	Keys     ports.APIKeyStore
	Identity *identitysvc.Service
	Audit    ports.AuditLog
	Clock    ports.Clock
	IDs      ports.IDs
	// Rand draws secrets (crypto/rand when nil).
	Rand io.Reader
}

// Service implements the machine-access use cases.
type Service struct{ d Deps }

// New checks the dependencies.
func New(d Deps) (*Service, error) {
	if d.Tx == nil || d.Accounts == nil || d.Keys == nil || d.Identity == nil || d.Audit == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("machinesvc: every dependency but Rand is required")
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	return &Service{d: d}, nil
}

// CodeInteractiveRequired refuses machine credentials on routes for people
// signed in interactively (managing keys and accounts).
const CodeInteractiveRequired fault.Code = "interactive_required"

// ErrInteractiveRequired is the refusal of a machine credential where a
// person must act.
func ErrInteractiveRequired() *fault.Error {
	return &fault.Error{Kind: fault.KindForbidden, Code: CodeInteractiveRequired,
		Message: "sign in interactively to manage API keys and service accounts; machine credentials cannot"}
}

// ServiceAccountView is an account with its credentials (hashes withheld).
type ServiceAccountView struct {
	Account     identity.ServiceAccount
	Credentials []identity.Credential
}

// CreatedCredential is a new credential with its secret, shown once.
type CreatedCredential struct {
	Credential identity.Credential
	ClientID   string
	Secret     string
}

// requireTenantAdmin admits people who manage the tenant; the project must
// be the tenant's (NotFound otherwise, as everywhere).
func (s *Service) requireTenantAdmin(ctx context.Context, p identity.Principal, projectID string) error {
	if !p.Interactive() {
		return ErrInteractiveRequired()
	}
	if err := identity.ValidateID("project_id", projectID); err != nil {
		return err
	}
	if _, _, err := s.d.Identity.ProjectAccess(ctx, p, projectID); err != nil {
		return err
	}
	if !p.CanManageTenant() {
		return fault.Forbidden("only tenant owners and admins manage service accounts")
	}
	return nil
}

// CreateServiceAccount creates a service account in a project of the
// caller's tenant with a project role. Tenant owners and admins only.
func (s *Service) CreateServiceAccount(ctx context.Context, p identity.Principal, projectID, name string, role identity.ProjectRole) (identity.ServiceAccount, error) {
	if err := identity.ValidateName("name", name); err != nil {
		return identity.ServiceAccount{}, err
	}
	if !role.Valid() {
		return identity.ServiceAccount{}, fault.Invalid("role", "role must be admin, member or viewer")
	}
	if err := s.requireTenantAdmin(ctx, p, projectID); err != nil {
		return identity.ServiceAccount{}, err
	}
	sa := identity.ServiceAccount{ID: s.d.IDs.NewID(), TenantID: p.TenantID, ProjectID: projectID, Name: name,
		Role: role, CreatedBy: p.User.ID, CreatedAt: s.d.Clock.Now()}
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Accounts.CreateServiceAccount(ctx, sa); err != nil {
			return err
		}
		ev := s.auditEvent(ctx, p, "service_account.create", resource.TypeUser, sa.ID, projectID)
		ev.Metadata = map[string]any{"service_account_id": sa.ID, "name": name, "role": string(role)}
		return s.d.Audit.Record(ctx, ev)
	})
	return sa, err
}

// ListServiceAccounts lists a project's live accounts with their
// credentials. Tenant owners and admins only.
func (s *Service) ListServiceAccounts(ctx context.Context, p identity.Principal, projectID string) ([]ServiceAccountView, error) {
	if err := s.requireTenantAdmin(ctx, p, projectID); err != nil {
		return nil, err
	}
	accts, err := s.d.Accounts.ListServiceAccounts(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]ServiceAccountView, 0, len(accts))
	for _, a := range accts {
		creds, err := s.d.Accounts.Credentials(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		for i := range creds {
			creds[i].SecretHash = nil
		}
		out = append(out, ServiceAccountView{Account: a, Credentials: creds})
	}
	return out, nil
}

// account returns a live account of the project (NotFound otherwise).
func (s *Service) account(ctx context.Context, p identity.Principal, projectID, id string) (identity.ServiceAccount, error) {
	if err := identity.ValidateID("service_account_id", id); err != nil {
		return identity.ServiceAccount{}, err
	}
	sa, err := s.d.Accounts.GetServiceAccount(ctx, id)
	if err != nil {
		return identity.ServiceAccount{}, err
	}
	if sa.TenantID != p.TenantID || sa.ProjectID != projectID || sa.DisabledAt != nil {
		return identity.ServiceAccount{}, fault.NotFound("service account", "")
	}
	return sa, nil
}

// DisableServiceAccount disables an account and revokes its credentials;
// its tokens stop working within authsvc's cache lifetime (under a
// second). Tenant owners and admins only.
func (s *Service) DisableServiceAccount(ctx context.Context, p identity.Principal, projectID, id string) error {
	if err := s.requireTenantAdmin(ctx, p, projectID); err != nil {
		return err
	}
	if _, err := s.account(ctx, p, projectID, id); err != nil {
		return err
	}
	return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Accounts.DisableServiceAccount(ctx, id, s.d.Clock.Now()); err != nil {
			return err
		}
		ev := s.auditEvent(ctx, p, "service_account.disable", resource.TypeUser, id, projectID)
		ev.Metadata = map[string]any{"service_account_id": id}
		return s.d.Audit.Record(ctx, ev)
	})
}

// MaxCredentialLifetime bounds a credential's optional expiry.
const MaxCredentialLifetime = 2 * 366 * 24 * time.Hour

// CreateCredential adds a client secret to an account (at most two active:
// rotation) and returns it once. Tenant owners and admins only.
func (s *Service) CreateCredential(ctx context.Context, p identity.Principal, projectID, id string, expiresAt *time.Time) (CreatedCredential, error) {
	if err := s.requireTenantAdmin(ctx, p, projectID); err != nil {
		return CreatedCredential{}, err
	}
	now := s.d.Clock.Now()
	if expiresAt != nil && (!expiresAt.After(now) || expiresAt.Sub(now) > MaxCredentialLifetime) {
		return CreatedCredential{}, fault.Invalid("expires_at", "expires_at must be in the future and within two years")
	}
	sa, err := s.account(ctx, p, projectID, id)
	if err != nil {
		return CreatedCredential{}, err
	}
	secret, err := identity.NewSecret(s.d.Rand, identity.ServiceAccountSecretPrefix)
	if err != nil {
		return CreatedCredential{}, fault.Internal(err)
	}
	c := identity.Credential{ID: s.d.IDs.NewID(), ServiceAccountID: sa.ID, SecretHash: identity.HashSecret(secret),
		Hint: identity.SecretHint(secret), CreatedBy: p.User.ID, CreatedAt: now, ExpiresAt: expiresAt}
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Accounts.AddCredential(ctx, c); err != nil {
			return err
		}
		ev := s.auditEvent(ctx, p, "service_account.credential_create", resource.TypeUser, sa.ID, projectID)
		ev.Metadata = map[string]any{"service_account_id": sa.ID, "credential_id": c.ID}
		return s.d.Audit.Record(ctx, ev)
	})
	if err != nil {
		return CreatedCredential{}, err
	}
	c.SecretHash = nil
	return CreatedCredential{Credential: c, ClientID: sa.ID, Secret: secret}, nil
}

// RevokeCredential revokes one credential: the token endpoint refuses its
// secret at once, and tokens issued from it stop working within authsvc's
// cache lifetime. Tenant owners and admins only.
func (s *Service) RevokeCredential(ctx context.Context, p identity.Principal, projectID, id, credentialID string) error {
	if err := s.requireTenantAdmin(ctx, p, projectID); err != nil {
		return err
	}
	if err := identity.ValidateID("credential_id", credentialID); err != nil {
		return err
	}
	if _, err := s.account(ctx, p, projectID, id); err != nil {
		return err
	}
	return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Accounts.RevokeCredential(ctx, id, credentialID, s.d.Clock.Now()); err != nil {
			return err
		}
		ev := s.auditEvent(ctx, p, "service_account.credential_revoke", resource.TypeUser, id, projectID)
		ev.Metadata = map[string]any{"service_account_id": id, "credential_id": credentialID}
		return s.d.Audit.Record(ctx, ev)
	})
}

// CreateKeyRequest is a new personal API key.
type CreateKeyRequest struct {
	Name      string
	ProjectID string
	Scopes    []string
	ExpiresAt *time.Time
	// SpendCapMinor bounds what allocations requested with the key may
	// spend per UTC day (0: no cap beyond the tenant's balance).
	SpendCapMinor int64
}

// CreatedKey is a new key with its secret, shown once.
type CreatedKey struct {
	Key    identity.APIKey
	Secret string
}

// CreateAPIKey makes a key for the caller, scoped to one of their projects.
// People signed in interactively only: a key cannot mint keys.
func (s *Service) CreateAPIKey(ctx context.Context, p identity.Principal, req CreateKeyRequest) (CreatedKey, error) {
	if !p.Interactive() {
		return CreatedKey{}, ErrInteractiveRequired()
	}
	if err := identity.ValidateName("name", req.Name); err != nil {
		return CreatedKey{}, err
	}
	if err := identity.ValidateID("project_id", req.ProjectID); err != nil {
		return CreatedKey{}, err
	}
	scopes, err := identity.ParseScopes("scopes", req.Scopes)
	if err != nil {
		return CreatedKey{}, err
	}
	now := s.d.Clock.Now()
	if req.ExpiresAt != nil && (!req.ExpiresAt.After(now) || req.ExpiresAt.Sub(now) > identity.MaxAPIKeyLifetime) {
		return CreatedKey{}, fault.Invalid("expires_at", "expires_at must be in the future and within a year")
	}
	if req.SpendCapMinor < 0 || req.SpendCapMinor > identity.MaxSpendCapMinor {
		return CreatedKey{}, fault.Invalid("spend_cap_minor", "spend_cap_minor must be between 0 and 1000000000")
	}
	if _, _, err := s.d.Identity.ProjectAccess(ctx, p, req.ProjectID); err != nil {
		if fault.IsKind(err, fault.KindNotFound) {
			return CreatedKey{}, fault.Invalid("project_id", "not one of your projects")
		}
		return CreatedKey{}, err
	}
	secret, err := identity.NewSecret(s.d.Rand, identity.APIKeyPrefix)
	if err != nil {
		return CreatedKey{}, fault.Internal(err)
	}
	lookup, _ := identity.APIKeyLookup(secret)
	k := identity.APIKey{ID: s.d.IDs.NewID(), UserID: p.User.ID, TenantID: p.TenantID, ProjectID: req.ProjectID,
		Name: req.Name, Lookup: lookup, Hash: identity.HashSecret(secret), Scopes: scopes,
		SpendCapMinor: req.SpendCapMinor, CreatedAt: now, ExpiresAt: req.ExpiresAt}
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Keys.CreateAPIKey(ctx, k); err != nil {
			return err
		}
		ev := s.auditEvent(ctx, p, "api_key.create", resource.TypeUser, p.User.ID, req.ProjectID)
		scopeNames := make([]string, 0, len(scopes))
		for _, sc := range scopes {
			scopeNames = append(scopeNames, string(sc))
		}
		ev.Metadata = map[string]any{"api_key_id": k.ID, "lookup": k.Lookup, "scopes": scopeNames,
			"spend_cap_minor": k.SpendCapMinor}
		return s.d.Audit.Record(ctx, ev)
	})
	if err != nil {
		return CreatedKey{}, err
	}
	k.Hash = nil
	return CreatedKey{Key: k, Secret: secret}, nil
}

// ListAPIKeys lists the caller's live keys (hashes withheld), with their
// last use.
func (s *Service) ListAPIKeys(ctx context.Context, p identity.Principal) ([]identity.APIKey, error) {
	if !p.Interactive() {
		return nil, ErrInteractiveRequired()
	}
	ks, err := s.d.Keys.ListAPIKeys(ctx, p.User.ID)
	for i := range ks {
		ks[i].Hash = nil
	}
	return ks, err
}

// RevokeAPIKey revokes one of the caller's keys; it stops working within
// authsvc's cache lifetime (under a second).
func (s *Service) RevokeAPIKey(ctx context.Context, p identity.Principal, id string) error {
	if !p.Interactive() {
		return ErrInteractiveRequired()
	}
	if err := identity.ValidateID("key_id", id); err != nil {
		return err
	}
	return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Keys.RevokeAPIKey(ctx, p.User.ID, id, s.d.Clock.Now()); err != nil {
			return err
		}
		ev := s.auditEvent(ctx, p, "api_key.revoke", resource.TypeUser, p.User.ID, "")
		ev.Metadata = map[string]any{"api_key_id": id}
		return s.d.Audit.Record(ctx, ev)
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
