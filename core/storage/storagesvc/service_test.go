package storagesvc_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/seed"
)

func TestUploadListDownloadMkdirRenameDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t, nil, nil, storagesvc.Config{})
	p, pid := r.m.Principal, r.m.ProjectID

	u := r.upload(t, "/data/train/a.txt", []byte("hello world"))
	if u.Replaced || u.Entry.Size != 11 || u.Entry.ETag == "" || u.Entry.ContentType != "text/plain" || u.Entry.CreatedBy != p.User.ID {
		t.Fatalf("upload %+v", u)
	}
	if got := r.names(t, "/"); got != "dir:data(0) " {
		t.Fatalf("root: %q", got)
	}
	if got := r.names(t, "/data/train"); got != "file:a.txt(11) " {
		t.Fatalf("/data/train: %q", got)
	}
	if got := string(r.read(t, "/data/train/a.txt", 0, -1)); got != "hello world" {
		t.Fatalf("download %q", got)
	}
	if got := string(r.read(t, "data/train/a.txt", 6, 5)); got != "world" {
		t.Fatalf("range %q", got)
	}
	if u := r.upload(t, "/data/train/a.txt", []byte("bye")); !u.Replaced {
		t.Fatal("the overwrite did not say it replaced")
	}
	if got := string(r.read(t, "/data/train/a.txt", 0, -1)); got != "bye" {
		t.Fatalf("after overwrite %q", got)
	}
	if _, err := r.svc.Mkdir(ctx, p, pid, "/data/empty"); err != nil {
		t.Fatal(err)
	}
	r.upload(t, "/data/train/b.txt", []byte("bbb"))
	mv, err := r.svc.Rename(ctx, p, pid, "/data", "/archive/data-2026")
	if err != nil || mv.Entries != 5 || mv.Entry.Path.String() != "/archive/data-2026" || mv.Entry.Kind != storage.Dir {
		t.Fatalf("rename folder %+v %v", mv, err)
	}
	if got := string(r.read(t, "/archive/data-2026/train/b.txt", 0, -1)); got != "bbb" {
		t.Fatalf("moved file %q", got)
	}
	if keys := strings.Join(r.objs.(*fakes.ObjectStore).Keys(), " "); strings.Contains(keys, "/data/") ||
		!strings.Contains(keys, r.key(t, "/archive/data-2026/train/a.txt")) {
		t.Fatalf("objects after the move: %s", keys)
	}
	if _, err := r.svc.Rename(ctx, p, pid, "/archive/data-2026/train/a.txt", "/a.txt"); err != nil {
		t.Fatal(err)
	}
	us, err := r.svc.Usage(ctx, p, pid)
	if err != nil || us.UsedBytes != 6 || us.Files != 2 || us.QuotaBytes != 100<<30 || us.ReservedBytes != 0 {
		t.Fatalf("usage %+v %v", us, err)
	}
	del, err := r.svc.Delete(ctx, p, pid, "/archive", true)
	if err != nil || del.Files != 1 || del.Bytes != 3 || del.Entry.Kind != storage.Dir {
		t.Fatalf("delete %+v %v", del, err)
	}
	if keys := r.objs.(*fakes.ObjectStore).Keys(); len(keys) != 1 || keys[0] != r.key(t, "/a.txt") {
		t.Fatalf("objects after delete: %v", keys)
	}
	subj := r.subjects(t)
	if subj[event.StorageObjectCreated] != 4 || subj[event.StorageObjectMoved] != 2 || subj[event.StorageObjectDeleted] != 1 {
		t.Fatalf("events %v", subj)
	}
	events, _, err := r.svc.AuditLogForTest(ctx, r.db, p.TenantID)
	if err != nil || events[storagesvc.ActionUpload] != 3 || events[storagesvc.ActionRename] != 2 ||
		events[storagesvc.ActionDelete] != 1 || events[storagesvc.ActionMkdir] != 1 {
		t.Fatalf("audit %v %v", events, err)
	}
}

