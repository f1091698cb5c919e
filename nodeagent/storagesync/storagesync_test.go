package storagesync_test

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/nodeagent/storagesync"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

func store(t *testing.T) *fakes.ObjectStore {
	t.Helper()
	s := fakes.NewObjectStore()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.BaseURL = srv.URL
	return s
}

func getURL(t *testing.T, s *fakes.ObjectStore, key string, body string) nodetask.SyncFile {
	t.Helper()
	if _, err := s.Put(context.Background(), key, strings.NewReader(body), int64(len(body)), ""); err != nil {
		t.Fatal(err)
	}
	r, err := s.PresignGet(context.Background(), key, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return nodetask.SyncFile{Size: int64(len(body)), URL: r.URL}
}

func params(dir string, dirn nodetask.SyncDirection, files ...nodetask.SyncFile) nodetask.StorageSyncParams {
	return nodetask.StorageSyncParams{AllocationID: "a1", Username: "ga_abcdefgh", Direction: dirn, Dir: dir, Files: files}
}

func TestPullScanPushRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store(t)
	home := t.TempDir()
	tgt := storagesync.Target{Home: home, UID: -1, GID: -1}
	if os.Geteuid() == 0 {
		tgt.UID, tgt.GID = 65534, 65534 // nobody: what a pull writes belongs to the account
	}
	a := getURL(t, s, "t/p/a.txt", "alpha")
	a.Path = "a.txt"
	b := getURL(t, s, "t/p/deep/er/b.txt", "bravo!")
	b.Path = "deep/er/b.txt"
	missing := nodetask.SyncFile{Path: "gone.txt", Size: 1, URL: strings.Replace(a.URL, "a.txt", "nope.txt", 1)}
	if err := os.MkdirAll(filepath.Join(home, "project"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "project", "a.txt"), []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := storagesync.Run(ctx, nil, tgt, params("project", nodetask.SyncPull, a, b, missing))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || rep.Bytes != 11 || rep.Files[2].Error == "" || strings.Contains(rep.Files[2].Error, "sig=") {
		t.Fatalf("pull report %+v", rep)
	}
	for name, want := range map[string]string{"project/a.txt": "alpha", "project/deep/er/b.txt": "bravo!"} {
		got, err := os.ReadFile(filepath.Join(home, name))
		if err != nil || string(got) != want {
			t.Fatalf("%s = %q %v", name, got, err)
		}
		if tgt.UID >= 0 {
			st, _ := os.Stat(filepath.Join(home, name))
			if st.Sys().(*syscall.Stat_t).Uid != uint32(tgt.UID) {
				t.Fatalf("%s is not the account's", name)
			}
		}
	}
	if tgt.UID >= 0 {
		st, _ := os.Stat(filepath.Join(home, "project", "deep"))
		if st.Sys().(*syscall.Stat_t).Uid != uint32(tgt.UID) {
			t.Fatal("a folder the pull made is not the account's")
		}
	}

	// The user works: a new file, a link that must not be followed, a
	// temporary file of an interrupted pull.
	if err := os.WriteFile(filepath.Join(home, "project", "deep", "result.csv"), []byte("1,2,3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(home, "project", "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "project", ".gpuaas-sync-000000"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = storagesync.Run(ctx, nil, tgt, params("project", nodetask.SyncScan))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range rep.Files {
		names = append(names, f.Path)
	}
	if strings.Join(names, " ") != "a.txt deep/er/b.txt deep/result.csv" || rep.Skipped != 2 || rep.Bytes != 5+6+6 {
		t.Fatalf("scan %+v", rep)
	}
	short := params("project", nodetask.SyncScan)
	short.MaxFiles = 2
	if rep, _ := storagesync.Run(ctx, nil, tgt, short); !rep.Truncated || len(rep.Files) != 2 {
		t.Fatalf("bounded scan %+v", rep)
	}

	// Push back through presigned PUTs.
	var files []nodetask.SyncFile
	for _, f := range []nodetask.SyncFileResult{{Path: "deep/result.csv", Size: 6}, {Path: "a.txt", Size: 99}, {Path: "passwd", Size: 3}} {
		r, err := s.PresignPut(ctx, "t/p/"+f.Path, f.Size, "", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, nodetask.SyncFile{Path: f.Path, Size: f.Size, URL: r.URL, Headers: r.Headers})
	}
	rep, err = storagesync.Run(ctx, nil, tgt, params("project", nodetask.SyncPush, files...))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 2 || rep.Files[0].Error != "" || rep.Files[0].ETag == "" || rep.Files[1].Error == "" || rep.Files[2].Error == "" {
		t.Fatalf("push %+v", rep)
	}
	rc, err := s.Get(ctx, "t/p/deep/result.csv", ports.GetOptions{Length: -1})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if string(got) != "1,2,3\n" {
		t.Fatalf("pushed %q", got)
	}
	if _, err := s.Head(ctx, "t/p/passwd"); err == nil {
		t.Fatal("a link was followed and uploaded")
	}
}

// TestSyncNeverLeavesTheHome: a folder or a name the account turned into
// a link out of its home is refused; nothing is written outside.
func TestSyncNeverLeavesTheHome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store(t)
	home, outside := t.TempDir(), t.TempDir()
	tgt := storagesync.Target{Home: home, UID: -1, GID: -1}
	f := getURL(t, s, "t/p/x", "evil")
	if err := os.Symlink(outside, filepath.Join(home, "project")); err != nil {
		t.Fatal(err)
	}
	f.Path = "x"
	if _, err := storagesync.Run(ctx, nil, tgt, params("project", nodetask.SyncPull, f)); err == nil {
		t.Fatal("a pull into a link out of the home succeeded")
	}
	if err := os.Remove(filepath.Join(home, "project")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "project"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(home, "project", "sub")); err != nil {
		t.Fatal(err)
	}
	f.Path = "sub/x"
	rep, err := storagesync.Run(ctx, nil, tgt, params("project", nodetask.SyncPull, f))
	if err != nil || rep.Failed != 1 {
		t.Fatalf("a pull through a link: %+v %v", rep, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("files appeared outside the home: %v", entries)
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("top secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	put, _ := s.PresignPut(ctx, "t/p/sub/secret", 10, "", time.Minute)
	rep, _ = storagesync.Run(ctx, nil, tgt, params("project", nodetask.SyncPush,
		nodetask.SyncFile{Path: "sub/secret", Size: 10, URL: put.URL, Headers: put.Headers}))
	if rep.Failed != 1 {
		t.Fatalf("a push through a link out of the home: %+v", rep)
	}
	if _, err := s.Head(ctx, "t/p/sub/secret"); err == nil {
		t.Fatal("a file outside the home was uploaded")
	}
	if _, err := storagesync.Run(ctx, nil, tgt, params(".ssh", nodetask.SyncPull)); err == nil {
		t.Fatal("a sync into .ssh ran")
	}
}
