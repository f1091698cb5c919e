package nodeagent

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/nodetask"
)

// syncingExecutor is a recordingExecutor that also syncs storage.
type syncingExecutor struct {
	recordingExecutor
	got []nodetask.StorageSyncParams
}

func (s *syncingExecutor) SyncStorage(_ context.Context, p nodetask.StorageSyncParams) (nodetask.SyncReport, error) {
	s.got = append(s.got, p)
	return nodetask.SyncReport{Files: []nodetask.SyncFileResult{{Path: "a", Size: 1}}, Bytes: 1}, nil
}

// TestStorageSyncTasks: a signed storage_sync task reaches an executor that
// syncs, and its report comes back as the output; an executor without the
// capability refuses it as an unknown type, running nothing.
func TestStorageSyncTasks(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	params, _ := json.Marshal(nodetask.StorageSyncParams{AllocationID: "a1", Username: nodetask.UsernameFor("a1"),
		Direction: nodetask.SyncScan, Dir: "project"})
	env := func(seq uint64) nodetask.Envelope {
		return nodetask.Envelope{TaskID: "t-" + randHex(), NodeID: testNode, Type: nodetask.StorageSync, Params: params,
			IssuedAt: now.Add(-time.Second), ExpiresAt: now.Add(time.Minute), Seq: seq}
	}
	exe := &syncingExecutor{}
	a, signer := testAgent(t, now, exe)
	r := a.HandleEnvelope(context.Background(), toProto(signer.sign(env(1))))
	var rep nodetask.SyncReport
	if !r.Succeeded || json.Unmarshal(r.Output, &rep) != nil || rep.Bytes != 1 || len(exe.got) != 1 || exe.got[0].Dir != "project" {
		t.Fatalf("result %+v, calls %+v", r, exe.got)
	}
	plain := &recordingExecutor{}
	b, signer2 := testAgent(t, now, plain)
	r = b.HandleEnvelope(context.Background(), toProto(signer2.sign(env(1))))
	if r.Succeeded || r.ErrorCode != CodeUnknownType || len(plain.calls()) != 0 {
		t.Fatalf("an executor without storage sync: %+v", r)
	}
}
