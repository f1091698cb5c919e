package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/payment"
)

func newPaymentSession(o owner, key string, amount int64) payment.Session {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return payment.Session{ID: newUUID(), TenantID: o.TenantID, UserID: o.UserID, AmountMinor: amount, Currency: "usd",
		Provider: "stripe", Status: payment.Initiated, IdempotencyKey: key, CreatedAt: now, UpdatedAt: now}
}

func TestPaymentSessionLifecycle(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	o := seedOwner(t, db)
	s := postgres.NewPaymentStore(db)

	in := newPaymentSession(o, "k1", 2500)
	got, created, err := s.CreateSession(ctx, in)
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	if got.ID != in.ID || got.AmountMinor != 2500 || got.Status != payment.Initiated || got.ProviderRef != "" ||
		!got.CreatedAt.Equal(in.CreatedAt) {
		t.Fatalf("created %+v", got)
	}
	// The same (user, key) returns the first session, not a second one.
	again, created, err := s.CreateSession(ctx, newPaymentSession(o, "k1", 9999))
	if err != nil || created || again.ID != in.ID || again.AmountMinor != 2500 {
		t.Fatalf("replay: %+v created=%v %v", again, created, err)
	}

	if err := s.AttachProviderRef(ctx, in.ID, "cs_1", "https://pay.example/cs_1"); err != nil {
		t.Fatal(err)
	}
	if err := s.AttachProviderRef(ctx, in.ID, "cs_1", "https://pay.example/cs_1"); err != nil {
		t.Fatalf("same ref again: %v", err)
	}
	if err := s.AttachProviderRef(ctx, in.ID, "cs_2", "https://pay.example/cs_2"); !fault.IsKind(err, fault.KindConflict) {
		t.Fatalf("second ref: %v", err)
	}
	other, _, _ := s.CreateSession(ctx, newPaymentSession(o, "k2", 700))
	if err := s.AttachProviderRef(ctx, other.ID, "cs_1", "u"); !fault.IsKind(err, fault.KindConflict) {
		t.Fatalf("ref of another session: %v", err)
	}
	byRef, err := s.GetSessionByProviderRef(ctx, "cs_1")
	if err != nil || byRef.ID != in.ID || byRef.CheckoutURL != "https://pay.example/cs_1" {
		t.Fatalf("by ref: %+v %v", byRef, err)
	}
	if _, err := s.GetSessionByProviderRef(ctx, "cs_none"); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("unknown ref: %v", err)
	}
	if _, err := s.GetSession(ctx, "not-a-uuid"); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("bad id: %v", err)
	}

	at := time.Now()
	if ok, err := s.TransitionSession(ctx, in.ID, payment.Initiated, payment.Credited, at); err != nil || !ok {
		t.Fatalf("credit: %v %v", ok, err)
	}
	if ok, err := s.TransitionSession(ctx, in.ID, payment.Initiated, payment.FailedReconcile, at); err != nil || ok {
		t.Fatalf("second transition moved a settled session: %v %v", ok, err)
	}
	if _, err := s.TransitionSession(ctx, in.ID, payment.Credited, payment.Initiated, at); !fault.IsKind(err, fault.KindConflict) {
		t.Fatalf("illegal transition: %v", err)
	}
	final, _ := s.GetSession(ctx, in.ID)
	if final.Status != payment.Credited {
		t.Fatalf("status %s", final.Status)
	}

	// Unknown tenant → NotFound through the foreign key.
	bad := newPaymentSession(owner{TenantID: newUUID(), UserID: o.UserID}, "k3", 100)
	if _, _, err := s.CreateSession(ctx, bad); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("unknown tenant: %v", err)
	}
}

// TestPaymentTransitionRace: of 20 concurrent transitions out of initiated
// exactly one wins.
func TestPaymentTransitionRace(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	ctx := context.Background()
	o := seedOwner(t, db)
	s := postgres.NewPaymentStore(db)
	sess, _, err := s.CreateSession(ctx, newPaymentSession(o, "race", 100))
	if err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	targets := []payment.Status{payment.Credited, payment.FailedReconcile, payment.Expired}
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ok, err := s.TransitionSession(ctx, sess.ID, payment.Initiated, targets[i%3], time.Now())
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d transitions won, want 1", wins.Load())
	}
}

