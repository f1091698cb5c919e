// Package idempotency is what the REST and RPC hosts share of running a
// mutating request under its caller's idempotency key (X-Idempotency-Key,
// an RPC's request_id) on a ports.IdempotencyStore: how long keys are kept,
// what a retry that may not run is told, and the mark that ties the key to
// the request's own transactions (doc/state-machines.md).
package idempotency

import (
	"context"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/ports"
)

// TTL is how long the tenant's keys are remembered (idempotency.ttl_hours;
// the policy's default when the tenant's values cannot be read).
func TTL(ctx context.Context, policies ports.PolicyStore, tenantID string) time.Duration {
	vals, err := policies.Values(ctx, tenantID)
	if err != nil {
		vals = nil
	}
	return time.Duration(vals.Int(policy.IdempotencyTTLHours)) * time.Hour
}

// Refusal is the error for a Begin state that does not let the request run
// — in flight, used for another request, committed without a response —
// naming the key as the caller sent it (keyName: "idempotency key",
// "request_id"). New and Replay are nil: the request runs, or its stored
// response is the caller's to replay.
func Refusal(state ports.IdempotencyState, keyName string) error {
	switch state {
	case ports.IdempotencyNew, ports.IdempotencyReplay:
		return nil
	case ports.IdempotencyInFlight:
		return fault.Conflict(fault.CodeIdempotencyInFlight, "a request with this "+keyName+" is still running")
	case ports.IdempotencyMismatch:
		return &fault.Error{Kind: fault.KindUnprocessable, Code: fault.CodeIdempotencyKeyReused,
			Message: "this " + keyName + " was used for a different request"}
	case ports.IdempotencyCommitted:
		return fault.Conflict(fault.CodeIdempotencyResponseLost,
			"the request with this "+keyName+" saved its changes but failed before answering; "+
				"look up its result instead of retrying (a new "+keyName+" runs it again)")
	}
	return fault.Internal(nil)
}

// MarkOnCommit returns ctx whose transactions mark the key committed with
// their own writes (ports.WithTxWork): a request that fails after a commit,
// or cannot learn a commit's outcome, keeps its key, and Abandon releases
// only a key whose request committed nothing.
func MarkOnCommit(ctx context.Context, store ports.IdempotencyStore, scope, key string) context.Context {
	return ports.WithTxWork(ctx, func(ctx context.Context) error { return store.MarkCommitted(ctx, scope, key) })
}
