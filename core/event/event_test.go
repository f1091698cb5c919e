package event_test

import (
	"encoding/json"
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
		event.ProjectMemberRemoved, event.StorageObjectCreated, event.StorageObjectDeleted, event.StorageObjectMoved} {
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

func TestEncode(t *testing.T) {
	e := event.Envelope{ID: "e1", Type: event.UserSignedUp, Version: 1, Payload: json.RawMessage(`{"n":1}`)}
	enc, err := event.Encode(e)
	if err != nil || len(enc) != 1 || enc[0].ID != "e1" || enc[0].Type != event.UserSignedUp {
		t.Fatalf("Encode = %+v, %v", enc, err)
	}
	var back event.Envelope
	if err := json.Unmarshal(enc[0].Body, &back); err != nil || back.ID != e.ID || string(back.Payload) != `{"n":1}` {
		t.Fatalf("body %s decodes to %+v, %v", enc[0].Body, back, err)
	}
	for name, bad := range map[string]event.Envelope{
		"no id":       {Type: event.UserSignedUp, Payload: json.RawMessage(`{}`)},
		"no type":     {ID: "e2", Payload: json.RawMessage(`{}`)},
		"bad payload": {ID: "e3", Type: event.UserSignedUp, Payload: json.RawMessage(`{bad`)},
	} {
		if _, err := event.Encode(e, bad); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}
