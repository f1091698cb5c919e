package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/notification"
	"github.com/gpuaas/gpuaas/ports"
)

const endpointColumns = `id, tenant_id, project_id, url, description, event_types, status, disabled_reason,
	failing_since, created_at, updated_at`

func scanEndpoint(r pgx.Row, extra ...any) (notification.Endpoint, error) {
	var e notification.Endpoint
	var status string
	dest := append([]any{&e.ID, &e.TenantID, &e.ProjectID, &e.URL, &e.Description, &e.EventTypes, &status,
		&e.DisabledReason, &e.FailingSince, &e.CreatedAt, &e.UpdatedAt}, extra...)
	if err := r.Scan(dest...); err != nil {
		return e, err
	}
	e.Status = notification.EndpointStatus(status)
	return e, nil
}

// CreateEndpoint implements [ports.WebhookStore].
func (s *NotificationStore) CreateEndpoint(ctx context.Context, e notification.Endpoint, sealed []byte) error {
	_, err := s.db.Q(ctx).Exec(ctx, `INSERT INTO webhook_endpoints (id, tenant_id, project_id, url, description,
		event_types, status, secrets, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		e.ID, e.TenantID, e.ProjectID, e.URL, e.Description, e.EventTypes, string(e.Status), sealed, e.CreatedAt)
	return translate(err, "project")
}

// Endpoint implements [ports.WebhookStore].
func (s *NotificationStore) Endpoint(ctx context.Context, projectID, id string) (notification.Endpoint, []byte, error) {
	eid, ok1 := canonicalID(id)
	pid, ok2 := canonicalID(projectID)
	if !ok1 || !ok2 {
		return notification.Endpoint{}, nil, fault.NotFound("webhook endpoint", "")
	}
	var sealed []byte
	e, err := scanEndpoint(s.db.Q(ctx).QueryRow(ctx, `SELECT `+endpointColumns+`, secrets FROM webhook_endpoints
		WHERE id = $1 AND project_id = $2`, eid, pid), &sealed)
	return e, sealed, translate(err, "webhook endpoint")
}

func (s *NotificationStore) endpoints(ctx context.Context, q string, args ...any) ([]notification.Endpoint, error) {
	rows, err := s.db.Q(ctx).Query(ctx, q, args...)
	if err != nil {
		return nil, translate(err, "webhook endpoint")
	}
	return collectEndpoints(rows)
}

func collectEndpoints(rows pgx.Rows) ([]notification.Endpoint, error) {
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notification.Endpoint, error) { return scanEndpoint(r) })
	if out == nil {
		out = []notification.Endpoint{}
	}
	return out, translate(err, "webhook endpoint")
}

// ListEndpoints implements [ports.WebhookStore].
func (s *NotificationStore) ListEndpoints(ctx context.Context, projectID string) ([]notification.Endpoint, error) {
	pid, ok := canonicalID(projectID)
	if !ok {
		return []notification.Endpoint{}, nil
	}
	return s.endpoints(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE project_id = $1 ORDER BY created_at, id`, pid)
}

// UpdateEndpoint implements [ports.WebhookStore].
func (s *NotificationStore) UpdateEndpoint(ctx context.Context, e notification.Endpoint, sealed []byte) error {
	tag, err := s.db.Q(ctx).Exec(ctx, `UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4,
		status = $5, disabled_reason = $6, failing_since = $7, updated_at = $8, secrets = COALESCE($9, secrets)
		WHERE id = $1`, e.ID, e.URL, e.Description, e.EventTypes, string(e.Status), e.DisabledReason, e.FailingSince,
		e.UpdatedAt, sealed)
	if err == nil && tag.RowsAffected() == 0 {
		return fault.NotFound("webhook endpoint", "")
	}
	return translate(err, "webhook endpoint")
}

