package postgres

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/ports"
)

// DefaultPolicyCacheTTL is the safety net behind change notifications: a
// cached value is reloaded after this long even if a notification was lost.
const DefaultPolicyCacheTTL = 30 * time.Second

// policyChannel is the NOTIFY channel Set signals on.
const policyChannel = "policy_changed"

// PolicyConfig configures a PolicyStore.
type PolicyConfig struct {
	// CacheTTL: 0 means DefaultPolicyCacheTTL.
	CacheTTL time.Duration
	// Clock judges cache age; nil means the wall clock.
	Clock ports.Clock
}

// PolicyStore implements [ports.PolicyStore] on the policies table, with an
// in-process cache because policies are read on hot paths (rate limits,
// allocation caps) and change rarely.
//
// Every replica must see a change promptly, so Set ends with NOTIFY
// policy_changed (delivered when the writing transaction commits) and each
// PolicyStore LISTENs on a dedicated connection and drops its cache on any
// notification. The cache is used only while that connection is listening:
// a notification sent while it was down would be lost, so a store that is
// not listening (not started, or reconnecting) reads through. The TTL
// covers what is left (e.g. a notification lost in flight).
type PolicyStore struct {
	db  *DB
	ttl time.Duration
	clk ports.Clock

	mu        sync.Mutex
	listening bool
	gen       uint64 // bumped on every invalidation; guards racing loads
	cache     map[string]policyEntry

	stop context.CancelFunc
	done chan struct{}
}

type policyEntry struct {
	values   policy.Values
	loadedAt time.Time
}

var _ ports.PolicyStore = (*PolicyStore)(nil)

// NewPolicyStore returns a PolicyStore that reads through until Start.
func NewPolicyStore(db *DB, cfg PolicyConfig) (*PolicyStore, error) {
	if cfg.CacheTTL < 0 {
		return nil, fault.Invalid("cache_ttl", "the policy cache TTL must not be negative")
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultPolicyCacheTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	return &PolicyStore{db: db, ttl: cfg.CacheTTL, clk: cfg.Clock, cache: map[string]policyEntry{}}, nil
}

// Start begins listening for changes (and so caching) in the background
// until Close. Calling it twice is a no-op.
func (s *PolicyStore) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.listen(ctx)
}

// Close stops listening and waits for the listener to exit.
func (s *PolicyStore) Close() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	<-done
}

// listen keeps one LISTEN connection open, reconnecting with capped backoff.
func (s *PolicyStore) listen(ctx context.Context) {
	defer close(s.done)
	const first = 100 * time.Millisecond
	backoff := first
	for ctx.Err() == nil {
		// A session that got as far as listening was healthy: the next
		// failure starts the backoff over; repeated failures to connect
		// back off up to 10 s.
		if listened := s.listenOnce(ctx); listened {
			backoff = first
		} else {
			backoff = min(backoff*2, 10*time.Second)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
}

// listenOnce holds one LISTEN session until it fails or ctx ends, and
// reports whether it got as far as listening. A connection that dies
// silently (no RST) is not noticed here; the cache TTL bounds that case.
func (s *PolicyStore) listenOnce(ctx context.Context) (listened bool) {
	// A connection of its own: LISTEN is per session, and a pooled one would
	// be handed to other queries.
	conn, err := pgx.ConnectConfig(ctx, s.db.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return false
	}
	defer func() {
		s.setListening(false)
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+policyChannel); err != nil {
		return false
	}
	// Changes made while not listening were missed: start from empty.
	s.setListening(true)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true
		}
		s.invalidate()
	}
}

func (s *PolicyStore) setListening(on bool) {
	s.mu.Lock()
	s.listening = on
	s.gen++
	clear(s.cache)
	s.mu.Unlock()
}

func (s *PolicyStore) invalidate() {
	s.mu.Lock()
	s.gen++
	clear(s.cache)
	s.mu.Unlock()
}

