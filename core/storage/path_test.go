package storage_test

import (
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
)

func TestParsePathCanonicalForms(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"":                     "",
		"/":                    "",
		"a":                    "a",
		"/a":                   "a",
		"a/":                   "a",
		"/datasets/train.bin":  "datasets/train.bin",
		"/datasets/imagenet/":  "datasets/imagenet",
		"/ünïcødé/файл.txt":    "ünïcødé/файл.txt",
		"/a b/c d":             "a b/c d",
		"/.hidden/..dots../x.": ".hidden/..dots../x.",
		"/C:x/y":               "C:x/y",
		"/1:/y":                "1:/y",
		"/" + strings.Repeat("a", storage.MaxSegmentBytes): strings.Repeat("a", storage.MaxSegmentBytes),
	} {
		p, err := storage.ParsePath("path", raw)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", raw, err)
			continue
		}
		if p.Canonical() != want || p.String() != "/"+want {
			t.Errorf("ParsePath(%q) = %q (%q); want %q", raw, p.Canonical(), p.String(), want)
		}
	}
}

func TestParsePathRefusesTraversalAndOddPaths(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("abcdefghi/", storage.MaxPathBytes/10) + "x"
	for name, raw := range map[string]string{
		"dotdot":              "..",
		"dotdot below":        "/a/../../b",
		"dotdot last":         "/a/..",
		"dot":                 "/a/./b",
		"only dot":            ".",
		"double slash":        "//",
		"empty segment":       "/a//b",
		"leading double":      "//a",
		"backslash":           `/a\..\b`,
		"backslash alone":     `\`,
		"NUL":                 "/a\x00b",
		"newline":             "/a\nb",
		"tab":                 "/a\tb",
		"escape":              "/a\x1b[31mb",
		"DEL":                 "/a\x7fb",
		"C1":                  "/a\u0085b",
		"bidi override":       "/a\u202eb",
		"line separator":      "/a\u2028b",
		"invalid UTF-8":       "/a\xffb",
		"drive letter":        "C:",
		"drive letter folder": "/c:/windows",
		"long segment":        "/" + strings.Repeat("a", storage.MaxSegmentBytes+1),
		"long path":           long,
		"over 1024":           "/" + strings.Repeat("a/", 600),
	} {
		_, err := storage.ParsePath("path", raw)
		fe := fault.From(err)
		if err == nil || fe.Code != storage.CodePathTraversal || fe.Kind != fault.KindInvalid || fe.Field != "path" {
			t.Errorf("%s: ParsePath = %v; want storage_path_traversal on field path", name, err)
			continue
		}
		if strings.Contains(fe.Message, raw) && raw != "" && len(raw) > 2 {
			t.Errorf("%s: the message quotes the value: %q", name, fe.Message)
		}
	}
}

func TestPathNavigation(t *testing.T) {
	t.Parallel()
	p := storage.MustParsePath("/a/b/c.txt")
	if p.Name() != "c.txt" || p.Parent().Canonical() != "a/b" || p.Parent().Parent().Parent() != storage.Root {
		t.Fatalf("name %q parent %q", p.Name(), p.Parent().Canonical())
	}
	anc := p.Ancestors()
	if len(anc) != 2 || anc[0].Canonical() != "a" || anc[1].Canonical() != "a/b" {
		t.Fatalf("ancestors %v", anc)
	}
	if len(storage.MustParsePath("/x").Ancestors()) != 0 {
		t.Fatal("a top-level entry has ancestors")
	}
	if !p.Within(storage.MustParsePath("/a")) || !p.Within(storage.Root) || !p.Within(p) {
		t.Fatal("Within refused an ancestor")
	}
	if p.Within(storage.MustParsePath("/a/b/c")) || storage.MustParsePath("/ab").Within(storage.MustParsePath("/a")) {
		t.Fatal("Within matched a sibling with a common prefix")
	}
	got, ok := p.Rebase(storage.MustParsePath("/a"), storage.MustParsePath("/x/y"))
	if !ok || got.Canonical() != "x/y/b/c.txt" {
		t.Fatalf("Rebase = %q %v", got.Canonical(), ok)
	}
	got, ok = p.Rebase(p, storage.MustParsePath("/z"))
	if !ok || got.Canonical() != "z" {
		t.Fatalf("Rebase of itself = %q %v", got.Canonical(), ok)
	}
	got, ok = p.Rebase(storage.MustParsePath("/a"), storage.Root)
	if !ok || got.Canonical() != "b/c.txt" {
		t.Fatalf("Rebase to root = %q %v", got.Canonical(), ok)
	}
	if _, ok := p.Rebase(storage.MustParsePath("/b"), storage.Root); ok {
		t.Fatal("Rebase from a folder p is not in")
	}
	deep := storage.MustParsePath("/" + strings.Repeat("a", 200) + "/" + strings.Repeat("b", 200) + "/" + strings.Repeat("c", 200))
	if _, ok := deep.Rebase(storage.Root, storage.MustParsePath("/"+strings.Repeat("d", 255)+"/"+strings.Repeat("e", 255))); ok {
		t.Fatal("Rebase past the path limit succeeded")
	}
}

func TestFromCanonicalRefusesWhatIsNotCanonical(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"/a", "a/", "a//b", "../a", "a/./b"} {
		if _, err := storage.FromCanonical(s); err == nil {
			t.Errorf("FromCanonical(%q) accepted", s)
		}
	}
	if p, err := storage.FromCanonical("a/b"); err != nil || p.Canonical() != "a/b" {
		t.Fatalf("FromCanonical(a/b) = %v %v", p, err)
	}
}

func TestObjectKeyStaysUnderTheProject(t *testing.T) {
	t.Parallel()
	sc := storage.Scope{TenantID: "0193aaaa-0000-7000-8000-000000000001", ProjectID: "0193aaaa-0000-7000-8000-000000000002"}
	key, err := sc.ObjectKey(storage.MustParsePath("/data/x.bin"))
	if err != nil || key != sc.TenantID+"/"+sc.ProjectID+"/data/x.bin" {
		t.Fatalf("key %q %v", key, err)
	}
	if p, ok := sc.PathOfKey(key); !ok || p.Canonical() != "data/x.bin" {
		t.Fatalf("PathOfKey = %q %v", p.Canonical(), ok)
	}
	if _, err := sc.ObjectKey(storage.Root); fault.From(err).Code != storage.CodePathTraversal {
		t.Fatalf("root key: %v", err)
	}
	other := storage.Scope{TenantID: sc.TenantID, ProjectID: "0193aaaa-0000-7000-8000-000000000003"}
	if _, ok := other.PathOfKey(key); ok {
		t.Fatal("another project's key resolved to a path")
	}
	for _, k := range []string{sc.TenantID + "/" + sc.ProjectID + "/", sc.TenantID + "/" + sc.ProjectID + "/a//b",
		sc.TenantID + "/" + sc.ProjectID + "/../x", sc.TenantID + "/" + sc.ProjectID} {
		if _, ok := sc.PathOfKey(k); ok {
			t.Errorf("PathOfKey(%q) accepted", k)
		}
	}
	for _, bad := range []storage.Scope{{}, {TenantID: "t", ProjectID: ""}, {TenantID: "t/..", ProjectID: "p"},
		{TenantID: "t", ProjectID: "p/q"}, {TenantID: strings.Repeat("t", 65), ProjectID: "p"}} {
		if _, err := bad.ObjectKey(storage.MustParsePath("/a")); fault.KindOf(err) != fault.KindInternal {
			t.Errorf("scope %+v: %v; want internal", bad, err)
		}
	}
}

func TestNormalizeContentType(t *testing.T) {
	t.Parallel()
	if ct, err := storage.NormalizeContentType("content_type", ""); err != nil || ct != storage.DefaultContentType {
		t.Fatalf("empty: %q %v", ct, err)
	}
	if ct, err := storage.NormalizeContentType("content_type", "Text/Plain; Charset=UTF-8"); err != nil || ct != "text/plain; charset=UTF-8" {
		t.Fatalf("text/plain: %q %v", ct, err)
	}
	for _, bad := range []string{"text", "a/b\x00", "text/plain\n", "/", strings.Repeat("a", 300) + "/b"} {
		if _, err := storage.NormalizeContentType("content_type", bad); fault.KindOf(err) != fault.KindInvalid {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestFileContentType: a declared type stands unless it says nothing about
// the file (none, octet-stream, a form encoding), and then the name's
// extension decides (Go's built-in table: .json, .png, .html), else
// octet-stream.
func TestFileContentType(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, declared, want string }{
		{"data.json", "application/octet-stream", "application/json"},
		{"PLOT.PNG", "application/x-www-form-urlencoded", "image/png"},
		{"page.html", "application/octet-stream; x=y", "text/html; charset=utf-8"},
		{"weights.safetensors", "application/x-www-form-urlencoded", storage.DefaultContentType},
		{"noext", storage.DefaultContentType, storage.DefaultContentType},
		{"data.json", "text/csv", "text/csv"},
		{"form.bin", "multipart/form-data; boundary=x", "multipart/form-data; boundary=x"},
	} {
		if got := storage.FileContentType(c.name, c.declared); got != c.want {
			t.Errorf("FileContentType(%q, %q) = %q, want %q", c.name, c.declared, got, c.want)
		}
	}
}
