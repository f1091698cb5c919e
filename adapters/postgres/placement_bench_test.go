package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// BenchmarkPlacementAtFleetScale prints placement picks per second on a SKU
// of 100 nodes and on one of 10,000 (both 90 % held by live allocations, as
// a busy fleet is), from 5 interleaved samples of 200 picks each, with
// min/median, and the ratio of the medians (goal ≥ 0.5: the pick must not
// scan the fleet). A pick is CreatePlaced — lock a free node, insert the
// allocation — in a transaction that is rolled back, so every sample sees
// the same fleet.
func BenchmarkPlacementAtFleetScale(b *testing.B) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: services.FreshDatabaseURL(b), Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	// One tenant, project and user own every allocation; SKUs and nodes in
	// set-based SQL.
	ids := system.UUIDs{}
	tid, pid, uid := ids.NewID(), ids.NewID(), ids.NewID()
	seed := []string{
		`INSERT INTO tenants (id, name, slug) VALUES ('` + tid + `', 't', 'placement-bench')`,
		`INSERT INTO projects (id, tenant_id, name) VALUES ('` + pid + `', '` + tid + `', 'p')`,
		`INSERT INTO users (id, oidc_issuer, oidc_subject, email) VALUES ('` + uid + `', 'https://iss', 'pb', 'pb@x')`,
	}
	for _, f := range []struct {
		sku   string
		nodes int
	}{{"bench-fleet-100", 100}, {"bench-fleet-10000", 10_000}} {
		seed = append(seed,
			fmt.Sprintf(`INSERT INTO skus (id, name, gpu_model, gpu_count, gpu_memory_gib, cpu_cores, memory_gib, hourly_price_minor)
				VALUES ('%s', 'b', 'NVIDIA H100 80GB HBM3', 1, 80, 24, 256, 299)`, f.sku),
			fmt.Sprintf(`INSERT INTO nodes (id, name, sku_id, state, ssh_host, ssh_port, last_heartbeat_at)
				SELECT gen_random_uuid(), '%[1]s-' || g, '%[1]s', 'active', '10.0.0.1', 22, now() - (g %% 30) * interval '1 second'
				FROM generate_series(1, %[2]d) g`, f.sku, f.nodes),
			// 90 % of the nodes are held (the trigger marks them).
			fmt.Sprintf(`INSERT INTO allocations (id, tenant_id, project_id, user_id, sku_id, node_id, state, price_minor, currency)
				SELECT gen_random_uuid(), '%s', '%s', '%s', '%s', id, 'active', 299, 'usd'
				FROM (SELECT id, row_number() OVER (ORDER BY id) AS r FROM nodes WHERE sku_id = '%s') n WHERE r %% 10 <> 0`,
				tid, pid, uid, f.sku, f.sku))
	}
	seed = append(seed, `ANALYZE`)
	for _, stmt := range seed {
		if _, err := db.Pool.Exec(ctx, stmt); err != nil {
			b.Fatalf("seed: %v\n%s", err, stmt)
		}
	}
	store := postgres.NewAllocationStore(db)
	errRollback := errors.New("rollback")
	const picks = 200
	sample := func(sku string) float64 {
		start := time.Now()
		for i := 0; i < picks; i++ {
			err := db.InTx(ctx, func(ctx context.Context) error {
				_, err := store.CreatePlaced(ctx, allocation.Allocation{ID: ids.NewID(), TenantID: tid, ProjectID: pid,
					UserID: uid, SKUID: sku, PriceMinor: 299, Currency: "usd"})
				if err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				b.Fatalf("pick on %s: %v", sku, err)
			}
		}
		return picks / time.Since(start).Seconds()
	}
	b.ResetTimer()
	for range b.N {
		var small, large []float64
		sample("bench-fleet-100") // warm both
		sample("bench-fleet-10000")
		for round := 0; round < 5; round++ {
			small = append(small, sample("bench-fleet-100"))
			large = append(large, sample("bench-fleet-10000"))
		}
		slices.Sort(small)
		slices.Sort(large)
		ratio := large[2] / small[2]
		b.ReportMetric(small[2], "picks/s@100")
		b.ReportMetric(large[2], "picks/s@10000")
		b.ReportMetric(ratio, "ratio")
		b.Logf("placement picks/s (5 interleaved samples of %d): 100 nodes min %.0f median %.0f; 10,000 nodes min %.0f median %.0f; ratio of medians %.2f (goal ≥ 0.5)",
			picks, small[0], small[2], large[0], large[2], ratio)
	}
}
