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

// ValidCorrelationID reports whether a caller's correlation id is safe to
// echo in a header and write to logs: 1-128 characters of [A-Za-z0-9._:-].
// Hosts keep a valid one and mint their own otherwise.
func ValidCorrelationID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// Actor is the machine credential a request authenticated with, when it
// was not a person's interactive sign-in: audit rows written during the
// request name it (core/audit/auditsvc.StampActor).
type Actor struct {
	// UserID is the users row the credential acts as (a service account's
	// own, or an API key's holder).
	UserID string
	// Kind is "service_account" or "api_key".
	Kind string
	// ID is the service account's or the API key's id.
	ID string
}

const actorKey key = 100

// WithActor returns ctx carrying the request's machine actor.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey, a)
}

// ActorOf returns the machine actor in ctx, if any.
func ActorOf(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey).(Actor)
	return a, ok
}