// DeleteEndpoint implements [ports.WebhookStore].
func (s *NotificationStore) DeleteEndpoint(ctx context.Context, projectID, id string) error {
	eid, ok1 := canonicalID(id)
	pid, ok2 := canonicalID(projectID)
	if !ok1 || !ok2 {
		return fault.NotFound("webhook endpoint", "")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1 AND project_id = $2`, eid, pid)
	if err == nil && tag.RowsAffected() == 0 {
		return fault.NotFound("webhook endpoint", "")
	}
	return translate(err, "webhook endpoint")
}

// endpointsForSQL selects the tenant's enabled endpoints subscribed to
// eventType (of projectID only, when it is not ""); ok is false when the
// ids name nothing.
func endpointsForSQL(tenantID, projectID, eventType string) (sql string, args []any, ok bool) {
	tid, ok := canonicalID(tenantID)
	if !ok {
		return "", nil, false
	}
	sql = `SELECT ` + endpointColumns + ` FROM webhook_endpoints
		WHERE tenant_id = $1 AND status = 'enabled' AND $2 = ANY(event_types)`
	args = []any{tid, eventType}
	if projectID != "" {
		pid, ok := canonicalID(projectID)
		if !ok {
			return "", nil, false
		}
		sql += ` AND project_id = $3`
		args = append(args, pid)
	}
	return sql + ` ORDER BY id`, args, true
}

const deliveryColumns = `d.id, d.endpoint_id, d.tenant_id, d.project_id, d.event_id, d.event_type, d.payload, d.status,
	d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.created_at`

func scanDelivery(r pgx.Row, extra ...any) (notification.Delivery, error) {
	var d notification.Delivery
	var status string
	dest := append([]any{&d.ID, &d.EndpointID, &d.TenantID, &d.ProjectID, &d.EventID, &d.EventType, &d.Payload, &status,
		&d.Attempts, &d.NextAttemptAt, &d.LastAttemptAt, &d.LastStatusCode, &d.LastError, &d.CreatedAt}, extra...)
	if err := r.Scan(dest...); err != nil {
		return d, err
	}
	d.Status = notification.DeliveryStatus(status)
	return d, nil
}

// ClaimDeliveries implements [ports.WebhookStore].
func (s *NotificationStore) ClaimDeliveries(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]ports.ClaimedDelivery, error) {
	rows, err := s.db.Q(ctx).Query(ctx, `
		WITH claimed AS (
			UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $3
			WHERE d.id IN (SELECT x.id FROM webhook_deliveries x JOIN webhook_endpoints e ON e.id = x.endpoint_id
				WHERE x.status = 'pending' AND x.next_attempt_at <= $2 AND e.status = 'enabled'
				ORDER BY x.next_attempt_at LIMIT $1 FOR UPDATE OF x SKIP LOCKED)
			RETURNING d.*)
		SELECT `+deliveryColumns+`, `+prefixed("e.", endpointColumns)+`, e.secrets
		FROM claimed d JOIN webhook_endpoints e ON e.id = d.endpoint_id`, limit, now, now.Add(lease))
	if err != nil {
		return nil, translate(err, "webhook delivery")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ports.ClaimedDelivery, error) {
		var c ports.ClaimedDelivery
		var status, estatus string
		d := &c.Delivery
		e := &c.Endpoint
		if err := r.Scan(&d.ID, &d.EndpointID, &d.TenantID, &d.ProjectID, &d.EventID, &d.EventType, &d.Payload, &status,
			&d.Attempts, &d.NextAttemptAt, &d.LastAttemptAt, &d.LastStatusCode, &d.LastError, &d.CreatedAt,
			&e.ID, &e.TenantID, &e.ProjectID, &e.URL, &e.Description, &e.EventTypes, &estatus, &e.DisabledReason,
			&e.FailingSince, &e.CreatedAt, &e.UpdatedAt, &c.SealedSecrets); err != nil {
			return c, err
		}
		d.Status, e.Status = notification.DeliveryStatus(status), notification.EndpointStatus(estatus)
		return c, nil
	})
	return out, translate(err, "webhook delivery")
}

// RecordAttempt implements [ports.WebhookStore].
func (s *NotificationStore) RecordAttempt(ctx context.Context, a ports.WebhookAttempt, status notification.DeliveryStatus, next time.Time) error {
	if next.IsZero() {
		next = a.At
	}
	_, err := s.db.Q(ctx).Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, a.DeliveryID, a.Attempt, a.At, a.StatusCode,
		storedError(a.Error), a.Duration.Milliseconds())
	if err != nil {
		return translate(err, "webhook delivery")
	}
	_, err = s.db.Q(ctx).Exec(ctx, `UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, last_attempt_at = $4,
		last_status_code = $5, last_error = $6 WHERE id = $1`, a.DeliveryID, string(status), next, a.At, a.StatusCode,
		storedError(a.Error))
	return translate(err, "webhook delivery")
}

// MarkEndpointResult implements [ports.WebhookStore].
func (s *NotificationStore) MarkEndpointResult(ctx context.Context, endpointID string, ok bool, at time.Time) (*time.Time, error) {
	var since *time.Time
	q := `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 RETURNING failing_since`
	args := []any{endpointID}
	if !ok {
		q = `UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1 RETURNING failing_since`
		args = append(args, at)
	}
	err := s.db.Q(ctx).QueryRow(ctx, q, args...).Scan(&since)
	if err == pgx.ErrNoRows {
		return nil, nil // deleted meanwhile
	}
	return since, translate(err, "webhook endpoint")
}

// DisableEndpoint implements [ports.WebhookStore].
func (s *NotificationStore) DisableEndpoint(ctx context.Context, endpointID, reason string, at time.Time) (bool, error) {
	tag, err := s.db.Q(ctx).Exec(ctx, `UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = $2, updated_at = $3
		WHERE id = $1 AND status = 'enabled'`, endpointID, reason, at)
	return tag.RowsAffected() == 1, translate(err, "webhook endpoint")
}

// CancelPending implements [ports.WebhookStore].
func (s *NotificationStore) CancelPending(ctx context.Context, endpointID, reason string) (int, error) {
	tag, err := s.db.Q(ctx).Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed', last_error = $2
		WHERE endpoint_id = $1 AND status = 'pending'`, endpointID, storedError(reason))
	return int(tag.RowsAffected()), translate(err, "webhook delivery")
}

