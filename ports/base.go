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
// failures and deadlocks, so fn must be safe to run more than once.
type TxRunner interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// HealthCheck is one dependency the health endpoint reports on.
type HealthCheck interface {
	// Name is stable and shown in the health report, e.g. "postgres".
	Name() string
	Check(ctx context.Context) error
}
