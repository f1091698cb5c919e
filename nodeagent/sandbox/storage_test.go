package sandbox

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

// TestSandboxSyncStorage: a pulled file is in the account's home and its
// shell sees it; an unknown account is refused.
func TestSandboxSyncStorage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := start(t)
	signer, line := newKey(t)
	provision(t, s, "ga_sync0001", line)
	objs := fakes.NewObjectStore()
	srv := httptest.NewServer(objs)
	t.Cleanup(srv.Close)
	objs.BaseURL = srv.URL
	if _, err := objs.Put(ctx, "t/p/data/hello.txt", strings.NewReader("hello from storage"), 18, ""); err != nil {
		t.Fatal(err)
	}
	get, _ := objs.PresignGet(ctx, "t/p/data/hello.txt", "", time.Minute)
	p := nodetask.StorageSyncParams{AllocationID: "a-ga_sync0001", Username: "ga_sync0001", Direction: nodetask.SyncPull,
		Dir: "data", Files: []nodetask.SyncFile{{Path: "hello.txt", Size: 18, URL: get.URL}}}
	rep, err := s.SyncStorage(ctx, p)
	if err != nil || rep.Failed != 0 {
		t.Fatalf("sync %+v %v", rep, err)
	}
	c, err := dial(s, "ga_sync0001", signer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if out := execOut(t, c, "cat data/hello.txt"); out != "hello from storage" {
		t.Fatalf("the shell sees %q", out)
	}
	p.Username = "ga_nobody01"
	if _, err := s.SyncStorage(ctx, p); err == nil {
		t.Fatal("a sync for an unknown account ran")
	}
}
