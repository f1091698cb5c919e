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

// PaymentStore implements [ports.PaymentStore] on payment_sessions,
// payment_customers and payment_events (migration 0007). Calls join the
// transaction in ctx.
type PaymentStore struct{ db *DB }

var _ ports.PaymentStore = (*PaymentStore)(nil)

// NewPaymentStore returns a PaymentStore.
func NewPaymentStore(db *DB) *PaymentStore { return &PaymentStore{db: db} }

const paymentColumns = `id, tenant_id, user_id, amount_minor, currency, provider, COALESCE(provider_ref, ''),
	checkout_url, status, idempotency_key, created_at, updated_at`

// listedPaymentColumns adds the ledger credit a session posted (found by
// its idempotency key, payment.LedgerKey; unique, so one index lookup).
const listedPaymentColumns = paymentColumns + `,
	COALESCE((SELECT l.id::text FROM ledger_entries l WHERE l.idempotency_key = 'payment:' || payment_sessions.id::text), '')`

func scanPayment(row pgx.Row) (payment.Session, error) { return scanPaymentWith(row, false) }

// scanPaymentWith reads paymentColumns, and listedPaymentColumns' credit
// when listed.
func scanPaymentWith(row pgx.Row, listed bool) (payment.Session, error) {
	var s payment.Session
	var status string
	dest := []any{&s.ID, &s.TenantID, &s.UserID, &s.AmountMinor, &s.Currency, &s.Provider, &s.ProviderRef,
		&s.CheckoutURL, &status, &s.IdempotencyKey, &s.CreatedAt, &s.UpdatedAt}
	if listed {
		dest = append(dest, &s.CreditEntryID)
	}
	err := row.Scan(dest...)
	s.Status = payment.Status(status)
	return s, err
}

// CreateSession implements [ports.PaymentStore]. The (user, idempotency
// key) constraint decides between concurrent first attempts: the loser's
// INSERT waits for the winner's commit, does nothing, and reads the winner's
// row, so both callers get the same session.
func (s *PaymentStore) CreateSession(ctx context.Context, p payment.Session) (payment.Session, bool, error) {
	if !p.Status.Valid() {
		return payment.Session{}, false, fault.Invalid("status", "unknown payment session status")
	}
	tenant, ok1 := canonicalID(p.TenantID)
	user, ok2 := canonicalID(p.UserID)
	if !ok1 || !ok2 {
		return payment.Session{}, false, fault.Invalid("tenant_id", "a payment session needs valid tenant and user ids")
	}
	var out payment.Session
	created := false
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		row := s.db.Q(ctx).QueryRow(ctx, `
			INSERT INTO payment_sessions (id, tenant_id, user_id, amount_minor, currency, provider, provider_ref,
				checkout_url, status, idempotency_key, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8, $9, $10, $11, $11)
			ON CONFLICT ON CONSTRAINT payment_sessions_user_idempotency_key DO NOTHING
			RETURNING `+paymentColumns,
			p.ID, tenant, user, p.AmountMinor, p.Currency, p.Provider, p.ProviderRef, p.CheckoutURL,
			string(p.Status), p.IdempotencyKey, p.CreatedAt)
		var err error
		out, err = scanPayment(row)
		if err == nil {
			created = true
			return nil
		}
		if err != pgx.ErrNoRows { //nolint:errorlint // pgx returns the sentinel itself
			return translate(err, "payment session")
		}
		out, err = scanPayment(s.db.Q(ctx).QueryRow(ctx, `SELECT `+paymentColumns+`
			FROM payment_sessions WHERE user_id = $1 AND idempotency_key = $2`, user, p.IdempotencyKey))
		return translate(err, "payment session")
	})
	return out, created, err
}

// AttachProviderRef implements [ports.PaymentStore]. Setting the same ref
// again is a no-op; a different ref on a session that has one is a conflict.
func (s *PaymentStore) AttachProviderRef(ctx context.Context, id, ref, checkoutURL string) error {
	cid, ok := canonicalID(id)
	if !ok {
		return fault.NotFound("payment session", id)
	}
	if ref == "" {
		return fault.Invalid("provider_ref", "the provider reference is empty")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `
		UPDATE payment_sessions SET provider_ref = $2, checkout_url = $3, updated_at = now()
		WHERE id = $1 AND (provider_ref IS NULL OR provider_ref = $2)`, cid, ref, checkoutURL)
	if err != nil {
		return translate(err, "payment session")
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.GetSession(ctx, cid); err != nil {
			return err
		}
		return fault.Conflict(fault.CodeConflict, "the payment session already has another provider reference")
	}
	return nil
}

