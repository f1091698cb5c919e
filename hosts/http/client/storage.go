package client

import (
	"context"
	"io"
	"iter"
	"net/http"

	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/hosts/http/client/internal/apigen"
)

// StorageDeleted says what a delete removed.
type StorageDeleted = api.StorageDeleted

// Files iterates over a folder of the active project's storage ("" or "/"
// for the top folder), folders first, page by page.
func (c *Client) Files(ctx context.Context, folder string) iter.Seq2[StorageEntry, error] {
	return pages(func(cursor *string) ([]StorageEntry, *string, error) {
		p := &api.ListStorageParams{Cursor: cursor}
		if folder != "" && folder != "/" {
			p.Path = &folder
		}
		resp, err := c.gen.ListStorage(ctx, p)
		var out api.StorageListing
		err = decode(resp, err, &out, http.StatusOK)
		return out.Entries, out.NextCursor, err
	})
}

// Download writes a file of the project's storage into w.
func (c *Client) Download(ctx context.Context, path string, w io.Writer) (int64, error) {
	resp, err := c.gen.DownloadStorage(ctx, &api.DownloadStorageParams{Path: path})
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, errorOf(resp)
	}
	return io.Copy(w, resp.Body)
}

// Upload streams size bytes from r to a file of the project's storage
// (replacing one at the path). The body is sent as it is read: a failed
// upload is not retried (the caller may retry with a fresh reader).
func (c *Client) Upload(ctx context.Context, path string, r io.Reader, size int64) (StorageEntry, error) {
	setLength := func(_ context.Context, req *http.Request) error {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
		return nil
	}
	resp, err := c.gen.UploadStorageWithBody(ctx, &api.UploadStorageParams{Path: path, Size: &size},
		"application/octet-stream", r, apigen.RequestEditorFn(setLength))
	var out StorageEntry
	return out, decode(resp, err, &out, http.StatusOK, http.StatusCreated)
}

// Delete removes a file, or a folder with recursive.
func (c *Client) Delete(ctx context.Context, path string, recursive bool) (StorageDeleted, error) {
	resp, err := c.gen.DeleteStorage(ctx, &api.DeleteStorageParams{Path: path, Recursive: &recursive})
	var out StorageDeleted
	return out, decode(resp, err, &out, http.StatusOK)
}
