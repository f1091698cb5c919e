package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/ports"
)

// AllocationStore implements [ports.AllocationStore] on the allocations
// table. The unique partial index allocations_one_live_per_node makes a
// double-booked node impossible whatever the code above does.
type AllocationStore struct{ db *DB }

var _ ports.AllocationStore = (*AllocationStore)(nil)

// NewAllocationStore returns an AllocationStore; its calls join the
// transaction in ctx.
func NewAllocationStore(db *DB) *AllocationStore { return &AllocationStore{db: db} }

// Allocation list page sizes.
const (
	DefaultAllocationPageSize = 50
	MaxAllocationPageSize     = 200
)

// allocationScratch holds the scratch slices List scans pages into.
var allocationScratch sync.Pool

// placementAttempts bounds how often CreatePlaced picks again after losing
// a node to a concurrent placement (see CreatePlaced).
const placementAttempts = 5

// errNoCapacity is the fault every caller sees when no node is free.
func errNoCapacity(sku string) error {
	return fault.Conflict("no_capacity", "no node of this SKU is free right now").With("sku_id", sku)
}

const allocationColumns = `id, tenant_id, project_id, user_id, sku_id, COALESCE(node_id::text, ''), state, price_minor,
	currency, failure_code, created_at, updated_at, active_at, release_requested_at, released_at,
	COALESCE(max_total_cost_minor, 0), COALESCE(api_key_id::text, ''), COALESCE(release_reason, '')`

func scanAllocation(row pgx.Row) (allocation.Allocation, error) {
	var a allocation.Allocation
	if err := scanAllocationInto(row, &a); err != nil {
		return allocation.Allocation{}, err
	}
	return a, nil
}

// scanAllocationInto scans a row of allocationColumns into *a.
func scanAllocationInto(row pgx.Row, a *allocation.Allocation) error {
	return row.Scan(&a.ID, &a.TenantID, &a.ProjectID, &a.UserID, &a.SKUID, &a.NodeID, (*string)(&a.State), &a.PriceMinor,
		&a.Currency, &a.FailureCode, &a.CreatedAt, &a.UpdatedAt, &a.ActiveAt, &a.ReleaseRequestedAt, &a.ReleasedAt,
		&a.MaxTotalCostMinor, &a.APIKeyID, &a.ReleaseReason)
}

// CreatePlaced implements [ports.AllocationStore].
//
// One statement picks and inserts: it locks one free active node of the
// SKU (an O(log n) read of the partial index nodes_free_idx) with FOR
// UPDATE SKIP LOCKED, so concurrent placements take different nodes
// instead of queuing on the same one, and inserts the allocation on it; a
// trigger marks the node held in the same transaction. Should a pick still
// land on a node whose allocation committed meanwhile, the unique index
// refuses the insert, the savepoint undoes just that insert and the pick
// runs again (a new statement, a new snapshot). The savepoint, the
// statement and the savepoint's release go in one round trip (a pgx
// batch): the caller may hold its tenant's lock (allocationsvc.Create), so
// every round trip here is time other creates of the tenant wait. When no
// node is free, or every attempt lost, the answer is Conflict no_capacity.
// a.State defaults to requested; ssh_user is derived from the id
// (nodetask.UsernameFor) and gpu_count from the SKU.
func (s *AllocationStore) CreatePlaced(ctx context.Context, a allocation.Allocation) (allocation.Allocation, error) {
	if a.State == "" {
		a.State = allocation.Requested
	}
	if !a.State.Live() {
		return allocation.Allocation{}, fault.Invalid("state", "a new allocation must be live")
	}
	for _, id := range []string{a.ID, a.TenantID, a.ProjectID, a.UserID} {
		if _, ok := canonicalID(id); !ok {
			return allocation.Allocation{}, fault.Invalid("id", "allocation ids must be UUIDs")
		}
	}
	var created any
	if !a.CreatedAt.IsZero() {
		created = a.CreatedAt
	}
	var out allocation.Allocation
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		q := s.db.Q(ctx)
		for attempt := 0; attempt < placementAttempts; attempt++ {
			// nodes_free_idx lists exactly the free active nodes of a SKU
			// (live_allocation_id is kept by a trigger on allocations), so
			// the pick reads one index entry instead of the fleet. A node
			// taken by a transaction that committed after this statement's
			// snapshot is re-checked by FOR UPDATE and skipped. (ORDER BY
			// n.id, not an output column, so the index gives the order.)
			// No free node: the INSERT inserts nothing and returns no row.
			b := &pgx.Batch{}
			b.Queue(`SAVEPOINT allocation_place`)
			b.Queue(`
				WITH pick AS (
					SELECT n.id FROM nodes n
					WHERE n.sku_id = $5 AND n.state = 'active' AND n.live_allocation_id IS NULL
					ORDER BY n.id
					LIMIT 1
					FOR UPDATE OF n SKIP LOCKED)
				INSERT INTO allocations (id, tenant_id, project_id, user_id, sku_id, node_id, state, price_minor, currency,
					failure_code, ssh_user, gpu_count, created_at, updated_at, max_total_cost_minor, api_key_id)
				SELECT $1, $2, $3, $4, $5, pick.id, $6, $7, $8, '', $9,
					(SELECT gpu_count FROM skus WHERE id = $5), COALESCE($10::timestamptz, now()), COALESCE($10::timestamptz, now()),
					$11, $12
				FROM pick
				RETURNING `+allocationColumns,
				a.ID, a.TenantID, a.ProjectID, a.UserID, a.SKUID, string(a.State), a.PriceMinor, a.Currency,
				nodetask.UsernameFor(a.ID), created, nullableMinor(a.MaxTotalCostMinor), nullableID(a.APIKeyID))
			b.Queue(`RELEASE SAVEPOINT allocation_place`)
			br := q.SendBatch(ctx, b)
			_, err := br.Exec()
			if err == nil {
				out, err = scanAllocation(br.QueryRow())
			}
			if err == nil {
				_, err = br.Exec()
			}
			if cerr := br.Close(); err == nil {
				err = cerr
			}
			switch {
			case err == nil:
				return nil
			case errors.Is(err, pgx.ErrNoRows):
				return errNoCapacity(a.SKUID)
			case !IsUniqueViolation(err, "allocations_one_live_per_node"):
				return translate(err, "allocation")
			}
			// Lost the node to a placement that committed after our pick's
			// snapshot: undo the failed insert only, keep the caller's
			// earlier work, and pick again.
			if _, rerr := q.Exec(ctx, `ROLLBACK TO SAVEPOINT allocation_place`); rerr != nil {
				return translate(rerr, "allocation")
			}
		}
		return errNoCapacity(a.SKUID)
	})
	return out, err
}

