package billing

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/ports"
)

// MeteringDeps are what Metering needs; all are required.
type MeteringDeps struct {
	Tx          ports.TxRunner
	Allocations ports.AllocationStore
	Usage       UsageStore
	Ledger      ports.LedgerStore
	IDs         ports.IDs
}

// Metering opens and closes usage records from allocation events.
type Metering struct{ d MeteringDeps }

// NewMetering checks the dependencies.
func NewMetering(d MeteringDeps) (*Metering, error) {
	if d.Tx == nil || d.Allocations == nil || d.Usage == nil || d.Ledger == nil || d.IDs == nil {
		return nil, errors.New("billing: every metering dependency is required")
	}
	return &Metering{d: d}, nil
}

// Handles reports whether Metering acts on events of this subject.
func Handles(subject string) bool {
	switch subject {
	case event.AllocationActive, event.AllocationReleaseReq, event.AllocationReleased, event.AllocationReleaseFailed:
		return true
	}
	return false
}

// HandleEvent applies an allocation event to metering. Events are delivered
// at least once and in no particular order, so it does not trust the event
// to say what happened: it reads the allocation row and brings the usage
// record in line with it. An allocation that has been active gets exactly
// one record (unique allocation_id); one that is released or whose release
// failed gets it closed, once (the close is a state check). Replays and
// reordered deliveries (released before active) therefore converge on the
// same record. Events of other subjects are ignored.
func (m *Metering) HandleEvent(ctx context.Context, env event.Envelope) error {
	if !Handles(env.Type) {
		return nil
	}
	var p struct {
		AllocationID string `json:"allocation_id"`
	}
	if len(env.Payload) > 0 {
		if err := json.Unmarshal(env.Payload, &p); err != nil {
			return fault.Invalid("payload", "allocation event payload is not JSON").Wrap(err)
		}
	}
	if p.AllocationID == "" {
		p.AllocationID = env.AggregateID
	}
	if p.AllocationID == "" {
		return fault.Invalid("allocation_id", "allocation event without an allocation id")
	}
	return m.Sync(ctx, p.AllocationID)
}

// Sync brings the usage record of one allocation in line with the
// allocation's state, in one transaction.
func (m *Metering) Sync(ctx context.Context, allocationID string) error {
	return m.d.Tx.InTx(ctx, func(ctx context.Context) error {
		a, err := m.d.Allocations.Get(ctx, "", allocationID)
		if fault.IsKind(err, fault.KindNotFound) {
			return nil // nothing to meter; a malformed id names nothing
		}
		if err != nil {
			return err
		}
		if a.ActiveAt == nil {
			return nil // never active: never billed
		}
		end := endOf(a)
		r, err := m.d.Usage.GetByAllocation(ctx, a.ID)
		switch {
		case fault.IsKind(err, fault.KindNotFound):
			r = UsageRecord{ID: m.d.IDs.NewID(), TenantID: a.TenantID, ProjectID: a.ProjectID, UserID: a.UserID,
				AllocationID: a.ID, HourlyPriceMinor: a.PriceMinor, Currency: a.Currency, StartedAt: *a.ActiveAt,
				BilledThrough: *a.ActiveAt, State: UsageOpen}
			if end != nil {
				r.EndedAt, r.State = end, UsageClosed
			}
			created, err := m.d.Usage.Open(ctx, r)
			if err != nil || created {
				return err
			}
			// A concurrent delivery opened it first: fall through and close
			// it if needed, under its row lock.
			if r, err = m.d.Usage.GetByAllocation(ctx, a.ID); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if r.State != UsageOpen || end == nil {
			return nil
		}
		return m.close(ctx, r, *end)
	})
}

// close ends an open record. If the worker already billed past the end
// (the close arrived late), the overcharge is credited back with a
// correction entry in the same transaction, so the customer pays exactly
// for [started_at, ended_at).
func (m *Metering) close(ctx context.Context, r UsageRecord, end time.Time) error {
	over := int64(0)
	if r.BilledThrough.After(end) {
		over = WindowCostMinor(r.HourlyPriceMinor, r.StartedAt, end, r.BilledThrough)
	}
	if over > 0 {
		if _, err := m.d.Ledger.Post(ctx, ledger.Entry{TenantID: r.TenantID, ProjectID: r.ProjectID, UserID: r.UserID,
			Type: ledger.Adjustment, AmountMinor: over, Currency: r.Currency,
			IdempotencyKey: CorrectionIdempotencyKey(r.ID), Reference: r.ID,
			Reason: "usage billed past the release of the allocation returned"}); err != nil {
			return err
		}
	}
	_, err := m.d.Usage.Close(ctx, r.ID, end, over)
	return err
}

// Bill is what an allocation whose billing has ended is billed in all: the
// whole seconds from active_at to its end (endOf) and their cost at its price
// snapshot — what the windows the worker debits add up to. ok is false while
// it is still billed; one that never became active was billed nothing.
func Bill(a allocation.Allocation) (seconds, costMinor int64, ok bool) {
	if a.ActiveAt == nil {
		return 0, 0, !a.State.Live() || a.State == allocation.Releasing || a.State == allocation.ReleaseFailed
	}
	end := endOf(a)
	if end == nil {
		return 0, 0, false
	}
	seconds = WholeSeconds(*a.ActiveAt, *end)
	return seconds, ledger.CostMinor(a.PriceMinor, seconds), true
}

// endOf is when metering stops for an allocation, or nil while it runs:
// the moment its release was first requested (by the user, an operator or
// depletion) — the user stops paying when they ask, however long the node
// takes to clean up (doc/billing.md). Rows from before release requests were
// stamped fall back to the release time, or to when the release failed (the
// node is then no longer serving the user; a retried release does not
// reopen billing).
func endOf(a allocation.Allocation) *time.Time {
	var end time.Time
	switch {
	case a.ReleaseRequestedAt != nil && (a.State == allocation.Releasing || a.State == allocation.Released ||
		a.State == allocation.ReleaseFailed):
		end = *a.ReleaseRequestedAt
	case a.State == allocation.Released:
		end = a.UpdatedAt
		if a.ReleasedAt != nil {
			end = *a.ReleasedAt
		}
	case a.State == allocation.ReleaseFailed:
		end = a.UpdatedAt
	default:
		return nil
	}
	if end.Before(*a.ActiveAt) {
		end = *a.ActiveAt
	}
	return &end
}
