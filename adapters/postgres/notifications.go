package postgres

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/notification"
	"github.com/gpuaas/gpuaas/ports"
)

// NotificationStore implements the notification ports on Postgres
// (migration 0015): the inbox and its live-stream wake-ups (LISTEN
// notifications), recipients, preferences, the email queue and webhook
// endpoints with their deliveries.
type NotificationStore struct {
	db *DB
	n  *notifier
}

var (
	_ ports.NotificationInbox       = (*NotificationStore)(nil)
	_ ports.NotificationFeed        = (*NotificationStore)(nil)
	_ ports.NotificationRecipients  = (*NotificationStore)(nil)
	_ ports.NotificationPreferences = (*NotificationStore)(nil)
	_ ports.MailQueue               = (*NotificationStore)(nil)
	_ ports.WebhookStore            = (*NotificationStore)(nil)
)

// NotificationListenerName is the application name of the live streams'
// LISTEN connection.
const NotificationListenerName = "gpuaas-notification-listener"

const notificationChannel = "notifications"

// NewNotificationStore returns the store; its calls join the transaction
// in ctx. logger receives the listener's reconnect messages (nil: discard).
func NewNotificationStore(db *DB, logger *slog.Logger) *NotificationStore {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &NotificationStore{db: db, n: newNotifier(db, 30*time.Second, logger, NotificationListenerName, notificationChannel)}
}

// Close stops the LISTEN connection.
func (s *NotificationStore) Close() { s.n.close() }

// Subscribe implements [ports.NotificationFeed].
func (s *NotificationStore) Subscribe(userID string) (<-chan struct{}, func()) {
	if id, ok := canonicalID(userID); ok {
		userID = id
	}
	return s.n.subscribe(notificationChannel, userID)
}

const notificationColumns = `id, seq, user_id, tenant_id, event_id, kind, title, body, data, created_at, read_at`

func scanNotification(r pgx.CollectableRow) (notification.Notification, error) {
	var n notification.Notification
	var kind string
	var data []byte
	if err := r.Scan(&n.ID, &n.Seq, &n.UserID, &n.TenantID, &n.EventID, &kind, &n.Title, &n.Body, &data, &n.CreatedAt, &n.ReadAt); err != nil {
		return n, err
	}
	n.Kind = notification.Kind(kind)
	return n, json.Unmarshal(data, &n.Data)
}

// deliverRowSQL inserts one inbox row under its user's advisory lock
// (the locked CTE is the insert's only input, so the lock is held before
// the row's seq is drawn, and to the commit: a user's rows commit in seq
// order, which is what lets a live stream resume after a seq without
// missing a row). deliverMailedRowSQL also queues the row's email, only
// when the row is new.
const (
	deliverRowCTEs = `WITH locked AS (SELECT pg_advisory_xact_lock(hashtextextended('notifications:' || $2::uuid::text, 0))),
	inserted AS (INSERT INTO notifications (id, user_id, tenant_id, event_id, kind, title, body, data, created_at)
		SELECT $1::uuid, $2::uuid, $3::uuid, $4::uuid, $5::text, $6::text, $7::text, $8::jsonb, $9::timestamptz FROM locked
		ON CONFLICT ON CONSTRAINT notifications_event_user_key DO NOTHING
		RETURNING ` + notificationColumns + `)`
	deliverRowSQL       = deliverRowCTEs + ` SELECT ` + notificationColumns + ` FROM inserted`
	deliverMailedRowSQL = deliverRowCTEs + `,
	mail AS (INSERT INTO notification_emails (id, to_addr, subject, body, message_id, next_attempt_at, created_at)
		SELECT id, $10::text, $11::text, $12::text, $13::text, $14::timestamptz, $14::timestamptz FROM inserted
		ON CONFLICT (id) DO NOTHING)
	SELECT ` + notificationColumns + ` FROM inserted`
	deliverWebhookSQL = `INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, project_id, event_id,
		event_type, payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT ON CONSTRAINT webhook_deliveries_endpoint_event_key DO NOTHING`
)

