package storagesvc

import (
	"context"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/ports"
)

// ReconcileOptions tune one reconciler run.
type ReconcileOptions struct {
	// Grace is how old an object without an index row must be before it is
	// removed: an upload writes its object first and its row a moment
	// later. Default 1 h.
	Grace time.Duration
	// AbandonMultipartAfter is how old an unfinished multipart upload in
	// the store must be, with no reservation naming it, before it is
	// aborted (an upload through the API whose process died). Default 26 h
	// (longer than any presigned multipart upload may run).
	AbandonMultipartAfter time.Duration
}

// Report says what a reconciler run found and did.
type Report struct {
	Scopes              int
	Objects             int
	Rows                int
	OrphansDeleted      int // objects no row names
	RowsDeleted         int // file rows whose object is gone
	RowsRepaired        int // file rows whose size or ETag differed from the object
	ReservationsExpired int
	UploadsAborted      int
	// Foreign counts keys under the bucket that are no project's path;
	// they are left alone.
	Foreign int
}

// Reconcile repairs what a crash between an object write and its index
// write (or between an index delete and its object delete) leaves, so the
// index and the objects agree again (doc/storage.md, "Consistency"):
//
//   - expired reservations are removed (their multipart uploads aborted);
//   - an object no row names is removed once older than Grace, unless a
//     live reservation still covers its path (an upload in flight);
//   - a file row whose object is gone is removed; one whose object's size
//     or ETag differs takes the object's (the object is the truth: it is
//     what downloads read).
//
// Every repair is audited and evented like the user action it completes.
// Memory is bounded by the files of the largest project (one project's
// objects and rows are compared at a time).
func (s *Service) Reconcile(ctx context.Context, o ReconcileOptions) (Report, error) {
	if o.Grace <= 0 {
		o.Grace = time.Hour
	}
	if o.AbandonMultipartAfter <= 0 {
		o.AbandonMultipartAfter = 26 * time.Hour
	}
	var rep Report
	now := s.d.Clock.Now()
	if err := s.expireReservations(ctx, now, &rep); err != nil {
		return rep, err
	}
	known := map[storage.Scope]bool{}
	cursor := ""
	for {
		scopes, next, err := s.d.Index.Scopes(ctx, cursor, 500)
		if err != nil {
			return rep, err
		}
		for _, sc := range scopes {
			known[sc] = true
			if err := s.reconcileScope(ctx, sc, now, o, &rep); err != nil {
				return rep, err
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if err := s.orphanScopes(ctx, known, now, o, &rep); err != nil {
		return rep, err
	}
	return rep, s.abortAbandoned(ctx, now, o, &rep)
}

func (s *Service) expireReservations(ctx context.Context, now time.Time, rep *Report) error {
	for {
		rs, err := s.d.Reservations.Expired(ctx, now, 500)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.MultipartID != "" {
				if key, err := r.Scope.ObjectKey(r.Path); err == nil {
					if err := s.d.Multipart.AbortMultipart(ctx, key, r.MultipartID); err != nil {
						return err
					}
					rep.UploadsAborted++
				}
			}
			if err := s.d.Reservations.Release(ctx, r.Scope, r.ID); err != nil {
				return err
			}
			rep.ReservationsExpired++
		}
		if len(rs) < 500 {
			return nil
		}
	}
}

// livePaths are the paths a live reservation of the scope covers.
func (s *Service) livePaths(ctx context.Context, sc storage.Scope, now time.Time) (map[storage.Path]bool, error) {
	live, err := s.d.Reservations.Live(ctx, sc, now)
	if err != nil {
		return nil, err
	}
	out := make(map[storage.Path]bool, len(live))
	for _, r := range live {
		out[r.Path] = true
	}
	return out, nil
}

func (s *Service) reconcileScope(ctx context.Context, sc storage.Scope, now time.Time, o ReconcileOptions, rep *Report) error {
	rep.Scopes++
	prefix, err := sc.Prefix()
	if err != nil {
		return err
	}
	objects := map[storage.Path]ports.ObjectInfo{}
	cursor := ""
	for {
		page, next, err := s.d.Objects.List(ctx, prefix, cursor, 1000)
		if err != nil {
			return err
		}
		for _, obj := range page {
			rep.Objects++
			if p, ok := sc.PathOfKey(obj.Key); ok {
				objects[p] = obj
			} else {
				rep.Foreign++
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	cursor = ""
	for {
		files, next, err := s.d.Index.Files(ctx, sc, storage.Root, cursor, 1000)
		if err != nil {
			return err
		}
		for _, f := range files {
			rep.Rows++
			obj, ok := objects[f.Path]
			delete(objects, f.Path)
			if ok && obj.Size == f.Size && obj.ETag == f.ETag {
				continue
			}
			if err := s.repairRow(ctx, sc, f, rep); err != nil {
				return err
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(objects) == 0 {
		return nil
	}
	live, err := s.livePaths(ctx, sc, now)
	if err != nil {
		return err
	}
	for p, obj := range objects {
		if err := s.removeOrphan(ctx, sc, p, obj, live, now, o, rep); err != nil {
			return err
		}
	}
	return nil
}

// repairRow looks at the object again (the listing is older than the row
// may be: a rename or upload since) and makes the row agree with it.
func (s *Service) repairRow(ctx context.Context, sc storage.Scope, f storage.Entry, rep *Report) error {
	key, err := sc.ObjectKey(f.Path)
	if err != nil {
		return err
	}
	obj, err := s.d.Objects.Head(ctx, key)
	switch {
	case fault.IsKind(err, fault.KindNotFound):
		return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
			cur, err := s.d.Index.Get(ctx, sc, f.Path)
			if err != nil || cur.Kind != storage.File || cur.ETag != f.ETag {
				return ignoreNotFound(err) // changed since: not ours to judge now
			}
			if _, err := s.d.Index.Delete(ctx, sc, f.Path, false); err != nil {
				return ignoreNotFound(err)
			}
			rep.RowsDeleted++
			meta := map[string]any{"repair": "row_without_object", "size_bytes": f.Size}
			if err := s.record(ctx, sc, "", ActionRepair, f.Path, meta); err != nil {
				return err
			}
			return s.emit(ctx, sc, event.StorageObjectDeleted, f.Path, map[string]any{"path": f.Path.String(),
				"kind": storage.File, "files": 1, "bytes": f.Size, "recursive": false, "user_id": ""})
		})
	case err != nil:
		return err
	case obj.Size == f.Size && obj.ETag == f.ETag:
		return nil
	}
	return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		e := f
		e.Size, e.ETag, e.UpdatedAt = obj.Size, obj.ETag, s.d.Clock.Now()
		if obj.ContentType != "" {
			e.ContentType = obj.ContentType
		}
		if _, _, err := s.d.Index.PutFile(ctx, sc, e); err != nil {
			return err
		}
		rep.RowsRepaired++
		meta := map[string]any{"repair": "row_differs_from_object", "size_bytes": obj.Size, "was_size_bytes": f.Size}
		if err := s.record(ctx, sc, "", ActionRepair, f.Path, meta); err != nil {
			return err
		}
		return s.emit(ctx, sc, event.StorageObjectCreated, f.Path, map[string]any{"path": f.Path.String(),
			"kind": storage.File, "size_bytes": obj.Size, "etag": obj.ETag, "replaced": true, "user_id": "", "via": "reconciler"})
	})
}

func ignoreNotFound(err error) error {
	if fault.IsKind(err, fault.KindNotFound) {
		return nil
	}
	return err
}

// removeOrphan deletes an object no row names, once it is older than the
// grace and no upload in flight covers it, after checking the index again.
func (s *Service) removeOrphan(ctx context.Context, sc storage.Scope, p storage.Path, obj ports.ObjectInfo,
	live map[storage.Path]bool, now time.Time, o ReconcileOptions, rep *Report) error {
	if live[p] || obj.LastModified.After(now.Add(-o.Grace)) {
		return nil
	}
	if _, err := s.d.Index.Get(ctx, sc, p); err == nil || !fault.IsKind(err, fault.KindNotFound) {
		return ignoreNotFound(err) // a row appeared since the listing
	}
	if err := s.d.Objects.Delete(ctx, obj.Key); err != nil {
		return err
	}
	rep.OrphansDeleted++
	return s.record(ctx, sc, "", ActionRepair, p, map[string]any{"repair": "object_without_row", "size_bytes": obj.Size})
}

// orphanScopes walks the whole bucket for objects of projects that have no
// rows at all (every file deleted, or a first upload that crashed).
func (s *Service) orphanScopes(ctx context.Context, known map[storage.Scope]bool, now time.Time, o ReconcileOptions, rep *Report) error {
	lives := map[storage.Scope]map[storage.Path]bool{}
	cursor := ""
	for {
		page, next, err := s.d.Objects.List(ctx, "", cursor, 1000)
		if err != nil {
			return err
		}
		for _, obj := range page {
			sc, p, ok := scopeOfKey(obj.Key)
			if !ok {
				rep.Foreign++
				continue
			}
			if known[sc] {
				continue
			}
			rep.Objects++
			live, ok := lives[sc]
			if !ok {
				if live, err = s.livePaths(ctx, sc, now); err != nil {
					return err
				}
				lives[sc] = live
				rep.Scopes++
			}
			if err := s.removeOrphan(ctx, sc, p, obj, live, now, o, rep); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// scopeOfKey splits "{tenant}/{project}/{path}".
func scopeOfKey(key string) (storage.Scope, storage.Path, bool) {
	t, rest, ok1 := strings.Cut(key, "/")
	pr, _, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 {
		return storage.Scope{}, storage.Path{}, false
	}
	sc := storage.Scope{TenantID: t, ProjectID: pr}
	if sc.Validate() != nil {
		return storage.Scope{}, storage.Path{}, false
	}
	p, ok := sc.PathOfKey(key)
	return sc, p, ok
}

// abortAbandoned aborts multipart uploads old enough that no reservation
// can still name them (those of API uploads whose process died).
func (s *Service) abortAbandoned(ctx context.Context, now time.Time, o ReconcileOptions, rep *Report) error {
	ups, err := s.d.Multipart.ListMultipart(ctx, "")
	if err != nil {
		return err
	}
	for _, u := range ups {
		if _, _, ok := scopeOfKey(u.Key); !ok || u.Initiated.After(now.Add(-o.AbandonMultipartAfter)) {
			continue
		}
		if err := s.d.Multipart.AbortMultipart(ctx, u.Key, u.UploadID); err != nil {
			return err
		}
		rep.UploadsAborted++
	}
	return nil
}