// ListDeliveries implements [ports.WebhookStore]: newest first.
func (s *NotificationStore) ListDeliveries(ctx context.Context, endpointID string, f ports.WebhookDeliveryFilter) ([]notification.Delivery, string, error) {
	eid, ok := canonicalID(endpointID)
	if !ok {
		return []notification.Delivery{}, "", nil
	}
	args := []any{eid}
	q := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries d WHERE d.endpoint_id = $1`
	if f.Status != "" {
		args = append(args, string(f.Status))
		q += ` AND d.status = $2`
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		args = append(args, time.UnixMicro(c.At), c.ID)
		q += ` AND (d.created_at, d.id) < ($` + itoa(len(args)-1) + `, $` + itoa(len(args)) + `::uuid)`
	}
	args = append(args, f.Limit+1)
	q += ` ORDER BY d.created_at DESC, d.id DESC LIMIT $` + itoa(len(args))
	out, next, err := keysetPage(ctx, s.db.Q(ctx), q, args, f.Limit, "webhook delivery",
		func(r pgx.CollectableRow) (notification.Delivery, error) { return scanDelivery(r) },
		func(d notification.Delivery) (time.Time, string) { return d.CreatedAt, d.ID })
	if out == nil {
		out = []notification.Delivery{}
	}
	return out, next, err
}

// Attempts implements [ports.WebhookStore]: oldest first.
func (s *NotificationStore) Attempts(ctx context.Context, deliveryID string) ([]ports.WebhookAttempt, error) {
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT delivery_id, attempt, at, status_code, error, duration_ms
		FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt`, deliveryID)
	if err != nil {
		return nil, translate(err, "webhook delivery")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ports.WebhookAttempt, error) {
		var a ports.WebhookAttempt
		var ms int64
		err := r.Scan(&a.DeliveryID, &a.Attempt, &a.At, &a.StatusCode, &a.Error, &ms)
		a.Duration = time.Duration(ms) * time.Millisecond
		return a, err
	})
	return out, translate(err, "webhook delivery")
}

func prefixed(p, cols string) string {
	out := ""
	for i, c := range splitCols(cols) {
		if i > 0 {
			out += ", "
		}
		out += p + c
	}
	return out
}

func splitCols(cols string) []string {
	parts := strings.Split(cols, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func itoa(n int) string { return strconv.Itoa(n) }
