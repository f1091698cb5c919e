package temporal

import (
	"context"
	"encoding/json"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/ports"
)

// StorageSyncer plans and records an allocation's storage sync
// (doc/storage.md, "Files on the node"). *storagesvc.Service implements it.
type StorageSyncer interface {
	StartNodeSync(ctx context.Context, r storagesvc.NodeSyncRequest) (ports.NodeSync, error)
	NodeSyncOf(ctx context.Context, allocationID string) (ports.NodeSync, error)
	PullTasks(ctx context.Context, ns ports.NodeSync, username string) ([]nodetask.StorageSyncParams, error)
	MarkPulled(ctx context.Context, allocationID string, nodeTime int64) error
	PushTasks(ctx context.Context, ns ports.NodeSync, username string, scan nodetask.SyncReport) (storagesvc.PushPlan, error)
	CommitPush(ctx context.Context, ns ports.NodeSync, plan storagesvc.PushPlan, reports []nodetask.SyncReport) (storagesvc.PushResult, error)
}

// StorageSyncRequest is the input of SyncStorageIn and SyncStorageOut.
type StorageSyncRequest struct {
	AllocationID string `json:"allocation_id"`
	NodeID       string `json:"node_id"`
	Username     string `json:"username"`
	// For SyncStorageIn: the project folder and whose it is.
	TenantID  string `json:"tenant_id,omitempty"`
	ProjectID string `json:"project_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	Path      string `json:"path,omitempty"`
}

// StorageSyncSummary is what a sync moved, for the workflow's log.
type StorageSyncSummary struct {
	Files   int   `json:"files"`
	Bytes   int64 `json:"bytes"`
	Failed  int   `json:"failed"`
	Skipped int   `json:"skipped"`
}

// StorageActivities run allocations' storage syncs: the storage_sync node
// tasks, planned and committed by the storage use cases. The worker
// registers them beside Activities when the host has storage.
type StorageActivities struct {
	sync StorageSyncer
	run  *Activities // its runTask: validate, enqueue, wait, heartbeat
}

// NewStorageActivities builds the activities.
func NewStorageActivities(sync StorageSyncer, tasks TaskRunner) (*StorageActivities, error) {
	if sync == nil || tasks == nil {
		return nil, errors.New("temporal: storage activities need a StorageSyncer and a TaskRunner")
	}
	return &StorageActivities{sync: sync, run: &Activities{tasks: tasks}}, nil
}

func (a *StorageActivities) task(ctx context.Context, req StorageSyncRequest, p nodetask.StorageSyncParams) (nodetask.SyncReport, error) {
	res, err := a.run.runTask(ctx, NodeTaskRequest{NodeID: req.NodeID, AllocationID: req.AllocationID,
		Type: nodetask.StorageSync, Params: mustJSON(p)})
	if err != nil {
		return nodetask.SyncReport{}, err
	}
	var rep nodetask.SyncReport
	if err := json.Unmarshal(res.Output, &rep); err != nil {
		return nodetask.SyncReport{}, temporal.NewNonRetryableApplicationError("the node's sync report does not decode", CodeNodeTaskFailed, nil)
	}
	return rep, nil
}

// classifyStorage maps a storage use-case error: a refusal (bad folder,
// no such folder, conflict) is final, anything else is retried.
func classifyStorage(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	logCause(ctx, err)
	switch fault.KindOf(err) {
	case fault.KindInvalid, fault.KindNotFound, fault.KindConflict, fault.KindForbidden:
		return temporal.NewNonRetryableApplicationError(safeMessage(err), CodeInvalidRequest, nil)
	}
	return temporal.NewApplicationError(safeMessage(err), CodeNodeTaskError)
}

// SyncStorageIn records the allocation's sync and pulls the project folder
// into the account's home (a few storage_sync tasks for a large folder).
// A file that fails is counted, not retried; a failed task retries the
// activity (the pull is idempotent: files are replaced whole).
func (a *StorageActivities) SyncStorageIn(ctx context.Context, req StorageSyncRequest) (StorageSyncSummary, error) {
	ns, err := a.sync.StartNodeSync(ctx, storagesvc.NodeSyncRequest{AllocationID: req.AllocationID, TenantID: req.TenantID,
		ProjectID: req.ProjectID, UserID: req.UserID, Path: req.Path})
	if err != nil {
		return StorageSyncSummary{}, classifyStorage(ctx, err)
	}
	tasks, err := a.sync.PullTasks(ctx, ns, req.Username)
	if err != nil {
		return StorageSyncSummary{}, classifyStorage(ctx, err)
	}
	var sum StorageSyncSummary
	var last int64
	for _, p := range tasks {
		rep, err := a.task(ctx, req, p)
		if err != nil {
			return sum, err
		}
		sum.Files += len(rep.Files) - rep.Failed
		sum.Bytes += rep.Bytes
		sum.Failed += rep.Failed
		last = max(last, rep.Time)
	}
	return sum, classifyStorage(ctx, a.sync.MarkPulled(ctx, req.AllocationID, last))
}

// SyncStorageOut pushes the synced folder back from the account's home:
// scan, plan (what changed since the pull, within the quota), push, commit.
// An allocation without a sync has nothing to do.
func (a *StorageActivities) SyncStorageOut(ctx context.Context, req StorageSyncRequest) (StorageSyncSummary, error) {
	ns, err := a.sync.NodeSyncOf(ctx, req.AllocationID)
	if fault.IsKind(err, fault.KindNotFound) {
		return StorageSyncSummary{}, nil
	}
	if err != nil {
		return StorageSyncSummary{}, classifyStorage(ctx, err)
	}
	scan, err := a.task(ctx, req, storagesvc.ScanTask(ns, req.Username))
	if err != nil {
		return StorageSyncSummary{}, err
	}
	plan, err := a.sync.PushTasks(ctx, ns, req.Username, scan)
	if err != nil {
		return StorageSyncSummary{}, classifyStorage(ctx, err)
	}
	var reports []nodetask.SyncReport
	for _, p := range plan.Tasks {
		rep, err := a.task(ctx, req, p)
		if err != nil {
			break // commit what arrived; the rest's reservations are released
		}
		reports = append(reports, rep)
	}
	res, err := a.sync.CommitPush(ctx, ns, plan, reports)
	if err != nil {
		return StorageSyncSummary{}, classifyStorage(ctx, err)
	}
	return StorageSyncSummary{Files: res.Files, Bytes: res.Bytes, Failed: res.Failed, Skipped: res.Skipped + scan.Skipped}, nil
}
