package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func newEnvelope(i int) event.Envelope {
	return event.Envelope{
		ID:          newUUID(),
		Type:        event.NotificationRequested,
		Version:     1,
		OccurredAt:  time.Now().UTC().Add(time.Duration(i) * time.Microsecond),
		TenantID:    newUUID(),
		AggregateID: fmt.Sprintf("agg-%d", i),
		Payload:     json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
	}
}

// jsonEqual compares JSON semantically: jsonb normalises spacing and key order.
func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func newOutbox(t *testing.T, db *postgres.DB, cfg postgres.OutboxConfig) *postgres.Outbox {
	t.Helper()
	o, err := postgres.NewOutbox(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o
}

func statusCounts(t *testing.T, db *postgres.DB) map[string]int {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT status, count(*) FROM platform_outbox_events GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		out[s] = n
	}
	return out
}

func TestOutboxAppendJoinsTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	o := newOutbox(t, db, postgres.OutboxConfig{})

	rollback := errors.New("roll back")
	err := db.InTx(ctx, func(ctx context.Context) error {
		if err := o.Append(ctx, newEnvelope(0), newEnvelope(1)); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("InTx = %v", err)
	}
	if got := statusCounts(t, db); len(got) != 0 {
		t.Fatalf("rolled-back append left rows: %v", got)
	}

	want := []event.Envelope{newEnvelope(0), newEnvelope(1), newEnvelope(2)}
	if err := db.InTx(ctx, func(ctx context.Context) error { return o.Append(ctx, want...) }); err != nil {
		t.Fatal(err)
	}
	var got []ports.OutboxRecord
	n, err := o.ProcessBatch(ctx, 10, func(_ context.Context, recs []ports.OutboxRecord) []error {
		got = recs
		return make([]error, len(recs))
	})
	if err != nil || n != 3 {
		t.Fatalf("ProcessBatch = %d, %v; want 3", n, err)
	}
	for i := range want {
		var g event.Envelope
		if err := json.Unmarshal(got[i].Event.Body, &g); err != nil {
			t.Fatalf("record %d body: %v", i, err)
		}
		w := want[i]
		if got[i].Event.ID != w.ID || got[i].Event.Type != w.Type || g.ID != w.ID || g.Type != w.Type || !g.OccurredAt.Equal(w.OccurredAt) || g.TenantID != w.TenantID ||
			g.AggregateID != w.AggregateID || !jsonEqual(g.Payload, w.Payload) || got[i].RetryCount != 0 {
			t.Fatalf("record %d = %+v; want %+v (in occurred_at order)", i, got[i], w)
		}
	}
	if c := statusCounts(t, db); len(c) != 0 {
		t.Fatalf("statuses %v; want none: published rows leave the outbox", c)
	}
}

func TestOutboxAppendRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	o := newOutbox(t, db, postgres.OutboxConfig{})
	dup := newEnvelope(0)
	if err := o.Append(ctx, dup); err != nil {
		t.Fatal(err)
	}
	noType := newEnvelope(0)
	noType.Type = ""
	badID := newEnvelope(0)
	badID.ID = "not-a-uuid"
	for _, tc := range []struct {
		name string
		ev   event.Envelope
		kind fault.Kind
	}{
		{"missing type", noType, fault.KindInvalid},
		{"id not a uuid", badID, fault.KindInvalid},
		{"duplicate id", dup, fault.KindConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := o.Append(ctx, tc.ev); !fault.IsKind(err, tc.kind) {
				t.Fatalf("Append = %v; want kind %v", err, tc.kind)
			}
		})
	}
}

func TestOutboxProcessBatchOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	o := newOutbox(t, db, postgres.OutboxConfig{BaseBackoff: time.Hour, MaxBackoff: time.Hour})
	evs := []event.Envelope{newEnvelope(0), newEnvelope(1), newEnvelope(2), newEnvelope(3)}
	if err := o.Append(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	secret := errors.New("dial nats://relay:hunter2@10.0.0.1:4222: refused")
	n, err := o.ProcessBatch(ctx, 100, func(_ context.Context, recs []ports.OutboxRecord) []error {
		// Publish 0 and 2; fail 1; leave 3 without a result slot.
		return []error{nil, secret, nil}
	})
	if err != nil || n != 4 {
		t.Fatalf("ProcessBatch = %d, %v", n, err)
	}
	type row struct {
		status    string
		retries   int
		lastError string
		delay     time.Duration
	}
	rows := map[string]row{}
	r, err := db.Pool.Query(ctx, `SELECT id::text, status, retry_count, coalesce(last_error, ''),
		extract(epoch FROM next_attempt_at - coalesce(last_attempted_at, now()))::float8 FROM platform_outbox_events`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id string
		var x row
		var secs float64
		if err := r.Scan(&id, &x.status, &x.retries, &x.lastError, &secs); err != nil {
			t.Fatal(err)
		}
		x.delay = time.Duration(secs * float64(time.Second))
		rows[id] = x
	}
	r.Close()
	for _, i := range []int{0, 2} {
		if x, ok := rows[evs[i].ID]; ok {
			t.Errorf("event %d: %+v; want published, out of the outbox", i, x)
		}
	}
	for _, i := range []int{1, 3} {
		x := rows[evs[i].ID]
		if x.status != "pending" || x.retries != 1 || x.lastError == "" {
			t.Errorf("event %d: %+v; want pending retry 1 with an error", i, x)
		}
		// Equal jitter on a 1h base: between 30m and 1h.
		if x.delay < 30*time.Minute-time.Second || x.delay > time.Hour+time.Second {
			t.Errorf("event %d: next attempt in %v; want 30m..1h", i, x.delay)
		}
	}
	if le := rows[evs[1].ID].lastError; strings.Contains(le, "hunter2") || !strings.Contains(le, "refused") {
		t.Errorf("last_error %q leaks the password or lost the reason", le)
	}
	// A failed row comes back as it was: same subject, envelope and
	// occurred_at, only its retry state moved.
	for _, i := range []int{1, 3} {
		var subject string
		var body []byte
		var occurred time.Time
		if err := db.Pool.QueryRow(ctx, `SELECT subject, envelope::text, occurred_at FROM platform_outbox_events WHERE id = $1`,
			evs[i].ID).Scan(&subject, &body, &occurred); err != nil {
			t.Fatal(err)
		}
		var g event.Envelope
		if err := json.Unmarshal(body, &g); err != nil {
			t.Fatal(err)
		}
		if subject != evs[i].Type || g.ID != evs[i].ID || !g.OccurredAt.Equal(evs[i].OccurredAt) ||
			occurred.Sub(evs[i].OccurredAt).Abs() >= time.Microsecond || !jsonEqual(g.Payload, evs[i].Payload) {
			t.Errorf("event %d written back as %s %s %v; want it unchanged", i, subject, body, occurred)
		}
	}
	// Rows backing off are not due: nothing to claim.
	if n, err := o.ProcessBatch(ctx, 100, func(context.Context, []ports.OutboxRecord) []error {
		t.Error("publish called with nothing due")
		return nil
	}); err != nil || n != 0 {
		t.Fatalf("second ProcessBatch = %d, %v; want 0", n, err)
	}
}

func TestOutboxFailsAfterMaxRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	o := newOutbox(t, db, postgres.OutboxConfig{})
	ev := newEnvelope(0)
	if err := o.Append(ctx, ev); err != nil {
		t.Fatal(err)
	}
	fail := func(_ context.Context, recs []ports.OutboxRecord) []error {
		errs := make([]error, len(recs))
		for i := range errs {
			errs[i] = errors.New("bus down")
		}
		return errs
	}
	for attempt := 1; attempt <= postgres.MaxRetries; attempt++ {
		// Make the row due now instead of waiting out its backoff.
		if _, err := db.Pool.Exec(ctx, `UPDATE platform_outbox_events SET next_attempt_at = now() WHERE id = $1`, ev.ID); err != nil {
			t.Fatal(err)
		}
		var seen int
		n, err := o.ProcessBatch(ctx, 10, func(ctx context.Context, recs []ports.OutboxRecord) []error {
			seen = recs[0].RetryCount
			return fail(ctx, recs)
		})
		if err != nil || n != 1 {
			t.Fatalf("attempt %d: ProcessBatch = %d, %v", attempt, n, err)
		}
		if seen != attempt-1 {
			t.Fatalf("attempt %d saw retry_count %d", attempt, seen)
		}
		var status string
		var retries int
		if err := db.Pool.QueryRow(ctx, `SELECT status, retry_count FROM platform_outbox_events WHERE id = $1`, ev.ID).Scan(&status, &retries); err != nil {
			t.Fatal(err)
		}
		want := "pending"
		if attempt == postgres.MaxRetries {
			want = "failed"
		}
		if status != want || retries != attempt {
			t.Fatalf("after attempt %d: %s/%d; want %s/%d", attempt, status, retries, want, attempt)
		}
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE platform_outbox_events SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	if n, err := o.ProcessBatch(ctx, 10, fail); err != nil || n != 0 {
		t.Fatalf("failed row claimed again: %d, %v", n, err)
	}
}

// Two claimers never see the same row while one holds it.
func TestOutboxSkipLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	o := newOutbox(t, db, postgres.OutboxConfig{})
	var evs []event.Envelope
	for i := range 10 {
		evs = append(evs, newEnvelope(i))
	}
	if err := o.Append(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	n1, err := o.ProcessBatch(ctx, 6, func(ctx context.Context, recs []ports.OutboxRecord) []error {
		for _, r := range recs {
			seen[r.Event.ID]++
		}
		// While these 6 are locked, a second claimer gets the other 4.
		n2, err := o.ProcessBatch(ctx, 100, func(_ context.Context, recs []ports.OutboxRecord) []error {
			for _, r := range recs {
				seen[r.Event.ID]++
			}
			return make([]error, len(recs))
		})
		if err != nil || n2 != 4 {
			t.Errorf("inner ProcessBatch = %d, %v; want 4", n2, err)
		}
		return make([]error, len(recs))
	})
	if err != nil || n1 != 6 {
		t.Fatalf("outer ProcessBatch = %d, %v; want 6", n1, err)
	}
	for _, e := range evs {
		if seen[e.ID] != 1 {
			t.Fatalf("event %s handed out %d times", e.ID, seen[e.ID])
		}
	}
}

