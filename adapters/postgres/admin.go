package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/admin"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/ports"
)

// AdminStore implements the operators' ports: the user and tenant
// directory, pending users, and the ops view's reads and event retries.
type AdminStore struct{ db *DB }

var (
	_ ports.AdminDirectory = (*AdminStore)(nil)
	_ ports.PendingUsers   = (*AdminStore)(nil)
	_ ports.OpsReader      = (*AdminStore)(nil)
)

// NewAdminStore returns the store; its calls join the transaction in ctx.
func NewAdminStore(db *DB) *AdminStore { return &AdminStore{db: db} }

// pendingIssuer marks a user an operator created who has not signed in:
// (oidc_issuer ”, oidc_subject 'pending:' || email) keeps users_identity_key
// unique per email until the first sign-in binds the real identity.
const pendingIssuer = ""

const adminUserSelect = `SELECT u.id, u.oidc_issuer, u.oidc_subject, u.email, u.display_name, u.role, u.status,
	u.created_at, u.updated_at, COALESCE(m.tenant_id::text, ''), COALESCE(t.name, ''), COALESCE(m.role, '')
	FROM users u LEFT JOIN tenant_memberships m ON m.user_id = u.id LEFT JOIN tenants t ON t.id = m.tenant_id`

func scanUserRow(r pgx.Row) (admin.UserRow, error) {
	var row admin.UserRow
	var role string
	u, err := scanUser(r, &row.TenantID, &row.TenantName, &role)
	if err != nil {
		return row, err
	}
	row.User, row.TenantRole, row.Pending = u, identity.TenantRole(role), u.Issuer == pendingIssuer
	if row.Pending {
		row.User.Subject = ""
	}
	return row, nil
}

// ListUsers implements [ports.AdminDirectory]: newest first.
func (s *AdminStore) ListUsers(ctx context.Context, f admin.UserFilter) ([]admin.UserRow, string, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.Email != "" {
		where = append(where, "strpos(lower(u.email), lower("+arg(f.Email)+")) > 0")
	}
	if f.TenantID != "" {
		id, ok := canonicalID(f.TenantID)
		if !ok {
			return []admin.UserRow{}, "", nil
		}
		where = append(where, "m.tenant_id = "+arg(id))
	}
	if f.Status != "" {
		where = append(where, "u.status = "+arg(string(f.Status)))
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(u.created_at, u.id) < ("+arg(time.UnixMicro(c.At))+", "+arg(c.ID)+"::uuid)")
	}
	q := adminUserSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY u.created_at DESC, u.id DESC LIMIT " + arg(f.Limit+1)
	out, next, err := keysetPage(ctx, s.db.Q(ctx), q, args, f.Limit, "user",
		func(r pgx.CollectableRow) (admin.UserRow, error) { return scanUserRow(r) },
		func(r admin.UserRow) (time.Time, string) { return r.User.CreatedAt, r.User.ID })
	if out == nil {
		out = []admin.UserRow{}
	}
	return out, next, err
}

// User implements [ports.AdminDirectory].
func (s *AdminStore) User(ctx context.Context, id string) (admin.UserRow, error) {
	uid, ok := canonicalID(id)
	if !ok {
		return admin.UserRow{}, fault.NotFound("user", "")
	}
	row, err := scanUserRow(s.db.Q(ctx).QueryRow(ctx, adminUserSelect+" WHERE u.id = $1", uid))
	return row, translate(err, "user")
}

const adminTenantSelect = `SELECT t.id, t.name, t.slug, t.created_at,
	(SELECT count(*) FROM tenant_memberships m WHERE m.tenant_id = t.id)::int,
	COALESCE((SELECT SUM(l.amount_minor) FROM ledger_entries l WHERE l.tenant_id = t.id), 0)::bigint,
	COALESCE((SELECT l.currency FROM ledger_entries l WHERE l.tenant_id = t.id LIMIT 1), ''),
	(SELECT count(*) FROM allocations a WHERE a.tenant_id = t.id
		AND a.state IN ('requested', 'provisioning', 'active', 'releasing', 'release_failed'))::int
	FROM tenants t`

func scanTenantRow(r pgx.Row) (admin.TenantRow, error) {
	var x admin.TenantRow
	err := r.Scan(&x.Tenant.ID, &x.Tenant.Name, &x.Tenant.Slug, &x.Tenant.CreatedAt, &x.Members, &x.BalanceMinor,
		&x.Currency, &x.LiveAllocs)
	return x, err
}

