package nodeagent

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/nodetask"
)

// vanishingExecutor removes the agent's state directory while the task
// runs, so saving the result afterwards fails.
type vanishingExecutor struct {
	recordingExecutor
	dir string
}

func (v *vanishingExecutor) RevokeUser(ctx context.Context, p nodetask.RevokeUserParams) error {
	if err := os.RemoveAll(v.dir); err != nil {
		return err
	}
	return v.recordingExecutor.RevokeUser(ctx, p)
}

// TestReplaySaveFailureIsLogged: a result the replay window cannot persist
// is still returned, and the failure is logged as an error (it used to be
// dropped).
func TestReplaySaveFailureIsLogged(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exe := &vanishingExecutor{}
	a, s := testAgent(t, now, exe)
	exe.dir = filepath.Dir(a.replay.path)
	var logs bytes.Buffer
	a.log = slog.New(slog.NewJSONHandler(&logs, nil))
	params, _ := json.Marshal(nodetask.RevokeUserParams{AllocationID: "a9",
		Username: nodetask.UsernameFor("0190aaaa-bbbb-7ccc-8ddd-000000000009")})
	e := s.sign(nodetask.Envelope{TaskID: "t-save", NodeID: testNode, Type: nodetask.RevokeUser, Params: params,
		IssuedAt: now, ExpiresAt: now.Add(time.Minute), Seq: 1})
	if r := a.HandleEnvelope(context.Background(), toProto(e)); !r.Succeeded {
		t.Fatalf("task: %+v", r)
	}
	if !strings.Contains(logs.String(), "task result not saved in the replay window") ||
		!strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), "t-save") {
		t.Fatalf("the failed save was not logged as an error:\n%s", logs.String())
	}
}
