// Package storagesync runs a storage_sync task's transfers on a node: it
// downloads project files into a folder of an allocation account's home,
// lists what is there, and uploads it back, through the presigned URLs in
// the task (the node holds no storage credential). Every file operation
// goes through an os.Root opened on the account's home, so neither "..",
// an absolute path nor a symbolic link the account planted can make the
// agent (root) read or write outside that home; written files belong to the
// account. Executors (sandbox, linuxexec) call Run with their account's
// home and ids.
package storagesync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/storage"
)

// Target is the account a sync works for.
type Target struct {
	// Home is the account's home directory (absolute).
	Home string
	// UID and GID own what a pull writes; -1 leaves the agent's.
	UID, GID int
}

// Defaults of a scan without bounds of its own.
const (
	DefaultScanFiles = 10000
	DefaultScanBytes = 100 << 30
)

// Run carries out p for t. A file that fails is reported in the report and
// the others go on; an error means nothing could be done (the folder could
// not be opened). client nil uses http.DefaultClient.
func Run(ctx context.Context, client *http.Client, t Target, p nodetask.StorageSyncParams) (nodetask.SyncReport, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if err := nodetask.ValidSyncDir(p.Dir); err != nil {
		return nodetask.SyncReport{}, err
	}
	root, err := os.OpenRoot(t.Home)
	if err != nil {
		return nodetask.SyncReport{}, fmt.Errorf("storagesync: open home: %w", err)
	}
	defer root.Close()
	var rep nodetask.SyncReport
	switch p.Direction {
	case nodetask.SyncPull:
		if err := mkdirAll(root, t, p.Dir); err != nil {
			return nodetask.SyncReport{}, err
		}
		rep = pull(ctx, client, root, t, p)
	case nodetask.SyncScan:
		if rep, err = scan(root, p); err != nil {
			return rep, err
		}
	case nodetask.SyncPush:
		rep = push(ctx, client, root, p)
	default:
		return nodetask.SyncReport{}, fmt.Errorf("storagesync: unknown direction %q", p.Direction)
	}
	rep.Time = time.Now().UnixNano()
	return rep, nil
}

// mkdirAll makes dir and its parents inside the root, each owned by the
// account.
func mkdirAll(root *os.Root, t Target, dir string) error {
	cur := ""
	for _, seg := range strings.Split(dir, "/") {
		cur = path.Join(cur, seg)
		err := root.Mkdir(cur, 0o755)
		switch {
		case err == nil:
			if t.UID >= 0 {
				if err := root.Lchown(cur, t.UID, t.GID); err != nil {
					return fmt.Errorf("storagesync: chown %s: %w", cur, err)
				}
			}
		case errors.Is(err, fs.ErrExist):
			st, err := root.Stat(cur)
			if err != nil {
				return fmt.Errorf("storagesync: %s: %w", cur, err)
			}
			if !st.IsDir() {
				return fmt.Errorf("storagesync: %s is not a folder", cur)
			}
		default:
			return fmt.Errorf("storagesync: mkdir %s: %w", cur, err)
		}
	}
	return nil
}

func pull(ctx context.Context, client *http.Client, root *os.Root, t Target, p nodetask.StorageSyncParams) nodetask.SyncReport {
	rep := nodetask.SyncReport{Files: make([]nodetask.SyncFileResult, 0, len(p.Files))}
	for _, f := range p.Files {
		res := nodetask.SyncFileResult{Path: f.Path, Size: f.Size}
		if err := pullOne(ctx, client, root, t, p.Dir, f); err != nil {
			res.Error = err.Error()
			rep.Failed++
		} else {
			rep.Bytes += f.Size
		}
		rep.Files = append(rep.Files, res)
		if ctx.Err() != nil {
			break
		}
	}
	return rep
}