// ListTenants implements [ports.AdminDirectory]: newest first.
func (s *AdminStore) ListTenants(ctx context.Context, f admin.TenantFilter) ([]admin.TenantRow, string, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.Name != "" {
		p := arg(f.Name)
		where = append(where, "(strpos(lower(t.name), lower("+p+")) > 0 OR strpos(t.slug, lower("+p+")) > 0)")
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(t.created_at, t.id) < ("+arg(time.UnixMicro(c.At))+", "+arg(c.ID)+"::uuid)")
	}
	q := adminTenantSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY t.created_at DESC, t.id DESC LIMIT " + arg(f.Limit+1)
	out, next, err := keysetPage(ctx, s.db.Q(ctx), q, args, f.Limit, "tenant",
		func(r pgx.CollectableRow) (admin.TenantRow, error) { return scanTenantRow(r) },
		func(r admin.TenantRow) (time.Time, string) { return r.Tenant.CreatedAt, r.Tenant.ID })
	if out == nil {
		out = []admin.TenantRow{}
	}
	return out, next, err
}

// Tenant implements [ports.AdminDirectory].
func (s *AdminStore) Tenant(ctx context.Context, id string) (admin.TenantRow, error) {
	tid, ok := canonicalID(id)
	if !ok {
		return admin.TenantRow{}, fault.NotFound("tenant", "")
	}
	row, err := scanTenantRow(s.db.Q(ctx).QueryRow(ctx, adminTenantSelect+" WHERE t.id = $1", tid))
	return row, translate(err, "tenant")
}

// TenantMembers implements [ports.AdminDirectory].
func (s *AdminStore) TenantMembers(ctx context.Context, tenantID string) ([]admin.Member, error) {
	tid, ok := canonicalID(tenantID)
	if !ok {
		return []admin.Member{}, nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+prefixed("u.", userColumns)+`, m.role FROM tenant_memberships m
		JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 ORDER BY m.created_at, u.id`, tid)
	if err != nil {
		return nil, translate(err, "user")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (admin.Member, error) {
		var role string
		u, err := scanUser(r, &role)
		if u.Issuer == pendingIssuer {
			u.Subject = ""
		}
		return admin.Member{User: u, Role: identity.TenantRole(role)}, err
	})
	if out == nil {
		out = []admin.Member{}
	}
	return out, translate(err, "user")
}

// CreatePendingUser implements [ports.AdminDirectory].
func (s *AdminStore) CreatePendingUser(ctx context.Context, u identity.User) error {
	tag, err := s.db.Q(ctx).Exec(ctx, `INSERT INTO users (`+userColumns+`)
		SELECT $1, '', 'pending:' || $2, $2, $3, 'user', 'active', $4, $4
		WHERE NOT EXISTS (SELECT 1 FROM users WHERE lower(email) = $2)`, u.ID, u.Email, u.DisplayName, u.CreatedAt)
	if err != nil {
		return translate(err, "user")
	}
	if tag.RowsAffected() == 0 {
		return fault.Conflict(fault.CodeConflict, "a user with this email exists")
	}
	return nil
}

// ClaimPending implements [ports.PendingUsers].
func (s *AdminStore) ClaimPending(ctx context.Context, email, issuer, subject string) (identity.User, error) {
	defer noteAccessChange(s.db) // this process's caches see the write at once (access.go)
	u, err := scanUser(s.db.Q(ctx).QueryRow(ctx, `UPDATE users SET oidc_issuer = $2, oidc_subject = $3, updated_at = now()
		WHERE oidc_issuer = '' AND oidc_subject = 'pending:' || $1 RETURNING `+userColumns,
		strings.ToLower(email), issuer, subject))
	return u, translate(err, "user")
}

// SetUserStatus implements [ports.AdminDirectory].
func (s *AdminStore) SetUserStatus(ctx context.Context, id string, status identity.UserStatus, at time.Time) (bool, error) {
	defer noteAccessChange(s.db) // this process's caches see the write at once (access.go)
	uid, ok := canonicalID(id)
	if !ok {
		return false, fault.NotFound("user", "")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `UPDATE users SET status = $2, updated_at = $3 WHERE id = $1 AND status <> $2`,
		uid, string(status), at)
	return tag.RowsAffected() == 1, translate(err, "user")
}