// Values implements [ports.PolicyStore]: every registered key's default,
// overlaid by stored global values, overlaid by the tenant's. Inside a
// transaction it reads through the transaction and bypasses the cache, so
// a caller sees its own uncommitted Set and never caches it.
func (s *PolicyStore) Values(ctx context.Context, tenantID string) (policy.Values, error) {
	v, err := s.lookup(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return maps.Clone(v), nil
}

// Int is one integer value of Values without copying them: the host reads
// its rate limits on every request (the copy was a tenth of what a cached
// GET allocated).
func (s *PolicyStore) Int(ctx context.Context, tenantID string, k policy.Key) (int64, error) {
	v, err := s.lookup(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	return v.Int(k), nil
}

// lookup is Values without the copy: the map may be the cache's and must
// not be changed.
func (s *PolicyStore) lookup(ctx context.Context, tenantID string) (policy.Values, error) {
	if tenantID != "" {
		id, ok := canonicalID(tenantID)
		if !ok {
			return nil, fault.NotFound("tenant", "")
		}
		tenantID = id
	}
	_, inTx := ctx.Value(txKey{}).(pgx.Tx)
	s.mu.Lock()
	gen, useCache := s.gen, s.listening && !inTx
	if e, ok := s.cache[tenantID]; ok && useCache && s.clk.Now().Sub(e.loadedAt) < s.ttl {
		s.mu.Unlock()
		return e.values, nil
	}
	s.mu.Unlock()

	loadedAt := s.clk.Now()
	v, err := s.load(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if useCache {
		s.mu.Lock()
		// An invalidation during the load means v may predate the change.
		if s.gen == gen && s.listening {
			s.cache[tenantID] = policyEntry{values: v, loadedAt: loadedAt}
		}
		s.mu.Unlock()
	}
	return v, nil
}

func (s *PolicyStore) load(ctx context.Context, tenantID string) (policy.Values, error) {
	v := policy.Values{}
	for _, k := range policy.Keys() {
		v[k.Name] = k.Default
	}
	// Global ('') sorts before any tenant id, so the tenant's rows win.
	rows, err := s.db.Q(ctx).Query(ctx,
		`SELECT key, value FROM policies WHERE scope = '' OR scope = $1 ORDER BY scope`, tenantID)
	if err != nil {
		return nil, translate(err, "policy")
	}
	var key, value string
	_, err = pgx.ForEachRow(rows, []any{&key, &value}, func() error {
		v[key] = value
		return nil
	})
	if err != nil {
		return nil, translate(err, "policy")
	}
	return v, nil
}

// Set implements [ports.PolicyStore]. tenantID "" sets the global value.
// The write and the notification share a transaction (the caller's, if
// any), so listeners hear of it exactly when it becomes visible.
func (s *PolicyStore) Set(ctx context.Context, tenantID, key, value, actorID string) error {
	k, ok := policy.Lookup(key)
	if !ok {
		return fault.Invalid("key", "unknown policy key").With("key", key)
	}
	if err := k.Validate(value); err != nil {
		return err
	}
	if tenantID != "" {
		id, ok := canonicalID(tenantID)
		if !ok {
			return fault.NotFound("tenant", "")
		}
		tenantID = id
	}
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		if tenantID != "" {
			var exists bool
			if err := s.db.Q(ctx).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)`, tenantID).Scan(&exists); err != nil {
				return translate(err, "tenant")
			}
			if !exists {
				return fault.NotFound("tenant", "")
			}
		}
		if _, err := s.db.Q(ctx).Exec(ctx, `
			INSERT INTO policies (scope, key, value, updated_by, updated_at) VALUES ($1, $2, $3, $4, now())
			ON CONFLICT (scope, key) DO UPDATE SET
				value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at`,
			tenantID, key, value, actorID); err != nil {
			return translate(err, "policy")
		}
		_, err := s.db.Q(ctx).Exec(ctx, `SELECT pg_notify($1, $2)`, policyChannel, tenantID)
		return translate(err, "policy")
	})
	if err != nil {
		return err
	}
	// Our own notification will arrive too; dropping now spares this
	// replica the window until it does.
	s.invalidate()
	return nil
}

// Overrides returns the values stored for one tenant (its own overrides,
// without the global values or defaults).
func (s *PolicyStore) Overrides(ctx context.Context, tenantID string) (map[string]string, error) {
	id, ok := canonicalID(tenantID)
	if !ok {
		return nil, fault.NotFound("tenant", "")
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT key, value FROM policies WHERE scope = $1`, id)
	if err != nil {
		return nil, translate(err, "policy")
	}
	out := map[string]string{}
	var key, value string
	_, err = pgx.ForEachRow(rows, []any{&key, &value}, func() error { out[key] = value; return nil })
	return out, translate(err, "policy")
}

// Unset removes a tenant's override of key (the global value applies
// again), notifying every replica's cache like Set.
func (s *PolicyStore) Unset(ctx context.Context, tenantID, key string) error {
	id, ok := canonicalID(tenantID)
	if !ok {
		return fault.NotFound("tenant", "")
	}
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.db.Q(ctx).Exec(ctx, `DELETE FROM policies WHERE scope = $1 AND key = $2`, id, key); err != nil {
			return translate(err, "policy")
		}
		_, err := s.db.Q(ctx).Exec(ctx, `SELECT pg_notify($1, $2)`, policyChannel, id)
		return translate(err, "policy")
	})
	if err == nil {
		s.invalidate()
	}
	return err
}
