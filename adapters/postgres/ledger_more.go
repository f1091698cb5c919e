package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
)

// The reads and locks the money use cases need beyond [ports.LedgerStore]
// (ledger.go keeps the port's Post and Balance).

var _ ledgersvc.EntryReader = (*LedgerStore)(nil)

// Ledger page sizes.
const (
	DefaultLedgerPageSize = 50
	MaxLedgerPageSize     = 200
)

const entryColumns = `id::text, tenant_id::text, COALESCE(project_id::text, ''), COALESCE(user_id::text, ''), type,
	amount_minor, currency, idempotency_key, reference, reason, created_at`

func scanEntry(row pgx.Row) (ledger.Entry, error) {
	var e ledger.Entry
	var typ string
	err := row.Scan(&e.ID, &e.TenantID, &e.ProjectID, &e.UserID, &typ, &e.AmountMinor, &e.Currency,
		&e.IdempotencyKey, &e.Reference, &e.Reason, &e.CreatedAt)
	e.Type = ledger.EntryType(typ)
	return e, err
}

// ListEntries implements [ledgersvc.EntryReader]: newest first.
func (s *LedgerStore) ListEntries(ctx context.Context, tenantID, cursor string, limit int) ([]ledger.Entry, string, error) {
	switch {
	case limit <= 0:
		limit = DefaultLedgerPageSize
	case limit > MaxLedgerPageSize:
		limit = MaxLedgerPageSize
	}
	tid, ok := canonicalID(tenantID)
	if !ok {
		return []ledger.Entry{}, "", nil
	}
	args := []any{tid, limit + 1}
	q := `SELECT ` + entryColumns + ` FROM ledger_entries WHERE tenant_id = $1`
	if cursor != "" {
		c, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (created_at, id) < ($3, $4::uuid)`
		args = append(args, time.UnixMicro(c.At), c.ID)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT $2`
	return keysetPage(ctx, s.db.Q(ctx), q, args, limit, "ledger entry",
		func(r pgx.CollectableRow) (ledger.Entry, error) { return scanEntry(r) },
		func(e ledger.Entry) (time.Time, string) { return e.CreatedAt, e.ID })
}

// GetEntry implements [ledgersvc.EntryReader]; another tenant's entry is
// NotFound.
func (s *LedgerStore) GetEntry(ctx context.Context, tenantID, id string) (ledger.Entry, error) {
	eid, ok := canonicalID(id)
	tid, ok2 := canonicalID(tenantID)
	if !ok || !ok2 {
		return ledger.Entry{}, fault.NotFound("ledger entry", "")
	}
	e, err := scanEntry(s.db.Q(ctx).QueryRow(ctx, `SELECT `+entryColumns+` FROM ledger_entries
		WHERE id = $1 AND tenant_id = $2`, eid, tid))
	if err != nil {
		return ledger.Entry{}, translate(err, "ledger entry")
	}
	return e, nil
}

// GetEntryByKey implements [ledgersvc.EntryReader].
func (s *LedgerStore) GetEntryByKey(ctx context.Context, tenantID, idempotencyKey string) (ledger.Entry, error) {
	tid, ok := canonicalID(tenantID)
	if !ok {
		return ledger.Entry{}, fault.NotFound("ledger entry", "")
	}
	e, err := scanEntry(s.db.Q(ctx).QueryRow(ctx, `SELECT `+entryColumns+` FROM ledger_entries
		WHERE idempotency_key = $1 AND tenant_id = $2`, idempotencyKey, tid))
	if err != nil {
		return ledger.Entry{}, translate(err, "ledger entry")
	}
	return e, nil
}

// committedRefundsSQL is, for the credit c, what refunds have returned of
// it (entries of type refund whose reference is the credit's id) plus what
// the payment provider's refunds still in flight (requested or submitted)
// will return: settling one posts its ledger refund, so until then the
// ledger alone would let another refund take the same money.
const committedRefundsSQL = `(COALESCE((SELECT -SUM(r.amount_minor) FROM ledger_entries r
		WHERE r.type = 'refund' AND r.reference = c.id::text), 0)
	+ COALESCE((SELECT SUM(q.amount_minor) FROM refund_requests q
		WHERE q.credit_entry_id = c.id AND q.status IN ('requested', 'submitted')), 0))::bigint`

// RefundableCredits implements [ledgersvc.EntryReader]: the tenant's
// credits created at or after since, newest first, each with what refunds
// have returned or are returning of it (committedRefundsSQL).
func (s *LedgerStore) RefundableCredits(ctx context.Context, tenantID string, since time.Time) ([]ledgersvc.CreditRemaining, error) {
	tid, ok := canonicalID(tenantID)
	if !ok {
		return nil, nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `
		SELECT `+entryColumns+`, `+committedRefundsSQL+`
		FROM ledger_entries c
		WHERE c.tenant_id = $1 AND c.type = 'credit' AND c.created_at >= $2
		ORDER BY c.created_at DESC, c.id DESC`, tid, since)
	if err != nil {
		return nil, translate(err, "ledger entry")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledgersvc.CreditRemaining, error) {
		var c ledgersvc.CreditRemaining
		var typ string
		e := &c.Credit
		err := r.Scan(&e.ID, &e.TenantID, &e.ProjectID, &e.UserID, &typ, &e.AmountMinor, &e.Currency,
			&e.IdempotencyKey, &e.Reference, &e.Reason, &e.CreatedAt, &c.RefundedMinor)
		e.Type = ledger.EntryType(typ)
		return c, err
	})
	if err != nil {
		return nil, translate(err, "ledger entry")
	}
	return out, nil
}

