package nats

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceHeader is the W3C trace context header the bus carries: the relay
// puts the event's stored trace context there, consumers continue from it
// (doc/observability.md).
const traceHeader = "traceparent"

// tracecontext reads and writes W3C trace context; the bus needs nothing
// else (no baggage crosses it).
var tracecontext = propagation.TraceContext{}

// headerCarrier is a propagation.TextMapCarrier over NATS headers, keeping
// the keys as written (NATS headers are case-sensitive; net/http's
// canonical form would turn traceparent into Traceparent).
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[key] = []string{value} }

func (c headerCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// mapCarrier carries one traceparent value.
type mapCarrier string

func (c mapCarrier) Get(key string) string {
	if key == traceHeader {
		return string(c)
	}
	return ""
}
func (mapCarrier) Set(string, string) {}
func (mapCarrier) Keys() []string     { return []string{traceHeader} }

// publishSpan starts the producer span of one event, as a child of the
// trace context stored with it, and writes its own context into the
// message's headers. Without a tracer the stored context is forwarded as
// it is, so a consumer with tracing still continues the trace.
func (b *Bus) publishSpan(ctx context.Context, msg *nats.Msg, id, traceParent string) trace.Span {
	if traceParent == "" {
		return nil
	}
	if b.tracer == nil {
		msg.Header.Set(traceHeader, traceParent)
		return nil
	}
	pctx := tracecontext.Extract(ctx, mapCarrier(traceParent))
	pctx, span := b.tracer.Start(pctx, "publish "+msg.Subject, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", msg.Subject),
			attribute.String("messaging.message.id", id)))
	tracecontext.Inject(pctx, headerCarrier(msg.Header))
	return span
}

func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "publish failed")
	}
	span.End()
}

// consumeSpan starts the consumer span of a delivered message as a child of
// the context in its headers (a new trace when there is none).
func (b *Bus) consumeSpan(ctx context.Context, h nats.Header, subject, durable, id string) (context.Context, trace.Span) {
	if len(h) > 0 {
		ctx = tracecontext.Extract(ctx, headerCarrier(h))
	}
	return b.tracer.Start(ctx, "process "+subject, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.consumer.group.name", durable),
			attribute.String("messaging.message.id", id)))
}
