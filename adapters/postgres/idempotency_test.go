package postgres_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/contract"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func TestIdempotencyContract(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	contract.RunIdempotencySuite(t, func(*testing.T) ports.IdempotencyStore {
		return postgres.NewIdempotencyStore(db, nil)
	})
}

// With a clock the test moves, expiry is exact: a completed key is kept
// up to its TTL and replaced after it.
func TestIdempotencyExpiryByClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	clock := fakes.NewClock(time.Time{})
	s := postgres.NewIdempotencyStore(db, clock)
	const scope, key = "create-allocation:user-1", "key-1"
	begin := func(fp string) ports.IdempotencyState {
		t.Helper()
		st, _, err := s.Begin(ctx, scope, key, fp, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := begin("a"); st != ports.IdempotencyNew {
		t.Fatalf("first Begin = %v", st)
	}
	if err := s.Complete(ctx, scope, key, ports.StoredResponse{Status: 201, Body: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour - time.Microsecond)
	if st := begin("b"); st != ports.IdempotencyMismatch {
		t.Fatalf("just before expiry Begin = %v; want Mismatch", st)
	}
	clock.Advance(time.Microsecond)
	if st := begin("b"); st != ports.IdempotencyNew {
		t.Fatalf("at expiry Begin = %v; want New", st)
	}
	if err := s.Complete(ctx, scope, key, ports.StoredResponse{Status: 200, Body: json.RawMessage(`{"v":2}`)}); err != nil {
		t.Fatal(err)
	}
	st, resp, err := s.Begin(ctx, scope, key, "b", time.Hour)
	if err != nil || st != ports.IdempotencyReplay || resp.Status != 200 || string(resp.Body) != `{"v":2}` {
		t.Fatalf("replay after replacement = %v %+v %v", st, resp, err)
	}
}

// Twenty racers on an expired key: exactly one takes it over.
func TestIdempotencyRaceOnExpiredKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "")
	clock := fakes.NewClock(time.Time{})
	s := postgres.NewIdempotencyStore(db, clock)
	if st, _, err := s.Begin(ctx, "s", "k", "old", time.Minute); err != nil || st != ports.IdempotencyNew {
		t.Fatalf("Begin = %v, %v", st, err)
	}
	clock.Advance(2 * time.Minute)
	const n = 20
	states := make([]ports.IdempotencyState, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			states[i], _, errs[i] = s.Begin(ctx, "s", "k", "new", time.Minute)
		}()
	}
	close(start)
	wg.Wait()
	news := 0
	for i := range states {
		if errs[i] != nil {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
		switch states[i] {
		case ports.IdempotencyNew:
			news++
		case ports.IdempotencyInFlight:
		default:
			t.Fatalf("racer %d got %v", i, states[i])
		}
	}
	if news != 1 {
		t.Fatalf("%d racers took over the expired key; want 1", news)
	}
}

func TestIdempotencyRefusesBadInput(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	s := postgres.NewIdempotencyStore(db, nil)
	for _, tc := range []struct {
		scope, key string
		ttl        time.Duration
	}{{"", "k", time.Minute}, {"s", "", time.Minute}, {"s", "k", 0}, {"s", "k", -time.Second}} {
		if _, _, err := s.Begin(context.Background(), tc.scope, tc.key, "fp", tc.ttl); !fault.IsKind(err, fault.KindInvalid) {
			t.Errorf("Begin(%q, %q, %v) = %v; want Invalid", tc.scope, tc.key, tc.ttl, err)
		}
	}
}

