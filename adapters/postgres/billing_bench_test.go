package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// handAccrueSQL is the statement a person would write by hand for one
// window over every open record: price the window from cumulative seconds,
// insert the debits, advance billed_through. The benchmark holds the
// worker's whole cycle (its statement adds SKIP LOCKED, closed records and
// per-tenant totals; the cycle adds the usage_debited events and the
// tenant evaluation) against it.
const handAccrueSQL = `
WITH p AS (
	SELECT id, tenant_id, project_id, user_id, currency, billed_through, $1::timestamptz AS upto,
		hourly_price_minor * floor(extract(epoch FROM $1::timestamptz) - extract(epoch FROM started_at))::bigint / 3600
		- hourly_price_minor * floor(extract(epoch FROM billed_through) - extract(epoch FROM started_at))::bigint / 3600 AS amount
	FROM usage_records WHERE ended_at IS NULL AND billed_through < $1::timestamptz
), i AS (
	INSERT INTO ledger_entries (id, tenant_id, project_id, user_id, type, amount_minor, currency, idempotency_key, reference)
	SELECT gen_random_uuid(), tenant_id, project_id, user_id, 'usage_debit', -amount, currency,
		'usage:' || id || ':' || floor(extract(epoch FROM billed_through))::bigint, id::text
	FROM p WHERE amount > 0
	ON CONFLICT (idempotency_key) DO NOTHING
)
UPDATE usage_records u SET billed_through = p.upto, billed_minor = u.billed_minor + p.amount
FROM p WHERE u.id = p.id`

// BenchmarkBillingAccrual100k prints the time of one accrual window over
// 100,000 open usage records through the billing worker's cycle, the time
// of the hand-written statement over the same records for the next window,
// and their ratio (goal ≤ 2). GPUAAS_BENCH_RECORDS changes the size.
func BenchmarkBillingAccrual100k(b *testing.B) {
	n := 100_000
	if s := os.Getenv("GPUAAS_BENCH_RECORDS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	db := services.Postgres(b)
	ctx := context.Background()
	const tenants = 500
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	// Tenants with a big balance, and n active allocations with open usage
	// spread over them, in set-based SQL (a row-by-row seed would take
	// longer than the thing measured).
	seed := `
		CREATE TEMP TABLE bt AS SELECT gen_random_uuid() AS t, gen_random_uuid() AS p, gen_random_uuid() AS u, g
			FROM generate_series(1, $1::int) g;
		INSERT INTO tenants (id, name, slug) SELECT t, 't', 'bench-' || g FROM bt;
		INSERT INTO projects (id, tenant_id, name) SELECT p, t, 'p' FROM bt;
		INSERT INTO users (id, oidc_issuer, oidc_subject, email) SELECT u, 'https://iss', 'b-' || g, 'b' || g || '@x' FROM bt;
		INSERT INTO ledger_entries (id, tenant_id, type, amount_minor, currency, idempotency_key)
			SELECT gen_random_uuid(), t, 'credit', 10000000000, 'usd', 'bench-' || t FROM bt;
		CREATE TEMP TABLE ba AS SELECT gen_random_uuid() AS a, bt.t, bt.p, bt.u, 100 + (s % 5000) AS price,
			$3::timestamptz + (s % 60) * interval '1 second' AS started
			FROM generate_series(1, $2::int) s JOIN bt ON bt.g = 1 + s % $1::int;
		INSERT INTO allocations (id, tenant_id, project_id, user_id, sku_id, state, price_minor, currency, active_at)
			SELECT a, t, p, u, 'h100-80g-x1', 'active', price, 'usd', started FROM ba;
		INSERT INTO usage_records (id, tenant_id, project_id, user_id, allocation_id, hourly_price_minor, currency,
			started_at, billed_through)
			SELECT gen_random_uuid(), t, p, u, a, price, 'usd', started, started FROM ba;
		ANALYZE;`
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, stmt := range splitSQL(seed) {
		if _, err := conn.Exec(ctx, stmt, argsFor(stmt, tenants, n, t0)...); err != nil {
			b.Fatalf("seed: %v\n%s", err, stmt)
		}
	}
	conn.Release()
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		b.Fatal(err)
	}
	clock := fakes.NewClock(t0)
	w, err := billing.NewWorker(billing.WorkerDeps{Tx: db, Accruer: postgres.NewBillingStore(db), Releaser: nopReleaser{},
		Policies: crashPolicies, Outbox: outbox, Clock: clock, IDs: &randomIDs{}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var worker, hand time.Duration
	for i := 0; i < b.N; i++ {
		// Window 2i+1 through the worker, window 2i+2 by hand: the same
		// records, the same amount of work, a table that ages alike.
		clock.Set(t0.Add(time.Duration(2*i+2)*time.Minute + time.Second))
		start := time.Now()
		res, err := w.RunCycle(ctx)
		d := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		records := 0
		for _, t := range res.Debited {
			records += t.Records
		}
		if records < n*9/10 {
			b.Fatalf("the cycle debited %d records; want about %d", records, n)
		}
		end := billing.WindowEnd(t0.Add(time.Duration(2*i+3)*time.Minute+time.Second), time.Minute)
		start = time.Now()
		tag, err := db.Pool.Exec(ctx, handAccrueSQL, end)
		dh := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if tag.RowsAffected() != int64(n) {
			b.Fatalf("the hand-written statement advanced %d records; want %d", tag.RowsAffected(), n)
		}
		if i == 0 || d < worker {
			worker = d
		}
		if i == 0 || dh < hand {
			hand = dh
		}
	}
	b.StopTimer()
	ratio := float64(worker) / float64(hand)
	b.ReportMetric(float64(worker.Milliseconds()), "worker-ms/window")
	b.ReportMetric(float64(hand.Milliseconds()), "hand-sql-ms/window")
	b.ReportMetric(ratio, "ratio")
	fmt.Printf("billing accrual over %d open records: worker cycle %v, hand-written statement %v, ratio %.2f (goal <= 2)\n",
		n, worker.Round(time.Millisecond), hand.Round(time.Millisecond), ratio)
}

func splitSQL(s string) []string {
	var out []string
	cur := ""
	for _, r := range s {
		cur += string(r)
		if r == ';' {
			out = append(out, cur)
			cur = ""
		}
	}
	return out
}

// argsFor passes each seed statement only the parameters it uses.
func argsFor(stmt string, tenants, n int, t0 time.Time) []any {
	switch {
	case strings.Contains(stmt, "$3"):
		return []any{tenants, n, t0}
	case strings.Contains(stmt, "$1"):
		return []any{tenants}
	}
	return nil
}
