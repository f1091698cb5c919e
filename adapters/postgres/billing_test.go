package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// billingTenant seeds a tenant, a project and a user straight in SQL (the
// money tests do not exercise the identity stores).
func billingTenant(t testing.TB, db *postgres.DB) (tenant, project, user string) {
	t.Helper()
	ctx := context.Background()
	tenant, project, user = newUUID(), newUUID(), newUUID()
	sfx := services.RandomSuffix(6)
	if _, err := db.Pool.Exec(ctx, `
		WITH t AS (INSERT INTO tenants (id, name, slug) VALUES ($1, 't', 't-' || $4) RETURNING id),
		     p AS (INSERT INTO projects (id, tenant_id, name) SELECT $2, id, 'p' FROM t RETURNING id)
		INSERT INTO users (id, oidc_issuer, oidc_subject, email) SELECT $3, 'https://iss', 's-' || $4, $4 || '@example.com' FROM p`,
		tenant, project, user, sfx); err != nil {
		t.Fatal(err)
	}
	return tenant, project, user
}

// billingAllocation inserts an allocation row (no node: placement is not
// what these tests are about) in the given state.
func billingAllocation(t testing.TB, db *postgres.DB, tenant, project, user, state string, price int64, activeAt, releasedAt *time.Time) string {
	t.Helper()
	id := newUUID()
	if _, err := db.Pool.Exec(context.Background(), `
		INSERT INTO allocations (id, tenant_id, project_id, user_id, sku_id, state, price_minor, currency, active_at,
			released_at, updated_at)
		VALUES ($1, $2, $3, $4, 'h100-80g-x1', $5, $6, 'usd', $7, $8, COALESCE($8, $7, now()))`,
		id, tenant, project, user, state, price, activeAt, releasedAt); err != nil {
		t.Fatal(err)
	}
	return id
}

func openUsage(t testing.TB, db *postgres.DB, tenant, project, user string, price int64, started time.Time) billing.UsageRecord {
	t.Helper()
	alloc := billingAllocation(t, db, tenant, project, user, "active", price, &started, nil)
	r := billing.UsageRecord{ID: newUUID(), TenantID: tenant, ProjectID: project, UserID: user, AllocationID: alloc,
		HourlyPriceMinor: price, Currency: "usd", StartedAt: started, BilledThrough: started, State: billing.UsageOpen}
	if ok, err := postgres.NewUsageStore(db).Open(context.Background(), r); err != nil || !ok {
		t.Fatalf("open usage: %v %v", ok, err)
	}
	return r
}

func credit(t testing.TB, db *postgres.DB, tenant string, amount int64) {
	t.Helper()
	if _, err := postgres.NewLedgerStore(db).Post(context.Background(), ledger.Entry{TenantID: tenant, Type: ledger.Credit,
		AmountMinor: amount, Currency: "usd", IdempotencyKey: "seed-" + newUUID()}); err != nil {
		t.Fatal(err)
	}
}

