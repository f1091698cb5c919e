package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/ledger/billing"
)

// BillingStore implements [billing.Accruer]: the set-based accrual of
// usage into ledger debits (migration 0006) and the per-tenant billing
// state that makes warnings fire once per transition.
type BillingStore struct{ db *DB }

var _ billing.Accruer = (*BillingStore)(nil)

// NewBillingStore returns a BillingStore; its calls join the transaction in
// ctx.
func NewBillingStore(db *DB) *BillingStore { return &BillingStore{db: db} }

// accrueSQL debits every due usage record for [billed_through, upto) in ONE
// statement, upto = least(window end, ended_at):
//
//   - due: open records, and closed ones not billed to their end, locked FOR
//     UPDATE SKIP LOCKED — a record a metering close holds is left for the
//     next cycle (its window folds into the next one, nothing is lost), and
//     a record a concurrent worker already advanced fails the re-check of
//     billed_through < $1 and drops out;
//   - priced: cumulative cost through upto minus cumulative cost through
//     billed_through, in whole seconds from started_at, exactly as
//     core/ledger.CostMinor and billing.WindowCostMinor compute it;
//   - ins: one usage_debit per record and window, idempotency key
//     usage:<record id>:<window start unix> (billing.UsageIdempotencyKey),
//     ON CONFLICT DO NOTHING; a zero-cost window posts nothing (the ledger
//     refuses zero amounts) and its fraction is caught up by the next one,
//     because costs are cumulative;
//   - upd: billed_through advanced to upto for every priced record, in the
//     same statement, so the debit and the progress commit or roll back
//     together — a worker killed at any point bills each window once.
//
// The final SELECT sums what was posted per tenant.
const accrueSQL = `
WITH due AS (
	SELECT id, tenant_id, project_id, user_id, hourly_price_minor, currency, started_at, billed_through,
		LEAST($1::timestamptz, COALESCE(ended_at, $1::timestamptz)) AS upto
	FROM usage_records
	WHERE (ended_at IS NULL OR billed_through < ended_at) AND billed_through < $1::timestamptz
	FOR UPDATE SKIP LOCKED
), priced AS (
	SELECT d.*,
		d.hourly_price_minor * floor(extract(epoch FROM d.upto) - extract(epoch FROM d.started_at))::bigint / 3600
		- d.hourly_price_minor * floor(extract(epoch FROM d.billed_through) - extract(epoch FROM d.started_at))::bigint / 3600
		AS amount
	FROM due d
	WHERE d.upto > d.billed_through
), ins AS (
	INSERT INTO ledger_entries (id, tenant_id, project_id, user_id, type, amount_minor, currency, idempotency_key,
		reference, reason, created_at)
	SELECT gen_random_uuid(), p.tenant_id, p.project_id, p.user_id, 'usage_debit', -p.amount, p.currency,
		'usage:' || p.id::text || ':' || floor(extract(epoch FROM p.billed_through))::bigint::text,
		p.id::text, 'usage', now()
	FROM priced p
	WHERE p.amount > 0
	ON CONFLICT (idempotency_key) DO NOTHING
	RETURNING tenant_id, currency, -amount_minor AS amount
), upd AS (
	UPDATE usage_records u
	SET billed_through = p.upto, billed_minor = u.billed_minor + p.amount, updated_at = now()
	FROM priced p
	WHERE u.id = p.id
	RETURNING u.id
)
SELECT tenant_id::text, currency, SUM(amount)::bigint, COUNT(*)::int
FROM ins
GROUP BY tenant_id, currency`

// AccrueWindow implements [billing.Accruer].
func (s *BillingStore) AccrueWindow(ctx context.Context, windowEnd time.Time) ([]billing.AccrualTotal, error) {
	rows, err := s.db.Q(ctx).Query(ctx, accrueSQL, windowEnd)
	if err != nil {
		return nil, translate(err, "usage record")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (billing.AccrualTotal, error) {
		var t billing.AccrualTotal
		err := r.Scan(&t.TenantID, &t.Currency, &t.AmountMinor, &t.Records)
		return t, err
	})
	if err != nil {
		return nil, translate(err, "usage record")
	}
	return out, nil
}

