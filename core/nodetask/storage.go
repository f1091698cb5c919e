package nodetask

import (
	"net/url"
	"strings"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/core/text"
)

// StorageSync moves files between the project's storage and a folder of an
// allocation account's home, through presigned URLs minted for this task
// only (no credential reaches the node): pull downloads, scan lists what is
// there, push uploads (doc/storage.md, "Files on the node").
const StorageSync Type = "allocation.storage_sync"

// SyncDirection says what a storage_sync task does.
type SyncDirection string

const (
	SyncPull SyncDirection = "pull" // download Files into Dir
	SyncScan SyncDirection = "scan" // report the regular files below Dir
	SyncPush SyncDirection = "push" // upload Files from Dir
)

// Bounds of a storage_sync task. A larger folder is synced by several
// tasks.
const (
	MaxSyncFiles      = 1000
	MaxSyncURLLength  = 8192
	MaxSyncHeaders    = 8
	MaxSyncScanFiles  = 100000
	MaxSyncHeaderSize = 1024
)

// StorageSyncParams are a storage_sync task's parameters.
type StorageSyncParams struct {
	AllocationID string        `json:"allocation_id"`
	Username     string        `json:"username"`
	Direction    SyncDirection `json:"direction"`
	// Dir is the folder below the account's home, a canonical relative
	// path whose first name does not start with "." (never ~/.ssh).
	Dir string `json:"dir"`
	// Files to pull or push, paths relative to Dir (canonical).
	Files []SyncFile `json:"files,omitempty"`
	// MaxFiles and MaxBytes bound a scan (0: the node's defaults).
	MaxFiles int   `json:"max_files,omitempty"`
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// SyncFile is one file of a pull or push with its presigned request.
type SyncFile struct {
	Path    string            `json:"path"`
	Size    int64             `json:"size"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
}

// SyncReport is a storage_sync task's output.
type SyncReport struct {
	// Files: a scan's manifest, or each pulled/pushed file with its
	// outcome (Error empty on success; ETag of a pushed file).
	Files     []SyncFileResult `json:"files"`
	Bytes     int64            `json:"bytes"`
	Failed    int              `json:"failed"`
	Truncated bool             `json:"truncated,omitempty"` // a scan stopped at its bounds
	Skipped   int              `json:"skipped,omitempty"`   // names a project path cannot hold, links, devices
	// Time is the node's clock (Unix nanoseconds) when the task ended; a
	// later scan's MTime compares against it on the same clock.
	Time int64 `json:"time,omitempty"`
}

// SyncFileResult is one file of a report.
type SyncFileResult struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	ETag  string `json:"etag,omitempty"`
	Error string `json:"error,omitempty"`
	// MTime (scans) is the file's modification time, Unix nanoseconds of
	// the node's clock.
	MTime int64 `json:"mtime,omitempty"`
}

// ValidSyncDir checks a storage_sync folder: a canonical relative path
// (core/storage rules) whose first segment is not hidden.
func ValidSyncDir(dir string) error {
	p, err := storage.FromCanonical(dir)
	if err != nil || p.IsRoot() || strings.HasPrefix(dir, ".") {
		return fault.Invalid("params.dir", "dir must be a plain relative folder whose name does not start with '.'")
	}
	return nil
}

func validateStorageSync(p StorageSyncParams) error {
	if !usernameRE.MatchString(p.Username) {
		return fault.Invalid("params.username", "username must match ga_[a-z0-9]{8,24}")
	}
	if p.AllocationID == "" || len(p.AllocationID) > 64 {
		return fault.Invalid("params.allocation_id", "allocation_id is required")
	}
	if err := ValidSyncDir(p.Dir); err != nil {
		return err
	}
	if p.MaxFiles < 0 || p.MaxFiles > MaxSyncScanFiles || p.MaxBytes < 0 {
		return fault.Invalid("params.max_files", "scan bounds must be within 0..100000 files and non-negative bytes")
	}
	switch p.Direction {
	case SyncScan:
		if len(p.Files) > 0 {
			return fault.Invalid("params.files", "a scan takes no files")
		}
		return nil
	case SyncPull, SyncPush:
	default:
		return fault.Invalid("params.direction", "direction must be pull, scan or push")
	}
	if len(p.Files) > MaxSyncFiles {
		return fault.Invalid("params.files", "at most 1000 files per task")
	}
	seen := make(map[string]bool, len(p.Files))
	for _, f := range p.Files {
		fp, err := storage.FromCanonical(f.Path)
		if err != nil || fp.IsRoot() || seen[f.Path] {
			return fault.Invalid("params.files.path", "file paths must be canonical, relative and distinct")
		}
		seen[f.Path] = true
		if f.Size < 0 {
			return fault.Invalid("params.files.size", "sizes must not be negative")
		}
		u, err := url.Parse(f.URL)
		if len(f.URL) > MaxSyncURLLength || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fault.Invalid("params.files.url", "each file needs an absolute http(s) URL")
		}
		if len(f.Headers) > MaxSyncHeaders {
			return fault.Invalid("params.files.headers", "at most 8 headers per file")
		}
		for k, v := range f.Headers {
			if text.Line("params.files.headers", k, 1, MaxSyncHeaderSize) != nil || text.Line("params.files.headers", v, 0, MaxSyncHeaderSize) != nil ||
				strings.ContainsAny(k, " :") {
				return fault.Invalid("params.files.headers", "headers must be single-line names and values")
			}
		}
	}
	return nil
}