// GetSession implements [ports.PaymentStore].
func (s *PaymentStore) GetSession(ctx context.Context, id string) (payment.Session, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return payment.Session{}, fault.NotFound("payment session", "")
	}
	p, err := scanPayment(s.db.Q(ctx).QueryRow(ctx, `SELECT `+paymentColumns+` FROM payment_sessions WHERE id = $1`, cid))
	return p, translate(err, "payment session")
}

// GetSessionByProviderRef implements [ports.PaymentStore].
func (s *PaymentStore) GetSessionByProviderRef(ctx context.Context, ref string) (payment.Session, error) {
	if ref == "" {
		return payment.Session{}, fault.NotFound("payment session", "")
	}
	p, err := scanPayment(s.db.Q(ctx).QueryRow(ctx, `SELECT `+paymentColumns+` FROM payment_sessions WHERE provider_ref = $1`, ref))
	return p, translate(err, "payment session")
}

// TransitionSession implements [ports.PaymentStore] with one conditional
// UPDATE: under READ COMMITTED a concurrent writer's commit is re-checked
// against the WHERE, so of two racing transitions exactly one moves the row.
func (s *PaymentStore) TransitionSession(ctx context.Context, id string, from, to payment.Status, at time.Time) (bool, error) {
	if !payment.CanTransition(from, to) {
		return false, fault.Conflict(fault.CodeConflict, "a payment session cannot move from "+string(from)+" to "+string(to))
	}
	cid, ok := canonicalID(id)
	if !ok {
		return false, fault.NotFound("payment session", "")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `
		UPDATE payment_sessions SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2`,
		cid, string(from), string(to), at)
	if err != nil {
		return false, translate(err, "payment session")
	}
	return tag.RowsAffected() == 1, nil
}

// Page sizes of ListSessions.
const (
	DefaultPaymentPageSize = 50
	MaxPaymentPageSize     = 200
)

// ListSessions implements [ports.PaymentStore]: newest first, keyset
// paginated on (created_at, id); the next cursor is "" on the last page.
func (s *PaymentStore) ListSessions(ctx context.Context, f payment.SessionFilter) ([]payment.Session, string, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultPaymentPageSize
	case limit > MaxPaymentPageSize:
		limit = MaxPaymentPageSize
	}
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
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
	q := `SELECT ` + listedPaymentColumns + ` FROM payment_sessions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT " + arg(limit+1)
	return keysetPage(ctx, s.db.Q(ctx), q, args, limit, "payment session",
		func(r pgx.CollectableRow) (payment.Session, error) { return scanPaymentWith(r, true) },
		func(p payment.Session) (time.Time, string) { return p.CreatedAt, p.ID })
}

// MarkEventProcessed implements [ports.PaymentStore]. A concurrent insert of
// the same id waits on the primary key until the first transaction ends:
// after its commit this one does nothing (false); after its rollback this
// one inserts (true) — so exactly one transaction applies each event.
func (s *PaymentStore) MarkEventProcessed(ctx context.Context, provider, eventID, eventType string, at time.Time) (bool, error) {
	if provider == "" || eventID == "" || len(eventID) > 255 {
		return false, fault.Invalid("event_id", "a provider event needs a provider and an id of at most 255 characters")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `
		INSERT INTO payment_events (provider, event_id, type, received_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (provider, event_id) DO NOTHING`, provider, eventID, eventType, at)
	if err != nil {
		return false, translate(err, "payment event")
	}
	return tag.RowsAffected() == 1, nil
}

// CustomerRef implements [ports.PaymentStore].
func (s *PaymentStore) CustomerRef(ctx context.Context, tenantID, provider string) (string, error) {
	id, ok := canonicalID(tenantID)
	if !ok {
		return "", fault.NotFound("payment customer", "")
	}
	var ref string
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT customer_ref FROM payment_customers WHERE tenant_id = $1 AND provider = $2`,
		id, provider).Scan(&ref)
	return ref, translate(err, "payment customer")
}

// SaveCustomerRef implements [ports.PaymentStore]: the first stored ref wins.
func (s *PaymentStore) SaveCustomerRef(ctx context.Context, tenantID, provider, ref string) (string, error) {
	id, ok := canonicalID(tenantID)
	if !ok {
		return "", fault.NotFound("tenant", "")
	}
	var stored string
	err := s.db.Q(ctx).QueryRow(ctx, `
		INSERT INTO payment_customers (tenant_id, provider, customer_ref) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, provider) DO UPDATE SET customer_ref = payment_customers.customer_ref
		RETURNING customer_ref`, id, provider, ref).Scan(&stored)
	return stored, translate(err, "payment customer")
}
