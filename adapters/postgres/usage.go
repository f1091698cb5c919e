package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
)

// UsageStore implements [billing.UsageStore] on usage_records (migration
// 0006). unique(allocation_id) is what makes opening idempotent.
type UsageStore struct{ db *DB }

var _ billing.UsageStore = (*UsageStore)(nil)

// NewUsageStore returns a UsageStore; its calls join the transaction in ctx.
func NewUsageStore(db *DB) *UsageStore { return &UsageStore{db: db} }

// Usage page sizes.
const (
	DefaultUsagePageSize = 50
	MaxUsagePageSize     = 200
)

const usageColumns = `id::text, tenant_id::text, project_id::text, user_id::text, allocation_id::text,
	hourly_price_minor, currency, started_at, ended_at, billed_through, billed_minor, state`

// usageListColumns are usageColumns of usage_records u with the project's
// name (projects p), for the listings people read.
const usageListColumns = `u.id::text, u.tenant_id::text, u.project_id::text, u.user_id::text, u.allocation_id::text,
	u.hourly_price_minor, u.currency, u.started_at, u.ended_at, u.billed_through, u.billed_minor, u.state,
	COALESCE(p.name, '')`

const usageListFrom = ` FROM usage_records u LEFT JOIN projects p ON p.id = u.project_id`

func scanUsageListed(row pgx.Row) (billing.UsageRecord, error) {
	var r billing.UsageRecord
	var state string
	err := row.Scan(&r.ID, &r.TenantID, &r.ProjectID, &r.UserID, &r.AllocationID, &r.HourlyPriceMinor, &r.Currency,
		&r.StartedAt, &r.EndedAt, &r.BilledThrough, &r.BilledMinor, &state, &r.ProjectName)
	r.State = billing.UsageState(state)
	return r, err
}

func scanUsage(row pgx.Row) (billing.UsageRecord, error) {
	var r billing.UsageRecord
	var state string
	err := row.Scan(&r.ID, &r.TenantID, &r.ProjectID, &r.UserID, &r.AllocationID, &r.HourlyPriceMinor, &r.Currency,
		&r.StartedAt, &r.EndedAt, &r.BilledThrough, &r.BilledMinor, &state)
	r.State = billing.UsageState(state)
	return r, err
}

// Open implements [billing.UsageStore].
func (s *UsageStore) Open(ctx context.Context, r billing.UsageRecord) (bool, error) {
	tag, err := s.db.Q(ctx).Exec(ctx, `
		INSERT INTO usage_records (id, tenant_id, project_id, user_id, allocation_id, hourly_price_minor, currency,
			started_at, ended_at, billed_through, state)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (allocation_id) DO NOTHING`,
		r.ID, r.TenantID, r.ProjectID, r.UserID, r.AllocationID, r.HourlyPriceMinor, r.Currency, r.StartedAt,
		r.EndedAt, r.BilledThrough, string(r.State))
	if err != nil {
		return false, translate(err, "usage record")
	}
	return tag.RowsAffected() == 1, nil
}

// GetByAllocation implements [billing.UsageStore]. Inside a transaction
// the row is locked FOR UPDATE (the accrual skips it meanwhile).
func (s *UsageStore) GetByAllocation(ctx context.Context, allocationID string) (billing.UsageRecord, error) {
	id, ok := canonicalID(allocationID)
	if !ok {
		return billing.UsageRecord{}, fault.NotFound("usage record", "")
	}
	q := `SELECT ` + usageColumns + ` FROM usage_records WHERE allocation_id = $1`
	if _, inTx := ctx.Value(txKey{}).(pgx.Tx); inTx {
		q += ` FOR UPDATE`
	}
	r, err := scanUsage(s.db.Q(ctx).QueryRow(ctx, q, id))
	if err != nil {
		return billing.UsageRecord{}, translate(err, "usage record")
	}
	return r, nil
}

// Close implements [billing.UsageStore].
func (s *UsageStore) Close(ctx context.Context, id string, endedAt time.Time, correctedMinor int64) (bool, error) {
	tag, err := s.db.Q(ctx).Exec(ctx, `
		UPDATE usage_records
		SET state = 'closed', ended_at = GREATEST($2::timestamptz, started_at),
			billed_through = LEAST(billed_through, GREATEST($2::timestamptz, started_at)),
			billed_minor = billed_minor - $3, updated_at = now()
		WHERE id = $1 AND state = 'open'`, id, endedAt, correctedMinor)
	if err != nil {
		return false, translate(err, "usage record")
	}
	return tag.RowsAffected() == 1, nil
}

// List implements [billing.UsageStore]: newest first by started_at, id.
func (s *UsageStore) List(ctx context.Context, tenantID, cursor string, limit int) ([]billing.UsageRecord, string, error) {
	switch {
	case limit <= 0:
		limit = DefaultUsagePageSize
	case limit > MaxUsagePageSize:
		limit = MaxUsagePageSize
	}
	tid, ok := canonicalID(tenantID)
	if !ok {
		return []billing.UsageRecord{}, "", nil
	}
	args := []any{tid, limit + 1}
	q := `SELECT ` + usageListColumns + usageListFrom + ` WHERE u.tenant_id = $1`
	if cursor != "" {
		c, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (u.started_at, u.id) < ($3, $4::uuid)`
		args = append(args, time.UnixMicro(c.At), c.ID)
	}
	q += ` ORDER BY u.started_at DESC, u.id DESC LIMIT $2`
	return keysetPage(ctx, s.db.Q(ctx), q, args, limit, "usage record",
		func(r pgx.CollectableRow) (billing.UsageRecord, error) { return scanUsageListed(r) },
		func(u billing.UsageRecord) (time.Time, string) { return u.StartedAt, u.ID })
}

// Each implements [billing.UsageStore]. Rows are decoded one at a time as
// they arrive from the server; nothing holds the whole set.
func (s *UsageStore) Each(ctx context.Context, tenantID string, fn func(billing.UsageRecord) error) error {
	tid, ok := canonicalID(tenantID)
	if !ok {
		return nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+usageListColumns+usageListFrom+` WHERE u.tenant_id = $1
		ORDER BY u.started_at DESC, u.id DESC`, tid)
	if err != nil {
		return translate(err, "usage record")
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanUsageListed(rows)
		if err != nil {
			return translate(err, "usage record")
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return translate(rows.Err(), "usage record")
}

// BurnRate implements [billing.UsageStore].
func (s *UsageStore) BurnRate(ctx context.Context, tenantID string) (int64, error) {
	tid, ok := canonicalID(tenantID)
	if !ok {
		return 0, nil
	}
	var n int64
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT COALESCE(SUM(hourly_price_minor), 0)::bigint FROM usage_records
		WHERE tenant_id = $1 AND state = 'open'`, tid).Scan(&n)
	return n, translate(err, "usage record")
}
