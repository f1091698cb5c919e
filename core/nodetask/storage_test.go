package nodetask_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gpuaas/gpuaas/core/nodetask"
)

func TestStorageSyncParams(t *testing.T) {
	t.Parallel()
	file := nodetask.SyncFile{Path: "data/a.bin", Size: 3, URL: "http://127.0.0.1:9000/b/t/p/data/a.bin?X-Amz-Signature=x"}
	ok := nodetask.StorageSyncParams{AllocationID: "a1", Username: "ga_abcdefgh", Direction: nodetask.SyncPull, Dir: "project",
		Files: []nodetask.SyncFile{file}}
	mut := func(f func(p *nodetask.StorageSyncParams)) nodetask.StorageSyncParams {
		p := ok
		p.Files = append([]nodetask.SyncFile(nil), ok.Files...)
		f(&p)
		return p
	}
	valid := map[string]nodetask.StorageSyncParams{
		"pull": ok,
		"scan": mut(func(p *nodetask.StorageSyncParams) { p.Direction, p.Files, p.MaxFiles = nodetask.SyncScan, nil, 10 }),
		"push with headers": mut(func(p *nodetask.StorageSyncParams) {
			p.Direction, p.Files[0].Headers = nodetask.SyncPush, map[string]string{"Content-Type": "text/plain", "Content-Length": "3"}
		}),
		"nested dir": mut(func(p *nodetask.StorageSyncParams) { p.Dir = "storage/datasets" }),
	}
	for name, p := range valid {
		raw, _ := json.Marshal(p)
		if _, err := nodetask.ValidateParams(nodetask.StorageSync, raw); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	invalid := map[string]nodetask.StorageSyncParams{
		"bad user":          mut(func(p *nodetask.StorageSyncParams) { p.Username = "root" }),
		"no allocation":     mut(func(p *nodetask.StorageSyncParams) { p.AllocationID = "" }),
		"bad direction":     mut(func(p *nodetask.StorageSyncParams) { p.Direction = "copy" }),
		"hidden dir":        mut(func(p *nodetask.StorageSyncParams) { p.Dir = ".ssh" }),
		"home itself":       mut(func(p *nodetask.StorageSyncParams) { p.Dir = "" }),
		"absolute dir":      mut(func(p *nodetask.StorageSyncParams) { p.Dir = "/etc" }),
		"dir traversal":     mut(func(p *nodetask.StorageSyncParams) { p.Dir = "a/../../etc" }),
		"file traversal":    mut(func(p *nodetask.StorageSyncParams) { p.Files[0].Path = "../.ssh/authorized_keys" }),
		"absolute file":     mut(func(p *nodetask.StorageSyncParams) { p.Files[0].Path = "/etc/passwd" }),
		"duplicate file":    mut(func(p *nodetask.StorageSyncParams) { p.Files = append(p.Files, p.Files[0]) }),
		"negative size":     mut(func(p *nodetask.StorageSyncParams) { p.Files[0].Size = -1 }),
		"file URL scheme":   mut(func(p *nodetask.StorageSyncParams) { p.Files[0].URL = "file:///etc/shadow" }),
		"relative URL":      mut(func(p *nodetask.StorageSyncParams) { p.Files[0].URL = "/b/k" }),
		"header with colon": mut(func(p *nodetask.StorageSyncParams) { p.Files[0].Headers = map[string]string{"A:B": "x"} }),
		"header newline":    mut(func(p *nodetask.StorageSyncParams) { p.Files[0].Headers = map[string]string{"A": "x\r\nB: y"} }),
		"scan with files":   mut(func(p *nodetask.StorageSyncParams) { p.Direction = nodetask.SyncScan }),
		"too many files": mut(func(p *nodetask.StorageSyncParams) {
			p.Files = nil
			for i := 0; i <= nodetask.MaxSyncFiles; i++ {
				f := file
				f.Path = fmt.Sprintf("f%d", i)
				p.Files = append(p.Files, f)
			}
		}),
	}
	for name, p := range invalid {
		raw, _ := json.Marshal(p)
		if _, err := nodetask.ValidateParams(nodetask.StorageSync, raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if !nodetask.Known(nodetask.StorageSync) {
		t.Fatal("storage_sync is not in the catalogue")
	}
}