func TestBadInputIsRefusedWithItsCode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t, nil, nil, storagesvc.Config{})
	p, pid := r.m.Principal, r.m.ProjectID
	r.upload(t, "/f.txt", []byte("x"))
	r.upload(t, "/dir/g.txt", []byte("y"))
	r.setQuota(t, 100)

	body := func(s string) io.Reader { return strings.NewReader(s) }
	cases := []struct {
		name string
		err  error
		code fault.Code
		kind fault.Kind
	}{}
	add := func(name string, err error, c fault.Code, k fault.Kind) {
		cases = append(cases, struct {
			name string
			err  error
			code fault.Code
			kind fault.Kind
		}{name, err, c, k})
	}
	_, err := r.svc.Upload(ctx, p, pid, "/../etc/passwd", body("x"), 1, "")
	add("upload traversal", err, storage.CodePathTraversal, fault.KindInvalid)
	_, err = r.svc.Upload(ctx, p, pid, "/", body("x"), 1, "")
	add("upload to the root", err, storage.CodePathTraversal, fault.KindInvalid)
	_, err = r.svc.List(ctx, p, pid, `a\b`, "", 10)
	add("list backslash", err, storage.CodePathTraversal, fault.KindInvalid)
	_, err = r.svc.Stat(ctx, p, pid, "/a/\x00")
	add("stat NUL", err, storage.CodePathTraversal, fault.KindInvalid)
	_, err = r.svc.Open(ctx, p, pid, "/nope")
	add("download missing", err, storage.CodeObjectNotFound, fault.KindNotFound)
	_, err = r.svc.Open(ctx, p, pid, "/dir")
	add("download a folder", err, storage.CodeConflict, fault.KindConflict)
	_, err = r.svc.Mkdir(ctx, p, pid, "/dir")
	add("mkdir exists", err, storage.CodeConflict, fault.KindConflict)
	_, err = r.svc.Mkdir(ctx, p, pid, "/f.txt/sub")
	add("mkdir below a file", err, storage.CodeConflict, fault.KindConflict)
	_, err = r.svc.Rename(ctx, p, pid, "/f.txt", "/dir")
	add("rename onto an entry", err, storage.CodeConflict, fault.KindConflict)
	_, err = r.svc.Rename(ctx, p, pid, "/dir", "/dir/inner")
	add("rename into itself", err, storage.CodeConflict, fault.KindConflict)
	_, err = r.svc.Rename(ctx, p, pid, "/nope", "/x")
	add("rename missing", err, storage.CodeObjectNotFound, fault.KindNotFound)
	_, err = r.svc.Rename(ctx, p, pid, "/f.txt", "/a/./b")
	add("rename to an odd path", err, storage.CodePathTraversal, fault.KindInvalid)
	_, err = r.svc.Delete(ctx, p, pid, "/dir", false)
	add("delete non-empty", err, storage.CodeConflict, fault.KindConflict)
	_, err = r.svc.Delete(ctx, p, pid, "/", true)
	add("delete the root", err, storage.CodePathTraversal, fault.KindInvalid)
	_, err = r.svc.Delete(ctx, p, pid, "/nope", true)
	add("delete missing", err, storage.CodeObjectNotFound, fault.KindNotFound)
	_, err = r.svc.Upload(ctx, p, pid, "/dir", body("x"), 1, "")
	add("upload over a folder", err, storage.CodeConflict, fault.KindConflict)
	_, err = r.svc.Upload(ctx, p, pid, "/f.txt/x", body("x"), 1, "")
	add("upload below a file", err, storage.CodeConflict, fault.KindConflict)
	_, err = r.svc.Upload(ctx, p, pid, "/big", body(strings.Repeat("x", 99)), 99, "")
	add("over quota", err, storage.CodeQuotaExceeded, fault.KindInvalid)
	_, err = r.svc.Upload(ctx, p, pid, "/short", body("abc"), 10, "")
	add("body shorter than declared", err, storage.CodeSizeMismatch, fault.KindInvalid)
	_, err = r.svc.Upload(ctx, p, pid, "/long", body("0123456789+"), 10, "")
	add("body longer than declared", err, storage.CodeSizeMismatch, fault.KindInvalid)
	_, err = r.svc.Upload(ctx, p, pid, "/ct", body("x"), 1, "not a type")
	add("bad content type", err, fault.CodeValidationFailed, fault.KindInvalid)
	_, err = r.svc.List(ctx, p, pid, "/", "", 5000)
	add("limit", err, fault.CodeValidationFailed, fault.KindInvalid)
	_, err = r.svc.Presign(ctx, p, pid, storagesvc.PresignRequest{Path: "/x", Method: "DELETE"})
	add("presign method", err, fault.CodeValidationFailed, fault.KindInvalid)
	_, err = r.svc.Usage(ctx, p, "")
	add("no project", err, fault.CodeProjectRequired, fault.KindInvalid)
	for _, c := range cases {
		if fe := fault.From(c.err); c.err == nil || fe.Code != c.code || fe.Kind != c.kind {
			t.Errorf("%s: %v; want %s (%v)", c.name, c.err, c.code, c.kind)
		}
	}
	quota := fault.From(cases[17].err)
	if quota.Details["used_bytes"] != int64(2) || quota.Details["limit_bytes"] != int64(100) {
		t.Fatalf("quota details %v", quota.Details)
	}
	// Nothing half-written is visible and every reservation was released.
	us, _ := r.svc.Usage(ctx, p, pid)
	if us.ReservedBytes != 0 || us.UsedBytes != 2 || us.Files != 2 {
		t.Fatalf("usage after refusals %+v", us)
	}
	if keys := r.objs.(*fakes.ObjectStore).Keys(); len(keys) != 2 {
		t.Fatalf("objects after refusals: %v", keys)
	}
}

