package fakes

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Bus is an in-memory event bus with JetStream's semantics that matter to
// callers: events land in the stream their subject belongs to, an event id
// seen before is dropped (like Nats-Msg-Id dedupe, but with an unbounded
// window), durable consumers keep their position across Consume calls, a
// nak redelivers, and a message neither acked nor nakked when its Consume
// ends is redelivered to the next one.
type Bus struct {
	mu      sync.Mutex
	streams map[string]*fakeStream
	changed chan struct{} // closed and replaced whenever a consumer may have work
}

type fakeStream struct {
	def       event.Stream
	seen      map[string]bool
	msgs      []event.Envelope
	consumers map[string]*fakeConsumer
}

type fakeConsumer struct {
	filter string
	next   int // index of the next never-delivered message
	// redeliver holds indexes due again (nakked or abandoned), with the
	// time each becomes due.
	redeliver []due
	inflight  map[int]bool
}

type due struct {
	idx int
	at  time.Time
}

var (
	_ ports.Publisher  = (*Bus)(nil)
	_ ports.Subscriber = (*Bus)(nil)
)

// NewBus returns a bus with the given topology, [event.Streams] when none
// is given.
func NewBus(streams ...event.Stream) *Bus {
	if len(streams) == 0 {
		streams = event.Streams
	}
	b := &Bus{streams: map[string]*fakeStream{}, changed: make(chan struct{})}
	for _, s := range streams {
		fs := &fakeStream{def: s, seen: map[string]bool{}, consumers: map[string]*fakeConsumer{}}
		for _, c := range s.Consumers {
			fs.consumers[c.Durable] = &fakeConsumer{filter: c.FilterSubject, inflight: map[int]bool{}}
		}
		b.streams[s.Name] = fs
	}
	return b
}

// PublishBatch implements [ports.Publisher].
func (b *Bus) PublishBatch(ctx context.Context, events []event.Encoded) []error {
	errs := make([]error, len(events))
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, enc := range events {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if enc.ID == "" || enc.Type == "" || len(enc.Body) == 0 {
			errs[i] = fault.Invalid("event", "event id, type and body are required")
			continue
		}
		var e event.Envelope
		if err := json.Unmarshal(enc.Body, &e); err != nil {
			errs[i] = fault.Invalid("event", "event body is not an envelope").Wrap(err)
			continue
		}
		s := b.streamFor(enc.Type)
		if s == nil {
			errs[i] = fault.Unavailable("no stream for subject "+enc.Type, nil)
			continue
		}
		if s.seen[enc.ID] {
			continue // duplicate: acknowledged, not stored
		}
		s.seen[enc.ID] = true
		s.msgs = append(s.msgs, e)
	}
	b.notify()
	return errs
}

func (b *Bus) streamFor(subject string) *fakeStream {
	for _, s := range b.streams {
		for _, p := range s.def.Subjects {
			if subjectMatches(p, subject) {
				return s
			}
		}
	}
	return nil
}

// notify wakes every waiting consumer; b.mu must be held.
func (b *Bus) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Published returns every stored event of a stream, in order.
func (b *Bus) Published(stream string) []event.Envelope {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.streams[stream]; s != nil {
		return append([]event.Envelope(nil), s.msgs...)
	}
	return nil
}

// Consume implements [ports.Subscriber]. Handlers run one at a time, in
// stream order except for redeliveries; it returns nil when ctx ends.
func (b *Bus) Consume(ctx context.Context, stream, durable string, handle func(ctx context.Context, m ports.Message)) error {
	b.mu.Lock()
	s := b.streams[stream]
	var c *fakeConsumer
	if s != nil {
		c = s.consumers[durable]
	}
	b.mu.Unlock()
	if c == nil {
		return fault.NotFound("consumer", stream+"/"+durable)
	}
	mine := map[int]bool{} // delivered by this call and not yet settled
	defer func() {
		// Like a lost connection: unsettled messages go back for the next
		// consumer.
		b.mu.Lock()
		now := time.Now()
		for idx := range mine {
			if c.inflight[idx] {
				delete(c.inflight, idx)
				c.redeliver = append(c.redeliver, due{idx, now})
			}
		}
		b.notify()
		b.mu.Unlock()
	}()
	for {
		b.mu.Lock()
		idx, wait, ok := b.pick(s, c)
		changed := b.changed
		if ok {
			c.inflight[idx] = true
			mine[idx] = true
		}
		env := event.Envelope{}
		if ok {
			env = s.msgs[idx]
		}
		b.mu.Unlock()
		if !ok {
			var timer *time.Timer
			var fire <-chan time.Time
			if wait > 0 {
				timer = time.NewTimer(wait)
				fire = timer.C
			}
			select {
			case <-ctx.Done():
			case <-changed:
			case <-fire:
			}
			if timer != nil {
				timer.Stop()
			}
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		settle := func(redeliverAfter time.Duration, nak bool) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			if !c.inflight[idx] {
				return fault.Conflict(fault.CodeConflict, "message already settled")
			}
			delete(c.inflight, idx)
			delete(mine, idx)
			if nak {
				c.redeliver = append(c.redeliver, due{idx, time.Now().Add(redeliverAfter)})
				b.notify()
			}
			return nil
		}
		handle(ctx, ports.Message{
			Envelope: env,
			Ack:      func() error { return settle(0, false) },
			Nak:      func(d time.Duration) error { return settle(d, true) },
		})
		if ctx.Err() != nil {
			return nil
		}
	}
}

// pick chooses the next message for c: a due redelivery first, then the
// next new message matching the filter. When none is ready it returns how
// long until the earliest pending redelivery (0: none). b.mu must be held.
func (b *Bus) pick(s *fakeStream, c *fakeConsumer) (idx int, wait time.Duration, ok bool) {
	now := time.Now()
	for i, d := range c.redeliver {
		if !d.at.After(now) {
			c.redeliver = append(c.redeliver[:i], c.redeliver[i+1:]...)
			return d.idx, 0, true
		}
		if w := d.at.Sub(now); wait == 0 || w < wait {
			wait = w
		}
	}
	for c.next < len(s.msgs) {
		i := c.next
		c.next++
		if c.filter == "" || subjectMatches(c.filter, s.msgs[i].Type) {
			return i, 0, true
		}
	}
	return 0, wait, false
}

// subjectMatches reports whether a NATS subject matches a pattern with the
// * (one token) and > (one or more trailing tokens) wildcards.
func subjectMatches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}

// Encode returns evs in wire form for [ports.Publisher.PublishBatch],
// failing t on an event that cannot be encoded.
func Encode(t testing.TB, evs ...event.Envelope) []event.Encoded {
	t.Helper()
	enc, err := event.Encode(evs...)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}
