package storage

import (
	"mime"
	"path"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/text"
)

// Stable error codes of project storage (doc/storage.md).
const (
	// CodeObjectNotFound: no file or folder at the path (404), also for a
	// path of another project, which is never looked up.
	CodeObjectNotFound fault.Code = "storage_object_not_found"
	// CodeConflict: the target exists (mkdir, rename), a file stands where a
	// folder is needed or the reverse, a folder is not empty (409).
	CodeConflict fault.Code = "storage_conflict"
	// CodeQuotaExceeded: the bytes do not fit the project's quota (400, with
	// used/limit/requested in the details).
	CodeQuotaExceeded fault.Code = "storage_quota_exceeded"
	// CodeTooLarge: one upload over storage.max_upload_bytes (413).
	CodeTooLarge fault.Code = "storage_object_too_large"
	// CodeSizeMismatch: the body was shorter or longer than declared (400);
	// nothing was stored.
	CodeSizeMismatch fault.Code = "storage_upload_size_mismatch"
)

// NotFound is the refusal for a missing file or folder.
func NotFound(p Path) *fault.Error {
	return &fault.Error{Kind: fault.KindNotFound, Code: CodeObjectNotFound, Message: "no file or folder at this path",
		Details: map[string]any{"path": p.String()}}
}

// Conflict is a storage_conflict refusal with a message for people.
func Conflict(msg string, p Path) *fault.Error {
	return &fault.Error{Kind: fault.KindConflict, Code: CodeConflict, Message: msg,
		Details: map[string]any{"path": p.String()}}
}

// Kind says whether an entry is a file or a folder.
type Kind string

const (
	File Kind = "file"
	Dir  Kind = "dir"
)

// Valid reports a known kind.
func (k Kind) Valid() bool { return k == File || k == Dir }

// Entry is one file or folder of a project, as the index holds it. Folders
// are explicit entries (made by mkdir, or as the missing ancestors of a
// file), so listing a folder is one index scan.
type Entry struct {
	Path        Path
	Kind        Kind
	Size        int64  // bytes; 0 for folders
	ETag        string // the object's ETag without quotes; "" for folders
	ContentType string // "" for folders
	CreatedBy   string // user id
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// DefaultContentType is stored when an upload names none.
const DefaultContentType = "application/octet-stream"

// MaxContentTypeLength bounds a content type, in characters.
const MaxContentTypeLength = 255

// FileContentType is the type a file named name is stored with: the one
// its uploader declared (NormalizeContentType's result), unless that says
// nothing about the file — none (application/octet-stream stands for it),
// or application/x-www-form-urlencoded, which HTTP clients put on any body
// they send (curl --data-binary) — and then the type the name's extension
// maps to in Go's table and the system's (mime.TypeByExtension), else
// application/octet-stream. The CLI and the Go client send octet-stream,
// and files synced back from a node declare nothing.
func FileContentType(name, declared string) string {
	mt, _, _ := mime.ParseMediaType(declared)
	if mt != DefaultContentType && mt != "application/x-www-form-urlencoded" {
		return declared
	}
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(name))); t != "" {
		if out, err := NormalizeContentType("content_type", t); err == nil {
			return out
		}
	}
	return DefaultContentType
}

// NormalizeContentType checks a caller's content type: empty becomes
// DefaultContentType; otherwise it must be single-line text that parses as
// a media type, and comes back in mime's canonical form.
func NormalizeContentType(field, ct string) (string, error) {
	if err := text.Line(field, ct, 0, MaxContentTypeLength); err != nil {
		return "", err
	}
	ct = strings.TrimSpace(ct)
	if ct == "" {
		return DefaultContentType, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if typ, sub, ok := strings.Cut(mt, "/"); err != nil || !ok || typ == "" || sub == "" || strings.Contains(sub, "/") {
		return "", fault.Invalid(field, field+" is not a media type")
	}
	out := mime.FormatMediaType(mt, params)
	if out == "" || len(out) > MaxContentTypeLength {
		return "", fault.Invalid(field, field+" is not a media type")
	}
	return out, nil
}
