package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// SSHKeyStore implements [ports.SSHKeyStore] on the ssh_keys table.
type SSHKeyStore struct{ db *DB }

var _ ports.SSHKeyStore = (*SSHKeyStore)(nil)

// NewSSHKeyStore returns an SSHKeyStore; its calls join the transaction in ctx.
func NewSSHKeyStore(db *DB) *SSHKeyStore { return &SSHKeyStore{db: db} }

// AddSSHKey implements [ports.SSHKeyStore]. The same fingerprint twice for
// one user is Conflict ssh_key_duplicate; the same name, ssh_key_name_taken.
func (s *SSHKeyStore) AddSSHKey(ctx context.Context, k ports.SSHKey) error {
	var created any
	if !k.CreatedAt.IsZero() {
		created = k.CreatedAt
	}
	_, err := s.db.Q(ctx).Exec(ctx, `
		INSERT INTO ssh_keys (id, user_id, name, public_key, fingerprint, key_type, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::timestamptz, now()))`,
		k.ID, k.UserID, k.Name, k.PublicKey, k.Fingerprint, k.KeyType, created)
	return translate(err, "ssh key")
}

// ListSSHKeys implements [ports.SSHKeyStore], oldest first.
func (s *SSHKeyStore) ListSSHKeys(ctx context.Context, userID string) ([]ports.SSHKey, error) {
	uid, ok := canonicalID(userID)
	if !ok {
		return []ports.SSHKey{}, nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `
		SELECT id, user_id, name, public_key, fingerprint, key_type, created_at
		FROM ssh_keys WHERE user_id = $1 ORDER BY created_at, id`, uid)
	if err != nil {
		return nil, translate(err, "ssh key")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ports.SSHKey, error) {
		var k ports.SSHKey
		err := r.Scan(&k.ID, &k.UserID, &k.Name, &k.PublicKey, &k.Fingerprint, &k.KeyType, &k.CreatedAt)
		return k, err
	})
	if err != nil {
		return nil, translate(err, "ssh key")
	}
	return out, nil
}

// DeleteSSHKey implements [ports.SSHKeyStore]. Another user's key is
// NotFound, like a key that does not exist.
func (s *SSHKeyStore) DeleteSSHKey(ctx context.Context, userID, id string) error {
	uid, ok1 := canonicalID(userID)
	kid, ok2 := canonicalID(id)
	if !ok1 || !ok2 {
		return fault.NotFound("ssh key", "")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `DELETE FROM ssh_keys WHERE id = $1 AND user_id = $2`, kid, uid)
	if err != nil {
		return translate(err, "ssh key")
	}
	if tag.RowsAffected() == 0 {
		return fault.NotFound("ssh key", "")
	}
	return nil
}
