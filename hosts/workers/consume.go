package workers

import (
	"context"
	"log/slog"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// consumeForever keeps a durable consumer running until ctx ends: Consume
// returns early when the bus drops the consumer, and is then resumed with a
// doubling pause (1s up to 30s), logged once per outage. Every worker's
// consumers run through it.
func consumeForever(ctx context.Context, sub ports.Subscriber, stream, durable string, handle func(context.Context, ports.Message), log *slog.Logger) {
	pause := time.Second
	down := false
	for {
		began := time.Now()
		err := sub.Consume(ctx, stream, durable, handle)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			// It ran healthily for a while: a new outage.
			pause, down = time.Second, false
		}
		if !down {
			log.Error("consumer stopped; resuming", "err", err)
			down = true
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(pause*2, 30*time.Second)
	}
}

// settle is every consumer's ack/nak policy for a handled message: handled
// (err nil) is acked; invalid (a malformed event, or one the use case
// refuses) is logged and acked, since redelivery cannot fix it; anything
// else (a dependency down) is nakked for redelivery after nakDelay, handling
// being idempotent. An ack or nak that fails is logged: the bus redelivers
// after its ack wait, which idempotent handling absorbs.
func settle(m ports.Message, err error, nakDelay time.Duration, log *slog.Logger) {
	log = log.With("event_id", m.Envelope.ID, "type", m.Envelope.Type)
	switch {
	case err == nil:
	case fault.IsKind(err, fault.KindInvalid):
		log.Error("dropping an event that cannot be handled", "err", err)
	default:
		log.Warn("handling an event failed; redelivering", "err", err, "delay", nakDelay)
		if nerr := m.Nak(nakDelay); nerr != nil {
			log.Warn("nak failed; the bus redelivers after the ack wait", "err", nerr)
		}
		return
	}
	if aerr := m.Ack(); aerr != nil {
		log.Warn("ack failed; the event will be redelivered and handled again (idempotent)", "err", aerr)
	}
}