// Deliver implements [ports.NotificationInbox]: one statement per row
// (lock, insert, email) and one per webhook delivery, pipelined — outside
// a transaction one round trip, an implicit transaction that commits
// when the batch ends. Rows are written in user order, so two deliveries
// take their users' locks in the same order and cannot deadlock.
func (s *NotificationStore) Deliver(ctx context.Context, d ports.NotificationDelivery) ([]notification.Notification, error) {
	if len(d.Rows) == 0 && len(d.Webhooks) == 0 {
		return nil, nil
	}
	rows := slices.Clone(d.Rows)
	slices.SortStableFunc(rows, func(a, b notification.Notification) int { return strings.Compare(a.UserID, b.UserID) })
	mails := make(map[string]notification.Email, len(d.Emails))
	for _, m := range d.Emails {
		mails[m.ID] = m
	}
	data := make([][]byte, len(rows))
	for i, r := range rows {
		data[i] = []byte("{}")
		if r.Data != nil {
			var err error
			if data[i], err = json.Marshal(r.Data); err != nil {
				return nil, fault.Internal(err)
			}
		}
	}
	var out []notification.Notification
	err := s.db.sendBatch(ctx, func() *pgx.Batch {
		out = out[:0]
		b := &pgx.Batch{}
		collect := func(rs pgx.Rows) error {
			got, err := pgx.CollectRows(rs, scanNotification)
			out = append(out, got...)
			return err
		}
		for i, r := range rows {
			args := []any{r.ID, r.UserID, r.TenantID, r.EventID, string(r.Kind), r.Title, r.Body, data[i], r.CreatedAt}
			q := deliverRowSQL
			if m, ok := mails[r.ID]; ok {
				at := m.CreatedAt
				if at.IsZero() {
					at = r.CreatedAt
				}
				q, args = deliverMailedRowSQL, append(args, m.To, m.Subject, m.Body, m.MessageID, at)
			}
			b.Queue(q, args...).Query(collect)
		}
		for _, w := range d.Webhooks {
			b.Queue(deliverWebhookSQL, w.ID, w.EndpointID, w.TenantID, w.ProjectID, w.EventID, w.EventType, w.Payload,
				w.NextAttemptAt, w.CreatedAt)
		}
		return b
	})
	if err != nil {
		return nil, translate(err, "notification")
	}
	return out, nil
}

// List implements [ports.NotificationInbox]: newest first by seq.
func (s *NotificationStore) List(ctx context.Context, userID string, f ports.NotificationFilter) ([]notification.Notification, string, error) {
	uid, ok := canonicalID(userID)
	if !ok {
		return []notification.Notification{}, "", nil
	}
	args := []any{uid}
	q := `SELECT ` + notificationColumns + ` FROM notifications WHERE user_id = $1`
	if f.UnreadOnly {
		q += ` AND read_at IS NULL`
	}
	if f.Cursor != "" {
		seq, err := strconv.ParseInt(f.Cursor, 36, 64)
		if err != nil || seq <= 0 {
			return nil, "", fault.Invalid("cursor", "the cursor is not one this server issued")
		}
		args = append(args, seq)
		q += ` AND seq < $2`
	}
	args = append(args, f.Limit+1)
	q += ` ORDER BY seq DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.db.Q(ctx).Query(ctx, q, args...)
	if err != nil {
		return nil, "", translate(err, "notification")
	}
	out, err := pgx.CollectRows(rows, scanNotification)
	if err != nil {
		return nil, "", translate(err, "notification")
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = strconv.FormatInt(out[f.Limit-1].Seq, 36)
	}
	return out, next, nil
}

// Since implements [ports.NotificationInbox].
func (s *NotificationStore) Since(ctx context.Context, userID string, after int64, limit int) ([]notification.Notification, error) {
	uid, ok := canonicalID(userID)
	if !ok {
		return nil, nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+notificationColumns+` FROM notifications
		WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, uid, after, limit)
	if err != nil {
		return nil, translate(err, "notification")
	}
	out, err := pgx.CollectRows(rows, scanNotification)
	return out, translate(err, "notification")
}

