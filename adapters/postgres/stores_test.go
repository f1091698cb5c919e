package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/testkit/contract"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// nonUTC is the session time zone most tests run under: a zone with a
// half-hour offset shakes out code that formats or truncates times in SQL.
const nonUTC = "Asia/Kolkata"

// openDB opens a fresh migrated database private to the test, its sessions
// in time zone tz ("" leaves the server default).
func openDB(t *testing.T, tz string) *postgres.DB {
	t.Helper()
	url := services.FreshDatabaseURL(t)
	if tz != "" {
		url += "&timezone=" + tz
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Config{URL: url, Migrate: true, MaxConns: 30})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(db.Close)
	var got string
	if err := db.Pool.QueryRow(ctx, `SHOW TimeZone`).Scan(&got); err != nil || (tz != "" && got != tz) {
		t.Fatalf("session time zone %q (err %v); want %q", got, err, tz)
	}
	return db
}

func identityStores(db *postgres.DB) contract.IdentityStores {
	return contract.IdentityStores{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db)}
}

func TestIdentityStoresContract(t *testing.T) {
	t.Parallel()
	// One database for the whole suite (cases use ids of their own), in a
	// non-UTC session zone.
	db := openDB(t, nonUTC)
	contract.RunIdentityStoresSuite(t, func(*testing.T) contract.IdentityStores { return identityStores(db) })
}

func TestIdentityStoresContractUTC(t *testing.T) {
	t.Parallel()
	db := openDB(t, "UTC")
	contract.RunIdentityStoresSuite(t, func(*testing.T) contract.IdentityStores { return identityStores(db) })
}

func TestUserStatusSurvivesUpsert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	users := postgres.NewUserStore(db)
	u := newTestUser()
	if _, _, err := users.UpsertByIdentity(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE users SET status = 'suspended' WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	got, created, err := users.UpsertByIdentity(ctx, u)
	if err != nil || created || got.Status != "suspended" {
		t.Fatalf("upsert of a suspended user = %+v created=%v err=%v; want it still suspended", got, created, err)
	}
}

// The loser of a serialization conflict is retried by InTx and succeeds.
func TestInTxRetriesSerializationFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "")
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE skew (grp int NOT NULL, seen bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	// Write skew: each tx reads one group and inserts into the other. Both
	// read before either writes, so SERIALIZABLE must abort one of them.
	var attempts atomic.Int32
	readA, readB := make(chan struct{}), make(chan struct{})
	run := func(read, write int, mine, theirs chan struct{}) error {
		first := true
		return db.InTx(ctx, func(ctx context.Context) error {
			attempts.Add(1)
			if _, err := db.Q(ctx).Exec(ctx, `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`); err != nil {
				return err
			}
			var n int64
			if err := db.Q(ctx).QueryRow(ctx, `SELECT count(*) FROM skew WHERE grp = $1`, read).Scan(&n); err != nil {
				return err
			}
			if first { // only the first attempt waits for the other's read
				first = false
				close(mine)
				<-theirs
			}
			_, err := db.Q(ctx).Exec(ctx, `INSERT INTO skew (grp, seen) VALUES ($1, $2)`, write, n)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- run(1, 2, readA, readB) }()
	go func() { errs <- run(2, 1, readB, readA) }()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("InTx: %v; want the loser retried to success", err)
		}
	}
	if got := attempts.Load(); got < 3 {
		t.Fatalf("%d attempts; want at least 3 (one tx retried)", got)
	}
	var rows, sawOther int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE seen = 1) FROM skew`).Scan(&rows, &sawOther); err != nil {
		t.Fatal(err)
	}
	// Serial order: whichever ran second saw the first one's row.
	if rows != 2 || sawOther != 1 {
		t.Fatalf("rows=%d, rows that saw the other tx=%d; want 2 and 1", rows, sawOther)
	}
}

func TestInTxNestedJoinsOuter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "")
	tenants := postgres.NewTenantStore(db)
	boom := errors.New("boom")
	tn := newTestTenant()
	err := db.InTx(ctx, func(ctx context.Context) error {
		if err := db.InTx(ctx, func(ctx context.Context) error { return tenants.CreateTenant(ctx, tn) }); err != nil {
			return err
		}
		return boom // the inner call committed nothing of its own
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v", err)
	}
	if _, err := tenants.GetTenant(ctx, tn.ID); err == nil {
		t.Fatal("the nested write survived the outer rollback")
	}
}

// TestBadTextIsInvalidNotInternal: a NUL or invalid UTF-8 that reaches a
// store (the use cases refuse them first) is the caller's error, not a 500.
func TestBadTextIsInvalidNotInternal(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	for i, name := range []string{"a\x00b", "a\xffb"} {
		err := postgres.NewTenantStore(db).CreateTenant(context.Background(), identity.Tenant{
			ID: fmt.Sprintf("01900000-0000-7000-8000-00000000000%d", i), Name: name, Slug: fmt.Sprintf("bad-text-%d", i)})
		if !fault.IsKind(err, fault.KindInvalid) {
			t.Fatalf("CreateTenant(%q) = %v, want invalid", name, err)
		}
	}
}