func TestLedgerRefusesRewritesForTheAppRole(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	tenant, _, _ := billingTenant(t, db)
	credit(t, db, tenant, 500)

	// asApp runs one statement as gpuaas_app in its own transaction (a
	// refused statement aborts its transaction).
	asApp := func(sql string, args ...any) error {
		return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE gpuaas_app`); err != nil {
				t.Fatalf("set role: %v", err)
			}
			var who string
			if err := tx.QueryRow(ctx, `SELECT current_user`).Scan(&who); err != nil || who != "gpuaas_app" {
				t.Fatalf("current_user %q %v", who, err)
			}
			_, err := tx.Exec(ctx, sql, args...)
			return err
		})
	}
	cases := []struct {
		name, sql string
		ok        bool
	}{
		{"insert", `INSERT INTO ledger_entries (id, tenant_id, type, amount_minor, currency, idempotency_key)
			VALUES ('` + newUUID() + `', '` + tenant + `', 'credit', 7, 'usd', '` + newUUID() + `')`, true},
		{"select", `SELECT SUM(amount_minor) FROM ledger_entries WHERE tenant_id = '` + tenant + `'`, true},
		{"update", `UPDATE ledger_entries SET amount_minor = 1000000 WHERE tenant_id = '` + tenant + `'`, false},
		{"delete", `DELETE FROM ledger_entries WHERE tenant_id = '` + tenant + `'`, false},
		{"truncate", `TRUNCATE ledger_entries`, false},
		// The role is an application role: its other tables stay writable.
		{"usage update", `UPDATE usage_records SET updated_at = now() WHERE tenant_id = '` + tenant + `'`, true},
	}
	for _, c := range cases {
		err := asApp(c.sql)
		if c.ok != (err == nil) {
			t.Errorf("%s as gpuaas_app: err %v; want ok=%v", c.name, err, c.ok)
		}
		var pe *pgconn.PgError
		if !c.ok && (!errors.As(err, &pe) || pe.Code != "42501") {
			t.Errorf("%s: want insufficient_privilege (42501), got %v", c.name, err)
		}
	}
	// The trigger refuses TRUNCATE for everyone, the owner included.
	if _, err := db.Pool.Exec(ctx, `TRUNCATE ledger_entries`); err == nil {
		t.Fatal("truncate of the ledger was allowed")
	}
	if b, _, err := postgres.NewLedgerStore(db).Balance(ctx, tenant); err != nil || b != 507 {
		t.Fatalf("balance %d %v; want 507 (500 + the app role's 7)", b, err)
	}
}

// Every (record, window) is debited once, with the key the core defines,
// and the windows of a record add up to exactly the cost of its span.
func TestAccrueWindowExactlyOnce(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	bs := postgres.NewBillingStore(db)
	us := postgres.NewUsageStore(db)
	tenant, project, user := billingTenant(t, db)
	credit(t, db, tenant, 1_000_000)

	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	recs := []billing.UsageRecord{
		openUsage(t, db, tenant, project, user, 299, t0.Add(13*time.Second+250*time.Millisecond)),
		openUsage(t, db, tenant, project, user, 2392, t0.Add(59*time.Second)),
		openUsage(t, db, tenant, project, user, 7, t0),   // rounds to 0 in most windows: catches up cumulatively
		openUsage(t, db, tenant, project, user, 0, t0),   // free: never posts, still advances
		openUsage(t, db, tenant, project, user, 516, t0), // closed mid-way below
	}
	w := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

	totals, err := bs.AccrueWindow(ctx, w(1))
	if err != nil {
		t.Fatal(err)
	}
	// 46 s at 299/h = 3, 60 s at 516/h = 8; 1 s at 2392/h and 60 s at 7/h round to 0.
	if len(totals) != 1 || totals[0].TenantID != tenant || totals[0].Records != 2 || totals[0].AmountMinor != 11 {
		t.Fatalf("totals %+v", totals)
	}
	// The same window again debits nothing.
	if again, err := bs.AccrueWindow(ctx, w(1)); err != nil || len(again) != 0 {
		t.Fatalf("second run of the same window: %+v %v", again, err)
	}
	// Close the last record inside window 3.
	end := w(2).Add(17*time.Second + 400*time.Millisecond)
	if ok, err := us.Close(ctx, recs[4].ID, end, 0); err != nil || !ok {
		t.Fatalf("close %v %v", ok, err)
	}
	if ok, _ := us.Close(ctx, recs[4].ID, end, 0); ok {
		t.Fatal("closing a closed record changed it")
	}
	for n := 2; n <= 90; n++ {
		if _, err := bs.AccrueWindow(ctx, w(n)); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range recs {
		stop := w(90)
		if i == 4 {
			stop = end
		}
		want := ledger.CostMinor(r.HourlyPriceMinor, billing.WholeSeconds(r.StartedAt, stop))
		var got int64
		var n int
		var keys []string
		rows, _ := db.Pool.Query(ctx, `SELECT amount_minor, idempotency_key FROM ledger_entries
			WHERE reference = $1 ORDER BY created_at, idempotency_key`, r.ID)
		for rows.Next() {
			var a int64
			var k string
			if err := rows.Scan(&a, &k); err != nil {
				t.Fatal(err)
			}
			got -= a
			n++
			keys = append(keys, k)
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		if got != want {
			t.Errorf("record %d (price %d): debited %d over %d entries; want exactly %d", i, r.HourlyPriceMinor, got, n, want)
		}
		if i == 0 && (len(keys) == 0 || keys[0] != billing.UsageIdempotencyKey(r.ID, r.StartedAt)) {
			t.Errorf("first key %v; want %s (the core's key)", keys, billing.UsageIdempotencyKey(r.ID, r.StartedAt))
		}
		if i == 3 && n != 0 {
			t.Errorf("a free record posted %d entries", n)
		}
		got2, err := us.GetByAllocation(ctx, r.AllocationID)
		if err != nil || !got2.BilledThrough.Equal(stop) || got2.BilledMinor != want {
			t.Errorf("record %d: billed_through %v billed_minor %d (%v); want %v, %d", i, got2.BilledThrough,
				got2.BilledMinor, err, stop, want)
		}
	}
	// A window ending before billed_through does nothing.
	if back, err := bs.AccrueWindow(ctx, w(10)); err != nil || len(back) != 0 {
		t.Fatalf("an older window debited again: %+v %v", back, err)
	}
}

// A record a metering close holds (row lock) is skipped, not waited for
// and not double-billed; its window folds into the next cycle.
func TestAccrueSkipsLockedRecords(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	ctx := context.Background()
	bs := postgres.NewBillingStore(db)
	tenant, project, user := billingTenant(t, db)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	r := openUsage(t, db, tenant, project, user, 3600, t0)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM usage_records WHERE id = $1 FOR UPDATE`, r.ID); err != nil {
		t.Fatal(err)
	}
	if totals, err := bs.AccrueWindow(ctx, t0.Add(time.Minute)); err != nil || len(totals) != 0 {
		t.Fatalf("locked record billed: %+v %v", totals, err)
	}
	_ = tx.Rollback(ctx)
	totals, err := bs.AccrueWindow(ctx, t0.Add(2*time.Minute))
	if err != nil || len(totals) != 1 || totals[0].AmountMinor != 120 {
		t.Fatalf("after unlock: %+v %v; want 120 (two minutes at 3600/h)", totals, err)
	}
}

