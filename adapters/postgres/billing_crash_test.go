package postgres_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

// Environment of the re-executed child: the database, the clock and the
// statement after which it SIGKILLs itself (0: never).
const (
	envCrashChild = "GPUAAS_BILLING_CRASH_CHILD"
	envCrashDB    = "GPUAAS_BILLING_CRASH_DB"
	envCrashNow   = "GPUAAS_BILLING_CRASH_NOW"
	envCrashAfter = "GPUAAS_BILLING_CRASH_AFTER"
)

// staticPolicies serves fixed policy values (no database round trip, so
// the child's statement count is the worker's own).
type staticPolicies policy.Values

func (p staticPolicies) Values(context.Context, string) (policy.Values, error) {
	return policy.Values(p), nil
}
func (p staticPolicies) Set(context.Context, string, string, string, string) error {
	return errors.New("read only")
}

type nopReleaser struct{}

func (nopReleaser) ForceReleaseForTenant(context.Context, string, string) (int, error) { return 0, nil }

// killTracer SIGKILLs the process when its n-th statement (BEGIN and
// COMMIT included) has completed: the kill can land between the accrual
// and its COMMIT, between the commit and the tenant evaluation, anywhere.
type killTracer struct {
	n, seen int64
}

func (k *killTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (k *killTracer) TraceQueryEnd(_ context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if atomic.AddInt64(&k.seen, 1) == k.n {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns: the signal is on its way
	}
}

const crashWindow = time.Minute

var crashPolicies = staticPolicies{policy.BillingWindowSeconds.Name: "60", policy.BillingLowBalanceMinor.Name: "1000"}

// runCrashChild is the child's whole life: one billing cycle at the given
// time, killed after the given statement.
func runCrashChild() {
	ctx := context.Background()
	pc, err := pgxpool.ParseConfig(os.Getenv(envCrashDB))
	if err != nil {
		os.Exit(2)
	}
	after, _ := strconv.ParseInt(os.Getenv(envCrashAfter), 10, 64)
	if after > 0 {
		pc.ConnConfig.Tracer = &killTracer{n: after}
	}
	pc.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		os.Exit(2)
	}
	db := &postgres.DB{Pool: pool}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		os.Exit(2)
	}
	nowUnix, _ := strconv.ParseInt(os.Getenv(envCrashNow), 10, 64)
	w, err := billing.NewWorker(billing.WorkerDeps{Tx: db, Accruer: postgres.NewBillingStore(db), Releaser: nopReleaser{},
		Policies: crashPolicies, Outbox: outbox, Clock: fakes.NewClock(time.Unix(nowUnix, 0)), IDs: &randomIDs{}})
	if err != nil {
		os.Exit(2)
	}
	if _, err := w.RunCycle(ctx); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(3)
	}
	os.Exit(0)
}

type randomIDs struct{}

func (*randomIDs) NewID() string { return newUUID() }

