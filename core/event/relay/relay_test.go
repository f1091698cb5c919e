package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/ports"
)

// fakeClaimer is an in-memory outbox: rows are claimed in order, published
// rows leave, failed rows stay pending with retry+1.
type fakeClaimer struct {
	mu        sync.Mutex
	pending   []ports.OutboxRecord
	published []string
	limits    []int
	claimErrs []error // returned by the next ProcessBatch calls, in order
	waits     []time.Duration
	waiting   chan struct{} // receives each time WaitForNew starts waiting
	wake      chan struct{}
}

func newFakeClaimer(n int) *fakeClaimer {
	c := &fakeClaimer{waiting: make(chan struct{}, 100), wake: make(chan struct{}, 1)}
	c.add(n)
	return c
}

func (c *fakeClaimer) add(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range n {
		id := fmt.Sprintf("ev-%d", len(c.pending)+len(c.published))
		c.pending = append(c.pending, ports.OutboxRecord{Event: event.Encoded{ID: id, Type: event.UserSignedUp, Body: []byte(`{}`)}})
	}
}

func (c *fakeClaimer) ProcessBatch(ctx context.Context, limit int, publish func(context.Context, []ports.OutboxRecord) []error) (int, error) {
	c.mu.Lock()
	c.limits = append(c.limits, limit)
	if len(c.claimErrs) > 0 {
		err := c.claimErrs[0]
		c.claimErrs = c.claimErrs[1:]
		c.mu.Unlock()
		return 0, err
	}
	n := min(limit, len(c.pending))
	recs := append([]ports.OutboxRecord(nil), c.pending[:n]...)
	c.pending = c.pending[n:]
	c.mu.Unlock()
	if n == 0 {
		return 0, nil
	}
	errs := publish(ctx, recs)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range recs {
		if errs[i] == nil {
			c.published = append(c.published, r.Event.ID)
		} else {
			r.RetryCount++
			c.pending = append(c.pending, r)
		}
	}
	return n, nil
}

func (c *fakeClaimer) WaitForNew(ctx context.Context, timeout time.Duration) error {
	c.mu.Lock()
	c.waits = append(c.waits, timeout)
	c.mu.Unlock()
	c.waiting <- struct{}{}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.wake:
		return nil
	}
}

func (c *fakeClaimer) snapshot() (published []string, pending int, limits []int, waits []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.published...), len(c.pending), append([]int(nil), c.limits...), append([]time.Duration(nil), c.waits...)
}

// fakePublisher fails the first failRounds batches entirely.
type fakePublisher struct {
	mu         sync.Mutex
	failRounds int
	batches    [][]string
}

func (p *fakePublisher) PublishBatch(_ context.Context, events []event.Encoded) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := make([]error, len(events))
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	p.batches = append(p.batches, ids)
	if p.failRounds > 0 {
		p.failRounds--
		for i := range errs {
			errs[i] = errors.New("bus down")
		}
	}
	return errs
}

// logRecorder counts log records by level.
type logRecorder struct {
	mu     sync.Mutex
	counts map[slog.Level]int
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = map[slog.Level]int{}
	}
	h.counts[r.Level]++
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }
func (h *logRecorder) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[l]
}

// runRelay starts r.Run and returns a stop func that cancels and checks
// Run returned nil promptly.
func runRelay(t *testing.T, r *Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v; want nil on cancel", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not stop on cancel")
		}
	}
}

// awaitIdle waits until the relay calls WaitForNew.
func awaitIdle(t *testing.T, c *fakeClaimer) {
	t.Helper()
	select {
	case <-c.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("relay never went idle")
	}
}

func TestRelayDrainsInBatchesThenWaits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		pending     int
		batch       int
		wantLimits  []int
		wantClaimed int
	}{
		{"empty", 0, 100, []int{100}, 0},
		{"partial batch", 30, 100, []int{100, 100}, 30},
		{"several batches", 250, 100, []int{100, 100, 100, 100}, 250},
		{"default batch size", 1500, 0, []int{1000, 1000, 1000}, 1500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newFakeClaimer(tc.pending)
			p := &fakePublisher{}
			r, err := New(Config{BatchSize: tc.batch}, c, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop := runRelay(t, r)
			awaitIdle(t, c)
			stop()
			published, pending, limits, waits := c.snapshot()
			if len(published) != tc.wantClaimed || pending != 0 {
				t.Fatalf("published %d, pending %d; want %d, 0", len(published), pending, tc.wantClaimed)
			}
			if fmt.Sprint(limits) != fmt.Sprint(tc.wantLimits) {
				t.Fatalf("claims with limits %v; want %v", limits, tc.wantLimits)
			}
			// Idle waits last the poll interval, 2s ± 10%.
			if len(waits) != 1 || waits[0] < 1800*time.Millisecond || waits[0] > 2200*time.Millisecond {
				t.Fatalf("waits %v; want one of 2s±10%%", waits)
			}
		})
	}
}