// Get implements [ports.AllocationStore]. An allocation of another tenant
// is NotFound, like one that does not exist.
func (s *AllocationStore) Get(ctx context.Context, tenantID, id string) (allocation.Allocation, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return allocation.Allocation{}, fault.NotFound("allocation", "")
	}
	q := `SELECT ` + allocationColumns + ` FROM allocations WHERE id = $1`
	args := []any{cid}
	if tenantID != "" {
		tid, ok := canonicalID(tenantID)
		if !ok {
			return allocation.Allocation{}, fault.NotFound("allocation", "")
		}
		q += ` AND tenant_id = $2`
		args = append(args, tid)
	}
	a, err := scanAllocation(s.db.Q(ctx).QueryRow(ctx, q, args...))
	if err != nil {
		return allocation.Allocation{}, translate(err, "allocation")
	}
	return a, nil
}

// List implements [ports.AllocationStore]: newest first, keyset-paginated
// on (created_at, id). The next cursor is "" on the last page.
func (s *AllocationStore) List(ctx context.Context, f ports.AllocationFilter) ([]allocation.Allocation, string, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultAllocationPageSize
	case limit > MaxAllocationPageSize:
		limit = MaxAllocationPageSize
	}
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	for _, c := range []struct{ col, v string }{
		{"tenant_id", f.TenantID}, {"project_id", f.ProjectID}, {"user_id", f.UserID}, {"node_id", f.NodeID},
	} {
		if c.v == "" {
			continue
		}
		id, ok := canonicalID(c.v)
		if !ok {
			return []allocation.Allocation{}, "", nil // names nothing, so nothing matches
		}
		where = append(where, c.col+" = "+arg(id))
	}
	if f.CostCapped {
		where = append(where, "max_total_cost_minor IS NOT NULL")
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		where = append(where, "state = ANY("+arg(states)+")")
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(created_at, id) < ("+arg(time.UnixMicro(c.At))+", "+arg(c.ID)+"::uuid)")
	}
	q := `SELECT ` + allocationColumns + ` FROM allocations`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT " + arg(limit+1)
	var raw rawAllocationScanner
	return keysetPageInto(ctx, s.db.Q(ctx), q, args, limit, "allocation", &allocationScratch, raw.scan,
		func(a allocation.Allocation) (time.Time, string) { return a.CreatedAt, a.ID })
}

