package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/ports"
)

// ServiceAccountStore implements [ports.ServiceAccountStore] on
// service_accounts and service_account_credentials (migration 0016).
type ServiceAccountStore struct{ db *DB }

// APIKeyStore implements [ports.APIKeyStore] on api_keys (migration 0016).
type APIKeyStore struct{ db *DB }

var (
	_ ports.ServiceAccountStore = (*ServiceAccountStore)(nil)
	_ ports.APIKeyStore         = (*APIKeyStore)(nil)
)

// NewServiceAccountStore returns a ServiceAccountStore; its calls join the
// transaction in ctx.
func NewServiceAccountStore(db *DB) *ServiceAccountStore { return &ServiceAccountStore{db: db} }

// NewAPIKeyStore returns an APIKeyStore; its calls join the transaction in
// ctx.
func NewAPIKeyStore(db *DB) *APIKeyStore { return &APIKeyStore{db: db} }

// CodeCredentialLimit refuses a third active credential.
const CodeCredentialLimit fault.Code = "credential_limit_reached"

const serviceAccountColumns = `id, tenant_id, project_id, name, role, COALESCE(created_by::text, ''), created_at, disabled_at`

func scanServiceAccount(row pgx.Row) (identity.ServiceAccount, error) {
	var sa identity.ServiceAccount
	var role string
	err := row.Scan(&sa.ID, &sa.TenantID, &sa.ProjectID, &sa.Name, &role, &sa.CreatedBy, &sa.CreatedAt, &sa.DisabledAt)
	sa.Role = identity.ProjectRole(role)
	return sa, err
}

