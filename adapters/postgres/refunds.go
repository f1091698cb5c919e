package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/ports"
)

// RefundStore implements [ports.RefundStore] on refund_requests
// (migration 0020).
type RefundStore struct{ db *DB }

var _ ports.RefundStore = (*RefundStore)(nil)

// NewRefundStore returns the store; its calls join the transaction in ctx.
func NewRefundStore(db *DB) *RefundStore { return &RefundStore{db: db} }

const refundColumns = `id, tenant_id, session_id, credit_entry_id, amount_minor, currency, reason, requested_by,
	idempotency_key, provider, COALESCE(provider_ref, ''), status, failure_reason, created_at, updated_at`

func scanRefund(r pgx.Row) (payment.Refund, error) {
	var x payment.Refund
	var status string
	err := r.Scan(&x.ID, &x.TenantID, &x.SessionID, &x.CreditEntryID, &x.AmountMinor, &x.Currency, &x.Reason, &x.RequestedBy,
		&x.IdempotencyKey, &x.Provider, &x.ProviderRef, &status, &x.FailureReason, &x.CreatedAt, &x.UpdatedAt)
	x.Status = payment.RefundStatus(status)
	return x, err
}

// CreateRefund implements [ports.RefundStore].
func (s *RefundStore) CreateRefund(ctx context.Context, r payment.Refund) (payment.Refund, bool, error) {
	tag, err := s.db.Q(ctx).Exec(ctx, `INSERT INTO refund_requests (id, tenant_id, session_id, credit_entry_id, amount_minor,
		currency, reason, requested_by, idempotency_key, provider, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
		ON CONFLICT ON CONSTRAINT refund_requests_tenant_key DO NOTHING`,
		r.ID, r.TenantID, r.SessionID, r.CreditEntryID, r.AmountMinor, r.Currency, r.Reason, r.RequestedBy, r.IdempotencyKey,
		r.Provider, string(r.Status), r.CreatedAt)
	if err != nil {
		return payment.Refund{}, false, translate(err, "refund request")
	}
	if tag.RowsAffected() == 1 {
		return r, true, nil
	}
	stored, err := scanRefund(s.db.Q(ctx).QueryRow(ctx, `SELECT `+refundColumns+` FROM refund_requests
		WHERE tenant_id = $1 AND idempotency_key = $2`, r.TenantID, r.IdempotencyKey))
	return stored, false, translate(err, "refund request")
}

// GetRefund implements [ports.RefundStore].
func (s *RefundStore) GetRefund(ctx context.Context, id string) (payment.Refund, error) {
	rid, ok := canonicalID(id)
	if !ok {
		return payment.Refund{}, fault.NotFound("refund request", "")
	}
	r, err := scanRefund(s.db.Q(ctx).QueryRow(ctx, `SELECT `+refundColumns+` FROM refund_requests WHERE id = $1`, rid))
	return r, translate(err, "refund request")
}

// GetRefundByProviderRef implements [ports.RefundStore].
func (s *RefundStore) GetRefundByProviderRef(ctx context.Context, provider, ref string) (payment.Refund, error) {
	if ref == "" {
		return payment.Refund{}, fault.NotFound("refund request", "")
	}
	r, err := scanRefund(s.db.Q(ctx).QueryRow(ctx, `SELECT `+refundColumns+` FROM refund_requests
		WHERE provider = $1 AND provider_ref = $2`, provider, ref))
	return r, translate(err, "refund request")
}

// PendingRefundMinor implements [ports.RefundStore].
func (s *RefundStore) PendingRefundMinor(ctx context.Context, creditEntryID string) (int64, error) {
	var n int64
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT COALESCE(SUM(amount_minor), 0)::bigint FROM refund_requests
		WHERE credit_entry_id = $1 AND status IN ('requested', 'submitted')`, creditEntryID).Scan(&n)
	return n, translate(err, "refund request")
}

// TransitionRefund implements [ports.RefundStore]: one conditional UPDATE,
// so of concurrent movers (the API answer, the webhook) one wins.
func (s *RefundStore) TransitionRefund(ctx context.Context, id string, from []payment.RefundStatus, to payment.RefundStatus,
	providerRef, failure string, at time.Time) (bool, error) {
	froms := make([]string, 0, len(from))
	for _, f := range from {
		if payment.CanRefundTransition(f, to) {
			froms = append(froms, string(f))
		}
	}
	if len(froms) == 0 {
		return false, nil
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `UPDATE refund_requests SET status = $2, updated_at = $3,
		provider_ref = COALESCE(NULLIF($4, ''), provider_ref), failure_reason = $5
		WHERE id = $1 AND status = ANY($6)`, id, string(to), at, providerRef, failure, froms)
	return tag.RowsAffected() == 1, translate(err, "refund request")
}

// ListRefunds implements [ports.RefundStore]: newest first.
func (s *RefundStore) ListRefunds(ctx context.Context, f payment.RefundFilter) ([]payment.Refund, string, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.TenantID != "" {
		id, ok := canonicalID(f.TenantID)
		if !ok {
			return []payment.Refund{}, "", nil
		}
		where = append(where, "tenant_id = "+arg(id))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(string(f.Status)))
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(created_at, id) < ("+arg(time.UnixMicro(c.At))+", "+arg(c.ID)+"::uuid)")
	}
	q := `SELECT ` + refundColumns + ` FROM refund_requests`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT " + arg(f.Limit+1)
	out, next, err := keysetPage(ctx, s.db.Q(ctx), q, args, f.Limit, "refund request",
		func(r pgx.CollectableRow) (payment.Refund, error) { return scanRefund(r) },
		func(r payment.Refund) (time.Time, string) { return r.CreatedAt, r.ID })
	if out == nil {
		out = []payment.Refund{}
	}
	return out, next, err
}