// TestBillingWorkerCrash kills the billing worker with SIGKILL at 200
// seeded points (a statement count in a re-executed child process) while
// the clock advances one window per run and records open and close, then
// lets a last run finish: every record is debited exactly the cost of its
// span — no window twice, none lost — the ledger sums to credits minus
// debits, the usage_debited events add up to the debits, and the low
// balance and depletion events fired once per tenant.
func TestBillingWorkerCrash(t *testing.T) {
	if os.Getenv(envCrashChild) == "1" {
		runCrashChild()
		return
	}
	if testing.Short() {
		t.Skip("crash test re-executes the test binary 200 times")
	}
	db := openDB(t, "")
	url := db.Pool.Config().ConnString()
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GPUAAS_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (GPUAAS_CRASH_SEED reproduces it)", seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	t0 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	type tenantSeed struct {
		id, project, user string
		credit            int64
	}
	var tenants []tenantSeed
	for i := 0; i < 8; i++ {
		var ts tenantSeed
		ts.id, ts.project, ts.user = billingTenant(t, db)
		ts.credit = 1_000_000_000
		tenants = append(tenants, ts)
	}
	// Two small tenants: one ends low (warned once), one runs dry (depleted once).
	tenants[6].credit, tenants[7].credit = 2500, 1500
	for _, ts := range tenants {
		credit(t, db, ts.id, ts.credit)
	}
	var recs []billing.UsageRecord
	open := func(ts tenantSeed, price int64, at time.Time) {
		recs = append(recs, openUsage(t, db, ts.id, ts.project, ts.user, price, at))
	}
	open(tenants[6], 600, t0)
	open(tenants[7], 600, t0)
	for i := 0; i < 300; i++ {
		open(tenants[rng.IntN(6)], 100+rng.Int64N(5000), t0.Add(time.Duration(rng.IntN(300_000))*time.Millisecond))
	}
	us := postgres.NewUsageStore(db)
	ended := map[string]time.Time{}

	const runs = 200
	killed := 0
	for i := 0; i <= runs; i++ {
		windowStart := t0.Add(time.Duration(i) * crashWindow)
		// Between runs, as allocations come and go: close some records
		// inside the current window and open new ones.
		if i > 5 && i%7 == 0 {
			for j := 0; j < 5; j++ {
				r := recs[2+rng.IntN(len(recs)-2)]
				if _, done := ended[r.ID]; done || !r.StartedAt.Before(windowStart) {
					continue
				}
				end := windowStart.Add(time.Duration(1+rng.IntN(59_000)) * time.Millisecond)
				if ok, err := us.Close(ctx, r.ID, end, 0); err != nil || !ok {
					t.Fatalf("close: %v %v", ok, err)
				}
				ended[r.ID] = end
			}
			open(tenants[rng.IntN(6)], 100+rng.Int64N(5000), windowStart.Add(time.Duration(rng.IntN(59_000))*time.Millisecond))
		}
		now := windowStart.Add(crashWindow + time.Second)
		after := int64(1 + rng.IntN(12))
		if i == runs {
			after = 0 // the last run finishes
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestBillingWorkerCrash$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashDB+"="+url,
			envCrashNow+"="+strconv.FormatInt(now.Unix(), 10), envCrashAfter+"="+strconv.FormatInt(after, 10))
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL:
			killed++
		default:
			t.Fatalf("run %d: child failed: %v\n%s", i, err, out)
		}
	}
	t.Logf("%d of %d runs were killed mid-cycle", killed, runs)
	if killed < runs/4 {
		t.Fatalf("only %d runs were killed: the kill points do not exercise the cycle", killed)
	}

	finalEnd := billing.WindowEnd(t0.Add(runs*crashWindow+crashWindow+time.Second), crashWindow)
	debitedBy := map[string]int64{}
	for _, r := range recs {
		stop := finalEnd
		if e, ok := ended[r.ID]; ok {
			stop = e
		}
		want := ledger.CostMinor(r.HourlyPriceMinor, billing.WholeSeconds(r.StartedAt, stop))
		var got int64
		var entries int
		if err := db.Pool.QueryRow(ctx, `SELECT COALESCE(-SUM(amount_minor), 0)::bigint, COUNT(*)::int FROM ledger_entries
			WHERE reference = $1 AND type = 'usage_debit'`, r.ID).Scan(&got, &entries); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("record %s (%d/h, %v..%v): debited %d in %d entries; want exactly %d", r.ID, r.HourlyPriceMinor,
				r.StartedAt, stop, got, entries, want)
		}
		cur, err := us.GetByAllocation(ctx, r.AllocationID)
		if err != nil || !cur.BilledThrough.Equal(stop) || cur.BilledMinor != want {
			t.Errorf("record %s: billed_through %v billed_minor %d (%v); want %v, %d", r.ID, cur.BilledThrough,
				cur.BilledMinor, err, stop, want)
		}
		debitedBy[r.TenantID] += want
	}
	ls := postgres.NewLedgerStore(db)
	for i, ts := range tenants {
		bal, _, err := ls.Balance(ctx, ts.id)
		if err != nil || bal != ts.credit-debitedBy[ts.id] {
			t.Errorf("tenant %d: balance %d (%v); want credits %d - debits %d", i, bal, err, ts.credit, debitedBy[ts.id])
		}
		var evSum int64
		if err := db.Pool.QueryRow(ctx, `SELECT COALESCE(SUM((envelope->'payload'->>'amount_minor')::bigint), 0)::bigint
			FROM platform_outbox_events WHERE subject = $1 AND envelope->>'tenant_id' = $2`,
			event.UsageDebited, ts.id).Scan(&evSum); err != nil {
			t.Fatal(err)
		}
		if evSum != debitedBy[ts.id] {
			t.Errorf("tenant %d: usage_debited events sum to %d; debits are %d", i, evSum, debitedBy[ts.id])
		}
		counts := map[string]int{}
		rows, err := db.Pool.Query(ctx, `SELECT subject, COUNT(*)::int FROM platform_outbox_events
			WHERE envelope->>'tenant_id' = $1 AND subject IN ($2, $3) GROUP BY subject`,
			ts.id, event.LowBalanceWarning, event.BalanceDepleted)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			var n int
			if err := rows.Scan(&s, &n); err != nil {
				t.Fatal(err)
			}
			counts[s] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		wantLow, wantDepleted := 0, 0
		switch i {
		case 6:
			wantLow = 1 // 2500 - 2000 over 200 minutes: low, never empty; 24 h never pass
		case 7:
			wantLow, wantDepleted = 1, 1 // low first, then empty
		}
		if counts[event.LowBalanceWarning] != wantLow || counts[event.BalanceDepleted] != wantDepleted {
			t.Errorf("tenant %d: events %v; want %d low_balance_warning, %d balance_depleted", i, counts, wantLow, wantDepleted)
		}
	}
}
