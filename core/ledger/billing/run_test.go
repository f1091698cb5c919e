package billing_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
)

// windowsSeen records the window ends the worker accrued.
type windowsSeen struct {
	billing.Accruer
	mu   sync.Mutex
	ends []time.Time
}

func (w *windowsSeen) AccrueWindow(ctx context.Context, end time.Time) ([]billing.AccrualTotal, error) {
	w.mu.Lock()
	w.ends = append(w.ends, end)
	w.mu.Unlock()
	return w.Accruer.AccrueWindow(ctx, end)
}

// Run accrues once per window boundary, and a shorter billing.window_seconds
// takes effect within seconds instead of at the end of the old, long window.
func TestRunFollowsWindowPolicy(t *testing.T) {
	t.Parallel()
	e := newMeterEnv(t)
	ctx := context.Background()
	pol, err := postgres.NewPolicyStore(e.db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := postgres.NewOutbox(e.db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := &windowsSeen{Accruer: e.bills}
	w, err := billing.NewWorker(billing.WorkerDeps{Tx: e.db, Accruer: seen, Releaser: e.allocs, Policies: pol,
		Outbox: outbox, Clock: e.clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := e.clock.Now() // a window boundary
	stop := errors.New("stop")
	var slept time.Duration
	// wait moves the fake clock instead of sleeping; after 150 s of fake time
	// with a 60 s window the policy drops to 2 s; the run ends at 170 s.
	wait := func(_ context.Context, d time.Duration) error {
		if d <= 0 || d > 61*time.Second {
			t.Fatalf("wait(%s): want a positive nap of at most a window", d)
		}
		before := slept
		slept += d
		e.clock.Set(t0.Add(slept))
		if before < 150*time.Second && slept >= 150*time.Second {
			if err := pol.Set(ctx, "", "billing.window_seconds", "2", "test"); err != nil {
				t.Fatal(err)
			}
		}
		if slept >= 170*time.Second {
			return stop
		}
		return nil
	}
	if err := w.Run(ctx, wait); err != nil {
		t.Fatal(err)
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	// Boundaries at 0, 60 and 120 s with the long window; then every 2 s
	// from the first boundary after the change (≤ 5 s later) until 170 s.
	if len(seen.ends) < 3+5 {
		t.Fatalf("accrued %d windows: %v", len(seen.ends), seen.ends)
	}
	for i, want := range []time.Duration{0, 60 * time.Second, 120 * time.Second} {
		if got := seen.ends[i].Sub(t0); got != want {
			t.Fatalf("window %d ended at +%s; want +%s (all: %v)", i, got, want, seen.ends)
		}
	}
	first := seen.ends[3].Sub(t0)
	if first < 150*time.Second || first > 156*time.Second {
		t.Fatalf("first short window ended at +%s; want within seconds of the change at +150s", first)
	}
	for i := 4; i < len(seen.ends); i++ {
		if d := seen.ends[i].Sub(seen.ends[i-1]); d != 2*time.Second {
			t.Fatalf("windows %d and %d are %s apart; want 2s (all: %v)", i-1, i, d, seen.ends)
		}
	}
}