// ActiveAdmins implements [ports.AdminDirectory].
func (s *AdminStore) ActiveAdmins(ctx context.Context) (int, error) {
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT id FROM users WHERE role = 'admin' AND status = 'active' FOR UPDATE`)
	if err != nil {
		return 0, translate(err, "user")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return len(ids), translate(err, "user")
}

func counts(ctx context.Context, q querier, sql string, args ...any) ([]admin.Count, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (admin.Count, error) {
		var c admin.Count
		return c, r.Scan(&c.Name, &c.Count)
	})
	if out == nil {
		out = []admin.Count{}
	}
	return out, err
}

// Snapshot implements [ports.OpsReader].
func (s *AdminStore) Snapshot(ctx context.Context, now time.Time, stuckAfter time.Duration) (admin.OpsSnapshot, error) {
	q := s.db.Q(ctx)
	var snap admin.OpsSnapshot
	var err error
	if snap.NodesByState, err = counts(ctx, q, `SELECT state, count(*)::int FROM nodes GROUP BY state ORDER BY state`); err != nil {
		return snap, translate(err, "node")
	}
	if snap.NodesByHealth, err = counts(ctx, q, `SELECT CASE WHEN (health->>'ok')::boolean THEN 'ok' ELSE 'unhealthy' END,
		count(*)::int FROM nodes WHERE state IN ('active', 'maintenance') GROUP BY 1 ORDER BY 1`); err != nil {
		return snap, translate(err, "node")
	}
	if snap.AllocationsByState, err = counts(ctx, q, `SELECT state, count(*)::int FROM allocations
		WHERE state IN ('requested', 'provisioning', 'active', 'releasing', 'release_failed') GROUP BY state ORDER BY state`); err != nil {
		return snap, translate(err, "allocation")
	}
	if err := q.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM allocations WHERE state IN ('requested', 'provisioning', 'releasing') AND updated_at < $1)::int,
		(SELECT count(*) FROM allocations WHERE state = 'release_failed')::int,
		(SELECT count(*) FROM platform_outbox_events WHERE status = 'pending')::int,
		(SELECT min(occurred_at) FROM platform_outbox_events WHERE status = 'pending'),
		(SELECT count(*) FROM platform_outbox_events WHERE status = 'failed')::int,
		(SELECT count(*) FROM payment_sessions WHERE status = 'failed_reconcile')::int,
		(SELECT count(*) FROM notification_emails WHERE status = 'pending')::int,
		(SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')::int`, now.Add(-stuckAfter)).Scan(
		&snap.Stuck, &snap.ReleaseFailed, &snap.OutboxPending, &snap.OutboxOldest, &snap.OutboxFailed,
		&snap.PaymentsToReconcile, &snap.EmailsPending, &snap.WebhooksPending); err != nil {
		return snap, translate(err, "ops")
	}
	rows, err := q.Query(ctx, `SELECT id, subject, occurred_at, retry_count, COALESCE(last_error, '')
		FROM platform_outbox_events WHERE status = 'failed' ORDER BY occurred_at DESC LIMIT $1`, admin.FailedEventsOnThePage)
	if err != nil {
		return snap, translate(err, "event")
	}
	snap.FailedEvents, err = pgx.CollectRows(rows, scanFailedEvent)
	if snap.FailedEvents == nil {
		snap.FailedEvents = []admin.FailedEvent{}
	}
	return snap, translate(err, "event")
}

func scanFailedEvent(r pgx.CollectableRow) (admin.FailedEvent, error) {
	var e admin.FailedEvent
	return e, r.Scan(&e.ID, &e.Subject, &e.OccurredAt, &e.RetryCount, &e.LastError)
}

// RetryEvent implements [ports.OpsReader]: the row goes back to pending
// with its retry count reset and is due now; the outbox trigger wakes the
// relays.
func (s *AdminStore) RetryEvent(ctx context.Context, id string) (admin.FailedEvent, error) {
	eid, ok := canonicalID(id)
	if !ok {
		return admin.FailedEvent{}, fault.NotFound("failed event", "")
	}
	rows, err := s.db.Q(ctx).Query(ctx, `WITH before AS (
			SELECT id, subject, occurred_at, retry_count, COALESCE(last_error, '') AS last_error
			FROM platform_outbox_events WHERE id = $1 AND status = 'failed' FOR UPDATE)
		UPDATE platform_outbox_events o SET status = 'pending', retry_count = 0, next_attempt_at = now()
		FROM before WHERE o.id = before.id
		RETURNING before.id, before.subject, before.occurred_at, before.retry_count, before.last_error`, eid)
	if err != nil {
		return admin.FailedEvent{}, translate(err, "failed event")
	}
	out, err := pgx.CollectRows(rows, scanFailedEvent)
	if err != nil {
		return admin.FailedEvent{}, translate(err, "failed event")
	}
	if len(out) == 0 {
		return admin.FailedEvent{}, fault.NotFound("failed event", "")
	}
	// An UPDATE does not fire the outbox's INSERT trigger: wake the relays.
	if _, err := s.db.Q(ctx).Exec(ctx, `SELECT pg_notify($1, '')`, outboxChannel); err != nil {
		return admin.FailedEvent{}, translate(err, "failed event")
	}
	return out[0], nil
}

// Expected reports whether the platform expects someone with this email to
// sign in for the first time: an operator created them (a pending user) or
// a tenant invited them. The dev identity provider asks it
// (devoidc.Directory).
func (s *AdminStore) Expected(ctx context.Context, email string) (bool, error) {
	var ok bool
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE oidc_issuer = '' AND oidc_subject = 'pending:' || $1)
		OR EXISTS (SELECT 1 FROM tenant_invitations WHERE email = $1)`, strings.ToLower(email)).Scan(&ok)
	return ok, translate(err, "user")
}
