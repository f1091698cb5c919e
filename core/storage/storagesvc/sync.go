package storagesvc

import (
	"context"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/ports"
)

// Bounds of one allocation's sync (a pull, a push).
const (
	MaxSyncFiles = 100000
	MaxSyncBytes = 200 << 30
	// syncURLTTL is how long a sync task's presigned URLs work: the task
	// is queued, delivered and run within it.
	syncURLTTL = time.Hour
)

// errNoSyncs answers node syncs on a service built without a sync store.
var errNoSyncs = fault.Unavailable("storage syncs are not configured", nil)

// NodeSyncRequest starts an allocation's storage sync: the project folder
// Path, pulled into the account's home when the allocation is active and
// pushed back when it is released.
type NodeSyncRequest struct {
	AllocationID string
	TenantID     string
	ProjectID    string
	UserID       string
	Path         string
}

// SyncDirFor is the folder below the account's home a project folder is
// synced to: its name, or "project" for the top folder (or a hidden name).
func SyncDirFor(p storage.Path) string {
	name := p.Name()
	if name == "" || strings.HasPrefix(name, ".") || nodetask.ValidSyncDir(name) != nil {
		return "project"
	}
	return name
}

// ValidateSyncPath checks the path an allocation asks to sync (it must be
// a path; whether the folder exists is checked at activation).
func ValidateSyncPath(field, raw string) error {
	_, err := storage.ParsePath(field, raw)
	return err
}

// StartNodeSync records an allocation's sync (again: the record of a first
// attempt is kept). The folder must exist in the project of the tenant.
func (s *Service) StartNodeSync(ctx context.Context, r NodeSyncRequest) (ports.NodeSync, error) {
	if s.d.Syncs == nil {
		return ports.NodeSync{}, errNoSyncs
	}
	p, err := storage.ParsePath("storage_sync.path", r.Path)
	if err != nil {
		return ports.NodeSync{}, err
	}
	sc, err := s.scope(ctx, identity.Principal{TenantID: r.TenantID}, r.ProjectID)
	if err != nil {
		return ports.NodeSync{}, err
	}
	e, err := s.d.Index.Get(ctx, sc, p)
	if err != nil {
		return ports.NodeSync{}, err
	}
	if e.Kind != storage.Dir {
		return ports.NodeSync{}, storage.Conflict("a storage sync needs a folder", p)
	}
	ns := ports.NodeSync{AllocationID: r.AllocationID, Scope: sc, UserID: r.UserID, Path: p, Dir: SyncDirFor(p),
		CreatedAt: s.d.Clock.Now()}
	if err := s.d.Syncs.SaveSync(ctx, ns); err != nil {
		return ports.NodeSync{}, err
	}
	return s.d.Syncs.SyncOf(ctx, r.AllocationID)
}

// NodeSyncOf returns an allocation's sync (NotFound when it has none).
func (s *Service) NodeSyncOf(ctx context.Context, allocationID string) (ports.NodeSync, error) {
	if s.d.Syncs == nil {
		return ports.NodeSync{}, errNoSyncs
	}
	return s.d.Syncs.SyncOf(ctx, allocationID)
}