func TestTenantStateCompareAndSet(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	bs := postgres.NewBillingStore(db)
	tenant, project, user := billingTenant(t, db)
	credit(t, db, tenant, 50)
	openUsage(t, db, tenant, project, user, 100, time.Now().Add(-time.Hour))

	st, err := bs.TenantsToEvaluate(ctx, []string{tenant, "not-a-uuid"})
	if err != nil || len(st) != 1 {
		t.Fatalf("evaluate: %+v %v", st, err)
	}
	s := st[0]
	if s.BalanceMinor != 50 || s.Currency != "usd" || s.State != billing.TenantOK || s.HasStateRow || !s.HasOpenUsage {
		t.Fatalf("status %+v", s)
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
	if ok, err := bs.SetTenantState(ctx, s, billing.TenantLow, &now, now); err != nil || !ok {
		t.Fatalf("first set: %v %v", ok, err)
	}
	// A second worker holding the same stale view loses.
	if ok, err := bs.SetTenantState(ctx, s, billing.TenantLow, &now, now); err != nil || ok {
		t.Fatalf("stale set won: %v %v", ok, err)
	}
	// Tenants not ok are evaluated even when no tenant id is given.
	st, err = bs.TenantsToEvaluate(ctx, nil)
	if err != nil || len(st) != 1 || st[0].State != billing.TenantLow || st[0].LastWarnedAt == nil ||
		!st[0].LastWarnedAt.Equal(now) {
		t.Fatalf("after set: %+v %v", st, err)
	}
	later := now.Add(25 * time.Hour)
	if ok, err := bs.SetTenantState(ctx, st[0], billing.TenantLow, &later, later); err != nil || !ok {
		t.Fatalf("re-warn with the fresh view: %v %v", ok, err)
	}
}

func TestUsageListAndEach(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	us := postgres.NewUsageStore(db)
	tenant, project, user := billingTenant(t, db)
	other, op, ou := billingTenant(t, db)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < 7; i++ {
		ids = append(ids, openUsage(t, db, tenant, project, user, int64(100+i), t0.Add(time.Duration(i)*time.Minute)).ID)
	}
	openUsage(t, db, other, op, ou, 5, t0)
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, next, err := us.List(ctx, tenant, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			got = append(got, r.ID)
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		cursor = next
	}
	if fmt.Sprint(got) != fmt.Sprint(reverse(ids)) {
		t.Fatalf("paged %v; want newest first %v", got, reverse(ids))
	}
	var each []string
	if err := us.Each(ctx, tenant, func(r billing.UsageRecord) error { each = append(each, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(each) != fmt.Sprint(got) {
		t.Fatalf("each %v; want %v", each, got)
	}
	if burn, err := us.BurnRate(ctx, tenant); err != nil || burn != 100+101+102+103+104+105+106 {
		t.Fatalf("burn %d %v", burn, err)
	}
	if _, _, err := us.List(ctx, tenant, "garbage", 3); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}
