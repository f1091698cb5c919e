package postgres_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/adapters/postgres"
)

// TestRawAllocationScan: the allocation list's own decoder reads every row
// exactly as pgx's Scan does — nulls and values of every optional column,
// times before 2000 and with microseconds, a session in another time zone —
// and a result of other types is left to pgx.
func TestRawAllocationScan(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	f := newAccessFixture(t, db)
	node := uuid.NewString()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO nodes (id, name, sku_id, state, ssh_host, ssh_port) VALUES ($1, $2, 'h100-80g-x1', 'active', 'h', 22)`,
		node, "raw-"+node[:8]); err != nil {
		t.Fatal(err)
	}
	key := uuid.NewString()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO api_keys (id, user_id, tenant_id, project_id, name, lookup, key_hash, scopes)
		VALUES ($1, $2, $3, $4, 'k', 'rawscan00001', decode(repeat('ab', 32), 'hex'), '{read}')`, key, f.owner, f.tenant, f.project); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO allocations (id, tenant_id, project_id, user_id, sku_id, node_id, state, price_minor, currency, failure_code,
			created_at, updated_at, active_at, release_requested_at, released_at, max_total_cost_minor, api_key_id, release_reason)
		VALUES
			($1, $4, $5, $6, 'h100-80g-x1', $7, 'active', 299, 'usd', '', '2026-03-04 05:06:07.123456+00', now(),
				'1999-12-31 23:59:59.999999+00', NULL, NULL, 12345, $8, NULL),
			($2, $4, $5, $6, 'a100-80g-x8', NULL, 'failed', 0, 'eur', 'node.unreachable "x" ü', '1970-01-01 00:00:00+00',
				'2000-01-01 00:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL),
			($3, $4, $5, $6, 'l40s-48g-x4', NULL, 'released', 516, 'usd', '', now(), now(), now(), now(), now(), NULL, NULL,
				'cost_cap_reached')`,
		uuid.NewString(), uuid.NewString(), uuid.NewString(), f.tenant, f.project, f.owner, node, key); err != nil {
		t.Fatal(err)
	}
	q := `SELECT ` + postgres.AllocationColumns + ` FROM allocations WHERE tenant_id = $1 ORDER BY created_at`
	raw, viaPgx, used, err := postgres.ScanAllocationsBothWays(ctx, db, q, f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if !used || len(raw) != 3 {
		t.Fatalf("raw decoder used %v for %d rows", used, len(raw))
	}
	if !reflect.DeepEqual(raw, viaPgx) {
		t.Fatalf("raw\n%+v\npgx\n%+v", raw, viaPgx)
	}
	// Other column types (here: the ids as text) are pgx's.
	q = `SELECT id::text, tenant_id, project_id, user_id, sku_id, COALESCE(node_id::text, ''), state, price_minor,
		currency, failure_code, created_at, updated_at, active_at, release_requested_at, released_at,
		COALESCE(max_total_cost_minor, 0), COALESCE(api_key_id::text, ''), COALESCE(release_reason, '') FROM allocations WHERE tenant_id = $1`
	raw, viaPgx, used, err = postgres.ScanAllocationsBothWays(ctx, db, q, f.tenant)
	if err != nil || used || !reflect.DeepEqual(raw, viaPgx) {
		t.Fatalf("fallback: used %v, err %v", used, err)
	}
}
