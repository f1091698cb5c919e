package postgres

import (
	"context"
	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/ports"
)

// LedgerStore implements [ports.LedgerStore] on the append-only
// ledger_entries table (migration 0003). A balance is the SUM of a tenant's
// entries; there is no balance column to drift.
type LedgerStore struct{ db *DB }

var _ ports.LedgerStore = (*LedgerStore)(nil)

// NewLedgerStore returns a LedgerStore; its calls join the transaction in ctx.
func NewLedgerStore(db *DB) *LedgerStore { return &LedgerStore{db: db} }

// Post implements [ports.LedgerStore]. Every entry is validated first, so a
// bad one posts nothing. An entry whose idempotency key exists is skipped
// (ON CONFLICT DO NOTHING): retries of the same posting are harmless.
// Entries without an id get a UUIDv7; without a time, the database's now().
func (s *LedgerStore) Post(ctx context.Context, entries ...ledger.Entry) (int, error) {
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			return 0, err
		}
		if _, ok := canonicalID(e.TenantID); !ok {
			return 0, fault.Invalid("tenant_id", "a ledger entry needs a valid tenant id")
		}
	}
	posted := 0
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		posted = 0
		for _, e := range entries {
			if e.ID == "" {
				e.ID = uuid.Must(uuid.NewV7()).String()
			}
			var at any
			if !e.CreatedAt.IsZero() {
				at = e.CreatedAt
			}
			tag, err := s.db.Q(ctx).Exec(ctx, `
				INSERT INTO ledger_entries (id, tenant_id, project_id, user_id, type, amount_minor, currency,
					idempotency_key, reference, reason, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11::timestamptz, now()))
				ON CONFLICT (idempotency_key) DO NOTHING`,
				e.ID, e.TenantID, nullableID(e.ProjectID), nullableID(e.UserID), string(e.Type), e.AmountMinor,
				e.Currency, e.IdempotencyKey, e.Reference, e.Reason, at)
			if err != nil {
				return translate(err, "ledger entry")
			}
			posted += int(tag.RowsAffected())
		}
		return nil
	})
	return posted, err
}

// Balance implements [ports.LedgerStore]: the SUM of the tenant's entries
// and their currency. A tenant without entries has 0 and currency "". The
// ledger is single-currency per tenant; entries in two currencies are an
// invariant breach reported as an internal error rather than summed.
func (s *LedgerStore) Balance(ctx context.Context, tenantID string) (int64, string, error) {
	id, ok := canonicalID(tenantID)
	if !ok {
		return 0, "", nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `
		SELECT currency, SUM(amount_minor)::bigint FROM ledger_entries WHERE tenant_id = $1 GROUP BY currency`, id)
	if err != nil {
		return 0, "", translate(err, "ledger")
	}
	defer rows.Close()
	var cur string
	var sum int64
	n := 0
	for rows.Next() {
		if err := rows.Scan(&cur, &sum); err != nil {
			return 0, "", translate(err, "ledger")
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, "", translate(err, "ledger")
	}
	if n > 1 {
		return 0, "", fault.Internal(errMixedCurrencies)
	}
	return sum, cur, nil
}

type ledgerError string

func (e ledgerError) Error() string { return string(e) }

const errMixedCurrencies = ledgerError("postgres: ledger holds entries in more than one currency for a tenant")
