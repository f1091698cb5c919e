package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/ports"
)

// BusRestarter is implemented by a Subscriber under test that can restart
// its broker (an embedded NATS server, say). The reconnect case then
// restarts the broker between the two consumers, proving that the
// durable position and stored events survive it.
type BusRestarter interface {
	RestartBroker(tb testing.TB)
}

// The suite publishes on one subject of the platform's topology, so every
// bus under test must have [event.Streams] in place.
const (
	busSubject = event.NotificationRequested
	busStream  = "NOTIFICATION"
	busDurable = "notification-worker"
	// busWait bounds each wait for a delivery; generous for a broker
	// restart, never reached when the bus works.
	busWait = 30 * time.Second
)

// RunBusSuite runs the [ports.Publisher] / [ports.Subscriber] contract.
// newBus returns a fresh, empty bus per case (cases run in parallel).
func RunBusSuite(t *testing.T, newBus func(t *testing.T) (ports.Publisher, ports.Subscriber)) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		pub, sub := newBus(t)
		want := []event.Envelope{busEvent(1), busEvent(2), busEvent(3)}
		busPublish(t, pub, want...)
		c := busStartConsumer(t, sub)
		for i, w := range want {
			m := c.next(t)
			busAssertEqual(t, m.Envelope, w)
			if err := m.Ack(); err != nil {
				t.Fatalf("ack %d: %v", i, err)
			}
		}
	})

	t.Run("DuplicateIDDeliveredOnce", func(t *testing.T) {
		t.Parallel()
		pub, sub := newBus(t)
		dup := busEvent(1)
		busPublish(t, pub, dup, dup) // within one batch
		busPublish(t, pub, dup)      // and in a later one
		sentinel := busEvent(2)
		busPublish(t, pub, sentinel)
		c := busStartConsumer(t, sub)
		seen := 0
		for {
			m := c.next(t)
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
			if m.Envelope.ID == sentinel.ID {
				break
			}
			if m.Envelope.ID != dup.ID {
				t.Fatalf("unexpected event %s", m.Envelope.ID)
			}
			seen++
		}
		// Delivery follows publish order, so a stored duplicate would have
		// arrived before the sentinel.
		if seen != 1 {
			t.Fatalf("duplicate id delivered %d times; want 1", seen)
		}
	})

	t.Run("NakRedelivers", func(t *testing.T) {
		t.Parallel()
		pub, sub := newBus(t)
		ev := busEvent(1)
		busPublish(t, pub, ev)
		c := busStartConsumer(t, sub)
		m := c.next(t)
		if m.Envelope.ID != ev.ID {
			t.Fatalf("got %s; want %s", m.Envelope.ID, ev.ID)
		}
		if err := m.Nak(0); err != nil {
			t.Fatalf("nak: %v", err)
		}
		m = c.next(t)
		if m.Envelope.ID != ev.ID {
			t.Fatalf("after nak got %s; want %s again", m.Envelope.ID, ev.ID)
		}
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		sentinel := busEvent(2)
		busPublish(t, pub, sentinel)
		if m := c.next(t); m.Envelope.ID != sentinel.ID {
			t.Fatalf("acked event %s delivered again", m.Envelope.ID)
		} else if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ResumesAfterReconnect", func(t *testing.T) {
		t.Parallel()
		pub, sub := newBus(t)
		first := []event.Envelope{busEvent(1), busEvent(2), busEvent(3)}
		busPublish(t, pub, first...)
		c := busStartConsumer(t, sub)
		for _, w := range first {
			m := c.next(t)
			busAssertEqual(t, m.Envelope, w)
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		c.stop(t)

		second := []event.Envelope{busEvent(4), busEvent(5), busEvent(6)}
		busPublish(t, pub, second...)
		if r, ok := sub.(BusRestarter); ok {
			r.RestartBroker(t)
		}
		c = busStartConsumer(t, sub)
		for _, w := range second {
			m := c.next(t)
			busAssertEqual(t, m.Envelope, w) // none of the acked first three
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		third := busEvent(7)
		busPublish(t, pub, third)
		busAssertEqual(t, c.next(t).Envelope, third)
	})

}

func busEvent(n int) event.Envelope {
	return event.Envelope{
		ID:            uuid.NewString(),
		Type:          busSubject,
		Version:       1,
		OccurredAt:    time.Now().UTC().Truncate(time.Microsecond),
		TenantID:      uuid.NewString(),
		AggregateType: "notification",
		AggregateID:   fmt.Sprintf("n-%d", n),
		CorrelationID: uuid.NewString(),
		Payload:       json.RawMessage(fmt.Sprintf(`{"n":%d,"to":"user@example.com"}`, n)),
	}
}

func busPublish(t *testing.T, pub ports.Publisher, evs ...event.Envelope) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), busWait)
	defer cancel()
	enc, err := event.Encode(evs...)
	if err != nil {
		t.Fatal(err)
	}
	errs := pub.PublishBatch(ctx, enc)
	if len(errs) != len(evs) {
		t.Fatalf("PublishBatch returned %d error slots for %d events", len(errs), len(evs))
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("publish event %d: %v", i, err)
		}
	}
}

func busAssertEqual(t *testing.T, got, want event.Envelope) {
	t.Helper()
	var gp, wp any
	if err := json.Unmarshal(got.Payload, &gp); err != nil {
		t.Fatalf("payload of %s: %v", got.ID, err)
	}
	_ = json.Unmarshal(want.Payload, &wp)
	g, w := got, want
	g.Payload, w.Payload = nil, nil
	if !g.OccurredAt.Equal(w.OccurredAt) {
		t.Fatalf("event %s occurred_at %v; want %v", got.ID, got.OccurredAt, want.OccurredAt)
	}
	g.OccurredAt, w.OccurredAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) || !reflect.DeepEqual(gp, wp) {
		t.Fatalf("got event\n%+v\nwant\n%+v", got, want)
	}
}

type busConsumer struct {
	msgs   chan ports.Message
	cancel context.CancelFunc
	done   chan error
}

func busStartConsumer(t *testing.T, sub ports.Subscriber) *busConsumer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &busConsumer{msgs: make(chan ports.Message, 1024), cancel: cancel, done: make(chan error, 1)}
	go func() {
		c.done <- sub.Consume(ctx, busStream, busDurable, func(_ context.Context, m ports.Message) {
			select {
			case c.msgs <- m:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// next waits for the next delivery.
func (c *busConsumer) next(t *testing.T) ports.Message {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case err := <-c.done:
		t.Fatalf("Consume returned early: %v", err)
	case <-time.After(busWait):
		t.Fatalf("no delivery within %v", busWait)
	}
	return ports.Message{}
}

// stop cancels the consumer and waits for Consume to return (idempotent).
func (c *busConsumer) stop(t *testing.T) {
	t.Helper()
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("Consume returned %v on cancel; want nil", err)
		}
	case <-time.After(busWait):
		t.Errorf("Consume did not return within %v of cancel", busWait)
	}
}
