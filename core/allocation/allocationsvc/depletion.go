package allocationsvc

import (
	"context"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/ports"
)

// depletionPage is how many live allocations one page of
// ForceReleaseForTenant reads.
const depletionPage = 200

// ForceReleaseForTenant moves every live allocation of the tenant that is
// not already releasing to releasing, each in its own transaction with its
// audit row (actor system "billing", metadata reason) and its
// provisioning.allocation_release_requested event (forced). It is what the
// billing worker calls when a tenant's balance is depleted
// (billing.AllocationReleaser) and is safe to call again: allocations
// already releasing are left alone, and a release_failed one is retried.
// It returns how many allocations it moved; on an error, those moved so far
// stay moved and the caller retries the rest later.
func (s *Service) ForceReleaseForTenant(ctx context.Context, tenantID, reason string) (int, error) {
	if tenantID == "" {
		return 0, nil
	}
	var ids []string
	cursor := ""
	for {
		page, next, err := s.d.Allocations.List(ctx, ports.AllocationFilter{TenantID: tenantID, Limit: depletionPage,
			Cursor: cursor, States: []allocation.State{allocation.Requested, allocation.Provisioning, allocation.Active,
				allocation.ReleaseFailed}})
		if err != nil {
			return 0, err
		}
		for _, a := range page {
			ids = append(ids, a.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	n := 0
	for _, id := range ids {
		moved := false
		err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
			moved = false
			a, err := s.d.Allocations.Update(ctx, id, func(a *allocation.Allocation) error {
				if a.TenantID != tenantID || !a.State.Live() || a.State == allocation.Releasing {
					return nil
				}
				if err := allocation.Transition(a.State, allocation.Releasing); err != nil {
					return err
				}
				a.State, moved = allocation.Releasing, true
				s.markReleaseRequested(a)
				return nil
			})
			if err != nil || !moved {
				return err
			}
			ev := s.auditEvent(ctx, audit.ActorSystem, "billing", a, "allocation.force_release")
			ev.Metadata = map[string]any{"reason": reason}
			if err := s.d.Audit.Record(ctx, ev); err != nil {
				return err
			}
			return s.emitReleaseRequested(ctx, a, true)
		})
		if err != nil {
			return n, err
		}
		if moved {
			n++
		}
	}
	return n, nil
}
