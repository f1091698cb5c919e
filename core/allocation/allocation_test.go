package allocation_test

import (
	"testing"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/fault"
)

func TestTransitions(t *testing.T) {
	t.Parallel()
	allowed := map[[2]allocation.State]bool{
		{allocation.Requested, allocation.Provisioning}:  true,
		{allocation.Provisioning, allocation.Active}:     true,
		{allocation.Provisioning, allocation.Failed}:     true,
		{allocation.Active, allocation.Releasing}:        true,
		{allocation.Releasing, allocation.Released}:      true,
		{allocation.Releasing, allocation.ReleaseFailed}: true,
		{allocation.ReleaseFailed, allocation.Releasing}: true,
		{allocation.Requested, allocation.Failed}:        true,
		{allocation.Requested, allocation.Releasing}:     true,
		{allocation.Provisioning, allocation.Releasing}:  true,
	}
	all := []allocation.State{allocation.Requested, allocation.Provisioning, allocation.Active, allocation.Releasing,
		allocation.Released, allocation.Failed, allocation.ReleaseFailed}
	for _, from := range all {
		for _, to := range all {
			err := allocation.Transition(from, to)
			if allowed[[2]allocation.State{from, to}] != (err == nil) {
				t.Errorf("%s -> %s: err %v", from, to, err)
			}
			if err != nil && !fault.IsKind(err, fault.KindConflict) {
				t.Errorf("%s -> %s: kind %v", from, to, fault.KindOf(err))
			}
		}
		if from.Terminal() && from.Live() {
			t.Errorf("%s both terminal and live", from)
		}
	}
}
