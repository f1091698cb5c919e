package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// CodeSecretExists is the conflict code of a second PutSecret under a name.
const CodeSecretExists fault.Code = "secret_exists"

// maxSecretNameLen bounds secret names (they are also envelope contexts).
const maxSecretNameLen = 200

// SecretStore implements [ports.SecretStore] on platform_secrets. It stores
// envelopes as given: callers seal with core/envelope, so nothing here is
// plaintext at rest.
type SecretStore struct {
	db *DB
}

var _ ports.SecretStore = (*SecretStore)(nil)

// NewSecretStore returns a SecretStore.
func NewSecretStore(db *DB) *SecretStore { return &SecretStore{db: db} }

// PutSecret implements [ports.SecretStore]. A name is written once: a put
// under an existing name is a Conflict (secret_exists) and leaves the stored
// envelope alone. Of concurrent first puts exactly one wins, so processes
// that generate a key on first start (the CAs) settle on one key by reading
// back after a conflict instead of overwriting each other's.
func (s *SecretStore) PutSecret(ctx context.Context, name string, envelope []byte) error {
	if err := validSecretName(name); err != nil {
		return err
	}
	if len(envelope) == 0 {
		return fault.Invalid("envelope", "the sealed secret is empty")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `
		INSERT INTO platform_secrets (name, envelope) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING`, name, envelope)
	if err != nil {
		return translate(err, "secret")
	}
	if tag.RowsAffected() == 0 {
		return fault.Conflict(CodeSecretExists, "a secret with this name already exists")
	}
	return nil
}

// GetSecret implements [ports.SecretStore]; an unknown name is NotFound.
func (s *SecretStore) GetSecret(ctx context.Context, name string) ([]byte, error) {
	if err := validSecretName(name); err != nil {
		return nil, err
	}
	var env []byte
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT envelope FROM platform_secrets WHERE name = $1`, name).Scan(&env)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.NotFound("secret", name)
	}
	if err != nil {
		return nil, translate(err, "secret")
	}
	return env, nil
}

func validSecretName(name string) error {
	if name == "" || len(name) > maxSecretNameLen {
		return fault.Invalid("name", "a secret name must be 1..200 bytes")
	}
	return nil
}
