package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/seed"
)

func storageScope(t *testing.T, db *postgres.DB) (storage.Scope, string) {
	m := seed.NewMember(t, db, 0)
	return storage.Scope{TenantID: m.Principal.TenantID, ProjectID: m.ProjectID}, m.Principal.User.ID
}

func code(err error) fault.Code {
	if err == nil {
		return ""
	}
	return fault.From(err).Code
}

func putFile(t *testing.T, st *postgres.StorageStore, sc storage.Scope, path string, size int64, by string) {
	t.Helper()
	now := time.Now()
	if _, _, err := st.PutFile(context.Background(), sc, storage.Entry{Path: storage.MustParsePath(path), Kind: storage.File,
		Size: size, ETag: "e-" + path, ContentType: "text/plain", CreatedBy: by, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("put %s: %v", path, err)
	}
}

func listAll(t *testing.T, st *postgres.StorageStore, sc storage.Scope, dir string, page int) []string {
	t.Helper()
	var out []string
	cursor := ""
	for {
		es, next, err := st.List(context.Background(), sc, storage.MustParsePath(dir), cursor, page)
		if err != nil {
			t.Fatalf("list %s: %v", dir, err)
		}
		for _, e := range es {
			out = append(out, string(e.Kind)+":"+e.Path.Name())
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

func TestStorageIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	st := postgres.NewStorageStore(db)
	sc, uid := storageScope(t, db)
	P := storage.MustParsePath

	putFile(t, st, sc, "/data/train/a.bin", 10, uid)
	putFile(t, st, sc, "/data/train/b.bin", 20, uid)
	putFile(t, st, sc, "/data/ünï/ç.txt", 5, uid)
	putFile(t, st, sc, "/top.txt", 1, uid)
	if got := fmt.Sprint(listAll(t, st, sc, "/", 1)); got != "[dir:data file:top.txt]" {
		t.Fatalf("root: %s", got)
	}
	if got := fmt.Sprint(listAll(t, st, sc, "/data", 1)); got != "[dir:train dir:ünï]" {
		t.Fatalf("/data: %s", got)
	}
	e, err := st.Get(ctx, sc, P("/data/train/b.bin"))
	if err != nil || e.Size != 20 || e.ETag != "e-/data/train/b.bin" || e.CreatedBy != uid || e.Kind != storage.File {
		t.Fatalf("get %+v %v", e, err)
	}
	if _, _, err := st.List(ctx, sc, P("/top.txt"), "", 10); code(err) != storage.CodeObjectNotFound {
		t.Fatalf("list of a file: %v", err)
	}
	if _, _, err := st.List(ctx, sc, P("/nope"), "", 10); code(err) != storage.CodeObjectNotFound {
		t.Fatalf("list of nothing: %v", err)
	}
	if _, _, err := st.List(ctx, sc, storage.Root, "!!", 10); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}

	// Files and folders cannot share a path, nor a file stand above one.
	now := time.Now()
	file := func(p string) storage.Entry {
		return storage.Entry{Path: P(p), Kind: storage.File, Size: 1, ETag: "x", CreatedAt: now, UpdatedAt: now}
	}
	if _, _, err := st.PutFile(ctx, sc, file("/data")); code(err) != storage.CodeConflict {
		t.Fatalf("file over a folder: %v", err)
	}
	if _, _, err := st.PutFile(ctx, sc, file("/top.txt/x")); code(err) != storage.CodeConflict {
		t.Fatalf("file below a file: %v", err)
	}
	if _, err := st.Get(ctx, sc, P("/top.txt/x")); code(err) != storage.CodeObjectNotFound {
		t.Fatalf("the refused put left a row: %v", err)
	}
	prev, found, err := st.PutFile(ctx, sc, storage.Entry{Path: P("/top.txt"), Kind: storage.File, Size: 7, ETag: "v2",
		CreatedAt: now, UpdatedAt: now})
	if err != nil || !found || prev.Size != 1 {
		t.Fatalf("replace: %+v %v %v", prev, found, err)
	}
	if err := st.Mkdir(ctx, sc, storage.Entry{Path: P("/data/train"), Kind: storage.Dir, CreatedAt: now}); code(err) != storage.CodeConflict {
		t.Fatalf("mkdir of an existing folder: %v", err)
	}
	if err := st.Mkdir(ctx, sc, storage.Entry{Path: P("/top.txt/sub"), Kind: storage.Dir, CreatedAt: now}); code(err) != storage.CodeConflict {
		t.Fatalf("mkdir below a file: %v", err)
	}
	if err := st.Mkdir(ctx, sc, storage.Entry{Path: P("/new/deep/er"), Kind: storage.Dir, CreatedBy: uid, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(listAll(t, st, sc, "/new/deep", 10)); got != "[dir:er]" {
		t.Fatalf("mkdir -p: %s", got)
	}

	// Move a folder with non-ASCII names below it; the rows follow.
	mv, err := st.Move(ctx, sc, P("/data"), P("/archive/2026/dätä"), now)
	if n := len(mv); err != nil || n != 6 || mv[0].Path.Canonical() == "data" {
		t.Fatalf("move folder: %v %v", mv, err)
	}
	if got := fmt.Sprint(listAll(t, st, sc, "/archive/2026/dätä/ünï", 10)); got != "[file:ç.txt]" {
		t.Fatalf("after move: %s", got)
	}
	if e, err := st.Get(ctx, sc, P("/archive/2026/dätä/train/a.bin")); err != nil || e.Size != 10 {
		t.Fatalf("moved file %+v %v", e, err)
	}
	if _, err := st.Get(ctx, sc, P("/data")); code(err) != storage.CodeObjectNotFound {
		t.Fatalf("old folder still there: %v", err)
	}
	for name, c := range map[string]struct{ from, to string }{
		"into itself":   {"/archive", "/archive/2026/x"},
		"onto itself":   {"/archive", "/archive"},
		"target exists": {"/top.txt", "/new"},
		"below a file":  {"/new", "/top.txt/new"},
	} {
		if _, err := st.Move(ctx, sc, P(c.from), P(c.to), now); code(err) != storage.CodeConflict {
			t.Errorf("move %s: %v; want conflict", name, err)
		}
	}
	if _, err := st.Move(ctx, sc, P("/missing"), P("/x"), now); code(err) != storage.CodeObjectNotFound {
		t.Fatalf("move of nothing: %v", err)
	}
	// A valid target (943 bytes) that would push archive/2026/dätä/train/a.bin past 950.
	long := "/" + strings.Repeat("l", 250) + "/" + strings.Repeat("m", 250) + "/" + strings.Repeat("n", 250) + "/" + strings.Repeat("o", 190)
	if _, err := st.Move(ctx, sc, P("/archive"), P(long), now); code(err) != storage.CodePathTraversal {
		t.Fatalf("move past the path limit: %v", err)
	}
	if mv, err := st.Move(ctx, sc, P("/top.txt"), P("/new/top-moved.txt"), now); err != nil || len(mv) != 1 ||
		mv[0].Path.Canonical() != "new/top-moved.txt" || mv[0].ETag != "v2" {
		t.Fatalf("move file: %v %v", mv, err)
	}

	files, next, err := st.Files(ctx, sc, P("/archive"), "", 2)
	if err != nil || len(files) != 2 || next == "" || files[0].Path.Canonical() != "archive/2026/dätä/train/a.bin" {
		t.Fatalf("files page: %v %q %v", files, next, err)
	}
	rest, next, err := st.Files(ctx, sc, P("/archive"), next, 2)
	if err != nil || len(rest) != 1 || next != "" {
		t.Fatalf("files page 2: %v %q %v", rest, next, err)
	}

	u, err := st.Usage(ctx, sc, now)
	if err != nil || u.UsedBytes != 10+20+5+7 || u.Files != 4 {
		t.Fatalf("usage %+v %v", u, err)
	}

	// Delete: a non-empty folder needs recursive; the files come back.
	if _, err := st.Delete(ctx, sc, P("/archive"), false); code(err) != storage.CodeConflict {
		t.Fatalf("delete non-empty: %v", err)
	}
	gone, err := st.Delete(ctx, sc, P("/archive"), true)
	if err != nil || len(gone) != 3 {
		t.Fatalf("delete recursive: %v %v", gone, err)
	}
	if _, err := st.Delete(ctx, sc, P("/archive"), true); code(err) != storage.CodeObjectNotFound {
		t.Fatalf("delete twice: %v", err)
	}
	if gone, err := st.Delete(ctx, sc, P("/new/deep/er"), false); err != nil || len(gone) != 0 {
		t.Fatalf("delete empty folder: %v %v", gone, err)
	}
	if u, _ := st.Usage(ctx, sc, now); u.UsedBytes != 7 || u.Files != 1 {
		t.Fatalf("usage after delete %+v", u)
	}

	// Another tenant naming this project sees nothing of it.
	other, _ := storageScope(t, db)
	spy := storage.Scope{TenantID: other.TenantID, ProjectID: sc.ProjectID}
	if _, err := st.Get(ctx, spy, P("/new/top-moved.txt")); code(err) != storage.CodeObjectNotFound {
		t.Fatalf("cross-tenant get: %v", err)
	}
	if es, _, _ := st.List(ctx, spy, storage.Root, "", 10); len(es) != 0 {
		t.Fatalf("cross-tenant list: %v", es)
	}
	if _, err := st.Delete(ctx, spy, P("/new"), true); code(err) != storage.CodeObjectNotFound {
		t.Fatalf("cross-tenant delete: %v", err)
	}
	if _, err := st.Move(ctx, spy, P("/new"), P("/stolen"), now); code(err) != storage.CodeObjectNotFound {
		t.Fatalf("cross-tenant move: %v", err)
	}
	scopes, _, err := st.Scopes(ctx, "", 100)
	if err != nil || len(scopes) != 1 || scopes[0] != sc {
		t.Fatalf("scopes %v %v", scopes, err)
	}
}

func TestStorageListPagesAFolderOfManyByKeyset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "")
	st := postgres.NewStorageStore(db)
	sc, uid := storageScope(t, db)
	now := time.Now()
	if err := st.Mkdir(ctx, sc, storage.Entry{Path: storage.MustParsePath("/many"), Kind: storage.Dir, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO storage_objects (tenant_id, project_id, path, parent, name, kind, size_bytes,
			etag, content_type, created_by, created_at, updated_at)
		SELECT $1, $2, 'many/f' || lpad(i::text, 5, '0'), 'many', 'f' || lpad(i::text, 5, '0'), 'file', 1, 'e', 'x/y', $3, now(), now()
		FROM generate_series(1, 2500) i`, sc.TenantID, sc.ProjectID, uid); err != nil {
		t.Fatal(err)
	}
	got := listAll(t, st, sc, "/many", 1000)
	if len(got) != 2500 || got[0] != "file:f00001" || got[2499] != "file:f02500" {
		t.Fatalf("listed %d: first %v", len(got), got[:1])
	}
	var plan string
	rows, err := db.Pool.Query(ctx, `EXPLAIN SELECT path FROM storage_objects WHERE project_id = $1 AND parent = 'many'
		AND name > 'f01000' AND tenant_id = $2 ORDER BY name LIMIT 100`, sc.ProjectID, sc.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		_ = rows.Scan(&line)
		plan += line + "\n"
	}
	if !strings.Contains(plan, "storage_objects_children") || strings.Contains(plan, "Sort") {
		t.Fatalf("listing is not an ordered index scan:\n%s", plan)
	}
}

// TestStorageReserveRace: 32 reservations of 10 bytes race for the 95
// bytes a quota of 100 leaves after a 5-byte file: exactly 9 win, and the
// sum never passes the quota.
func TestStorageReserveRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	st := postgres.NewStorageStore(db)
	sc, uid := storageScope(t, db)
	putFile(t, st, sc, "/seed", 5, uid)
	now := time.Now()
	var wins, refusals atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			_, err := st.Reserve(ctx, ports.Reservation{ID: newUUID(), Scope: sc, Path: storage.MustParsePath(fmt.Sprintf("/f%d", i)),
				Bytes: 10, UserID: uid, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, 100)
			switch {
			case err == nil:
				wins.Add(1)
			case code(err) == storage.CodeQuotaExceeded:
				refusals.Add(1)
			default:
				t.Errorf("reserve %d: %v", i, err)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	if wins.Load() != 9 || refusals.Load() != 23 {
		t.Fatalf("wins %d refusals %d; want 9 and 23", wins.Load(), refusals.Load())
	}
	u, err := st.Usage(ctx, sc, now)
	if err != nil || u.UsedBytes+u.ReservedBytes != 95 {
		t.Fatalf("usage %+v %v", u, err)
	}
	// An overwrite counts the file it replaces once.
	if _, err := st.Reserve(ctx, ports.Reservation{ID: newUUID(), Scope: sc, Path: storage.MustParsePath("/seed"), Bytes: 10,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, 100); err != nil {
		t.Fatalf("overwrite within the quota: %v", err)
	}
	if live, err := st.Live(ctx, sc, now); err != nil || len(live) != 10 {
		t.Fatalf("live %d %v", len(live), err)
	}
	// Expired reservations stop counting and are listed for the reconciler.
	later := now.Add(2 * time.Hour)
	if u, _ := st.Usage(ctx, sc, later); u.ReservedBytes != 0 {
		t.Fatalf("expired reservations still count: %+v", u)
	}
	exp, err := st.Expired(ctx, later, 100)
	if err != nil || len(exp) != 10 {
		t.Fatalf("expired %d %v", len(exp), err)
	}
	r := exp[0]
	got, err := st.GetReservation(ctx, sc, r.ID)
	if err != nil || got.Bytes != 10 || got.Path != r.Path {
		t.Fatalf("get reservation %+v %v", got, err)
	}
	if err := st.SetMultipartID(ctx, sc, r.ID, "mp-1"); err != nil {
		t.Fatal(err)
	}
	other, _ := storageScope(t, db)
	if _, err := st.GetReservation(ctx, other, r.ID); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("another project's reservation: %v", err)
	}
	if err := st.Release(ctx, sc, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.Release(ctx, sc, r.ID); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if _, err := st.GetReservation(ctx, sc, r.ID); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("released reservation: %v", err)
	}
}