// MarkRead implements [ports.NotificationInbox].
func (s *NotificationStore) MarkRead(ctx context.Context, userID string, ids []string, at time.Time) (int, error) {
	uid, ok := canonicalID(userID)
	if !ok {
		return 0, nil
	}
	q := `UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL`
	args := []any{uid, at}
	if len(ids) > 0 {
		valid := make([]string, 0, len(ids))
		for _, id := range ids {
			if c, ok := canonicalID(id); ok {
				valid = append(valid, c)
			}
		}
		if len(valid) == 0 {
			return 0, nil
		}
		q += ` AND id = ANY($3::uuid[])`
		args = append(args, valid)
	}
	tag, err := s.db.Q(ctx).Exec(ctx, q, args...)
	return int(tag.RowsAffected()), translate(err, "notification")
}

// UnreadCount implements [ports.NotificationInbox].
func (s *NotificationStore) UnreadCount(ctx context.Context, userID string) (int, error) {
	uid, ok := canonicalID(userID)
	if !ok {
		return 0, nil
	}
	var n int
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL`, uid).Scan(&n)
	return n, translate(err, "notification")
}

// The recipients' email preferences, read with them.
const (
	prefsColumn = `COALESCE(np.email, '{}'::jsonb)`
	prefsJoin   = `LEFT JOIN notification_preferences np ON np.user_id = u.id`
)

func collectRecipients(rows pgx.Rows, err error) ([]ports.Recipient, error) {
	if err != nil {
		return nil, translate(err, "user")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ports.Recipient, error) {
		var x ports.Recipient
		var prefs []byte
		if err := r.Scan(&x.UserID, &x.TenantID, &x.Email, &prefs); err != nil {
			return x, err
		}
		x.Preferences.Email = map[notification.Kind]bool{}
		return x, json.Unmarshal(prefs, &x.Preferences.Email)
	})
	return out, translate(err, "user")
}

// recipientsSQL reads an audience's active users with their email
// preferences, by user id: $1 the tenant (ToTenant, ToTenantAdmins), the
// project (ToProjectAdmins) or the user (ToUser); $2 the user added to
// ToTenantAdmins (NULL for none).
var recipientsSQL = map[notification.Audience]string{
	notification.ToUser: `SELECT u.id, m.tenant_id, u.email, ` + prefsColumn + ` FROM users u
		JOIN tenant_memberships m ON m.user_id = u.id ` + prefsJoin + `
		WHERE u.id = $1 AND u.status = 'active'`,
	notification.ToTenant: `SELECT u.id, m.tenant_id, u.email, ` + prefsColumn + ` FROM tenant_memberships m
		JOIN users u ON u.id = m.user_id ` + prefsJoin + `
		WHERE m.tenant_id = $1 AND u.status = 'active' ORDER BY u.id`,
	notification.ToTenantAdmins: `SELECT u.id, m.tenant_id, u.email, ` + prefsColumn + ` FROM tenant_memberships m
		JOIN users u ON u.id = m.user_id ` + prefsJoin + `
		WHERE m.tenant_id = $1 AND u.status = 'active' AND (m.role IN ('owner', 'admin') OR u.id = $2::uuid)
		ORDER BY u.id`,
	notification.ToProjectAdmins: `SELECT u.id, p.tenant_id, u.email, ` + prefsColumn + ` FROM projects p
		JOIN tenant_memberships m ON m.tenant_id = p.tenant_id
		JOIN users u ON u.id = m.user_id ` + prefsJoin + `
		WHERE p.id = $1 AND u.status = 'active' AND (m.role IN ('owner', 'admin') OR EXISTS (
			SELECT 1 FROM project_memberships pm WHERE pm.project_id = p.id AND pm.user_id = u.id AND pm.role = 'admin'))
		ORDER BY u.id`,
}

// Targets implements [ports.NotificationRecipients]: the recipients and
// the endpoints are two queries of one pipelined round trip.
func (s *NotificationStore) Targets(ctx context.Context, q ports.TargetQuery) (ports.Targets, error) {
	var t ports.Targets
	b := &pgx.Batch{}
	if a := q.Audience; a != nil {
		id := a.TenantID
		switch a.Audience {
		case notification.ToUser:
			id = a.UserID
		case notification.ToProjectAdmins:
			id = a.ProjectID
		}
		sql, known := recipientsSQL[a.Audience]
		if id, ok := canonicalID(id); ok && known {
			args := []any{id}
			if a.Audience == notification.ToTenantAdmins {
				extra, ok := canonicalID(a.UserID)
				if !ok {
					extra = ""
				}
				args = append(args, nullableID(extra))
			}
			b.Queue(sql, args...).Query(func(rows pgx.Rows) (err error) {
				t.Recipients, err = collectRecipients(rows, nil)
				return err
			})
		}
	}
	if e := q.Endpoints; e != nil {
		sql, args, ok := endpointsForSQL(e.TenantID, e.ProjectID, e.EventType)
		if ok {
			b.Queue(sql, args...).Query(func(rows pgx.Rows) (err error) {
				t.Endpoints, err = collectEndpoints(rows)
				return err
			})
		}
	}
	if b.Len() == 0 {
		return t, nil
	}
	return t, translate(s.db.Q(ctx).SendBatch(ctx, b).Close(), "notification")
}

// Preferences implements [ports.NotificationPreferences].
func (s *NotificationStore) Preferences(ctx context.Context, userID string) (notification.Preferences, error) {
	p := notification.Preferences{Email: map[notification.Kind]bool{}}
	uid, ok := canonicalID(userID)
	if !ok {
		return p, nil
	}
	var raw []byte
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT email FROM notification_preferences WHERE user_id = $1`, uid).Scan(&raw)
	if err == pgx.ErrNoRows {
		return p, nil
	}
	if err != nil {
		return p, translate(err, "preferences")
	}
	return p, json.Unmarshal(raw, &p.Email)
}