// The claim and the completion commit without waiting for their WAL flush
// (synchronous_commit off for their own implicit transactions). That must
// stay theirs: the pooled connection keeps its setting afterwards, and a
// claim made inside a caller's transaction leaves that transaction durable.
func TestIdempotencyUnflushedCommitsStayTheirOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: services.FreshDatabaseURL(t), Migrate: true, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s := postgres.NewIdempotencyStore(db, nil)
	syncCommit := func(ctx context.Context) string {
		t.Helper()
		var v string
		if err := db.Q(ctx).QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if st, _, err := s.Begin(ctx, "scope-1", "key-1", "fp", time.Hour); err != nil || st != ports.IdempotencyNew {
		t.Fatalf("begin: %v %v", st, err)
	}
	if err := s.Complete(ctx, "scope-1", "key-1", ports.StoredResponse{Status: 201, Body: json.RawMessage(`{"id":"a"}`)}); err != nil {
		t.Fatal(err)
	}
	if got := syncCommit(ctx); got != "on" {
		t.Fatalf("the pool's one connection has synchronous_commit %q after a claim and a completion; want on", got)
	}
	if st, resp, err := s.Begin(ctx, "scope-1", "key-1", "fp", time.Hour); err != nil || st != ports.IdempotencyReplay || resp.Status != 201 {
		t.Fatalf("replay: %v %+v %v", st, resp, err)
	}
	err = db.InTx(ctx, func(ctx context.Context) error {
		if st, _, err := s.Begin(ctx, "scope-1", "key-2", "fp", time.Hour); err != nil || st != ports.IdempotencyNew {
			t.Fatalf("begin in a transaction: %v %v", st, err)
		}
		if got := syncCommit(ctx); got != "on" {
			t.Fatalf("the caller's transaction has synchronous_commit %q after a claim in it; want on", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A request's key is marked committed by the request's own transaction
// (the work its context carries): kept when that transaction commits — so
// Abandon after a later failure releases nothing and a retry hears
// Committed until a response is stored — and released when it rolls back.
func TestIdempotencyCommittedWithTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "")
	s := postgres.NewIdempotencyStore(db, nil)
	begin := func(key string, want ports.IdempotencyState) {
		t.Helper()
		if st, _, err := s.Begin(ctx, "scope-c", key, "fp", time.Hour); err != nil || st != want {
			t.Fatalf("Begin(%s) = %v, %v; want %v", key, st, err, want)
		}
	}
	marked := func(key string) context.Context {
		return ports.WithTxWork(ctx, func(ctx context.Context) error { return s.MarkCommitted(ctx, "scope-c", key) })
	}

	// Committed, then the request fails: the key stays.
	begin("k1", ports.IdempotencyNew)
	if err := db.InTx(marked("k1"), func(ctx context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Abandon(ctx, "scope-c", "k1"); err != nil {
		t.Fatal(err)
	}
	begin("k1", ports.IdempotencyCommitted)
	if err := s.Complete(ctx, "scope-c", "k1", ports.StoredResponse{Status: 201, Body: json.RawMessage(`{"id":"a"}`)}); err != nil {
		t.Fatalf("complete a committed key: %v", err)
	}
	begin("k1", ports.IdempotencyReplay)

	// Rolled back: nothing committed, so Abandon releases the key.
	begin("k2", ports.IdempotencyNew)
	boom := fault.Conflict(fault.CodeConflict, "boom")
	if err := db.InTx(marked("k2"), func(ctx context.Context) error { return boom }); err != boom {
		t.Fatalf("InTx = %v, want the function's error", err)
	}
	begin("k2", ports.IdempotencyInFlight)
	if err := s.Abandon(ctx, "scope-c", "k2"); err != nil {
		t.Fatal(err)
	}
	begin("k2", ports.IdempotencyNew)

	// A nested transaction joins the outer one and does not mark again on
	// its own; outside any transaction the mark is refused.
	begin("k3", ports.IdempotencyNew)
	err := db.InTx(marked("k3"), func(ctx context.Context) error {
		return db.InTx(ctx, func(ctx context.Context) error { return boom })
	})
	if err != boom {
		t.Fatalf("nested InTx = %v", err)
	}
	begin("k3", ports.IdempotencyInFlight)
	if err := s.MarkCommitted(ctx, "scope-c", "k3"); fault.KindOf(err) != fault.KindInternal {
		t.Fatalf("MarkCommitted outside a transaction = %v, want Internal", err)
	}
}

// Once the transaction's function has returned, the commit is carried out
// even if the caller's context is cancelled meanwhile (a client that went
// away): cancelling a COMMIT under way would leave its outcome unknown.
func TestCommitOutlivesACancelledCaller(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := db.Q(ctx).Exec(ctx, `CREATE TABLE IF NOT EXISTS commit_outlives (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	err := db.InTx(ctx, func(ctx context.Context) error {
		if _, err := db.Q(ctx).Exec(ctx, `INSERT INTO commit_outlives VALUES (1)`); err != nil {
			return err
		}
		cancel()
		return nil
	})
	if err != nil {
		t.Fatalf("InTx after the caller went away = %v, want the commit carried out", err)
	}
	var n int
	if err := db.Q(context.Background()).QueryRow(context.Background(), `SELECT count(*) FROM commit_outlives`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d, %v; want 1", n, err)
	}
}
