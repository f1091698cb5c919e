package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
		err := s.claim(ctx, scope, key, fingerprint, now, now.Add(ttl))
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
		case status == "committed":
			return ports.IdempotencyCommitted, ports.StoredResponse{}, nil
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

const claimSQL = `
	INSERT INTO idempotency_keys (scope, key, fingerprint, status, created_at, expires_at)
	VALUES ($1, $2, $3, 'in_flight', $4, $5)
	ON CONFLICT (scope, key) DO UPDATE SET
		fingerprint = EXCLUDED.fingerprint, status = 'in_flight',
		response_status = NULL, response_headers = NULL, response_body = NULL,
		created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
	WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
	RETURNING true`

// claim inserts the key in flight, or takes over an expired one;
// pgx.ErrNoRows when the key is held.
func (s *IdempotencyStore) claim(ctx context.Context, scope, key, fingerprint string, at, expires time.Time) error {
	var claimed bool
	return s.unflushed(ctx, claimSQL, []any{scope, key, fingerprint, at, expires}, func(br pgx.BatchResults) error {
		return br.QueryRow().Scan(&claimed)
	})
}

// unflushed runs one statement; read reads its result. Outside a caller's
// transaction its commit does not wait for the WAL flush
// (synchronous_commit off for its own implicit transaction, set in the
// same round trip). The claim and the completion can: the request's own
// writes commit durably between them and flush the claim with them (WAL is
// flushed in order), and a completion lost in a database crash leaves the
// key in flight — as a crash of the API process between the request's
// commit and the completion does — never a request run twice. The flushes
// they no longer wait for would queue beside the durable commits that
// matter: an allocation create holds its tenant's lock until its commit
// is flushed (doc/performance.md#allocation-creates).
func (s *IdempotencyStore) unflushed(ctx context.Context, sql string, args []any, read func(pgx.BatchResults) error) error {
	_, inTx := ctx.Value(txKey{}).(pgx.Tx)
	b := &pgx.Batch{}
	if !inTx {
		b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	}
	b.Queue(sql, args...)
	br := s.db.Q(ctx).SendBatch(ctx, b)
	var err error
	if !inTx {
		_, err = br.Exec()
	}
	if err == nil {
		err = read(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// Complete implements [ports.IdempotencyStore]. Only a key whose request
// still holds it (in flight, or committed) can be completed; anything else
// (never begun, expired and replaced, already completed) is NotFound,
// because the response would be stored against a request that does not own
// the key. Its commit does not wait for the WAL flush (unflushed).
func (s *IdempotencyStore) Complete(ctx context.Context, scope, key string, resp ports.StoredResponse) error {
	headers, err := json.Marshal(resp.Headers)
	if err != nil {
		return fault.Internal(err)
	}
	if resp.Headers == nil {
		headers = []byte("{}")
	}
	var tag pgconn.CommandTag
	err = s.unflushed(ctx, `
		UPDATE idempotency_keys SET status = 'completed', response_status = $3,
			response_headers = $4, response_body = $5
		WHERE scope = $1 AND key = $2 AND status IN ('in_flight', 'committed')`,
		[]any{scope, key, resp.Status, headers, []byte(resp.Body)}, func(br pgx.BatchResults) error {
			var err error
			tag, err = br.Exec()
			return err
		})
	if err != nil {
		return translate(err, "idempotency key")
	}
	if tag.RowsAffected() == 0 {
		return fault.NotFound("idempotency key", "")
	}
	return nil
}

// MarkCommitted implements [ports.IdempotencyStore]: one UPDATE in the
// caller's transaction, which also holds the key's row until that
// transaction ends. Outside a transaction it is refused (Internal): the mark
// would commit on its own, whatever became of the request's writes.
func (s *IdempotencyStore) MarkCommitted(ctx context.Context, scope, key string) error {
	tx, ok := ctx.Value(txKey{}).(pgx.Tx)
	if !ok {
		return fault.Internal(errors.New("idempotency: MarkCommitted outside a transaction"))
	}
	_, err := tx.Exec(ctx, `UPDATE idempotency_keys SET status = 'committed'
		WHERE scope = $1 AND key = $2 AND status = 'in_flight'`, scope, key)
	return translate(err, "idempotency key")
}

// Abandon implements [ports.IdempotencyStore]. It never deletes a completed
// or committed key (that would let a retry run the request twice) and is a
// no-op when the key is not in flight, so it is safe to call from every
// failure path.
func (s *IdempotencyStore) Abandon(ctx context.Context, scope, key string) error {
	_, err := s.db.Q(ctx).Exec(ctx,
		`DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status = 'in_flight'`, scope, key)
	return translate(err, "idempotency key")
}
