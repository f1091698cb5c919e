// Package callctx carries request-scoped values that cross layers — the
// correlation id and the source address — so use cases can stamp audit
// records and events without knowing about HTTP or RPC.
package callctx

import "context"

type key int

const (
	correlationKey key = iota
	sourceIPKey
)

// WithCorrelationID returns ctx carrying the correlation id.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationID returns the correlation id in ctx, or "".
func CorrelationID(ctx context.Context) string {
	s, _ := ctx.Value(correlationKey).(string)
	return s
}

// WithSourceIP returns ctx carrying the caller's address.
func WithSourceIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, sourceIPKey, ip)
}

// SourceIP returns the caller's address in ctx, or "".
func SourceIP(ctx context.Context) string {
	s, _ := ctx.Value(sourceIPKey).(string)
	return s
}
