package postgres_test

import (
	"context"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger"
)

func TestLedgerPostAndBalance(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	o := seedOwner(t, db)
	l := postgres.NewLedgerStore(db)

	if b, cur, err := l.Balance(ctx, o.TenantID); err != nil || b != 0 || cur != "" {
		t.Fatalf("empty balance %d %q %v", b, cur, err)
	}
	credit := ledger.Entry{TenantID: o.TenantID, UserID: o.UserID, Type: ledger.Credit, AmountMinor: 1000,
		Currency: "usd", IdempotencyKey: "topup-" + o.TenantID}
	debit := ledger.Entry{TenantID: o.TenantID, ProjectID: o.ProjectID, Type: ledger.UsageDebit, AmountMinor: -250,
		Currency: "usd", IdempotencyKey: "usage-" + o.TenantID, Reference: "alloc-1"}
	n, err := l.Post(ctx, credit, debit)
	if err != nil || n != 2 {
		t.Fatalf("post: %d %v", n, err)
	}
	// The same keys again post nothing: retries are harmless.
	if n, err := l.Post(ctx, credit, debit); err != nil || n != 0 {
		t.Fatalf("repost: %d %v", n, err)
	}
	if b, cur, err := l.Balance(ctx, o.TenantID); err != nil || b != 750 || cur != "usd" {
		t.Fatalf("balance %d %q %v; want 750 usd", b, cur, err)
	}

	// Invalid entries post nothing, even alongside valid ones.
	bad := ledger.Entry{TenantID: o.TenantID, Type: ledger.Credit, AmountMinor: -5, Currency: "usd", IdempotencyKey: "x-" + o.TenantID}
	ok := ledger.Entry{TenantID: o.TenantID, Type: ledger.Credit, AmountMinor: 5, Currency: "usd", IdempotencyKey: "y-" + o.TenantID}
	if _, err := l.Post(ctx, ok, bad); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("bad entry: %v", err)
	}
	if b, _, _ := l.Balance(ctx, o.TenantID); b != 750 {
		t.Fatalf("balance moved to %d after a refused post", b)
	}
	// An unknown tenant is NotFound (foreign key), not a silent success.
	if _, err := l.Post(ctx, ledger.Entry{TenantID: newUUID(), Type: ledger.Credit, AmountMinor: 5, Currency: "usd",
		IdempotencyKey: "z-" + o.TenantID}); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("unknown tenant: %v", err)
	}

	// Append-only: the database refuses updates and deletes.
	if _, err := db.Pool.Exec(ctx, `UPDATE ledger_entries SET amount_minor = 1000000 WHERE tenant_id = $1`, o.TenantID); err == nil {
		t.Fatal("update of a ledger entry was allowed")
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM ledger_entries WHERE tenant_id = $1`, o.TenantID); err == nil {
		t.Fatal("delete of a ledger entry was allowed")
	}
}
