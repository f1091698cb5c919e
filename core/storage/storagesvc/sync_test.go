package storagesvc_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/nodeagent/storagesync"
)

// TestNodeSyncRoundTrip: the tasks the service plans, run by the node's
// transfer engine: the folder arrives in the home, an edited and a new
// file come back, unchanged files are not uploaded again, a file that does
// not fit the quota is skipped and its reservation released.
func TestNodeSyncRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t, nil, nil, storagesvc.Config{})
	r.upload(t, "/work/a.txt", []byte("alpha"))
	r.upload(t, "/work/sub/b.txt", []byte("bravo"))
	r.upload(t, "/elsewhere.txt", []byte("not synced"))
	allocation := system.UUIDs{}.NewID()
	ns, err := r.svc.StartNodeSync(ctx, storagesvc.NodeSyncRequest{AllocationID: allocation, TenantID: r.m.Principal.TenantID,
		ProjectID: r.m.ProjectID, UserID: r.m.Principal.User.ID, Path: "/work"})
	if err != nil || ns.Dir != "work" || ns.Path.String() != "/work" {
		t.Fatalf("start %+v %v", ns, err)
	}
	user := nodetask.UsernameFor(allocation)
	home := t.TempDir()
	node := storagesync.Target{Home: home, UID: -1, GID: -1}
	tasks, err := r.svc.PullTasks(ctx, ns, user)
	if err != nil || len(tasks) != 1 || len(tasks[0].Files) != 2 {
		t.Fatalf("pull tasks %+v %v", tasks, err)
	}
	var pulledAt int64
	for _, tk := range tasks {
		if _, err := nodetask.ValidateParams(nodetask.StorageSync, mustJSON(t, tk)); err != nil {
			t.Fatalf("the service planned an invalid task: %v", err)
		}
		rep, err := storagesync.Run(ctx, nil, node, tk)
		if err != nil || rep.Failed != 0 {
			t.Fatalf("pull %+v %v", rep, err)
		}
		pulledAt = rep.Time
	}
	if b, _ := os.ReadFile(filepath.Join(home, "work", "sub", "b.txt")); string(b) != "bravo" {
		t.Fatalf("pulled %q", b)
	}
	if err := r.svc.MarkPulled(ctx, allocation, pulledAt); err != nil {
		t.Fatal(err)
	}

	// The user works on the node.
	later := time.Unix(0, pulledAt).Add(time.Second)
	if err := os.WriteFile(filepath.Join(home, "work", "a.txt"), []byte("alpha, edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(filepath.Join(home, "work", "a.txt"), later, later)
	if err := os.WriteFile(filepath.Join(home, "work", "results.csv"), []byte("1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(filepath.Join(home, "work", "results.csv"), later, later)
	if err := os.WriteFile(filepath.Join(home, "work", "huge.bin"), make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	r.setQuota(t, 1000)

	ns, err = r.svc.NodeSyncOf(ctx, allocation)
	if err != nil || ns.PulledNodeTime != pulledAt {
		t.Fatalf("sync record %+v %v", ns, err)
	}
	scan, err := storagesync.Run(ctx, nil, node, storagesvc.ScanTask(ns, user))
	if err != nil || len(scan.Files) != 4 {
		t.Fatalf("scan %+v %v", scan, err)
	}
	plan, err := r.svc.PushTasks(ctx, ns, user, scan)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Tasks) != 1 || len(plan.Tasks[0].Files) != 2 || plan.Skipped["huge.bin"] != string(storage.CodeQuotaExceeded) {
		t.Fatalf("push plan %+v skipped %v", plan.Tasks, plan.Skipped)
	}
	var reports []nodetask.SyncReport
	for _, tk := range plan.Tasks {
		rep, err := storagesync.Run(ctx, nil, node, tk)
		if err != nil {
			t.Fatal(err)
		}
		reports = append(reports, rep)
	}
	res, err := r.svc.CommitPush(ctx, ns, plan, reports)
	if err != nil || res.Files != 2 || res.Failed != 0 || res.Skipped != 1 {
		t.Fatalf("commit %+v %v", res, err)
	}
	if got := string(r.read(t, "/work/a.txt", 0, -1)); got != "alpha, edited" {
		t.Fatalf("edited file in storage: %q", got)
	}
	if got := string(r.read(t, "/work/results.csv", 0, -1)); got != "1,2\n" {
		t.Fatalf("new file in storage: %q", got)
	}
	us, _ := r.svc.Usage(ctx, r.m.Principal, r.m.ProjectID)
	if us.ReservedBytes != 0 {
		t.Fatalf("reservations left after the push: %+v", us)
	}
	if ns, _ := r.svc.NodeSyncOf(ctx, allocation); ns.PushedAt.IsZero() {
		t.Fatal("the sync is not marked pushed")
	}
	if events, _, _ := r.svc.AuditLogForTest(ctx, r.db, r.m.Principal.TenantID); events[storagesvc.ActionSync] != 2 {
		t.Fatalf("node sync audit: %v", events)
	}

	// A sync of something that is not a folder, or of another tenant's
	// project, does not start.
	if _, err := r.svc.StartNodeSync(ctx, storagesvc.NodeSyncRequest{AllocationID: system.UUIDs{}.NewID(),
		TenantID: r.m.Principal.TenantID, ProjectID: r.m.ProjectID, Path: "/elsewhere.txt"}); fault.From(err).Code != storage.CodeConflict {
		t.Fatalf("sync of a file: %v", err)
	}
	if _, err := r.svc.StartNodeSync(ctx, storagesvc.NodeSyncRequest{AllocationID: system.UUIDs{}.NewID(),
		TenantID: system.UUIDs{}.NewID(), ProjectID: r.m.ProjectID, Path: "/work"}); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("sync of another tenant's project: %v", err)
	}
	if _, err := r.svc.NodeSyncOf(ctx, system.UUIDs{}.NewID()); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("an allocation without a sync: %v", err)
	}
}
