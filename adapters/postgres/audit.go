package postgres

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Audit list page sizes.
const (
	DefaultAuditPageSize = 50
	MaxAuditPageSize     = 500
)

// AuditLog implements [ports.AuditLog] on the append-only audit_log table
// (a trigger refuses UPDATE and DELETE).
type AuditLog struct{ db *DB }

var (
	_ ports.AuditLog      = (*AuditLog)(nil)
	_ ports.AuditExporter = (*AuditLog)(nil)
)

// NewAuditLog returns an AuditLog; Record joins the transaction in ctx, so
// an audited change and its record commit together.
func NewAuditLog(db *DB) *AuditLog { return &AuditLog{db: db} }

// Record implements [ports.AuditLog]. A zero OccurredAt takes the
// database's now().
func (a *AuditLog) Record(ctx context.Context, e audit.Event) error {
	meta := e.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	body, err := json.Marshal(meta)
	if err != nil {
		return fault.Internal(err)
	}
	var at any
	if !e.OccurredAt.IsZero() {
		at = e.OccurredAt
	}
	_, err = a.db.Q(ctx).Exec(ctx, `
		INSERT INTO audit_log (id, occurred_at, actor_type, actor_id, tenant_id, project_id, action,
			resource_type, resource_id, outcome, correlation_id, source_ip, metadata)
		VALUES ($1, COALESCE($2::timestamptz, now()), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		e.ID, at, string(e.ActorType), e.ActorID, nullableID(e.TenantID), nullableID(e.ProjectID), e.Action,
		e.ResourceType, e.ResourceID, string(e.Outcome), e.CorrelationID, e.SourceIP, body)
	return translate(err, "audit event")
}

// List implements [ports.AuditLog]: newest first, keyset-paginated on
// (occurred_at, id) so pages stay stable while rows are appended. Since is
// inclusive, Until exclusive. nextCursor is "" on the last page.
func (a *AuditLog) List(ctx context.Context, f audit.Filter) ([]audit.Event, string, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultAuditPageSize
	case limit > MaxAuditPageSize:
		limit = MaxAuditPageSize
	}
	where, args, none := auditWhere(f)
	if none {
		return []audit.Event{}, "", nil // no tenant has this id, so none has events
	}
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(occurred_at, id) < ("+arg(time.UnixMicro(c.At))+", "+arg(c.ID)+"::uuid)")
	}
	q := auditSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY occurred_at DESC, id DESC LIMIT " + arg(limit+1)
	return keysetPage(ctx, a.db.Q(ctx), q, args, limit, "audit event", scanAudit,
		func(e audit.Event) (time.Time, string) { return e.OccurredAt, e.ID })
}

const auditSelect = `SELECT id, occurred_at, actor_type, actor_id, COALESCE(tenant_id::text, ''), COALESCE(project_id::text, ''),
		action, resource_type, resource_id, outcome, correlation_id, source_ip, metadata FROM audit_log`

func scanAudit(r pgx.CollectableRow) (audit.Event, error) {
	var e audit.Event
	var actorType, outcome string
	var meta []byte
	if err := r.Scan(&e.ID, &e.OccurredAt, &actorType, &e.ActorID, &e.TenantID, &e.ProjectID, &e.Action,
		&e.ResourceType, &e.ResourceID, &outcome, &e.CorrelationID, &e.SourceIP, &meta); err != nil {
		return e, err
	}
	e.ActorType, e.Outcome = audit.ActorType(actorType), audit.Outcome(outcome)
	if err := json.Unmarshal(meta, &e.Metadata); err != nil {
		return e, err
	}
	return e, nil
}

// auditWhere turns a filter (but its cursor) into conditions; none is true
// when nothing can match (a tenant id that is not a uuid).
func auditWhere(f audit.Filter) (where []string, args []any, none bool) {
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.TenantID != "" {
		id, ok := canonicalID(f.TenantID)
		if !ok {
			return nil, nil, true
		}
		where = append(where, "tenant_id = "+arg(id))
	}
	if f.ActorID != "" {
		where = append(where, "actor_id = "+arg(f.ActorID))
	}
	if f.Action != "" {
		where = append(where, "action = "+arg(f.Action))
	}
	if f.ResourceType != "" {
		where = append(where, "resource_type = "+arg(f.ResourceType))
	}
	if f.ResourceID != "" {
		// A canonical identifier matches exactly; a bare id matches the
		// identifier's last segment.
		if strings.Contains(f.ResourceID, ":") {
			where = append(where, "resource_id = "+arg(f.ResourceID))
		} else {
			p := arg(f.ResourceID)
			where = append(where, "(resource_id = "+p+" OR right(resource_id, length("+p+") + 1) = ':' || "+p+")")
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "occurred_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "occurred_at < "+arg(f.Until))
	}
	return where, args, false
}

// Each implements [ports.AuditExporter]: one query, rows handed to fn as
// they arrive.
func (a *AuditLog) Each(ctx context.Context, f audit.Filter, fn func(audit.Event) error) error {
	where, args, none := auditWhere(f)
	if none {
		return nil
	}
	q := auditSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := a.db.Q(ctx).Query(ctx, q+" ORDER BY occurred_at DESC, id DESC", args...)
	if err != nil {
		return translate(err, "audit event")
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return translate(err, "audit event")
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return translate(rows.Err(), "audit event")
}
