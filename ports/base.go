package ports

import (
	"context"
	"time"
)

// Clock tells the time. Tests move a fake clock instead of sleeping.
type Clock interface {
	Now() time.Time
}

// IDs mints identifiers (UUIDv7 in production: sortable, unique).
type IDs interface {
	NewID() string
}

// TxRunner runs fn in one database transaction. Stores called with the ctx
// passed to fn join that transaction; the runner retries fn on serialization
// failures and deadlocks, so fn must be safe to run more than once. Work
// carried by ctx (WithTxWork) runs first in each transaction the runner
// begins, so that it commits exactly when fn's does. Once fn has returned
// nil the commit is not abandoned because ctx is cancelled: a caller that
// went away mid-commit would leave the outcome unknown.
type TxRunner interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

type txWorkKey struct{}

// WithTxWork returns ctx carrying work that every transaction a TxRunner
// begins with it (or with a context derived from it) runs in the same
// transaction before the caller's function; a transaction joined by a
// nested InTx does not run it again. The HTTP host uses it to record, with
// a request's own writes, that its idempotency key's request committed.
// Work already carried by ctx runs first.
func WithTxWork(ctx context.Context, work func(ctx context.Context) error) context.Context {
	if prev := TxWork(ctx); prev != nil {
		next := work
		work = func(ctx context.Context) error {
			if err := prev(ctx); err != nil {
				return err
			}
			return next(ctx)
		}
	}
	return context.WithValue(ctx, txWorkKey{}, work)
}

// TxWork returns the work ctx carries for the transactions begun with it,
// or nil.
func TxWork(ctx context.Context) func(ctx context.Context) error {
	w, _ := ctx.Value(txWorkKey{}).(func(ctx context.Context) error)
	return w
}

// HealthCheck is one dependency the health endpoint reports on.
type HealthCheck interface {
	// Name is stable and shown in the health report, e.g. "postgres".
	Name() string
	Check(ctx context.Context) error
}
