package terminalhost

import (
	"testing"

	"github.com/gpuaas/gpuaas/core/fault"
)

// TestKindStatusTable pins every fault kind's status before the upgrade
// (the same as the REST host's table); an unknown kind fails safe as 500.
func TestKindStatusTable(t *testing.T) {
	want := map[fault.Kind]int{
		fault.KindInternal: 500, fault.KindInvalid: 400, fault.KindUnauthenticated: 401, fault.KindForbidden: 403,
		fault.KindNotFound: 404, fault.KindConflict: 409, fault.KindRateLimited: 429, fault.KindPaymentRequired: 402,
		fault.KindUnprocessable: 422, fault.KindTooLarge: 413, fault.KindUnavailable: 503,
	}
	for k := fault.KindInternal; k <= fault.KindUnavailable; k++ {
		w, ok := want[k]
		if !ok {
			t.Fatalf("kind %s has no pinned status: add it here and to kindStatus", k)
		}
		if got := StatusOf(k); got != w {
			t.Errorf("StatusOf(%s) = %d, want %d", k, got, w)
		}
	}
	if len(kindStatus) != len(want) {
		t.Errorf("kindStatus has %d entries, want %d", len(kindStatus), len(want))
	}
	if got := StatusOf(fault.Kind(200)); got != 500 {
		t.Errorf("an unknown kind maps to %d, want 500", got)
	}
}