// TestAnotherTenantsProjectIsNotFound: naming another tenant's project
// yields 404 and no bytes, whichever use case is called.
func TestAnotherTenantsProjectIsNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t, nil, nil, storagesvc.Config{})
	r.upload(t, "/secret.txt", []byte("secret"))
	spy := seed.NewMember(t, r.db, 0).Principal
	pid := r.m.ProjectID
	notFound := func(name string, err error) {
		t.Helper()
		if fe := fault.From(err); err == nil || fe.Kind != fault.KindNotFound {
			t.Errorf("%s: %v; want not found", name, err)
		}
	}
	_, err := r.svc.Open(ctx, spy, pid, "/secret.txt")
	notFound("open", err)
	_, err = r.svc.List(ctx, spy, pid, "/", "", 10)
	notFound("list", err)
	_, err = r.svc.Stat(ctx, spy, pid, "/secret.txt")
	notFound("stat", err)
	_, err = r.svc.Upload(ctx, spy, pid, "/x", strings.NewReader("x"), 1, "")
	notFound("upload", err)
	_, err = r.svc.Delete(ctx, spy, pid, "/secret.txt", false)
	notFound("delete", err)
	_, err = r.svc.Rename(ctx, spy, pid, "/secret.txt", "/mine")
	notFound("rename", err)
	_, err = r.svc.Presign(ctx, spy, pid, storagesvc.PresignRequest{Path: "/secret.txt", Method: "GET"})
	notFound("presign", err)
	_, err = r.svc.Usage(ctx, spy, pid)
	notFound("usage", err)
	_, err = r.svc.Mkdir(ctx, spy, pid, "/x")
	notFound("mkdir", err)
	_, err = r.svc.Open(ctx, r.m.Principal, "not-a-uuid", "/secret.txt")
	notFound("a project id that is no uuid", err)
	if got := string(r.read(t, "/secret.txt", 0, -1)); got != "secret" {
		t.Fatalf("owner read %q", got)
	}
}

