package storage

import (
	"strings"
	"unicode/utf8"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/text"
)

// Limits of a project path, in bytes. S3 keys are at most 1,024 bytes and
// the key is "{tenant_id}/{project_id}/" (74 bytes for two UUIDs) followed
// by the path, so a path is at most 950 bytes; a segment is at most 255
// bytes (NAME_MAX), so every name can be written on a node's file system
// when a folder is synced there.
const (
	MaxPathBytes    = 950
	MaxSegmentBytes = 255
	// MaxPathChars is the contract's maxLength for a path: it counts code
	// points and cannot be tighter than the byte limit for ASCII paths.
	MaxPathChars = MaxPathBytes
	// MaxIDBytes bounds a tenant or project id inside an object key.
	MaxIDBytes = 64
)

// CodePathTraversal refuses a path that is not a plain path inside the
// project: "..", ".", empty segments ("a//b"), a backslash, NUL, control or
// bidirectional characters, invalid UTF-8, a drive letter or a segment or
// path over the limits.
const CodePathTraversal fault.Code = "storage_path_traversal"

// Path is a canonical project path: segments joined by "/" without a
// leading or trailing slash; the project's root is "". It is only made by
// ParsePath (or the methods below, which keep it canonical), so holding one
// means it was checked. Shown to callers with a leading slash (String).
type Path struct{ p string }

// Root is the project's top folder.
var Root = Path{}

// ParsePath checks raw and returns its canonical form. A leading slash is
// optional (paths are always relative to the project root) and a trailing
// slash is dropped; "" and "/" are the root. Anything else odd is refused
// with storage_path_traversal naming field: the error never quotes the
// value.
func ParsePath(field, raw string) (Path, error) {
	bad := func(why string) (Path, error) {
		return Path{}, &fault.Error{Kind: fault.KindInvalid, Code: CodePathTraversal, Field: field,
			Message: field + " " + why}
	}
	if len(raw) > MaxPathBytes+2 { // a leading and a trailing slash are not part of the path
		return bad("is longer than the path limit")
	}
	if !utf8.ValidString(raw) {
		return bad("must be valid UTF-8")
	}
	s := strings.TrimPrefix(raw, "/")
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		if strings.Count(raw, "/") > 1 {
			return bad("must not contain empty segments")
		}
		return Root, nil
	}
	if len(s) > MaxPathBytes {
		return bad("is longer than the path limit")
	}
	for i := 0; i < len(s); {
		// ASCII (nearly every path) a byte at a time: the index decodes a
		// thousand paths a page (FromCanonical).
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		} else if r >= 0x20 && r != 0x7f && r != '\\' {
			i++
			continue
		}
		switch {
		case r == '\\':
			return bad("must not contain a backslash")
		case text.Refused(r) != "":
			return bad("must not contain " + text.Refused(r))
		case r == utf8.RuneError:
			return bad("must be valid UTF-8")
		}
		i += size
	}
	for i, rest := 0, s; ; i++ {
		seg, after, more := strings.Cut(rest, "/")
		switch {
		case seg == "":
			return bad("must not contain empty segments")
		case seg == "." || seg == "..":
			return bad("must not contain . or .. segments")
		case len(seg) > MaxSegmentBytes:
			return bad("has a name longer than the limit")
		case i == 0 && isDriveLetter(seg):
			return bad("must not start with a drive letter")
		}
		if !more {
			break
		}
		rest = after
	}
	return Path{p: s}, nil
}

// MustParsePath is ParsePath for constants in tests; it panics on a bad path.
func MustParsePath(raw string) Path {
	p, err := ParsePath("path", raw)
	if err != nil {
		panic(err)
	}
	return p
}

// isDriveLetter reports "C:" and the like, which some clients read as an
// absolute Windows path.
func isDriveLetter(seg string) bool {
	return len(seg) == 2 && seg[1] == ':' && (seg[0]|0x20 >= 'a' && seg[0]|0x20 <= 'z')
}

// FromCanonical rebuilds a Path from its canonical form as stored (the
// index, an object key), checking it again: a stored value that is not
// canonical is refused, never trusted.
func FromCanonical(s string) (Path, error) {
	p, err := ParsePath("path", s)
	if err != nil {
		return Path{}, err
	}
	if p.p != s {
		return Path{}, &fault.Error{Kind: fault.KindInvalid, Code: CodePathTraversal, Field: "path",
			Message: "path is not in canonical form"}
	}
	return p, nil
}

// Canonical is the stored form ("" for the root).
func (p Path) Canonical() string { return p.p }

// String is the form shown to callers: "/" and the canonical form.
func (p Path) String() string { return "/" + p.p }

// IsRoot reports the project's top folder.
func (p Path) IsRoot() bool { return p.p == "" }

// Name is the last segment ("" for the root).
func (p Path) Name() string {
	if i := strings.LastIndexByte(p.p, '/'); i >= 0 {
		return p.p[i+1:]
	}
	return p.p
}

// Parent is the folder holding p (the root's parent is the root).
func (p Path) Parent() Path {
	if i := strings.LastIndexByte(p.p, '/'); i >= 0 {
		return Path{p: p.p[:i]}
	}
	return Root
}

// Ancestors lists the folders above p, outermost first, without the root.
func (p Path) Ancestors() []Path {
	var out []Path
	for i := 0; i < len(p.p); i++ {
		if p.p[i] == '/' {
			out = append(out, Path{p: p.p[:i]})
		}
	}
	return out
}

// Within reports whether p is dir or lies below it. Every path is within
// the root.
func (p Path) Within(dir Path) bool {
	if dir.p == "" || p.p == dir.p {
		return true
	}
	return strings.HasPrefix(p.p, dir.p+"/")
}

// Rebase moves p from below from to below to: Rebase("a/b/c", "a", "x") is
// "x/b/c". ok is false when p is not within from, or when the result would
// break the path limits.
func (p Path) Rebase(from, to Path) (Path, bool) {
	if !p.Within(from) {
		return Path{}, false
	}
	rest := strings.TrimPrefix(p.p, from.p)
	rest = strings.TrimPrefix(rest, "/")
	var s string
	switch {
	case to.p == "":
		s = rest
	case rest == "":
		s = to.p
	default:
		s = to.p + "/" + rest
	}
	// Checked whole again: moving "x/C:" to the top would make a drive
	// letter of its first segment, which ParsePath refuses (fuzz case
	// testdata/fuzz/FuzzObjectKey/e2e4d005e100cbcb).
	moved, err := FromCanonical(s)
	if err != nil {
		return Path{}, false
	}
	return moved, true
}

// Join appends a relative path (canonical segments) to p.
func (p Path) Join(rel Path) (Path, bool) { return rel.Rebase(Root, p) }
