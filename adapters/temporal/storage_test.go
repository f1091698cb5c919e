package temporal

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/nodetask"
)

func newStorageEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *Activities, *StorageActivities) {
	t.Helper()
	env, a := newEnv(t)
	s := &StorageActivities{}
	env.RegisterActivity(s)
	return env, a, s
}

// TestProvisionSyncsStorageOnceActive: with a storage_sync folder, the pull
// runs after the allocation is active; its failure leaves it active.
func TestProvisionSyncsStorageOnceActive(t *testing.T) {
	t.Parallel()
	for _, fails := range []bool{false, true} {
		env, a, s := newStorageEnv(t)
		var order []string
		env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil)
		env.OnActivity(a.ProvisionAndActivate, mock.Anything, taskOfType(nodetask.ProvisionUser)).Run(func(mock.Arguments) {
			order = append(order, "activate")
		}).Return(nodetask.Result{Succeeded: true}, nil)
		call := env.OnActivity(s.SyncStorageIn, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
			req := args.Get(1).(StorageSyncRequest)
			if req.Path != "/datasets" || req.TenantID != "t1" || req.ProjectID != "p1" || req.NodeID != testNode ||
				req.Username != nodetask.UsernameFor(testAlloc) || req.UserID != "u1" {
				t.Errorf("sync request %+v", req)
			}
			order = append(order, "sync")
		})
		if fails {
			call.Return(StorageSyncSummary{}, errors.New("node gone"))
		} else {
			call.Return(StorageSyncSummary{Files: 2, Bytes: 10}, nil)
		}
		env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode, UserID: "u1",
			AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey, Retry: shortRetry,
			StorageSync: &StorageSyncSpec{TenantID: "t1", ProjectID: "p1", Path: "/datasets"}})
		if o := outcome(t, env); o.State != allocation.Active {
			t.Fatalf("fails=%v: outcome %+v", fails, o)
		}
		if len(order) < 2 || order[0] != "activate" || order[len(order)-1] != "sync" {
			t.Fatalf("fails=%v: order %v", fails, order)
		}
	}
}

// TestProvisionWithoutSyncRunsNoSync: no folder, no sync activity.
func TestProvisionWithoutSyncRunsNoSync(t *testing.T) {
	t.Parallel()
	env, a, _ := newStorageEnv(t)
	env.OnActivity(a.MarkProvisioning, mock.Anything, testAlloc).Return(nil)
	env.OnActivity(a.ProvisionAndActivate, mock.Anything, mock.Anything).Return(nodetask.Result{Succeeded: true}, nil)
	env.ExecuteWorkflow(ProvisionAllocation, ProvisionInput{AllocationID: testAlloc, NodeID: testNode,
		AuthorizedKeys: []string{testKey}, UserCAKey: testCAKey, Retry: shortRetry})
	if o := outcome(t, env); o.State != allocation.Active {
		t.Fatalf("outcome %+v", o)
	}
}

// TestReleasePushesBeforeRevoking: stop_user ends the account's processes
// (with the grace period) first, the push runs next, revoke_user (which
// removes the home) last; a failed push does not stop the release.
func TestReleasePushesBeforeRevoking(t *testing.T) {
	t.Parallel()
	for _, fails := range []bool{false, true} {
		env, a, s := newStorageEnv(t)
		var order []string
		env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.StopUser)).Run(func(args mock.Arguments) {
			var p nodetask.StopUserParams
			_ = json.Unmarshal(args.Get(1).(NodeTaskRequest).Params, &p)
			if p.GraceSeconds != 7 || p.Username == "" {
				t.Errorf("stop params %+v", p)
			}
			order = append(order, "stop")
		}).Return(nodetask.Result{Succeeded: true}, nil)
		call := env.OnActivity(s.SyncStorageOut, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
			if req := args.Get(1).(StorageSyncRequest); req.AllocationID != testAlloc || req.NodeID != testNode {
				t.Errorf("push request %+v", req)
			}
			order = append(order, "push")
		})
		if fails {
			call.Return(StorageSyncSummary{}, errors.New("quota"))
		} else {
			call.Return(StorageSyncSummary{Files: 1}, nil)
		}
		env.OnActivity(a.RunNodeTask, mock.Anything, taskOfType(nodetask.RevokeUser)).Run(func(mock.Arguments) {
			order = append(order, "revoke")
		}).Return(nodetask.Result{Succeeded: true}, nil)
		env.OnActivity(a.MarkReleased, mock.Anything, testAlloc).Return(nil)
		env.ExecuteWorkflow(ReleaseAllocation, ReleaseInput{AllocationID: testAlloc, NodeID: testNode, Retry: shortRetry,
			StorageSync: true, GraceSeconds: 7})
		if o := outcome(t, env); o.State != allocation.Released {
			t.Fatalf("fails=%v: outcome %+v", fails, o)
		}
		if len(order) < 3 || order[0] != "stop" || order[1] != "push" || order[len(order)-1] != "revoke" {
			t.Fatalf("fails=%v: order %v", fails, order)
		}
	}
}