// CommittedRefunds implements [ledgersvc.EntryReader]: for each of the
// tenant's credits among ids, what refunds have returned or are returning
// of it (committedRefundsSQL; positive). Ids of other tenants' entries, of
// entries that are not credits and malformed ids are left out.
func (s *LedgerStore) CommittedRefunds(ctx context.Context, tenantID string, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	tid, ok := canonicalID(tenantID)
	if !ok {
		return out, nil
	}
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if c, ok := canonicalID(id); ok {
			valid = append(valid, c)
		}
	}
	if len(valid) == 0 {
		return out, nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT c.id::text, `+committedRefundsSQL+` FROM ledger_entries c
		WHERE c.tenant_id = $1 AND c.id = ANY($2::uuid[]) AND c.type = 'credit'`, tid, valid)
	if err != nil {
		return nil, translate(err, "ledger entry")
	}
	var id string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil }); err != nil {
		return nil, translate(err, "ledger entry")
	}
	return out, nil
}

// RefundedMinor implements paymentsvc.CreditReader: what ledger
// refunds have returned of one credit so far (positive); the payments path
// adds its own requests in flight.
func (s *LedgerStore) RefundedMinor(ctx context.Context, creditEntryID string) (int64, error) {
	var n int64
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT COALESCE(-SUM(amount_minor), 0)::bigint FROM ledger_entries
		WHERE type = 'refund' AND reference = $1`, creditEntryID).Scan(&n)
	return n, translate(err, "ledger entry")
}

// LockTenantMoney implements [ledgersvc.EntryReader]: a transaction-scoped
// lock on the tenant's billing state row, so checks that read the ledger
// and then post (refund limits) cannot interleave for one tenant. Outside a
// transaction it would be released at once, so it refuses.
func (s *LedgerStore) LockTenantMoney(ctx context.Context, tenantID string) error {
	if _, inTx := ctx.Value(txKey{}).(pgx.Tx); !inTx {
		return fault.Internal(ledgerError("postgres: LockTenantMoney needs a transaction"))
	}
	tid, ok := canonicalID(tenantID)
	if !ok {
		return fault.NotFound("tenant", "")
	}
	if _, err := s.db.Q(ctx).Exec(ctx, `INSERT INTO tenant_billing_state (tenant_id) VALUES ($1)
		ON CONFLICT (tenant_id) DO NOTHING`, tid); err != nil {
		if IsForeignKeyViolation(err) {
			return fault.NotFound("tenant", "")
		}
		return translate(err, "tenant")
	}
	var one int
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT 1 FROM tenant_billing_state WHERE tenant_id = $1 FOR UPDATE`, tid).Scan(&one)
	return translate(err, "tenant")
}
