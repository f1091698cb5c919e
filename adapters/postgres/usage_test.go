package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
)

// Opening is idempotent per allocation, closing happens once and clamps
// billed_through, and the listings carry the project's name.
func TestUsageOpenCloseAndNames(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	us := postgres.NewUsageStore(db)
	tenant, project, user := billingTenant(t, db)
	if _, err := db.Pool.Exec(ctx, `UPDATE projects SET name = 'Vision, "team"' WHERE id = $1`, project); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	r := openUsage(t, db, tenant, project, user, 600, t0)

	dup := r
	dup.ID = newUUID()
	if ok, err := us.Open(ctx, dup); err != nil || ok {
		t.Fatalf("second record for one allocation: %v %v", ok, err)
	}
	// Billed through 10:10; closed at 10:04 with 60 minor returned.
	if _, err := db.Pool.Exec(ctx, `UPDATE usage_records SET billed_through = $2, billed_minor = 100 WHERE id = $1`,
		r.ID, t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	end := t0.Add(4 * time.Minute)
	if ok, err := us.Close(ctx, r.ID, end, 60); err != nil || !ok {
		t.Fatalf("close: %v %v", ok, err)
	}
	if ok, err := us.Close(ctx, r.ID, end.Add(time.Hour), 60); err != nil || ok {
		t.Fatalf("second close: %v %v", ok, err)
	}
	got, err := us.GetByAllocation(ctx, r.AllocationID)
	if err != nil || got.State != billing.UsageClosed || !got.EndedAt.Equal(end) || !got.BilledThrough.Equal(end) ||
		got.BilledMinor != 40 || got.ProjectName != "" {
		t.Fatalf("closed record %+v %v", got, err)
	}
	// A close before the start ends the record at its start.
	early := openUsage(t, db, tenant, project, user, 600, t0)
	if ok, err := us.Close(ctx, early.ID, t0.Add(-time.Minute), 0); err != nil || !ok {
		t.Fatal(err)
	}
	if got, _ := us.GetByAllocation(ctx, early.AllocationID); !got.EndedAt.Equal(t0) {
		t.Fatalf("ended %v; want the start %v", got.EndedAt, t0)
	}

	page, _, err := us.List(ctx, tenant, "", 10)
	if err != nil || len(page) != 2 || page[0].ProjectName != `Vision, "team"` {
		t.Fatalf("list %+v %v", page, err)
	}
	n := 0
	if err := us.Each(ctx, tenant, func(r billing.UsageRecord) error {
		if r.ProjectName != `Vision, "team"` {
			t.Errorf("each: project name %q", r.ProjectName)
		}
		n++
		return nil
	}); err != nil || n != 2 {
		t.Fatalf("each: %d %v", n, err)
	}
	if _, err := us.GetByAllocation(ctx, "nope"); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("malformed id: %v", err)
	}
}

func TestLedgerEntryByKeyIsTenantScoped(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	ctx := context.Background()
	ls := postgres.NewLedgerStore(db)
	a, _, _ := billingTenant(t, db)
	b, _, _ := billingTenant(t, db)
	key := "k-" + newUUID()
	if _, err := ls.Post(ctx, ledger.Entry{TenantID: a, Type: ledger.Credit, AmountMinor: 5, Currency: "usd", IdempotencyKey: key}); err != nil {
		t.Fatal(err)
	}
	e, err := ls.GetEntryByKey(ctx, a, key)
	if err != nil || e.AmountMinor != 5 || e.TenantID != a || e.IdempotencyKey != key {
		t.Fatalf("by key: %+v %v", e, err)
	}
	for _, c := range []struct{ tenant, key string }{{b, key}, {a, "other"}, {"not-a-uuid", key}} {
		if _, err := ls.GetEntryByKey(ctx, c.tenant, c.key); !fault.IsKind(err, fault.KindNotFound) {
			t.Errorf("tenant %s key %s: %v; want not found", c.tenant, c.key, err)
		}
	}
}
