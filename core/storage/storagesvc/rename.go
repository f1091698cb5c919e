package storagesvc

import (
	"context"
	"sync"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/storage"
)

// Moved says what a rename moved.
type Moved struct {
	Entry   storage.Entry // at its new path
	Entries int           // the entry and everything below it
}

// copied is one object copied for a move: its source and the version.
type copied struct{ oldKey, newKey, etag string }

// Rename moves a file or a whole folder to `to` (which must not exist;
// missing folders above it are made). S3 has no rename: each object is
// copied inside the store (no bytes through the platform), then the index
// moves in one transaction with the audit record and the event, then the
// old objects go. The transaction checks that the rows it moved are the
// versions it copied; a file uploaded or replaced below the folder during
// the copy fails the move (storage_conflict, nothing moved, the copies
// removed) rather than lose that write. A crash between the steps leaves
// orphans (copies, or old objects) that the reconciler removes.
func (s *Service) Rename(ctx context.Context, p identity.Principal, projectID, from, to string) (Moved, error) {
	src, err := entryPath("from", from)
	if err != nil {
		return Moved{}, err
	}
	dst, err := entryPath("to", to)
	if err != nil {
		return Moved{}, err
	}
	sc, err := s.scope(ctx, p, projectID)
	if err != nil {
		return Moved{}, err
	}
	e, err := s.d.Index.Get(ctx, sc, src)
	if err != nil {
		return Moved{}, err
	}
	if dst.Within(src) {
		return Moved{}, storage.Conflict("a folder cannot move into itself", dst)
	}
	if _, err := s.d.Index.Get(ctx, sc, dst); err == nil {
		return Moved{}, storage.Conflict("a file or folder exists at the target path", dst)
	} else if !fault.IsKind(err, fault.KindNotFound) {
		return Moved{}, err
	}
	if err := s.writable(ctx, sc, dst); err != nil {
		return Moved{}, err
	}
	plan, err := s.movePlan(ctx, sc, e, src, dst)
	if err != nil {
		return Moved{}, err
	}
	if err := s.copyAll(ctx, plan); err != nil {
		s.deleteKeys(ctx, plan, func(c copied) string { return c.newKey })
		return Moved{}, err
	}
	var out Moved
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		moved, err := s.d.Index.Move(ctx, sc, src, dst, s.d.Clock.Now())
		if err != nil {
			return err
		}
		want := make(map[string]string, len(plan))
		for _, c := range plan {
			want[c.newKey] = c.etag
		}
		files := 0
		for _, m := range moved {
			if m.Path == dst {
				out.Entry = m
			}
			if m.Kind != storage.File {
				continue
			}
			files++
			k, err := sc.ObjectKey(m.Path)
			if err != nil {
				return err
			}
			if etag, ok := want[k]; !ok || etag != m.ETag {
				return storage.Conflict("a file below the folder changed during the move; try again", m.Path)
			}
		}
		if files != len(plan) {
			return storage.Conflict("the folder changed during the move; try again", src)
		}
		out.Entries = len(moved)
		meta := map[string]any{"from": src.String(), "to": dst.String(), "kind": e.Kind, "entries": out.Entries}
		if err := s.record(ctx, sc, p.User.ID, ActionRename, dst, meta); err != nil {
			return err
		}
		return s.emit(ctx, sc, event.StorageObjectMoved, dst, map[string]any{"from": src.String(), "to": dst.String(),
			"kind": e.Kind, "entries": out.Entries, "user_id": p.User.ID})
	})
	if err != nil {
		s.deleteKeys(ctx, plan, func(c copied) string { return c.newKey })
		return Moved{}, err
	}
	s.deleteKeys(ctx, plan, func(c copied) string { return c.oldKey })
	return out, nil
}

// movePlan lists the objects a move copies: the file, or every file below
// the folder, with their new keys.
func (s *Service) movePlan(ctx context.Context, sc storage.Scope, e storage.Entry, src, dst storage.Path) ([]copied, error) {
	var plan []copied
	add := func(f storage.Entry) error {
		np, ok := f.Path.Rebase(src, dst)
		if !ok {
			return &fault.Error{Kind: fault.KindInvalid, Code: storage.CodePathTraversal, Field: "to",
				Message: "to would make a path below it invalid: longer than the path limit, or a drive-letter name (C:) at the top"}
		}
		oldKey, err := sc.ObjectKey(f.Path)
		if err != nil {
			return err
		}
		newKey, err := sc.ObjectKey(np)
		if err != nil {
			return err
		}
		plan = append(plan, copied{oldKey: oldKey, newKey: newKey, etag: f.ETag})
		return nil
	}
	if e.Kind == storage.File {
		return plan, add(e)
	}
	cursor := ""
	for {
		files, next, err := s.d.Index.Files(ctx, sc, src, cursor, 1000)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if err := add(f); err != nil {
				return nil, err
			}
		}
		if next == "" {
			return plan, nil
		}
		cursor = next
	}
}

// copyAll copies the plan's objects, Concurrency at a time; the first
// failure stops it.
func (s *Service) copyAll(ctx context.Context, plan []copied) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan copied)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := 0; i < min(s.cfg.Concurrency, len(plan)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				info, err := s.d.Objects.Copy(ctx, c.oldKey, c.newKey)
				if err == nil && info.ETag != c.etag && info.ETag != "" {
					// The object changed since the index said so: the
					// move's check would refuse it; stop now.
					err = fault.Conflict(storage.CodeConflict, "a file changed during the move; try again")
				}
				if err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, c := range plan {
		select {
		case work <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// deleteKeys removes one side of the plan's objects, best effort: what a
// failure leaves is an orphan the reconciler removes.
func (s *Service) deleteKeys(ctx context.Context, plan []copied, side func(copied) string) {
	ctx = context.WithoutCancel(ctx)
	keys := make([]string, 0, len(plan))
	for _, c := range plan {
		keys = append(keys, side(c))
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		_ = s.d.Objects.Delete(ctx, keys[:n]...)
		keys = keys[n:]
	}
}