// TestProjectIsReadOncePerProcess: the project's tenant, once read, is not
// read again (projects neither move nor go away), and still refuses
// another tenant's caller; a project that was not found is read again
// each time, so one created later is found.
func TestProjectIsReadOncePerProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t, nil, nil, storagesvc.Config{})
	r.upload(t, "/a.txt", []byte("a"))
	spy := seed.NewMember(t, r.db, 0).Principal
	for range 3 {
		if _, err := r.svc.List(ctx, r.m.Principal, r.m.ProjectID, "/", "", 10); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Stat(ctx, spy, r.m.ProjectID, "/a.txt"); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("another tenant's stat: %v; want not found", err)
		}
	}
	if n := r.projects.gets.Load(); n != 1 {
		t.Fatalf("the project was read %d times; want once", n)
	}
	// An id in another case names the same project, and the scope holds
	// the stored id.
	upper := strings.ToUpper(r.m.ProjectID)
	if _, err := r.svc.Upload(ctx, r.m.Principal, upper, "/b.txt", strings.NewReader("b"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, r, "/"); strings.Join(got, ",") != "a.txt,b.txt" {
		t.Fatalf("listing %v", got)
	}
	missing := "0193aaaa-0000-7000-8000-0000000000ff"
	before := r.projects.gets.Load()
	for range 2 {
		if _, err := r.svc.List(ctx, r.m.Principal, missing, "/", "", 10); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("missing project: %v", err)
		}
	}
	if n := r.projects.gets.Load() - before; n != 2 {
		t.Fatalf("a missing project was read %d times in 2 calls; want 2", n)
	}
}

func listNames(t *testing.T, r *rig, dir string) []string {
	t.Helper()
	p, err := r.svc.List(context.Background(), r.m.Principal, r.m.ProjectID, dir, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range p.Entries {
		out = append(out, e.Path.Name())
	}
	return out
}

// TestRenameRefusesAFolderThatChangedDuringTheCopy: a file uploaded into
// the folder while its objects are being copied fails the move; nothing
// moves and the copies are removed, so that upload is not lost.
func TestRenameRefusesAFolderThatChangedDuringTheCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := fakes.NewObjectStore()
	r := newRig(t, &copyHook{ObjectStore: f}, nil, storagesvc.Config{Concurrency: 1})
	p, pid := r.m.Principal, r.m.ProjectID
	r.upload(t, "/src/a", []byte("a"))
	r.upload(t, "/src/b", []byte("b"))
	hook := r.objs.(*copyHook)
	hook.once = func() { r.upload(t, "/src/late", []byte("late")) }
	if _, err := r.svc.Rename(ctx, p, pid, "/src", "/dst"); codeOf(err) != storage.CodeConflict {
		t.Fatalf("rename during an upload: %v; want storage_conflict", err)
	}
	if got := r.names(t, "/src"); got != "file:a(1) file:b(1) file:late(4) " {
		t.Fatalf("source after the refused move: %q", got)
	}
	for _, k := range f.Keys() {
		if strings.Contains(k, "/dst/") {
			t.Fatalf("a copy was left behind: %s", k)
		}
	}
	if _, err := r.svc.Rename(ctx, p, pid, "/src", "/dst"); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if got := string(r.read(t, "/dst/late", 0, -1)); got != "late" {
		t.Fatalf("moved late file %q", got)
	}
}

type copyHook struct {
	*fakes.ObjectStore
	once func()
}

func (h *copyHook) Copy(ctx context.Context, src, dst string) (ports.ObjectInfo, error) {
	if f := h.once; f != nil {
		h.once = nil
		f()
	}
	return h.ObjectStore.Copy(ctx, src, dst)
}