// SetPreferences implements [ports.NotificationPreferences].
func (s *NotificationStore) SetPreferences(ctx context.Context, userID string, p notification.Preferences) error {
	uid, ok := canonicalID(userID)
	if !ok {
		return fault.NotFound("user", "")
	}
	if p.Email == nil {
		p.Email = map[notification.Kind]bool{}
	}
	raw, err := json.Marshal(p.Email)
	if err != nil {
		return fault.Internal(err)
	}
	_, err = s.db.Q(ctx).Exec(ctx, `INSERT INTO notification_preferences (user_id, email, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, updated_at = now()`, uid, raw)
	return translate(err, "user")
}

// Claim implements [ports.MailQueue]: due rows, FOR UPDATE SKIP LOCKED,
// leased by moving next_attempt_at, with attempts counted at the claim.
func (s *NotificationStore) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]notification.Email, error) {
	rows, err := s.db.Q(ctx).Query(ctx, `
		UPDATE notification_emails e SET attempts = e.attempts + 1, next_attempt_at = $3
		WHERE e.id IN (SELECT id FROM notification_emails WHERE status = 'pending' AND next_attempt_at <= $2
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING e.id, e.to_addr, e.subject, e.body, e.message_id, e.attempts`, limit, now, now.Add(lease))
	if err != nil {
		return nil, translate(err, "email")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notification.Email, error) {
		var m notification.Email
		return m, r.Scan(&m.ID, &m.To, &m.Subject, &m.Body, &m.MessageID, &m.Attempts)
	})
	return out, translate(err, "email")
}

// MarkSent implements [ports.MailQueue].
func (s *NotificationStore) MarkSent(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.Q(ctx).Exec(ctx, `UPDATE notification_emails SET status = 'sent', sent_at = $2, last_error = ''
		WHERE id = $1`, id, at)
	return translate(err, "email")
}

// Retry implements [ports.MailQueue].
func (s *NotificationStore) Retry(ctx context.Context, id string, next time.Time, lastError string) error {
	q := `UPDATE notification_emails SET status = 'pending', next_attempt_at = $2, last_error = $3 WHERE id = $1`
	args := []any{id, next, storedError(lastError)}
	if next.IsZero() {
		q, args = `UPDATE notification_emails SET status = 'failed', last_error = $2 WHERE id = $1`, []any{id, storedError(lastError)}
	}
	_, err := s.db.Q(ctx).Exec(ctx, q, args...)
	return translate(err, "email")
}

// storedError is error text as kept in a row: no NUL, valid UTF-8, at
// most 512 bytes.
func storedError(s string) string {
	return strings.ToValidUTF8(truncate(strings.ReplaceAll(s, "\x00", ""), 512), "")
}