// CreateServiceAccount implements [ports.ServiceAccountStore]: the users
// row that acts for the account and the account, in one transaction. A
// name taken by another live account of the project is Conflict
// service_account_name_taken.
func (s *ServiceAccountStore) CreateServiceAccount(ctx context.Context, sa identity.ServiceAccount) error {
	return s.db.InTx(ctx, func(ctx context.Context) error {
		q := s.db.Q(ctx)
		if _, err := q.Exec(ctx, `
			INSERT INTO users (id, oidc_issuer, oidc_subject, email, display_name, role, status, created_at, updated_at)
			VALUES ($1, $2, $5, '', $3, 'user', 'active', $4, $4)`,
			sa.ID, identity.ServiceAccountIssuer, sa.Name, sa.CreatedAt, sa.ID); err != nil {
			return translate(err, "user")
		}
		_, err := q.Exec(ctx, `
			INSERT INTO service_accounts (id, tenant_id, project_id, name, role, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			sa.ID, sa.TenantID, sa.ProjectID, sa.Name, string(sa.Role), nullableID(sa.CreatedBy), sa.CreatedAt)
		return translate(err, "service account")
	})
}

// GetServiceAccount implements [ports.ServiceAccountStore].
func (s *ServiceAccountStore) GetServiceAccount(ctx context.Context, id string) (identity.ServiceAccount, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return identity.ServiceAccount{}, fault.NotFound("service account", "")
	}
	sa, err := scanServiceAccount(s.db.Q(ctx).QueryRow(ctx,
		`SELECT `+serviceAccountColumns+` FROM service_accounts WHERE id = $1`, cid))
	return sa, translate(err, "service account")
}

// ListServiceAccounts implements [ports.ServiceAccountStore], oldest first.
func (s *ServiceAccountStore) ListServiceAccounts(ctx context.Context, projectID string) ([]identity.ServiceAccount, error) {
	cid, ok := canonicalID(projectID)
	if !ok {
		return []identity.ServiceAccount{}, nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+serviceAccountColumns+` FROM service_accounts
		WHERE project_id = $1 AND disabled_at IS NULL ORDER BY created_at, id`, cid)
	if err != nil {
		return nil, translate(err, "service account")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (identity.ServiceAccount, error) {
		return scanServiceAccount(r)
	})
	return out, translate(err, "service account")
}

// DisableServiceAccount implements [ports.ServiceAccountStore].
func (s *ServiceAccountStore) DisableServiceAccount(ctx context.Context, id string, at time.Time) error {
	defer noteAccessChange(s.db) // this process's caches see the write at once (access.go)
	cid, ok := canonicalID(id)
	if !ok {
		return fault.NotFound("service account", "")
	}
	return s.db.InTx(ctx, func(ctx context.Context) error {
		q := s.db.Q(ctx)
		tag, err := q.Exec(ctx, `UPDATE service_accounts SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL`, cid, at)
		if err != nil {
			return translate(err, "service account")
		}
		if tag.RowsAffected() == 0 {
			return fault.NotFound("service account", "")
		}
		_, err = q.Exec(ctx, `UPDATE service_account_credentials SET revoked_at = $2
			WHERE service_account_id = $1 AND revoked_at IS NULL`, cid, at)
		return translate(err, "credential")
	})
}

const credentialColumns = `id, service_account_id, secret_hash, hint, COALESCE(created_by::text, ''), created_at, expires_at, revoked_at,
	last_used_at`

func scanCredential(row pgx.Row) (identity.Credential, error) {
	var c identity.Credential
	err := row.Scan(&c.ID, &c.ServiceAccountID, &c.SecretHash, &c.Hint, &c.CreatedBy, &c.CreatedAt, &c.ExpiresAt, &c.RevokedAt,
		&c.LastUsedAt)
	return c, err
}

// AddCredential implements [ports.ServiceAccountStore]. The account's row
// is locked first, so two concurrent additions cannot both see room for
// one more.
func (s *ServiceAccountStore) AddCredential(ctx context.Context, c identity.Credential) error {
	said, ok := canonicalID(c.ServiceAccountID)
	if !ok {
		return fault.NotFound("service account", "")
	}
	return s.db.InTx(ctx, func(ctx context.Context) error {
		q := s.db.Q(ctx)
		var tenant string
		err := q.QueryRow(ctx, `SELECT tenant_id::text FROM service_accounts WHERE id = $1 AND disabled_at IS NULL FOR UPDATE`,
			said).Scan(&tenant)
		if err != nil {
			return translate(err, "service account")
		}
		var active int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM service_account_credentials
			WHERE service_account_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`,
			said, c.CreatedAt).Scan(&active); err != nil {
			return translate(err, "credential")
		}
		if active >= identity.MaxActiveCredentials {
			return fault.Conflict(CodeCredentialLimit,
				"the service account already holds two active credentials; revoke one first").With("limit", identity.MaxActiveCredentials)
		}
		_, err = q.Exec(ctx, `INSERT INTO service_account_credentials
			(id, service_account_id, tenant_id, secret_hash, hint, created_by, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			c.ID, said, tenant, c.SecretHash, c.Hint, nullableID(c.CreatedBy), c.CreatedAt, c.ExpiresAt)
		return translate(err, "credential")
	})
}

// Credentials implements [ports.ServiceAccountStore].
func (s *ServiceAccountStore) Credentials(ctx context.Context, serviceAccountID string) ([]identity.Credential, error) {
	cid, ok := canonicalID(serviceAccountID)
	if !ok {
		return []identity.Credential{}, nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+credentialColumns+` FROM service_account_credentials
		WHERE service_account_id = $1 ORDER BY created_at DESC, id DESC`, cid)
	if err != nil {
		return nil, translate(err, "credential")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (identity.Credential, error) { return scanCredential(r) })
	return out, translate(err, "credential")
}

// GetCredential implements [ports.ServiceAccountStore].
func (s *ServiceAccountStore) GetCredential(ctx context.Context, id string) (identity.Credential, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return identity.Credential{}, fault.NotFound("credential", "")
	}
	c, err := scanCredential(s.db.Q(ctx).QueryRow(ctx,
		`SELECT `+credentialColumns+` FROM service_account_credentials WHERE id = $1`, cid))
	return c, translate(err, "credential")
}

// TouchCredential implements [ports.ServiceAccountStore].
func (s *ServiceAccountStore) TouchCredential(ctx context.Context, id string, at time.Time) error {
	cid, ok := canonicalID(id)
	if !ok {
		return nil
	}
	_, err := s.db.Q(ctx).Exec(ctx, `UPDATE service_account_credentials SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`, cid, at)
	return translate(err, "credential")
}

// RevokeCredential implements [ports.ServiceAccountStore].
func (s *ServiceAccountStore) RevokeCredential(ctx context.Context, serviceAccountID, id string, at time.Time) error {
	defer noteAccessChange(s.db) // this process's caches see the write at once (access.go)
	said, ok1 := canonicalID(serviceAccountID)
	cid, ok2 := canonicalID(id)
	if !ok1 || !ok2 {
		return fault.NotFound("credential", "")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `UPDATE service_account_credentials SET revoked_at = $3
		WHERE id = $2 AND service_account_id = $1 AND revoked_at IS NULL`, said, cid, at)
	if err != nil {
		return translate(err, "credential")
	}
	if tag.RowsAffected() == 0 {
		return fault.NotFound("credential", "")
	}
	return nil
}

const apiKeyColumns = `id, user_id, tenant_id, project_id, name, lookup, key_hash, scopes, spend_cap_minor, created_at,
	expires_at, last_used_at, revoked_at`

func scanAPIKey(row pgx.Row) (identity.APIKey, error) {
	var k identity.APIKey
	var scopes []string
	err := row.Scan(&k.ID, &k.UserID, &k.TenantID, &k.ProjectID, &k.Name, &k.Lookup, &k.Hash, &scopes, &k.SpendCapMinor,
		&k.CreatedAt, &k.ExpiresAt, &k.LastUsedAt, &k.RevokedAt)
	for _, sc := range scopes {
		k.Scopes = append(k.Scopes, identity.Scope(sc))
	}
	return k, err
}

// CreateAPIKey implements [ports.APIKeyStore]. A name in use by another
// live key of the user is Conflict api_key_name_taken.
func (s *APIKeyStore) CreateAPIKey(ctx context.Context, k identity.APIKey) error {
	scopes := make([]string, 0, len(k.Scopes))
	for _, sc := range k.Scopes {
		scopes = append(scopes, string(sc))
	}
	_, err := s.db.Q(ctx).Exec(ctx, `INSERT INTO api_keys (id, user_id, tenant_id, project_id, name, lookup, key_hash,
		scopes, spend_cap_minor, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		k.ID, k.UserID, k.TenantID, k.ProjectID, k.Name, k.Lookup, k.Hash, scopes, k.SpendCapMinor, k.CreatedAt, k.ExpiresAt)
	return translate(err, "api key")
}

// APIKeyByLookup implements [ports.APIKeyStore].
func (s *APIKeyStore) APIKeyByLookup(ctx context.Context, lookup string) (identity.APIKey, error) {
	k, err := scanAPIKey(s.db.Q(ctx).QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE lookup = $1`, lookup))
	return k, translate(err, "api key")
}

// ListAPIKeys implements [ports.APIKeyStore].
func (s *APIKeyStore) ListAPIKeys(ctx context.Context, userID string) ([]identity.APIKey, error) {
	cid, ok := canonicalID(userID)
	if !ok {
		return []identity.APIKey{}, nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC`, cid)
	if err != nil {
		return nil, translate(err, "api key")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (identity.APIKey, error) { return scanAPIKey(r) })
	return out, translate(err, "api key")
}

// RevokeAPIKey implements [ports.APIKeyStore].
func (s *APIKeyStore) RevokeAPIKey(ctx context.Context, userID, id string, at time.Time) error {
	defer noteAccessChange(s.db) // this process's caches see the write at once (access.go)
	uid, ok1 := canonicalID(userID)
	kid, ok2 := canonicalID(id)
	if !ok1 || !ok2 {
		return fault.NotFound("api key", "")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `UPDATE api_keys SET revoked_at = $3
		WHERE id = $2 AND user_id = $1 AND revoked_at IS NULL`, uid, kid, at)
	if err != nil {
		return translate(err, "api key")
	}
	if tag.RowsAffected() == 0 {
		return fault.NotFound("api key", "")
	}
	return nil
}

// TouchAPIKey implements [ports.APIKeyStore].
func (s *APIKeyStore) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	kid, ok := canonicalID(id)
	if !ok {
		return nil
	}
	_, err := s.db.Q(ctx).Exec(ctx, `UPDATE api_keys SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`, kid, at)
	return translate(err, "api key")
}
