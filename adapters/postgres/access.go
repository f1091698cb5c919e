package postgres

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/ports"
)

// accessChangedChannel is NOTIFYed by triggers on every change of what
// authentication and authorisation read (migration 0022: users, tenant and
// project memberships, projects, service accounts and their credentials,
// API keys) and by AccessChanges.Announce.
const accessChangedChannel = "access_changed"

// AccessListenerName is the application_name of the change feed's
// connection.
const AccessListenerName = "gpuaas-access-changes"

// accessHealth is how often an idle feed pings its connection. A feed that
// has shown no sign of life for twice as long (a process frozen between
// Lambda invocations, a connection that died without a reset) reports 0:
// notifications may be waiting unread, so nothing may be served from a
// cache until it has caught up.
const accessHealth = 5 * time.Second

// localChanges counts, per database, the writes this process made to the
// rows the feed watches. The notification of a write reaches this
// process's own listener a moment after the commit, so the stores also
// move this counter as they write: a request this process serves after its
// own write never sees an answer cached before it.
var localChanges sync.Map // *DB → *atomic.Uint64

func localCounter(db *DB) *atomic.Uint64 {
	if c, ok := localChanges.Load(db); ok {
		return c.(*atomic.Uint64)
	}
	c, _ := localChanges.LoadOrStore(db, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// noteAccessChange records that this process changed a watched row of db.
func noteAccessChange(db *DB) { localCounter(db).Add(1) }

// AccessChanges implements [ports.AccessChanges] with LISTEN access_changed
// on a connection of its own. Its generation moves with every notification
// (any replica's committed change), every write of this process's stores to
// the watched rows, and every (re)connection (notifications sent while it
// was not listening are lost); it is 0 while not connected. The listener
// starts on the first Generation call; Close stops it.
type AccessChanges struct {
	db        *DB
	local     *atomic.Uint64
	n         *notifier
	gen       atomic.Uint64
	listening atomic.Bool
	alive     atomic.Int64 // unix nanoseconds of the session's last sign of life
}

var _ ports.AccessChanges = (*AccessChanges)(nil)

// NewAccessChanges returns the change feed of db.
func NewAccessChanges(db *DB) *AccessChanges {
	a := &AccessChanges{db: db, local: localCounter(db)}
	a.n = newNotifier(db, accessHealth, slog.New(slog.DiscardHandler), AccessListenerName, accessChangedChannel)
	a.n.onListen = func() { a.gen.Add(1); a.listening.Store(true) }
	a.n.onNote = func() { a.gen.Add(1) }
	a.n.onLost = func() { a.listening.Store(false); a.gen.Add(1) }
	a.n.onAlive = func() { a.alive.Store(time.Now().UnixNano()) }
	return a
}

// Generation implements [ports.AccessChanges].
func (a *AccessChanges) Generation() uint64 {
	a.n.listen()
	if !a.listening.Load() || time.Since(time.Unix(0, a.alive.Load())) > 2*accessHealth {
		return 0
	}
	// Both counters only grow, so their sum moves whenever either does.
	return a.gen.Load() + a.local.Load()
}

// Announce implements [ports.AccessChanges]: a NOTIFY every replica's feed
// receives (this one's included), after moving this process's generation.
func (a *AccessChanges) Announce(ctx context.Context) error {
	noteAccessChange(a.db)
	_, err := a.db.Pool.Exec(ctx, `SELECT pg_notify($1, '')`, accessChangedChannel)
	return translate(err, "access change")
}

// Close stops the listener.
func (a *AccessChanges) Close() { a.n.close() }

// InTransaction reports whether ctx carries a transaction of InTx: the use
// cases cache nothing they read inside one (it may roll back).
func (db *DB) InTransaction(ctx context.Context) bool {
	_, ok := ctx.Value(txKey{}).(pgx.Tx)
	return ok
}

var (
	_ ports.PrincipalReader     = (*UserStore)(nil)
	_ ports.ProjectAccessReader = (*ProjectStore)(nil)
)

// UserAndTenantByIdentity implements [ports.PrincipalReader]: the user and
// their tenant membership in one query (the membership is unique per user).
func (s *UserStore) UserAndTenantByIdentity(ctx context.Context, issuer, subject string) (identity.User, identity.TenantMembership, bool, error) {
	var (
		m          identity.TenantMembership
		tenantID   *string
		tenantRole *string
		joinedAt   *time.Time
	)
	u, err := scanUser(s.db.Q(ctx).QueryRow(ctx, `
		SELECT u.id, u.oidc_issuer, u.oidc_subject, u.email, u.display_name, u.role, u.status, u.created_at, u.updated_at,
			m.tenant_id::text, m.role, m.created_at
		FROM users u LEFT JOIN tenant_memberships m ON m.user_id = u.id
		WHERE u.oidc_issuer = $1 AND u.oidc_subject = $2`, issuer, subject), &tenantID, &tenantRole, &joinedAt)
	if err != nil {
		return identity.User{}, m, false, translate(err, "user")
	}
	if tenantID == nil {
		return u, m, false, nil
	}
	m = identity.TenantMembership{TenantID: *tenantID, UserID: u.ID, Role: identity.TenantRole(*tenantRole), CreatedAt: *joinedAt}
	return u, m, true, nil
}

// ProjectAndRole implements [ports.ProjectAccessReader]: the project and
// the user's membership role in one query.
func (s *ProjectStore) ProjectAndRole(ctx context.Context, projectID, userID string) (identity.Project, identity.ProjectRole, error) {
	pid, ok := canonicalID(projectID)
	if !ok {
		return identity.Project{}, "", fault.NotFound("project", "")
	}
	uid, ok := canonicalID(userID)
	if !ok {
		uid = "00000000-0000-0000-0000-000000000000" // names nobody: the project alone
	}
	var (
		p    identity.Project
		role *string
	)
	err := s.db.Q(ctx).QueryRow(ctx, `
		SELECT `+projectColumns+`, m.role
		FROM projects p LEFT JOIN project_memberships m ON m.project_id = p.id AND m.user_id = $2
		WHERE p.id = $1`, pid, uid).Scan(&p.ID, &p.TenantID, &p.Name, &p.IsDefault, &p.CreatedAt, &role)
	if err != nil {
		return identity.Project{}, "", translate(err, "project")
	}
	if role == nil {
		return p, "", nil
	}
	return p, identity.ProjectRole(*role), nil
}