func TestRelayWakesOnNewRows(t *testing.T) {
	t.Parallel()
	c := newFakeClaimer(0)
	r, err := New(Config{PollInterval: time.Hour}, c, &fakePublisher{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := runRelay(t, r)
	defer stop()
	awaitIdle(t, c)
	c.add(5)
	c.wake <- struct{}{}
	// Without the wake-up the relay would sleep for an hour.
	awaitIdle(t, c)
	if published, _, _, _ := c.snapshot(); len(published) != 5 {
		t.Fatalf("published %d after wake-up; want 5", len(published))
	}
}

func TestRelayBacksOffAndLogsOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		claimErrs  int
		failRounds int
	}{
		{"claim errors", 5, 0},
		{"bus refuses whole batches", 0, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newFakeClaimer(10)
			for range tc.claimErrs {
				c.claimErrs = append(c.claimErrs, errors.New("database unavailable"))
			}
			p := &fakePublisher{failRounds: tc.failRounds}
			logs := &logRecorder{}
			r, err := New(Config{ErrorBackoff: time.Millisecond, MaxErrorBackoff: 4 * time.Millisecond}, c, p, slog.New(logs))
			if err != nil {
				t.Fatal(err)
			}
			stop := runRelay(t, r)
			awaitIdle(t, c)
			stop()
			published, pending, _, _ := c.snapshot()
			if len(published) != 10 || pending != 0 {
				t.Fatalf("published %d, pending %d after recovery", len(published), pending)
			}
			if w, i := logs.count(slog.LevelWarn), logs.count(slog.LevelInfo); w != 1 || i != 1 {
				t.Fatalf("logged %d warnings and %d infos for one outage; want 1 and 1", w, i)
			}
		})
	}
}

// A batch the bus accepted in part is progress, not an outage.
func TestSummarize(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		errs []error
		fail bool
	}{
		{"none", nil, false},
		{"all ok", []error{nil, nil}, false},
		{"partial", []error{boom, nil}, false},
		{"all failed", []error{boom, boom}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := summarize(tc.errs)
			if (err != nil) != tc.fail || (tc.fail && (!errors.Is(err, errAllFailed) || !errors.Is(err, boom))) {
				t.Fatalf("summarize = %v; fail want %v", err, tc.fail)
			}
		})
	}
}

func TestBackoffAndJitterBounds(t *testing.T) {
	t.Parallel()
	r, err := New(Config{ErrorBackoff: 100 * time.Millisecond, MaxErrorBackoff: time.Second}, newFakeClaimer(0), &fakePublisher{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		failures int
		base     time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {60, time.Second}} {
		for range 100 {
			if d := r.errorBackoff(tc.failures); d < tc.base*9/10 || d > tc.base*11/10 {
				t.Fatalf("errorBackoff(%d) = %v; want %v ± 10%%", tc.failures, d, tc.base)
			}
		}
	}
	for range 1000 {
		if d := r.pollInterval(); d < 1800*time.Millisecond || d > 2200*time.Millisecond {
			t.Fatalf("pollInterval = %v", d)
		}
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"negative batch", Config{BatchSize: -1}, false},
		{"jitter too large", Config{Jitter: 1}, false},
		{"max below base", Config{ErrorBackoff: time.Second, MaxErrorBackoff: time.Millisecond}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.cfg, newFakeClaimer(0), &fakePublisher{}, nil)
			if (err == nil) != tc.ok {
				t.Fatalf("New = %v; ok want %v", err, tc.ok)
			}
		})
	}
	if _, err := New(Config{}, nil, &fakePublisher{}, nil); err == nil {
		t.Fatal("New accepted a nil claimer")
	}
}

// Drain publishes everything due in batches and returns without waiting;
// a bus refusing a whole batch or a failed claim stops it with the error,
// leaving the rows pending for the next drain.
func TestDrain(t *testing.T) {
	t.Parallel()
	c := newFakeClaimer(2500)
	p := &fakePublisher{}
	r, err := New(Config{BatchSize: 1000}, c, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Drain(context.Background())
	published, pending, limits, waits := c.snapshot()
	if err != nil || res.Batches != 3 || res.Claimed != 2500 || len(published) != 2500 || pending != 0 {
		t.Fatalf("drain: %+v %v; published %d, pending %d", res, err, len(published), pending)
	}
	if len(limits) != 4 || len(waits) != 0 {
		t.Fatalf("claims %v, waits %v: want 3 batches and one empty claim, no waiting", limits, waits)
	}

	down := newFakeClaimer(10)
	r, _ = New(Config{}, down, &fakePublisher{failRounds: 1}, nil)
	if res, err := r.Drain(context.Background()); !errors.Is(err, errAllFailed) || res.Claimed != 10 {
		t.Fatalf("bus down: %+v %v", res, err)
	}
	if _, pending, _, _ := down.snapshot(); pending != 10 {
		t.Fatalf("%d rows pending after a refused batch; want 10", pending)
	}

	broken := newFakeClaimer(10)
	broken.claimErrs = []error{errors.New("database unavailable")}
	r, _ = New(Config{}, broken, &fakePublisher{}, nil)
	if _, err := r.Drain(context.Background()); err == nil || err.Error() != "database unavailable" {
		t.Fatalf("claim error: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, _ = New(Config{}, newFakeClaimer(5), &fakePublisher{}, nil)
	if _, err := r.Drain(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
