package allocationsvc

import (
	"context"

	"github.com/gpuaas/gpuaas/core/allocation"
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
		moved, err := s.forceReleaseIf(ctx, id, reason, func(a allocation.Allocation) bool { return a.TenantID == tenantID })
		if err != nil {
			return n, err
		}
		if moved {
			n++
		}
	}
	return n, nil
}
