package event_test

import (
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/core/event"
)

func TestEverySubjectHasAStream(t *testing.T) {
	t.Parallel()
	for _, s := range []string{event.AllocationRequested, event.AllocationActive, event.AllocationFailed,
		event.AllocationReleaseReq, event.AllocationReleased, event.AllocationReleaseFailed, event.UsageDebited,
		event.LowBalanceWarning, event.BalanceDepleted, event.BalanceCredited, event.PaymentReconcileFailed,
		event.NotificationRequested, event.UserSignedUp, event.ProjectCreated, event.ProjectMemberAdded,
		event.ProjectMemberRemoved} {
		st, ok := event.StreamFor(s)
		if !ok {
			t.Errorf("%s has no stream", s)
			continue
		}
		if !strings.HasPrefix(strings.ToLower(st.Name), strings.SplitN(s, ".", 2)[0]) {
			t.Errorf("%s landed in stream %s", s, st.Name)
		}
	}
	if _, ok := event.StreamFor("nobody.listens"); ok {
		t.Error("unknown subject matched a stream")
	}
}

func TestDurableNamesUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, s := range event.Streams {
		for _, c := range s.Consumers {
			if seen[c.Durable] {
				t.Errorf("durable %s repeated", c.Durable)
			}
			seen[c.Durable] = true
		}
	}
}