// pullOne downloads one file into a temporary name next to it and renames
// it into place, so a reader never sees half a file and an existing file
// is replaced only by a complete one.
func pullOne(ctx context.Context, client *http.Client, root *os.Root, t Target, dir string, f nodetask.SyncFile) error {
	name := path.Join(dir, f.Path)
	if err := mkdirAll(root, t, path.Dir(name)); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return err
	}
	for k, v := range f.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("download: %w", scrub(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: status %d", resp.StatusCode)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	tmp := path.Join(path.Dir(name), ".gpuaas-sync-"+hex.EncodeToString(suffix[:]))
	out, err := root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(resp.Body, f.Size+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != f.Size {
		err = fmt.Errorf("download: %d bytes; want %d", n, f.Size)
	}
	if err == nil && t.UID >= 0 {
		err = root.Lchown(tmp, t.UID, t.GID)
	}
	if err == nil {
		if st, serr := root.Lstat(name); serr == nil && st.IsDir() {
			err = fmt.Errorf("a folder stands where the file goes")
		}
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return err
	}
	return nil
}

// scan lists the regular files below dir whose relative paths are project
// paths; links, devices and unrepresentable names are skipped. It stops at
// the bounds (Truncated).
func scan(root *os.Root, p nodetask.StorageSyncParams) (nodetask.SyncReport, error) {
	maxFiles, maxBytes := p.MaxFiles, p.MaxBytes
	if maxFiles == 0 {
		maxFiles = DefaultScanFiles
	}
	if maxBytes == 0 {
		maxBytes = DefaultScanBytes
	}
	rep := nodetask.SyncReport{Files: []nodetask.SyncFileResult{}}
	st, err := root.Lstat(p.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return rep, nil // nothing to push
	}
	if err != nil {
		return rep, fmt.Errorf("storagesync: %w", err)
	}
	if !st.IsDir() {
		return rep, fmt.Errorf("storagesync: %s is not a folder", p.Dir)
	}
	err = fs.WalkDir(root.FS(), p.Dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			rep.Skipped++
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if name == p.Dir {
			return nil
		}
		rel := strings.TrimPrefix(name, p.Dir+"/")
		if _, perr := storage.FromCanonical(rel); perr != nil || strings.HasPrefix(path.Base(rel), ".gpuaas-sync-") {
			rep.Skipped++
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			rep.Skipped++ // a link (never followed), a device, a socket
			return nil
		}
		info, err := d.Info()
		if err != nil {
			rep.Skipped++
			return nil
		}
		if len(rep.Files) >= maxFiles || rep.Bytes+info.Size() > maxBytes {
			rep.Truncated = true
			return fs.SkipAll
		}
		rep.Files = append(rep.Files, nodetask.SyncFileResult{Path: rel, Size: info.Size(), MTime: info.ModTime().UnixNano()})
		rep.Bytes += info.Size()
		return nil
	})
	return rep, err
}

func push(ctx context.Context, client *http.Client, root *os.Root, p nodetask.StorageSyncParams) nodetask.SyncReport {
	rep := nodetask.SyncReport{Files: make([]nodetask.SyncFileResult, 0, len(p.Files))}
	for _, f := range p.Files {
		res := nodetask.SyncFileResult{Path: f.Path, Size: f.Size}
		etag, err := pushOne(ctx, client, root, p.Dir, f)
		if err != nil {
			res.Error = err.Error()
			rep.Failed++
		} else {
			res.ETag = etag
			rep.Bytes += f.Size
		}
		rep.Files = append(rep.Files, res)
		if ctx.Err() != nil {
			break
		}
	}
	return rep
}

// pushOne uploads one regular file of exactly the size the URL was signed
// for; a file that is a link now, or changed size since the scan, is not
// sent.
func pushOne(ctx context.Context, client *http.Client, root *os.Root, dir string, f nodetask.SyncFile) (string, error) {
	name := path.Join(dir, f.Path)
	st, err := root.Lstat(name)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file")
	}
	in, err := root.Open(name)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if st2, err := in.Stat(); err != nil || !os.SameFile(st, st2) || st2.Size() != f.Size {
		return "", fmt.Errorf("the file changed since it was listed")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, f.URL, io.LimitReader(in, f.Size))
	if err != nil {
		return "", err
	}
	req.ContentLength = f.Size
	if f.Size == 0 {
		req.Body = http.NoBody
	}
	for k, v := range f.Headers {
		if strings.EqualFold(k, "Content-Length") {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n != f.Size {
				return "", fmt.Errorf("signed length differs from the file")
			}
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("upload: %w", scrub(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("upload: status %d", resp.StatusCode)
	}
	return strings.Trim(resp.Header.Get("ETag"), `"`), nil
}

// scrub keeps a presigned URL (a credential until it expires) out of
// errors, which travel back in the report and into logs.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New(ue.Op + ": " + ue.Err.Error())
	}
	return err
}
