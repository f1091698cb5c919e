package nats_test

// Integration tests of the outbox relay on real Postgres and an embedded
// JetStream server: the relay (core/event/relay) between the postgres
// outbox and this package's bus.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	natsbus "github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/event/relay"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// The relay child: the chaos test re-executes this test binary with these
// variables set to run a relay in a separate process it can SIGKILL.
const (
	childEnvDB   = "GPUAAS_TEST_RELAY_CHILD_DB"
	childEnvNATS = "GPUAAS_TEST_RELAY_CHILD_NATS"
	childHolding = "HOLDING"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnvDB) != "" {
		os.Exit(runRelayChild())
	}
	os.Exit(m.Run())
}

// runRelayChild claims one batch, publishes half of it, reports on stdout
// and then hangs holding the batch's row locks until it is killed.
func runRelayChild() int {
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: os.Getenv(childEnvDB)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open db:", err)
		return 2
	}
	bus, err := natsbus.Connect(ctx, natsbus.Config{URL: os.Getenv(childEnvNATS)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: connect nats:", err)
		return 2
	}
	ob, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	pub := publisherFunc(func(ctx context.Context, evs []event.Encoded) []error {
		half := len(evs) / 2
		for _, err := range bus.PublishBatch(ctx, evs[:half]) {
			if err != nil {
				fmt.Fprintln(os.Stderr, "child: publish:", err)
				os.Exit(2)
			}
		}
		fmt.Printf("%s %d of %d\n", childHolding, half, len(evs))
		select {} // hold the claimed rows until SIGKILL
	})
	r, err := relay.New(relay.Config{BatchSize: 100, PollInterval: 100 * time.Millisecond}, ob, pub, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	_ = r.Run(ctx)
	return 0
}

type publisherFunc func(ctx context.Context, evs []event.Encoded) []error

func (f publisherFunc) PublishBatch(ctx context.Context, evs []event.Encoded) []error {
	return f(ctx, evs)
}

// relayEnv is a private database and JetStream server.
type relayEnv struct {
	dbURL string
	db    *postgres.DB
	srv   *natsbus.EmbeddedServer
}

func newRelayEnv(tb testing.TB) *relayEnv {
	tb.Helper()
	url := services.FreshDatabaseURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Config{URL: url, Migrate: true, MaxConns: 40})
	if err != nil {
		tb.Fatalf("open test database: %v", err)
	}
	tb.Cleanup(db.Close)
	return &relayEnv{dbURL: url, db: db, srv: startEmbedded(tb)}
}

func (e *relayEnv) outbox(tb testing.TB, cfg postgres.OutboxConfig) *postgres.Outbox {
	tb.Helper()
	o, err := postgres.NewOutbox(e.db, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(o.Close)
	return o
}

// startRelay runs a relay until the test ends.
func startRelay(tb testing.TB, cfg relay.Config, claimer ports.OutboxClaimer, pub ports.Publisher) {
	tb.Helper()
	r, err := relay.New(cfg, claimer, pub, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	tb.Cleanup(func() { cancel(); <-done })
}

func testEvents(n int) []event.Envelope {
	evs := make([]event.Envelope, n)
	now := time.Now().UTC()
	for i := range evs {
		evs[i] = event.Envelope{
			ID:            uuid.NewString(),
			Type:          event.NotificationRequested,
			Version:       1,
			OccurredAt:    now,
			TenantID:      "6d1f3c8e-2b7a-4f0e-9c55-0a9d8e7f6b21",
			AggregateType: "notification",
			AggregateID:   fmt.Sprintf("n-%d", i),
			Payload:       json.RawMessage(fmt.Sprintf(`{"template":"low_balance","n":%d}`, i)),
		}
	}
	return evs
}

// receiver consumes NOTIFICATION/notification-worker, counting deliveries
// per event id before dedupe.
type receiver struct {
	mu     sync.Mutex
	counts map[string]int
	unique atomic.Int64
	onNew  func(id string) // optional, called for each first delivery
}

func startReceiver(tb testing.TB, sub ports.Subscriber) *receiver {
	tb.Helper()
	r := &receiver{counts: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sub.Consume(ctx, "NOTIFICATION", "notification-worker", func(_ context.Context, m ports.Message) {
			r.mu.Lock()
			r.counts[m.Envelope.ID]++
			first := r.counts[m.Envelope.ID] == 1
			onNew := r.onNew
			r.mu.Unlock()
			if first {
				r.unique.Add(1)
				if onNew != nil {
					onNew(m.Envelope.ID)
				}
			}
			_ = m.Ack() // a lost ack means a redelivery, which the dedupe absorbs
		})
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Consume: %v", err)
		}
	})
	return r
}

