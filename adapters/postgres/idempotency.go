package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// IdempotencyStore implements [ports.IdempotencyStore] on the
// idempotency_keys table.
type IdempotencyStore struct {
	db    *DB
	clock ports.Clock
}

var _ ports.IdempotencyStore = (*IdempotencyStore)(nil)

// NewIdempotencyStore returns an IdempotencyStore. Expiry is judged by
// clock (the wall clock when nil), so tests can move time instead of
// waiting for keys to expire.
func NewIdempotencyStore(db *DB, clock ports.Clock) *IdempotencyStore {
	if clock == nil {
		clock = wallClock{}
	}
	return &IdempotencyStore{db: db, clock: clock}
}

// wallClock is the default clock for adapters used without one.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Begin implements [ports.IdempotencyStore]. The claim is one INSERT … ON
// CONFLICT: of concurrent callers exactly one inserts (or replaces an
// expired row, re-checked on the latest row version) and gets New; every
// other caller reads the row that won and is told how it stands.
func (s *IdempotencyStore) Begin(ctx context.Context, scope, key, fingerprint string, ttl time.Duration) (ports.IdempotencyState, ports.StoredResponse, error) {
	switch {
	case key == "" || scope == "":
		return 0, ports.StoredResponse{}, fault.Invalid("key", "an idempotency scope and key are required")
	case ttl <= 0:
		return 0, ports.StoredResponse{}, fault.Invalid("ttl", "the idempotency ttl must be positive")
	}
	// A row can vanish between the failed claim and the read (Abandon, or an
	// expired row replaced and abandoned); then the claim is simply retried.
	for attempt := 0; attempt < 5; attempt++ {
		now := s.clock.Now()
		var claimed bool
		err := s.db.Q(ctx).QueryRow(ctx, `
			INSERT INTO idempotency_keys (scope, key, fingerprint, status, created_at, expires_at)
			VALUES ($1, $2, $3, 'in_flight', $4, $5)
			ON CONFLICT (scope, key) DO UPDATE SET
				fingerprint = EXCLUDED.fingerprint, status = 'in_flight',
				response_status = NULL, response_headers = NULL, response_body = NULL,
				created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
			WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
			RETURNING true`, scope, key, fingerprint, now, now.Add(ttl)).Scan(&claimed)
		if err == nil {
			return ports.IdempotencyNew, ports.StoredResponse{}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, ports.StoredResponse{}, translate(err, "idempotency key")
		}
		var (
			fp, status string
			respStatus *int32
			headers    []byte
			body       []byte
			expiresAt  time.Time
		)
		err = s.db.Q(ctx).QueryRow(ctx, `
			SELECT fingerprint, status, response_status, response_headers, response_body, expires_at
			FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key).
			Scan(&fp, &status, &respStatus, &headers, &body, &expiresAt)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !expiresAt.After(now)) {
			continue
		}
		if err != nil {
			return 0, ports.StoredResponse{}, translate(err, "idempotency key")
		}
		switch {
		case fp != fingerprint:
			return ports.IdempotencyMismatch, ports.StoredResponse{}, nil
		case status == "in_flight":
			return ports.IdempotencyInFlight, ports.StoredResponse{}, nil
		}
		resp := ports.StoredResponse{Body: json.RawMessage(body)}
		if respStatus != nil {
			resp.Status = int(*respStatus)
		}
		if len(headers) > 0 {
			if err := json.Unmarshal(headers, &resp.Headers); err != nil {
				return 0, ports.StoredResponse{}, fault.Internal(err)
			}
		}
		return ports.IdempotencyReplay, resp, nil
	}
	// Only a pathological churn of the same key gets here; the caller may
	// retry as it would after any in-flight answer.
	return ports.IdempotencyInFlight, ports.StoredResponse{}, nil
}

// Complete implements [ports.IdempotencyStore]. Only an in-flight key can
// be completed; anything else (never begun, expired and replaced, already
// completed) is NotFound, because the response would be stored against a
// request that does not own the key.
func (s *IdempotencyStore) Complete(ctx context.Context, scope, key string, resp ports.StoredResponse) error {
	headers, err := json.Marshal(resp.Headers)
	if err != nil {
		return fault.Internal(err)
	}
	if resp.Headers == nil {
		headers = []byte("{}")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `
		UPDATE idempotency_keys SET status = 'completed', response_status = $3,
			response_headers = $4, response_body = $5
		WHERE scope = $1 AND key = $2 AND status = 'in_flight'`,
		scope, key, resp.Status, headers, []byte(resp.Body))
	if err != nil {
		return translate(err, "idempotency key")
	}
	if tag.RowsAffected() == 0 {
		return fault.NotFound("idempotency key", "")
	}
	return nil
}

// Abandon implements [ports.IdempotencyStore]. It never deletes a completed
// key (that would let a retry run the request twice) and is a no-op when the
// key is not in flight, so it is safe to call from every failure path.
func (s *IdempotencyStore) Abandon(ctx context.Context, scope, key string) error {
	_, err := s.db.Q(ctx).Exec(ctx,
		`DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status = 'in_flight'`, scope, key)
	return translate(err, "idempotency key")
}