// TestPaymentEventDedupe: 20 concurrent marks of one event id, each in its
// own transaction, record it once; a mark whose transaction rolls back
// leaves the id free.
func TestPaymentEventDedupe(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	ctx := context.Background()
	s := postgres.NewPaymentStore(db)
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.InTx(ctx, func(ctx context.Context) error {
				ok, err := s.MarkEventProcessed(ctx, "stripe", "evt_1", "checkout.session.completed", time.Now())
				if ok {
					fresh.Add(1)
				}
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d marks were fresh, want 1", fresh.Load())
	}
	// The same id of another provider is a different event.
	if ok, err := s.MarkEventProcessed(ctx, "devpay", "evt_1", "x", time.Now()); err != nil || !ok {
		t.Fatalf("other provider: %v %v", ok, err)
	}
	errRollback := fault.Conflict("", "roll back")
	_ = db.InTx(ctx, func(ctx context.Context) error {
		if ok, err := s.MarkEventProcessed(ctx, "stripe", "evt_2", "x", time.Now()); err != nil || !ok {
			t.Fatalf("mark: %v %v", ok, err)
		}
		return errRollback
	})
	if ok, err := s.MarkEventProcessed(ctx, "stripe", "evt_2", "x", time.Now()); err != nil || !ok {
		t.Fatalf("after rollback: %v %v", ok, err)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM payment_events`); err == nil {
		t.Fatal("payment_events accepted a delete")
	}
}

func TestPaymentListAndCustomers(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	o := seedOwner(t, db)
	s := postgres.NewPaymentStore(db)
	base := time.Now().UTC().Truncate(time.Microsecond)
	var ids []string
	for i := 0; i < 5; i++ {
		p := newPaymentSession(o, "list-"+newUUID(), int64(500+i))
		p.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		if _, _, err := s.CreateSession(ctx, p); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	if _, err := s.TransitionSession(ctx, ids[1], payment.Initiated, payment.FailedReconcile, base); err != nil {
		t.Fatal(err)
	}
	page, next, err := s.ListSessions(ctx, payment.SessionFilter{Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != ids[4] || page[1].ID != ids[3] || next == "" {
		t.Fatalf("page 1: %v %q %v", page, next, err)
	}
	page, next, err = s.ListSessions(ctx, payment.SessionFilter{Limit: 2, Cursor: next})
	if err != nil || len(page) != 2 || page[0].ID != ids[2] || page[1].ID != ids[1] {
		t.Fatalf("page 2: %v %v", page, err)
	}
	page, next, _ = s.ListSessions(ctx, payment.SessionFilter{Limit: 2, Cursor: next})
	if len(page) != 1 || page[0].ID != ids[0] || next != "" {
		t.Fatalf("page 3: %v %q", page, next)
	}
	failed, _, err := s.ListSessions(ctx, payment.SessionFilter{Status: payment.FailedReconcile})
	if err != nil || len(failed) != 1 || failed[0].ID != ids[1] {
		t.Fatalf("failed_reconcile: %v %v", failed, err)
	}
	if _, _, err := s.ListSessions(ctx, payment.SessionFilter{Cursor: "garbage"}); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}

	if _, err := s.CustomerRef(ctx, o.TenantID, "stripe"); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("no customer yet: %v", err)
	}
	if ref, err := s.SaveCustomerRef(ctx, o.TenantID, "stripe", "cus_first"); err != nil || ref != "cus_first" {
		t.Fatalf("save: %q %v", ref, err)
	}
	if ref, err := s.SaveCustomerRef(ctx, o.TenantID, "stripe", "cus_second"); err != nil || ref != "cus_first" {
		t.Fatalf("first writer must win: %q %v", ref, err)
	}
	if ref, err := s.CustomerRef(ctx, o.TenantID, "stripe"); err != nil || ref != "cus_first" {
		t.Fatalf("read: %q %v", ref, err)
	}
}