// Update implements [ports.AllocationStore]: the row is locked for the rest
// of the caller's transaction while fn decides. fn may change the state,
// failure code and the active/release-requested/released times; ownership, SKU, node and
// price are fixed at creation.
func (s *AllocationStore) Update(ctx context.Context, id string, fn func(*allocation.Allocation) error) (allocation.Allocation, error) {
	cid, ok := canonicalID(id)
	if !ok {
		return allocation.Allocation{}, fault.NotFound("allocation", "")
	}
	var out allocation.Allocation
	err := s.db.InTx(ctx, func(ctx context.Context) error {
		a, err := scanAllocation(s.db.Q(ctx).QueryRow(ctx, `SELECT `+allocationColumns+` FROM allocations WHERE id = $1 FOR UPDATE`, cid))
		if err != nil {
			return translate(err, "allocation")
		}
		if err := fn(&a); err != nil {
			return err
		}
		out, err = scanAllocation(s.db.Q(ctx).QueryRow(ctx, `
			UPDATE allocations SET state = $2, failure_code = $3, active_at = $4, release_requested_at = $5,
				released_at = $6, release_reason = NULLIF($7, ''), updated_at = now()
			WHERE id = $1 RETURNING `+allocationColumns,
			cid, string(a.State), a.FailureCode, a.ActiveAt, a.ReleaseRequestedAt, a.ReleasedAt, a.ReleaseReason))
		return translate(err, "allocation")
	})
	return out, err
}

// CountLive implements [ports.AllocationStore]. It first takes the tenant's
// row lock (FOR NO KEY UPDATE: it serialises concurrent creates of one
// tenant without blocking foreign-key checks of other writers), so counts
// read here stay true until the caller's transaction ends. Outside a
// transaction the lock would be released at once: call it inside one.
//
// The lock and the count are two statements — the count's snapshot must
// be taken after the lock is granted, so it sees every create that
// committed while this one waited — sent in one round trip (a pgx batch:
// the server runs the second when the first is done).
func (s *AllocationStore) CountLive(ctx context.Context, tenantID, projectID, userID string) (ports.LiveCounts, error) {
	tid, ok := canonicalID(tenantID)
	if !ok {
		return ports.LiveCounts{}, fault.NotFound("tenant", "")
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE`, tid)
	b.Queue(`
		SELECT count(*) FILTER (WHERE user_id::text = $2), count(*) FILTER (WHERE project_id::text = $3), count(*)
		FROM allocations WHERE tenant_id = $1 AND state IN `+liveStates, tid, strings.ToLower(userID), strings.ToLower(projectID))
	br := s.db.Q(ctx).SendBatch(ctx, b)
	defer br.Close()
	var one int
	if err := br.QueryRow().Scan(&one); err != nil {
		return ports.LiveCounts{}, translate(err, "tenant")
	}
	var c ports.LiveCounts
	if err := br.QueryRow().Scan(&c.User, &c.Project, &c.Tenant); err != nil {
		return ports.LiveCounts{}, translate(err, "allocation")
	}
	if err := br.Close(); err != nil {
		return ports.LiveCounts{}, translate(err, "allocation")
	}
	return c, nil
}

// nullableMinor maps 0 to SQL NULL for optional amounts.
func nullableMinor(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

var _ ports.KeySpendReader = (*AllocationStore)(nil)

// KeySpend implements [ports.KeySpendReader] from the allocations alone
// (no ledger read): each allocation requested with the key costs its price
// for the whole seconds it was active within [since, now) — active_at until
// its release was requested, as billing meters it — and its live ones add
// their hourly prices.
func (s *AllocationStore) KeySpend(ctx context.Context, apiKeyID string, since, now time.Time) (ports.KeySpend, error) {
	kid, ok := canonicalID(apiKeyID)
	if !ok {
		return ports.KeySpend{}, nil
	}
	var out ports.KeySpend
	err := s.db.Q(ctx).QueryRow(ctx, `
		WITH k AS (
			SELECT price_minor, state, active_at,
				LEAST(COALESCE(release_requested_at, $3::timestamptz), $3::timestamptz) AS until
			FROM allocations
			WHERE api_key_id = $1 AND (state IN ('requested', 'provisioning', 'active')
				OR release_requested_at >= $2::timestamptz OR released_at >= $2::timestamptz)
		)
		SELECT
			COALESCE(SUM(price_minor * GREATEST(0, floor(extract(epoch FROM until)
				- extract(epoch FROM GREATEST(active_at, $2::timestamptz))))::bigint / 3600)
				FILTER (WHERE active_at IS NOT NULL), 0)::bigint,
			COALESCE(SUM(price_minor) FILTER (WHERE state IN ('requested', 'provisioning', 'active')), 0)::bigint
		FROM k`, kid, since, now).Scan(&out.SpentMinor, &out.LiveHourlyMinor)
	return out, translate(err, "allocation")
}