// The claim hands out each envelope as its producer encoded it (json keeps
// the text) with its trace context from the traceparent column; a row
// written by the previous release (jsonb-normalised envelope, traceparent
// NULL: a rolling upgrade) has its trace context read from the envelope; a
// row written back after a failed publish keeps both.
func TestOutboxClaimForwardsStoredEnvelope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	o := newOutbox(t, db, postgres.OutboxConfig{BaseBackoff: time.Hour, MaxBackoff: time.Hour})
	traced, plain := newEnvelope(0), newEnvelope(1)
	traced.TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if err := o.Append(ctx, traced, plain); err != nil {
		t.Fatal(err)
	}
	enc, err := event.Encode(traced, plain)
	if err != nil {
		t.Fatal(err)
	}
	old := newEnvelope(2)
	old.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	oldBody, _ := json.Marshal(old)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO platform_outbox_events (id, subject, envelope, occurred_at)
		SELECT $1::uuid, $2, $3::jsonb, now()`, old.ID, old.Type, string(oldBody)); err != nil {
		t.Fatal(err)
	}
	want := map[string]event.Encoded{enc[0].ID: enc[0], enc[1].ID: enc[1]}
	claimOnce := func(fail string) map[string]event.Encoded {
		got := map[string]event.Encoded{}
		if _, err := o.ProcessBatch(ctx, 10, func(_ context.Context, recs []ports.OutboxRecord) []error {
			errs := make([]error, len(recs))
			for i, r := range recs {
				got[r.Event.ID] = r.Event
				if r.Event.ID == fail {
					errs[i] = errors.New("refused")
				}
			}
			return errs
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := claimOnce(traced.ID)
	if len(got) != 3 {
		t.Fatalf("claimed %d events; want 3", len(got))
	}
	for id, w := range want {
		if g := got[id]; g.Type != w.Type || string(g.Body) != string(w.Body) || g.TraceParent != w.TraceParent {
			t.Errorf("claimed %+v\nwant     %+v (the bytes Append encoded)", g, w)
		}
	}
	if g := got[old.ID]; g.TraceParent != old.TraceParent || !jsonEqual(g.Body, oldBody) {
		t.Errorf("previous release's row claimed as %+v; want its envelope and traceparent %q", g, old.TraceParent)
	}
	// The failed one is back, due in an hour: make it due and claim it again.
	if _, err := db.Pool.Exec(ctx, `UPDATE platform_outbox_events SET next_attempt_at = now() WHERE id = $1`, traced.ID); err != nil {
		t.Fatal(err)
	}
	got = claimOnce("")
	if g := got[traced.ID]; len(got) != 1 || string(g.Body) != string(enc[0].Body) || g.TraceParent != traced.TraceParent {
		t.Errorf("written back and claimed again as %+v; want %+v", got, enc[0])
	}
}

// A relay that dies mid-batch (here: its publish callback panics) rolls
// the claim back: the rows are pending again, untouched, for the next claimer.
func TestOutboxAbandonedBatchIsReclaimed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	o := newOutbox(t, db, postgres.OutboxConfig{})
	if err := o.Append(ctx, newEnvelope(0), newEnvelope(1)); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic was swallowed")
			}
		}()
		_, _ = o.ProcessBatch(ctx, 10, func(context.Context, []ports.OutboxRecord) []error { panic("relay dies") })
	}()
	var retries int
	n, err := o.ProcessBatch(ctx, 10, func(_ context.Context, recs []ports.OutboxRecord) []error {
		for _, r := range recs {
			retries += r.RetryCount
		}
		return make([]error, len(recs))
	})
	if err != nil || n != 2 || retries != 0 {
		t.Fatalf("reclaim = %d (retries %d), %v; want 2 untouched rows", n, retries, err)
	}
}

func TestOutboxWaitForNew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	o := newOutbox(t, db, postgres.OutboxConfig{})
	drain := func() {
		t.Helper()
		if _, err := o.ProcessBatch(ctx, 100, func(_ context.Context, recs []ports.OutboxRecord) []error {
			return make([]error, len(recs))
		}); err != nil {
			t.Fatal(err)
		}
	}
	// waitWakes runs trigger after a claim and expects WaitForNew to
	// return well before its long timeout, whichever of the notification
	// and the call comes first.
	waitWakes := func(what string, trigger func()) {
		t.Helper()
		drain()
		trigger()
		start := time.Now()
		if err := o.WaitForNew(ctx, time.Minute); err != nil {
			t.Fatalf("%s: WaitForNew = %v", what, err)
		}
		if el := time.Since(start); el > 30*time.Second {
			t.Fatalf("%s: WaitForNew took %v", what, el)
		}
	}
	listeners := func() int {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database()`, postgres.ListenerApplicationName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The first call starts the listener and returns once it listens.
	if err := o.WaitForNew(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := listeners(); n != 1 {
		t.Fatalf("%d listener connections; want 1", n)
	}
	// Nothing new: it waits out the timeout.
	drain()
	start := time.Now()
	if err := o.WaitForNew(ctx, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("WaitForNew returned after %v with nothing new", el)
	}

	waitWakes("insert", func() {
		if err := o.Append(ctx, newEnvelope(0)); err != nil {
			t.Fatal(err)
		}
	})
	// Kill the listening backend: the listener reconnects and wakes waiters.
	waitWakes("reconnect", func() {
		if _, err := db.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database()`, postgres.ListenerApplicationName); err != nil {
			t.Fatal(err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for listeners() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("listener did not reconnect")
		}
		drain()
		_ = o.WaitForNew(ctx, 50*time.Millisecond) // poll with a deadline
	}
	// Notifications flow on the new connection.
	waitWakes("insert after reconnect", func() {
		if err := o.Append(ctx, newEnvelope(1)); err != nil {
			t.Fatal(err)
		}
	})

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	drain()
	if err := o.WaitForNew(cctx, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