func TestPresignedTransfers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t, nil, nil, storagesvc.Config{SinglePutBytes: 1 << 20, PartBytes: 5 << 20})
	p, pid := r.m.Principal, r.m.ProjectID
	send := func(req ports.PresignedRequest, body []byte) *http.Response {
		t.Helper()
		hr, _ := http.NewRequest(req.Method, req.URL, bytes.NewReader(body))
		for k, v := range req.Headers {
			hr.Header.Set(k, v)
		}
		if body == nil {
			hr.Body = nil
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	// One PUT.
	body := []byte("direct bytes")
	pre, err := r.svc.Presign(ctx, p, pid, storagesvc.PresignRequest{Path: "/up/one.txt", Method: "put", Size: int64(len(body)),
		ContentType: "text/plain"})
	if err != nil || pre.Request == nil || pre.UploadID == "" || len(pre.Parts) != 0 {
		t.Fatalf("presign put %+v %v", pre, err)
	}
	if us, _ := r.svc.Usage(ctx, p, pid); us.ReservedBytes != int64(len(body)) {
		t.Fatalf("the presigned upload holds no reservation: %+v", us)
	}
	if _, err := r.svc.CompleteUpload(ctx, p, pid, pre.UploadID, nil); codeOf(err) != storage.CodeSizeMismatch {
		t.Fatalf("complete before the bytes: %v", err)
	}
	if resp := send(*pre.Request, body); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %d", resp.StatusCode)
	}
	other := seed.NewMember(t, r.db, 0).Principal
	other.TenantID = p.TenantID // a colleague in the same project
	if _, err := r.svc.CompleteUpload(ctx, other, pid, pre.UploadID, nil); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("complete by someone else: %v", err)
	}
	up, err := r.svc.CompleteUpload(ctx, p, pid, pre.UploadID, nil)
	if err != nil || up.Entry.Size != int64(len(body)) || up.Entry.ContentType != "text/plain" {
		t.Fatalf("complete %+v %v", up, err)
	}
	if us, _ := r.svc.Usage(ctx, p, pid); us.ReservedBytes != 0 || us.UsedBytes != int64(len(body)) {
		t.Fatalf("usage after completion %+v", us)
	}
	if _, err := r.svc.CompleteUpload(ctx, p, pid, pre.UploadID, nil); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("complete twice: %v", err)
	}

	// GET.
	get, err := r.svc.Presign(ctx, p, pid, storagesvc.PresignRequest{Path: "/up/one.txt", Method: "GET"})
	if err != nil || get.Request == nil {
		t.Fatal(err)
	}
	resp := send(*get.Request, nil)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("GET %q", got)
	}
	if _, err := r.svc.Presign(ctx, p, pid, storagesvc.PresignRequest{Path: "/up", Method: "GET"}); codeOf(err) != storage.CodeConflict {
		t.Fatalf("presign GET of a folder: %v", err)
	}
	if _, err := r.svc.Presign(ctx, p, pid, storagesvc.PresignRequest{Path: "/nope", Method: "GET"}); codeOf(err) != storage.CodeObjectNotFound {
		t.Fatalf("presign GET of nothing: %v", err)
	}

	// Multipart: over SinglePutBytes, parts of PartBytes.
	size := int64(5<<20 + 1000)
	big := bytes.Repeat([]byte("0123456789abcdef"), int(size/16)+1)[:size]
	mp, err := r.svc.Presign(ctx, p, pid, storagesvc.PresignRequest{Path: "/up/big.bin", Method: "PUT", Size: size})
	if err != nil || len(mp.Parts) != 2 || mp.Parts[0].Size != 5<<20 || mp.Parts[1].Size != 1000 || mp.Request != nil {
		t.Fatalf("presign multipart %+v %v", mp, err)
	}
	var parts []ports.CompletedPart
	off := int64(0)
	for _, part := range mp.Parts {
		resp := send(part.Request, big[off:off+part.Size])
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("part %d: %d", part.Number, resp.StatusCode)
		}
		parts = append(parts, ports.CompletedPart{Number: part.Number, ETag: strings.Trim(resp.Header.Get("ETag"), `"`)})
		off += part.Size
	}
	if _, err := r.svc.CompleteUpload(ctx, p, pid, mp.UploadID, nil); !fault.IsKind(err, fault.KindInvalid) {
		t.Fatalf("multipart completion without parts: %v", err)
	}
	if up, err := r.svc.CompleteUpload(ctx, p, pid, mp.UploadID, parts); err != nil || up.Entry.Size != size {
		t.Fatalf("complete multipart %+v %v", up, err)
	}
	if got := r.read(t, "/up/big.bin", 5<<20-3, 6); !bytes.Equal(got, big[5<<20-3:5<<20+3]) {
		t.Fatalf("assembled %q", got)
	}

	// An upload that expires is refused and its quota returns.
	exp, err := r.svc.Presign(ctx, p, pid, storagesvc.PresignRequest{Path: "/up/late.txt", Method: "PUT", Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(2 * time.Hour)
	if _, err := r.svc.CompleteUpload(ctx, p, pid, exp.UploadID, nil); codeOf(err) != storage.CodeConflict {
		t.Fatalf("complete after expiry: %v", err)
	}
	if us, _ := r.svc.Usage(ctx, p, pid); us.ReservedBytes != 0 {
		t.Fatalf("an expired upload still holds quota: %+v", us)
	}
	r.setQuota(t, 100)
	if _, err := r.svc.Presign(ctx, p, pid, storagesvc.PresignRequest{Path: "/up/huge", Method: "PUT", Size: 1 << 30}); codeOf(err) != storage.CodeQuotaExceeded {
		t.Fatalf("presign over quota: %v", err)
	}
}

func TestReconcileRepairsIndexAndObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t, nil, nil, storagesvc.Config{})
	f := r.objs.(*fakes.ObjectStore)
	r.upload(t, "/kept", []byte("kept"))
	r.upload(t, "/stale", []byte("old"))
	r.upload(t, "/dangling", []byte("gone"))
	// What crashes leave: an object without a row, a row whose object was
	// overwritten, a row whose object is gone; and an upload in flight.
	if _, err := f.Put(ctx, r.key(t, "/orphan"), strings.NewReader("o"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Put(ctx, r.key(t, "/stale"), strings.NewReader("newer!"), 6, "text/x"); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(ctx, r.key(t, "/dangling")); err != nil {
		t.Fatal(err)
	}
	inflight, err := r.svc.Presign(ctx, r.m.Principal, r.m.ProjectID, storagesvc.PresignRequest{Path: "/inflight", Method: "PUT", Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Put(ctx, r.key(t, "/inflight"), strings.NewReader("if"), 2, ""); err != nil {
		t.Fatal(err)
	}
	// An object of a project with no rows at all.
	lone := seed.NewMember(t, r.db, 0)
	loneKey, _ := storage.Scope{TenantID: lone.Principal.TenantID, ProjectID: lone.ProjectID}.ObjectKey(storage.MustParsePath("/x"))
	if _, err := f.Put(ctx, loneKey, strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}

	// Young orphans are left alone (their rows may be a moment away).
	rep, err := r.svc.Reconcile(ctx, storagesvc.ReconcileOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OrphansDeleted != 0 || rep.RowsDeleted != 1 || rep.RowsRepaired != 1 {
		t.Fatalf("first run %+v", rep)
	}
	r.clock.Advance(30 * time.Minute)
	rep, err = r.svc.Reconcile(ctx, storagesvc.ReconcileOptions{Grace: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OrphansDeleted != 2 || rep.RowsDeleted != 0 || rep.RowsRepaired != 0 || rep.Scopes != 2 {
		t.Fatalf("second run %+v", rep)
	}
	keys := strings.Join(f.Keys(), " ")
	if strings.Contains(keys, "/orphan") || strings.Contains(keys, loneKey) || !strings.Contains(keys, r.key(t, "/inflight")) {
		t.Fatalf("objects after reconcile: %s", keys)
	}
	if got := r.names(t, "/"); got != "file:kept(4) file:stale(6) " {
		t.Fatalf("index after reconcile: %q", got)
	}
	if got := string(r.read(t, "/stale", 0, -1)); got != "newer!" {
		t.Fatalf("repaired row reads %q", got)
	}
	// The upload in flight completes; once its reservation expires an
	// uncompleted one is removed like any orphan.
	if _, err := r.svc.CompleteUpload(ctx, r.m.Principal, r.m.ProjectID, inflight.UploadID, nil); err != nil {
		t.Fatal(err)
	}
	events, _, _ := r.svc.AuditLogForTest(ctx, r.db, r.m.Principal.TenantID)
	if events[storagesvc.ActionRepair] != 3 {
		t.Fatalf("repairs audited: %v", events)
	}
}