func (r *receiver) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.counts))
	for k, v := range r.counts {
		out[k] = v
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, ctx context.Context, what string, cond func() bool) {
	tb.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			tb.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func outboxCounts(tb testing.TB, db *postgres.DB) map[string]int {
	tb.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT status, count(*) FROM platform_outbox_events GROUP BY status`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			tb.Fatal(err)
		}
		out[s] = n
	}
	return out
}

// outboxLeft is how many rows are still in the outbox (pending or
// failed): a published row leaves it.
func outboxLeft(tb testing.TB, db *postgres.DB) int {
	tb.Helper()
	n := 0
	for _, c := range outboxCounts(tb, db) {
		n += c
	}
	return n
}

// countingPublisher counts publish attempts per event id and can fail on
// demand.
type countingPublisher struct {
	next ports.Publisher
	mu   sync.Mutex
	seen map[string]int
	fail atomic.Bool
}

func newCountingPublisher(next ports.Publisher) *countingPublisher {
	return &countingPublisher{next: next, seen: map[string]int{}}
}

func (p *countingPublisher) PublishBatch(ctx context.Context, evs []event.Encoded) []error {
	p.mu.Lock()
	for _, e := range evs {
		p.seen[e.ID]++
	}
	p.mu.Unlock()
	if p.fail.Load() {
		errs := make([]error, len(evs))
		for i := range errs {
			errs[i] = errors.New("injected: bus refused")
		}
		return errs
	}
	return p.next.PublishBatch(ctx, evs)
}

func (p *countingPublisher) counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.seen))
	for k, v := range p.seen {
		out[k] = v
	}
	return out
}

func TestRelayPublishesPendingRows(t *testing.T) {
	t.Parallel()
	env := newRelayEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bus := connect(t, testConfig(env.srv.ClientURL()))
	ob := env.outbox(t, postgres.OutboxConfig{})
	evs := testEvents(250)
	if err := env.db.InTx(ctx, func(ctx context.Context) error { return ob.Append(ctx, evs...) }); err != nil {
		t.Fatal(err)
	}
	rcv := startReceiver(t, bus)
	startRelay(t, relay.Config{}, ob, bus)
	waitFor(t, ctx, "all rows published and received", func() bool {
		return rcv.unique.Load() == int64(len(evs)) && outboxLeft(t, env.db) == 0
	})
	got := rcv.snapshot()
	for _, e := range evs {
		if got[e.ID] != 1 {
			t.Fatalf("event %s received %d times; want 1", e.ID, got[e.ID])
		}
	}
}

func TestRelayRetriesAfterPublishError(t *testing.T) {
	t.Parallel()
	env := newRelayEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bus := connect(t, testConfig(env.srv.ClientURL()))
	ob := env.outbox(t, postgres.OutboxConfig{BaseBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	pub := newCountingPublisher(bus)
	pub.fail.Store(true)
	evs := testEvents(20)
	if err := ob.Append(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	rcv := startReceiver(t, bus)
	startRelay(t, relay.Config{ErrorBackoff: 10 * time.Millisecond, MaxErrorBackoff: 20 * time.Millisecond}, ob, pub)

	minRetries := func() (n int, lastError string) {
		if err := env.db.Pool.QueryRow(ctx, `SELECT min(retry_count), min(coalesce(last_error, '')) FROM platform_outbox_events`).Scan(&n, &lastError); err != nil {
			t.Fatal(err)
		}
		return n, lastError
	}
	waitFor(t, ctx, "every row to have failed once", func() bool { n, _ := minRetries(); return n >= 1 })
	if _, le := minRetries(); !strings.Contains(le, "injected: bus refused") {
		t.Fatalf("last_error = %q", le)
	}
	if c := outboxCounts(t, env.db); c["pending"] != len(evs) {
		t.Fatalf("statuses %v; want all pending while the bus refuses", c)
	}
	pub.fail.Store(false)
	waitFor(t, ctx, "rows published after the bus recovers", func() bool {
		return outboxLeft(t, env.db) == 0 && rcv.unique.Load() == int64(len(evs))
	})
	// Every row was refused at least once, then published from the outbox.
	for _, e := range evs {
		if n := pub.counts()[e.ID]; n < 2 {
			t.Fatalf("event %s attempted %d times; want a refusal, then the publish", e.ID, n)
		}
	}
}

func TestRelayMarksFailedAfterMaxRetries(t *testing.T) {
	t.Parallel()
	env := newRelayEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bus := connect(t, testConfig(env.srv.ClientURL()))
	// A 1ms backoff makes the ten attempts come due at once, no sleeping.
	ob := env.outbox(t, postgres.OutboxConfig{BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	pub := newCountingPublisher(bus)
	pub.fail.Store(true)
	evs := testEvents(5)
	if err := ob.Append(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	startRelay(t, relay.Config{ErrorBackoff: time.Millisecond, MaxErrorBackoff: 2 * time.Millisecond, PollInterval: 10 * time.Millisecond}, ob, pub)
	waitFor(t, ctx, "rows to fail", func() bool { return outboxCounts(t, env.db)["failed"] == len(evs) })
	var minR, maxR int
	if err := env.db.Pool.QueryRow(ctx, `SELECT min(retry_count), max(retry_count) FROM platform_outbox_events`).Scan(&minR, &maxR); err != nil {
		t.Fatal(err)
	}
	if minR != postgres.MaxRetries || maxR != postgres.MaxRetries {
		t.Fatalf("retry counts %d..%d; want %d", minR, maxR, postgres.MaxRetries)
	}
	// A failed row is never attempted again.
	attempts := pub.counts()
	waitForIdleRound(t, ctx, ob)
	for id, n := range pub.counts() {
		if n != postgres.MaxRetries || attempts[id] != n {
			t.Fatalf("event %s attempted %d times (then %d); want %d", id, attempts[id], n, postgres.MaxRetries)
		}
	}
}

// waitForIdleRound claims once itself: with nothing due it finds nothing,
// which also proves failed rows are not claimable.
func waitForIdleRound(tb testing.TB, ctx context.Context, ob *postgres.Outbox) {
	tb.Helper()
	n, err := ob.ProcessBatch(ctx, 100, func(_ context.Context, recs []ports.OutboxRecord) []error {
		tb.Errorf("claimed %d rows that should be failed", len(recs))
		return make([]error, len(recs))
	})
	if err != nil || n != 0 {
		tb.Fatalf("ProcessBatch = %d, %v", n, err)
	}
}

// Several relays on one outbox: SKIP LOCKED hands every row to exactly one.
// With NATS up there is no reason to publish anything twice, so each id is
// published once and received once, before any dedupe.
func TestConcurrentRelaysNeverDoublePublish(t *testing.T) {
	t.Parallel()
	env := newRelayEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const total = 3000
	rcvBus := connect(t, testConfig(env.srv.ClientURL()))
	rcv := startReceiver(t, rcvBus)
	var pubs []*countingPublisher
	for range 3 {
		bus := connect(t, testConfig(env.srv.ClientURL()))
		pub := newCountingPublisher(bus)
		pubs = append(pubs, pub)
		startRelay(t, relay.Config{BatchSize: 50}, env.outbox(t, postgres.OutboxConfig{}), pub)
	}
	// Write while the relays run: 30 transactions of 100 events.
	evs := testEvents(total)
	writer := env.outbox(t, postgres.OutboxConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Add(1)
		go func(chunk []event.Envelope) {
			defer wg.Done()
			errs <- env.db.InTx(ctx, func(ctx context.Context) error { return writer.Append(ctx, chunk...) })
		}(evs[i*100 : (i+1)*100])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "all events received", func() bool {
		return rcv.unique.Load() == total && outboxLeft(t, env.db) == 0
	})
	published := map[string]int{}
	relaysUsed := 0
	for _, p := range pubs {
		c := p.counts()
		if len(c) > 0 {
			relaysUsed++
		}
		for id, n := range c {
			published[id] += n
		}
	}
	got := rcv.snapshot()
	for _, e := range evs {
		if published[e.ID] != 1 || got[e.ID] != 1 {
			t.Fatalf("event %s published %d times, received %d; want 1 and 1", e.ID, published[e.ID], got[e.ID])
		}
	}
	// The claim must have been contended: with one relay doing all the
	// work this test would prove nothing about concurrent relays.
	if relaysUsed < 2 {
		t.Fatalf("only %d of 3 relays published; the test did not exercise concurrent claims", relaysUsed)
	}
	t.Logf("%d of 3 relays published", relaysUsed)
}

// TestOutboxChaos is the project's "done when" for the outbox: 10,000
// events from 100 concurrent transactions reach a consumer exactly once
// after dedupe by id, while the NATS server restarts twice and one relay
// process is SIGKILLed holding a claimed, half-published batch.
func TestOutboxChaos(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("chaos test skipped in -short mode")
	}
	env := newRelayEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const (
		writers  = 100
		perTx    = 100
		total    = writers * perTx
		restart1 = 2000
		restart2 = 6000
	)
	natsCfg := testConfig(env.srv.ClientURL())
	natsCfg.PublishTimeout = 2 * time.Second
	rcv := startReceiver(t, connect(t, natsCfg))

	// 100 writers, each one transaction of 100 events.
	evs := testEvents(total)
	writer := env.outbox(t, postgres.OutboxConfig{})
	writeErrs := make(chan error, writers)
	var written atomic.Int64 // committed rows
	for i := range writers {
		go func(chunk []event.Envelope) {
			err := env.db.InTx(ctx, func(ctx context.Context) error { return writer.Append(ctx, chunk...) })
			if err == nil {
				written.Add(int64(len(chunk)))
			}
			writeErrs <- err
		}(evs[i*perTx : (i+1)*perTx])
	}

	// The victim: a relay in its own process that stops mid-batch.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.CommandContext(ctx, exe, "-test.run=^$")
	child.Env = append(os.Environ(), childEnvDB+"="+env.dbURL, childEnvNATS+"="+env.srv.ClientURL())
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if !strings.HasPrefix(s, childHolding) {
			_ = child.Process.Kill()
			t.Fatalf("relay child said %q", s)
		}
		t.Logf("relay child published and holds: %s", strings.TrimSpace(s))
	case <-ctx.Done():
		_ = child.Process.Kill()
		t.Fatal("relay child never claimed a batch")
	}
	var held int
	if err := env.db.Pool.QueryRow(ctx, `SELECT count(*) FROM platform_outbox_events WHERE status = 'pending'`).Scan(&held); err != nil {
		t.Fatal(err)
	}

	// Two relays in this process run alongside while the child holds its
	// rows, then the child is killed with SIGKILL. Batches of 100 keep them
	// publishing long enough for the restarts to land mid-flight.
	for range 2 {
		bus := connect(t, natsCfg)
		startRelay(t, relay.Config{BatchSize: 100, PollInterval: 500 * time.Millisecond, ErrorBackoff: 50 * time.Millisecond, MaxErrorBackoff: 500 * time.Millisecond},
			env.outbox(t, postgres.OutboxConfig{BaseBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}), bus)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	// A published row has left the outbox: restart when the relays have
	// published this many of the committed rows, so the restarts land
	// while they are still publishing.
	published := func() int { return int(written.Load()) - outboxLeft(t, env.db) }
	for i, at := range []int{restart1, restart2} {
		waitFor(t, ctx, fmt.Sprintf("%d rows published before restart %d", at, i+1), func() bool { return published() >= at })
		c := outboxCounts(t, env.db)
		if err := env.srv.Restart(); err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
		t.Logf("NATS restarted with outbox at %v, %d received", c, rcv.unique.Load())
	}

	for range writers {
		if err := <-writeErrs; err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	waitFor(t, ctx, "every event received and every row published", func() bool {
		return rcv.unique.Load() == total && outboxLeft(t, env.db) == 0
	})

	got := rcv.snapshot()
	dups := 0
	for _, e := range evs {
		n := got[e.ID]
		if n == 0 {
			t.Fatalf("event %s never received", e.ID)
		}
		dups += n - 1
	}
	if len(got) != total {
		t.Fatalf("received %d distinct ids; want %d (unknown ids arrived)", len(got), total)
	}
	if c := outboxCounts(t, env.db); len(c) != 0 {
		t.Fatalf("outbox ends %v; want empty: all %d published", c, total)
	}
	// Redeliveries (acks lost in a restart) are allowed: at least once.
	// After dedupe by id every event was handled exactly once.
	t.Logf("all %d events delivered; %d redeliveries absorbed by dedupe; child held a batch with %d rows pending", total, dups, held)
}