// PullTasks are the storage_sync tasks that download the synced folder's
// files into the account's home: at most nodetask.MaxSyncFiles files each,
// with presigned GETs of the project's keys valid for an hour.
func (s *Service) PullTasks(ctx context.Context, ns ports.NodeSync, username string) ([]nodetask.StorageSyncParams, error) {
	var out []nodetask.StorageSyncParams
	var total int64
	n := 0
	cursor := ""
	for {
		files, next, err := s.d.Index.Files(ctx, ns.Scope, ns.Path, cursor, 1000)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			rel, ok := f.Path.Rebase(ns.Path, storage.Root)
			if !ok || rel.IsRoot() {
				continue
			}
			if n >= MaxSyncFiles || total+f.Size > MaxSyncBytes {
				return out, nil // bounded: the rest stays in storage
			}
			key, err := ns.Scope.ObjectKey(f.Path)
			if err != nil {
				return nil, err
			}
			req, err := s.d.Presigner.PresignGet(ctx, key, "", syncURLTTL)
			if err != nil {
				return nil, err
			}
			if len(out) == 0 || len(out[len(out)-1].Files) >= nodetask.MaxSyncFiles {
				out = append(out, nodetask.StorageSyncParams{AllocationID: ns.AllocationID, Username: username,
					Direction: nodetask.SyncPull, Dir: ns.Dir})
			}
			last := &out[len(out)-1]
			last.Files = append(last.Files, nodetask.SyncFile{Path: rel.Canonical(), Size: f.Size, URL: req.URL, Headers: req.Headers})
			n++
			total += f.Size
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(out) == 0 {
		// An empty folder still appears in the home.
		out = append(out, nodetask.StorageSyncParams{AllocationID: ns.AllocationID, Username: username,
			Direction: nodetask.SyncPull, Dir: ns.Dir})
	}
	return out, nil
}

// MarkPulled records the node's clock at the end of the pull.
func (s *Service) MarkPulled(ctx context.Context, allocationID string, nodeTime int64) error {
	if s.d.Syncs == nil {
		return errNoSyncs
	}
	return s.d.Syncs.MarkPulled(ctx, allocationID, nodeTime)
}

// ScanTask is the storage_sync task that lists the synced folder on the
// node before a push.
func ScanTask(ns ports.NodeSync, username string) nodetask.StorageSyncParams {
	return nodetask.StorageSyncParams{AllocationID: ns.AllocationID, Username: username, Direction: nodetask.SyncScan,
		Dir: ns.Dir, MaxFiles: MaxSyncFiles, MaxBytes: MaxSyncBytes}
}

// PushPlan is what a push uploads: the tasks, and for each file the
// reservation holding its quota and the project path it lands on.
type PushPlan struct {
	Tasks   []nodetask.StorageSyncParams
	files   map[string]pushFile // by path relative to the synced folder
	Skipped map[string]string   // relative path → why it is not pushed
}

type pushFile struct {
	resID string
	dest  storage.Path
	size  int64
	ct    string // the content type it was presigned with
}

// PushTasks plans the push of what a scan found: files not modified since
// the pull (same size, mtime not after the pull on the node's clock) stay;
// the others reserve their quota (one reservation each, so a folder that
// does not fit pushes what fits) and get presigned PUTs.
func (s *Service) PushTasks(ctx context.Context, ns ports.NodeSync, username string, scan nodetask.SyncReport) (PushPlan, error) {
	plan := PushPlan{files: map[string]pushFile{}, Skipped: map[string]string{}}
	quota, maxFile, err := s.limits(ctx, ns.Scope)
	if err != nil {
		return plan, err
	}
	now := s.d.Clock.Now()
	for _, f := range scan.Files {
		rel, err := storage.FromCanonical(f.Path)
		if err != nil || rel.IsRoot() {
			plan.Skipped[f.Path] = "not a project path"
			continue
		}
		dest, ok := ns.Path.Join(rel)
		if !ok {
			plan.Skipped[f.Path] = "path too long"
			continue
		}
		cur, err := s.d.Index.Get(ctx, ns.Scope, dest)
		switch {
		case err == nil && cur.Kind == storage.Dir:
			plan.Skipped[f.Path] = "a folder stands at this path in storage"
			continue
		case err == nil && cur.Size == f.Size && ns.PulledNodeTime > 0 && f.MTime > 0 && f.MTime <= ns.PulledNodeTime:
			continue // unchanged since the pull
		case err != nil && !fault.IsKind(err, fault.KindNotFound):
			return plan, err
		}
		if f.Size > maxFile {
			plan.Skipped[f.Path] = string(storage.CodeTooLarge)
			continue
		}
		if err := s.writable(ctx, ns.Scope, dest); err != nil {
			plan.Skipped[f.Path] = string(fault.From(err).Code)
			continue
		}
		ct := storage.FileContentType(dest.Name(), storage.DefaultContentType) // the agent sends the signed headers
		res := ports.Reservation{ID: s.d.IDs.NewID(), Scope: ns.Scope, Path: dest, Bytes: f.Size, UserID: ns.UserID,
			ContentType: ct, CreatedAt: now, ExpiresAt: now.Add(syncURLTTL + completeGrace)}
		if _, err := s.d.Reservations.Reserve(ctx, res, quota); err != nil {
			if fault.From(err).Code == storage.CodeQuotaExceeded {
				plan.Skipped[f.Path] = string(storage.CodeQuotaExceeded)
				continue
			}
			return plan, err
		}
		key, err := ns.Scope.ObjectKey(dest)
		if err != nil {
			return plan, err
		}
		req, err := s.d.Presigner.PresignPut(ctx, key, f.Size, ct, syncURLTTL)
		if err != nil {
			s.release(ctx, ns.Scope, res.ID)
			return plan, err
		}
		plan.files[f.Path] = pushFile{resID: res.ID, dest: dest, size: f.Size, ct: ct}
		if len(plan.Tasks) == 0 || len(plan.Tasks[len(plan.Tasks)-1].Files) >= nodetask.MaxSyncFiles {
			plan.Tasks = append(plan.Tasks, nodetask.StorageSyncParams{AllocationID: ns.AllocationID, Username: username,
				Direction: nodetask.SyncPush, Dir: ns.Dir})
		}
		last := &plan.Tasks[len(plan.Tasks)-1]
		last.Files = append(last.Files, nodetask.SyncFile{Path: f.Path, Size: f.Size, URL: req.URL, Headers: req.Headers})
	}
	return plan, nil
}

// PushResult says what a push stored.
type PushResult struct {
	Files   int
	Bytes   int64
	Failed  int
	Skipped int
}

// CommitPush records the files the node uploaded (each checked against
// the store: an object of another size is not recorded), releases the
// reservations of the rest, and marks the sync pushed. Every stored file
// is audited and evented (via node_sync).
func (s *Service) CommitPush(ctx context.Context, ns ports.NodeSync, plan PushPlan, reports []nodetask.SyncReport) (PushResult, error) {
	res := PushResult{Skipped: len(plan.Skipped)}
	done := map[string]bool{}
	for _, rep := range reports {
		for _, f := range rep.Files {
			pf, ok := plan.files[f.Path]
			if !ok || done[f.Path] {
				continue
			}
			done[f.Path] = true
			if f.Error != "" {
				res.Failed++
				s.release(ctx, ns.Scope, pf.resID)
				continue
			}
			key, err := ns.Scope.ObjectKey(pf.dest)
			if err != nil {
				return res, err
			}
			info, err := s.d.Objects.Head(ctx, key)
			if err != nil || info.Size != pf.size {
				res.Failed++
				s.release(ctx, ns.Scope, pf.resID)
				continue
			}
			if _, err := s.commitFile(ctx, ns.Scope, pf.resID, pf.dest, info, pf.ct, ns.UserID, "node_sync"); err != nil {
				if fault.IsKind(err, fault.KindConflict) {
					res.Failed++
					s.release(ctx, ns.Scope, pf.resID)
					continue
				}
				return res, err
			}
			res.Files++
			res.Bytes += info.Size
		}
	}
	for p, pf := range plan.files {
		if !done[p] { // never reported (a task that did not run)
			res.Failed++
			s.release(ctx, ns.Scope, pf.resID)
		}
	}
	if s.d.Syncs != nil {
		if err := s.d.Syncs.MarkPushed(ctx, ns.AllocationID, s.d.Clock.Now()); err != nil {
			return res, err
		}
	}
	return res, nil
}
