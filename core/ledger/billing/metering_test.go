package billing_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/seed"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// meterEnv is metering over real Postgres, fed by the real allocation use
// cases (so the events are the ones allocationsvc emits) on a settable
// clock.
type meterEnv struct {
	t      *testing.T
	db     *postgres.DB
	clock  *fakes.Clock
	allocs *allocationsvc.Service
	meter  *billing.Metering
	usage  *postgres.UsageStore
	bills  *postgres.BillingStore
}

func newMeterEnv(t *testing.T) *meterEnv {
	t.Helper()
	db := services.Postgres(t)
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// Whole seconds: Postgres keeps microseconds, and the cost arithmetic
	// below is easier to read on round times.
	clock := fakes.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	allocs, err := allocationsvc.New(allocationsvc.Deps{Tx: db, Allocations: postgres.NewAllocationStore(db),
		SKUs: postgres.NewSKUStore(db), Nodes: postgres.NewNodeStore(db), SSHKeys: postgres.NewSSHKeyStore(db),
		Ledger: postgres.NewLedgerStore(db), Policies: pol, Audit: postgres.NewAuditLog(db), Outbox: outbox,
		Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	usage := postgres.NewUsageStore(db)
	meter, err := billing.NewMetering(billing.MeteringDeps{Tx: db, Allocations: postgres.NewAllocationStore(db),
		Usage: usage, Ledger: postgres.NewLedgerStore(db), IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	return &meterEnv{t: t, db: db, clock: clock, allocs: allocs, meter: meter, usage: usage, bills: postgres.NewBillingStore(db)}
}

// meterMember is a principal with its project (identity.Principal has
// none: the host passes the active project separately).
type meterMember struct {
	p       identity.Principal
	project string
}

// member makes a funded tenant with a project, an owner with an SSH key,
// and one free node of sku.
func (e *meterEnv) member(sku string) meterMember {
	e.t.Helper()
	ctx := context.Background()
	ids := system.UUIDs{}
	sm := seed.NewMember(e.t, e.db, 1_000_000)
	p, pid := sm.Principal, sm.ProjectID
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	pk, _ := ssh.NewPublicKey(pub)
	if _, err := e.allocs.AddSSHKey(ctx, p, "k", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))); err != nil {
		e.t.Fatal(err)
	}
	now := time.Now()
	nid := ids.NewID()
	if err := postgres.NewNodeStore(e.db).CreateNode(ctx, inventory.Node{ID: nid, Name: "n-" + nid, SKUID: sku,
		State: inventory.NodeActive, SSHHost: "gpu.example.net", SSHPort: 22, LastHeartbeatAt: &now}); err != nil {
		e.t.Fatal(err)
	}
	return meterMember{p: p, project: pid}
}

// active creates an allocation and drives it to active at the clock's time.
func (e *meterEnv) active(m meterMember, sku string) allocation.Allocation {
	e.t.Helper()
	ctx := context.Background()
	a, err := e.allocs.Create(ctx, m.p, m.project, allocationsvc.CreateRequest{SKUID: sku})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.allocs.MarkProvisioning(ctx, a.ID); err != nil {
		e.t.Fatal(err)
	}
	if a, err = e.allocs.MarkActive(ctx, a.ID); err != nil {
		e.t.Fatal(err)
	}
	return a
}

// released releases an active allocation at the clock's time.
func (e *meterEnv) released(id string) allocation.Allocation {
	e.t.Helper()
	ctx := context.Background()
	a, err := e.allocs.ForceRelease(ctx, identity.Principal{User: identity.User{ID: system.UUIDs{}.NewID(), Role: identity.RoleAdmin}}, id)
	if err != nil {
		e.t.Fatal(err)
	}
	if a.State != allocation.Releasing {
		e.t.Fatalf("state %s; want releasing", a.State)
	}
	if a, err = e.allocs.MarkReleased(ctx, id); err != nil {
		e.t.Fatal(err)
	}
	return a
}

// event returns the outbox envelope of subject for the allocation: the
// exact bytes the relay would publish and the consumer would receive.
func (e *meterEnv) event(allocID, subject string) event.Envelope {
	e.t.Helper()
	var b []byte
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT envelope FROM platform_outbox_events
		WHERE envelope->>'aggregate_id' = $1 AND envelope->>'type' = $2`, allocID, subject).Scan(&b); err != nil {
		e.t.Fatalf("outbox event %s of %s: %v", subject, allocID, err)
	}
	var env event.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		e.t.Fatal(err)
	}
	return env
}

func (e *meterEnv) handle(env event.Envelope) {
	e.t.Helper()
	if err := e.meter.HandleEvent(context.Background(), env); err != nil {
		e.t.Fatalf("handle %s: %v", env.Type, err)
	}
}

// record returns the allocation's usage record and how many it has.
func (e *meterEnv) record(allocID string) (billing.UsageRecord, int) {
	e.t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM usage_records WHERE allocation_id = $1`,
		allocID).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	if n == 0 {
		return billing.UsageRecord{}, 0
	}
	r, err := e.usage.GetByAllocation(context.Background(), allocID)
	if err != nil {
		e.t.Fatal(err)
	}
	return r, n
}

// debited is what the ledger holds against one usage record: its usage
// debits (negative) plus any correction (positive), as a positive charge.
func (e *meterEnv) debited(recordID string) int64 {
	e.t.Helper()
	var sum int64
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT COALESCE(-SUM(amount_minor), 0)::bigint FROM ledger_entries
		WHERE reference = $1`, recordID).Scan(&sum); err != nil {
		e.t.Fatal(err)
	}
	return sum
}

func sameTime(a, b time.Time) bool { return a.Equal(b) }

// TestMeteringFollowsTheAllocation drives allocations through their life
// and delivers their events in order, twice, reordered and concurrently:
// every variant ends in the same single record.
func TestMeteringFollowsTheAllocation(t *testing.T) {
	t.Parallel()
	e := newMeterEnv(t)
	ctx := context.Background()
	const sku = "h100-80g-x1" // 299 minor per hour

	t.Run("open on active, close on released, redelivery changes nothing", func(t *testing.T) {
		p := e.member(sku)
		t0 := e.clock.Now()
		a := e.active(p, sku)
		act := e.event(a.ID, event.AllocationActive)
		e.handle(act)
		e.handle(act) // redelivery
		r, n := e.record(a.ID)
		if n != 1 || r.State != billing.UsageOpen || !sameTime(r.StartedAt, t0) || !sameTime(r.BilledThrough, t0) ||
			r.EndedAt != nil || r.HourlyPriceMinor != 299 || r.Currency != "usd" || r.TenantID != p.p.TenantID ||
			r.UserID != p.p.User.ID || r.BilledMinor != 0 {
			t.Fatalf("after active: %d records, %+v", n, r)
		}
		e.clock.Advance(90 * time.Minute)
		a = e.released(a.ID)
		rel := e.event(a.ID, event.AllocationReleased)
		e.handle(rel)
		e.handle(rel)
		e.handle(act) // a late redelivery of active does not reopen it
		r2, n := e.record(a.ID)
		if n != 1 || r2.ID != r.ID || r2.State != billing.UsageClosed || r2.EndedAt == nil ||
			!sameTime(*r2.EndedAt, *a.ReleasedAt) || !sameTime(*r2.EndedAt, t0.Add(90*time.Minute)) {
			t.Fatalf("after released: %d records, %+v (released_at %v)", n, r2, a.ReleasedAt)
		}
		// Nothing was billed before the close; the worker bills the span once.
		if _, err := e.bills.AccrueWindow(ctx, t0.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, want := e.debited(r.ID), int64(448); got != want { // 1.5 h at 299/h, rounded down
			t.Fatalf("debited %d; want %d (90 min at 299/h)", got, want)
		}
	})

	t.Run("released delivered before active converges on the same closed record", func(t *testing.T) {
		p := e.member(sku)
		t0 := e.clock.Now()
		a := e.active(p, sku)
		e.clock.Advance(17*time.Minute + 3*time.Second)
		a = e.released(a.ID)
		e.handle(e.event(a.ID, event.AllocationReleased))
		e.handle(e.event(a.ID, event.AllocationActive))
		e.handle(e.event(a.ID, event.AllocationReleased))
		r, n := e.record(a.ID)
		if n != 1 || r.State != billing.UsageClosed || !sameTime(r.StartedAt, t0) || r.EndedAt == nil ||
			!sameTime(*r.EndedAt, t0.Add(17*time.Minute+3*time.Second)) || !sameTime(r.BilledThrough, t0) {
			t.Fatalf("%d records, %+v", n, r)
		}
	})

	t.Run("usage ends at the release request, however long the node takes", func(t *testing.T) {
		p := e.member(sku)
		t0 := e.clock.Now()
		a := e.active(p, sku)
		e.handle(e.event(a.ID, event.AllocationActive))
		e.clock.Advance(20 * time.Minute)
		asked := e.clock.Now()
		admin := identity.Principal{User: identity.User{ID: system.UUIDs{}.NewID(), Role: identity.RoleAdmin}}
		rel, err := e.allocs.ForceRelease(ctx, admin, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rel.ReleaseRequestedAt == nil || !sameTime(*rel.ReleaseRequestedAt, asked) {
			t.Fatalf("release_requested_at %v; want %v", rel.ReleaseRequestedAt, asked)
		}
		// The request alone closes the record: the billing worker stops
		// debiting while the node is still cleaning up.
		e.handle(e.event(a.ID, event.AllocationReleaseReq))
		r, n := e.record(a.ID)
		if n != 1 || r.State != billing.UsageClosed || r.EndedAt == nil || !sameTime(*r.EndedAt, t0.Add(20*time.Minute)) {
			t.Fatalf("after the request: %d records, %+v; want closed at %v", n, r, asked)
		}
		// The node takes another 40 minutes; the user pays for 20.
		e.clock.Advance(40 * time.Minute)
		if _, err := e.allocs.MarkReleased(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		e.handle(e.event(a.ID, event.AllocationReleased))
		if _, err := e.bills.AccrueWindow(ctx, t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		r2, _ := e.record(a.ID)
		if !sameTime(*r2.EndedAt, asked) || e.debited(r.ID) != 99 { // 20 min at 299/h = 99.67
			t.Fatalf("after released: %+v, debited %d; want ended at %v and 99 debited", r2, e.debited(r.ID), asked)
		}
	})

	t.Run("release_failed closes the record at the release request", func(t *testing.T) {
		p := e.member(sku)
		a := e.active(p, sku)
		e.clock.Advance(5 * time.Minute)
		asked := e.clock.Now()
		admin := identity.Principal{User: identity.User{ID: system.UUIDs{}.NewID(), Role: identity.RoleAdmin}}
		if _, err := e.allocs.ForceRelease(ctx, admin, a.ID); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(3 * time.Minute)
		if _, err := e.allocs.MarkReleaseFailed(ctx, a.ID, "agent_unreachable"); err != nil {
			t.Fatal(err)
		}
		e.handle(e.event(a.ID, event.AllocationActive))
		e.handle(e.event(a.ID, event.AllocationReleaseFailed))
		r, n := e.record(a.ID)
		if n != 1 || r.State != billing.UsageClosed || r.EndedAt == nil || !sameTime(*r.EndedAt, asked) {
			t.Fatalf("%d records, %+v; want closed at %v", n, r, asked)
		}
		// A retried release that then succeeds does not reopen or move it.
		if _, err := e.allocs.ForceRelease(ctx, admin, a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.allocs.MarkReleased(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		e.handle(e.event(a.ID, event.AllocationReleased))
		r2, _ := e.record(a.ID)
		if r2.State != billing.UsageClosed || !sameTime(*r2.EndedAt, *r.EndedAt) {
			t.Fatalf("after the retried release: %+v; want still closed at %v", r2, *r.EndedAt)
		}
	})

	t.Run("late close after billing passed the end posts one correcting credit", func(t *testing.T) {
		p := e.member(sku)
		t0 := e.clock.Now().Truncate(time.Minute)
		e.clock.Set(t0)
		a := e.active(p, sku)
		e.handle(e.event(a.ID, event.AllocationActive))
		// The worker bills ten one-minute windows.
		for i := 1; i <= 10; i++ {
			if _, err := e.bills.AccrueWindow(ctx, t0.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		r, _ := e.record(a.ID)
		billed := int64(49) // 10 min at 299/h = 49.83
		if r.BilledMinor != billed || e.debited(r.ID) != billed {
			t.Fatalf("billed %d, ledger %d; want %d", r.BilledMinor, e.debited(r.ID), billed)
		}
		// The release had happened at 4m30s; its event arrives now.
		end := t0.Add(4*time.Minute + 30*time.Second)
		e.clock.Set(end)
		a = e.released(a.ID)
		rel := e.event(a.ID, event.AllocationReleased)
		e.handle(rel)
		e.handle(rel)
		r2, n := e.record(a.ID)
		want := int64(22) // 4m30s at 299/h = 22.43
		if n != 1 || r2.State != billing.UsageClosed || !sameTime(*r2.EndedAt, end) || !sameTime(r2.BilledThrough, end) ||
			r2.BilledMinor != want {
			t.Fatalf("after the late close: %+v; want closed at %v, billed %d", r2, end, want)
		}
		if got := e.debited(r.ID); got != want {
			t.Fatalf("the ledger charges %d for the record; want exactly %d (the span)", got, want)
		}
		var corrections int
		var amount int64
		if err := e.db.Pool.QueryRow(ctx, `SELECT count(*), COALESCE(SUM(amount_minor), 0)::bigint FROM ledger_entries
			WHERE idempotency_key = $1 AND type = 'adjustment'`, billing.CorrectionIdempotencyKey(r.ID)).Scan(&corrections, &amount); err != nil {
			t.Fatal(err)
		}
		if corrections != 1 || amount != billed-want {
			t.Fatalf("%d corrections of %d; want one of %d", corrections, amount, billed-want)
		}
		// Later cycles do not bill the closed record again (other subtests'
		// records share the database, so look at this one only).
		if _, err := e.bills.AccrueWindow(ctx, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := e.debited(r.ID); got != want {
			t.Fatalf("a closed, fully billed record was billed again: %d; want %d", got, want)
		}
	})

	t.Run("concurrent deliveries of active open exactly one record", func(t *testing.T) {
		p := e.member(sku)
		a := e.active(p, sku)
		act := e.event(a.ID, event.AllocationActive)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- e.meter.HandleEvent(ctx, act)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, n := e.record(a.ID); n != 1 {
			t.Fatalf("%d records; want 1", n)
		}
	})

	t.Run("an allocation that never became active is never metered", func(t *testing.T) {
		p := e.member(sku)
		a, err := e.allocs.Create(ctx, p.p, p.project, allocationsvc.CreateRequest{SKUID: sku})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.allocs.MarkFailed(ctx, a.ID, "provisioning_timeout"); err != nil {
			t.Fatal(err)
		}
		if err := e.meter.Sync(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		e.handle(e.event(a.ID, event.AllocationFailed)) // not metering's: ignored
		if _, n := e.record(a.ID); n != 0 {
			t.Fatalf("%d records for an allocation that never ran", n)
		}
	})
}

func TestMeteringRefusesMalformedEvents(t *testing.T) {
	t.Parallel()
	e := newMeterEnv(t)
	ctx := context.Background()
	cases := []struct {
		name    string
		env     event.Envelope
		invalid bool // else no error
	}{
		{"not json", event.Envelope{Type: event.AllocationActive, Payload: json.RawMessage(`{`)}, true},
		{"no allocation id", event.Envelope{Type: event.AllocationReleased, Payload: json.RawMessage(`{}`)}, true},
		{"unknown allocation", event.Envelope{Type: event.AllocationActive,
			Payload: json.RawMessage(`{"allocation_id":"` + system.UUIDs{}.NewID() + `"}`)}, false},
		{"aggregate id stands in for the payload", event.Envelope{Type: event.AllocationActive,
			AggregateID: system.UUIDs{}.NewID()}, false},
		{"other subject", event.Envelope{Type: event.UsageDebited, Payload: json.RawMessage(`{`)}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := e.meter.HandleEvent(ctx, c.env)
			if c.invalid != fault.IsKind(err, fault.KindInvalid) || !c.invalid && err != nil {
				t.Fatalf("err %v; want invalid=%v", err, c.invalid)
			}
		})
	}
	var n int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM usage_records`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d records (%v); want none", n, err)
	}
}
