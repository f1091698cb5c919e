package storage_test

import (
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/core/text"
)

// FuzzObjectKey: whatever a caller sends as a path — and wherever a rename
// moves it — the key is the project's prefix followed by a clean relative
// path that maps back to the same Path, and the same path joined under a
// folder on a node stays in that folder. testdata/fuzz/FuzzObjectKey holds
// the committed seed corpus; CI runs `go test -fuzz` on it for a time budget
// (.ci/run).
func FuzzObjectKey(f *testing.F) {
	for _, s := range []string{"", "/", "a", "/a/b/c.txt", "..", "/../x", "a/../../b", `a\..\b`, "//", "/a//b",
		"/a/./b", "C:/x", "c:", "/\x00", "/a\u202e", "/a\n", "/ünï/файл", "/.../x", "/..a/b..", "a/", "/a/b/",
		strings.Repeat("x/", 300), strings.Repeat("a", 256), "/%2e%2e/x", "/a/%00", "~/x", "$HOME/x", "/\xc0\xaf"} {
		f.Add(s, "/dst")
	}
	f.Add("/a/b", "")
	f.Add("/a/b", "/..")
	f.Add("/x", "/a/b/../../c")
	sc := storage.Scope{TenantID: "0193aaaa-0000-7000-8000-000000000001", ProjectID: "0193aaaa-0000-7000-8000-000000000002"}
	prefix, _ := sc.Prefix()
	f.Fuzz(func(t *testing.T, raw, dst string) {
		p, err := storage.ParsePath("path", raw)
		if err != nil {
			return
		}
		check(t, sc, prefix, p)
		to, err := storage.ParsePath("to", dst)
		if err != nil {
			return
		}
		if moved, ok := p.Rebase(p.Parent(), to); ok {
			check(t, sc, prefix, moved)
		}
		if joined, ok := to.Join(p); ok {
			check(t, sc, prefix, joined)
		}
	})
}

func check(t *testing.T, sc storage.Scope, prefix string, p storage.Path) {
	t.Helper()
	if p.IsRoot() {
		return
	}
	key, err := sc.ObjectKey(p)
	if err != nil {
		t.Fatalf("ObjectKey(%q): %v", p.Canonical(), err)
	}
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok || rest == "" || len(key) > 1024 {
		t.Fatalf("key %q is not under %q (or too long)", key, prefix)
	}
	if path.Clean("/"+rest) != "/"+rest || strings.HasPrefix(rest, "/") || strings.Contains(rest, `\`) {
		t.Fatalf("key rest %q is not a clean relative path", rest)
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > storage.MaxSegmentBytes {
			t.Fatalf("key %q has segment %q", key, seg)
		}
	}
	if !utf8.ValidString(rest) {
		t.Fatalf("key %q is not UTF-8", key)
	}
	for _, r := range rest {
		if text.Refused(r) != "" {
			t.Fatalf("key %q holds %U", key, r)
		}
	}
	back, ok := sc.PathOfKey(key)
	if !ok || back != p {
		t.Fatalf("PathOfKey(%q) = %q, %v; want %q", key, back.Canonical(), ok, p.Canonical())
	}
	home := "/home/ga_abcdefgh/project"
	if j := filepath.Join(home, filepath.FromSlash(rest)); !strings.HasPrefix(j, home+"/") {
		t.Fatalf("%q joined under %s escapes it: %s", rest, home, j)
	}
}
