package workers

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

// TestSettle pins the one ack/nak policy the workers' consumers share.
func TestSettle(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		err      error
		ack, nak int
	}{
		{"handled", nil, 1, 0},
		{"malformed: redelivery cannot help", fault.Invalid("payload", "bad"), 1, 0},
		{"a dependency down", fault.Unavailable("db down", nil), 0, 1},
		{"a foreign error", errors.New("boom"), 0, 1},
	} {
		var acks, naks int
		var delay time.Duration
		m := ports.Message{Envelope: event.Envelope{ID: "e1", Type: "allocations.requested"},
			Ack: func() error { acks++; return nil },
			Nak: func(d time.Duration) error { naks++; delay = d; return nil }}
		settle(m, c.err, 7*time.Second, slog.New(slog.DiscardHandler))
		if acks != c.ack || naks != c.nak || (c.nak == 1 && delay != 7*time.Second) {
			t.Errorf("%s: %d acks, %d naks (delay %s); want %d, %d", c.name, acks, naks, delay, c.ack, c.nak)
		}
	}
}

// flakySubscriber returns from Consume at once, with an error, n times,
// then blocks until ctx ends.
type flakySubscriber struct{ calls, failures atomic.Int32 }

func (f *flakySubscriber) Consume(ctx context.Context, _, _ string, _ func(context.Context, ports.Message)) error {
	if f.calls.Add(1) <= f.failures.Load() {
		return errors.New("consumer deleted")
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestConsumeForeverResumes: a consumer the bus drops is resumed until the
// context ends, and consumeForever returns then.
func TestConsumeForeverResumes(t *testing.T) {
	t.Parallel()
	sub := &flakySubscriber{}
	sub.failures.Store(1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		consumeForever(ctx, sub, "s", "d", func(context.Context, ports.Message) {}, slog.New(slog.DiscardHandler))
	}()
	poll.Until(t, 10*time.Second, "the dropped consumer to be resumed", func() bool { return sub.calls.Load() >= 2 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("consumeForever did not return after its context ended")
	}
}