// TenantsToEvaluate implements [billing.Accruer]: each tenant's balance
// (the SUM of its ledger), ledger currency, recorded state and whether it
// still has open usage, for the given tenants and every tenant whose state
// is not ok (so a balance that recovers returns them to ok).
func (s *BillingStore) TenantsToEvaluate(ctx context.Context, tenantIDs []string) ([]billing.TenantStatus, error) {
	ids := make([]string, 0, len(tenantIDs))
	for _, id := range tenantIDs {
		if c, ok := canonicalID(id); ok {
			ids = append(ids, c)
		}
	}
	rows, err := s.db.Q(ctx).Query(ctx, `
		WITH t AS (
			SELECT unnest($1::uuid[]) AS tenant_id
			UNION
			SELECT tenant_id FROM tenant_billing_state WHERE state <> 'ok'
		)
		SELECT t.tenant_id::text,
			COALESCE((SELECT SUM(l.amount_minor) FROM ledger_entries l WHERE l.tenant_id = t.tenant_id), 0)::bigint,
			COALESCE((SELECT l.currency FROM ledger_entries l WHERE l.tenant_id = t.tenant_id LIMIT 1), ''),
			COALESCE(st.state, 'ok'), st.last_warned_at, st.tenant_id IS NOT NULL,
			EXISTS (SELECT 1 FROM usage_records u WHERE u.tenant_id = t.tenant_id AND u.state = 'open'),
			COALESCE((SELECT SUM(u.hourly_price_minor) FROM usage_records u
				WHERE u.tenant_id = t.tenant_id AND u.state = 'open'), 0)::bigint,
			st.release_warned_at
		FROM t LEFT JOIN tenant_billing_state st ON st.tenant_id = t.tenant_id
		ORDER BY t.tenant_id`, ids)
	if err != nil {
		return nil, translate(err, "tenant")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (billing.TenantStatus, error) {
		var t billing.TenantStatus
		var state string
		err := r.Scan(&t.TenantID, &t.BalanceMinor, &t.Currency, &state, &t.LastWarnedAt, &t.HasStateRow, &t.HasOpenUsage,
			&t.BurnRateMinor, &t.ReleaseWarnedAt)
		t.State = billing.TenantState(state)
		return t, err
	})
	if err != nil {
		return nil, translate(err, "tenant")
	}
	return out, nil
}

// MarkReleaseWarned implements [billing.Accruer] (a tenant without a row
// counts as ok, never warned).
func (s *BillingStore) MarkReleaseWarned(ctx context.Context, tenantID string, from, to *time.Time) (bool, error) {
	q := `INSERT INTO tenant_billing_state AS st (tenant_id, state, release_warned_at, changed_at)
		VALUES ($1, 'ok', $2, now())
		ON CONFLICT (tenant_id) DO UPDATE SET release_warned_at = EXCLUDED.release_warned_at
		WHERE st.release_warned_at IS NULL`
	args := []any{tenantID, to}
	if from != nil {
		q = `UPDATE tenant_billing_state SET release_warned_at = $2 WHERE tenant_id = $1 AND release_warned_at = $3`
		args = append(args, *from)
	}
	tag, err := s.db.Q(ctx).Exec(ctx, q, args...)
	if err != nil {
		return false, translate(err, "tenant")
	}
	return tag.RowsAffected() == 1, nil
}

// SetTenantState implements [billing.Accruer] as a compare-and-set: the row
// changes only if it still holds from's state and last warning (a tenant
// without a row counts as ok, never warned).
func (s *BillingStore) SetTenantState(ctx context.Context, from billing.TenantStatus, next billing.TenantState, warnedAt *time.Time, now time.Time) (bool, error) {
	fromState := from.State
	if fromState == "" {
		fromState = billing.TenantOK
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `
		INSERT INTO tenant_billing_state AS st (tenant_id, state, last_warned_at, changed_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id) DO UPDATE
		SET state = EXCLUDED.state, last_warned_at = EXCLUDED.last_warned_at, changed_at = EXCLUDED.changed_at
		WHERE st.state = $5 AND st.last_warned_at IS NOT DISTINCT FROM $6`,
		from.TenantID, string(next), warnedAt, now, string(fromState), from.LastWarnedAt)
	if err != nil {
		return false, translate(err, "tenant")
	}
	return tag.RowsAffected() == 1, nil
}
