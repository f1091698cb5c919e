package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// StorageEntry is a file or folder of project storage.
type StorageEntry struct {
	Path        string `json:"path"`
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	SizeBytes   int64  `json:"size_bytes"`
	ETag        string `json:"etag"`
	ContentType string `json:"content_type"`
}

// StorageListing is one page of a folder.
type StorageListing struct {
	Path       string         `json:"path"`
	Entries    []StorageEntry `json:"entries"`
	NextCursor string         `json:"next_cursor"`
}

// transfer is the client for bodies that take longer than a JSON call.
func (c *Client) transfer() *http.Client {
	return &http.Client{Transport: c.HTTP.Transport}
}

func (c *Client) storageRequest(ctx context.Context, method, route string, q url.Values, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+"/api/v1/storage/"+route+"?"+q.Encode(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("X-Project-ID", c.Project)
	return req, nil
}

func statusError(method, path string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	se := &StatusError{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	var e struct {
		Error struct{ Code string }
	}
	if json.Unmarshal(b, &e) == nil {
		se.Code = e.Error.Code
	}
	return se
}

// Upload streams size bytes of r to a project path (PUT /storage/upload).
func (c *Client) Upload(ctx context.Context, path string, r io.Reader, size int64, contentType string) (StorageEntry, error) {
	req, err := c.storageRequest(ctx, http.MethodPut, "upload", url.Values{"path": {path}}, r)
	if err != nil {
		return StorageEntry{}, err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.transfer().Do(req)
	if err != nil {
		return StorageEntry{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return StorageEntry{}, statusError("PUT", "/storage/upload", resp)
	}
	var e StorageEntry
	return e, json.NewDecoder(resp.Body).Decode(&e)
}

// Download opens a project file, or the byte range rng ("bytes=a-b"; ""
// for all). The caller closes the body; the response says 200 or 206.
func (c *Client) Download(ctx context.Context, path, rng string) (*http.Response, error) {
	req, err := c.storageRequest(ctx, http.MethodGet, "download", url.Values{"path": {path}}, nil)
	if err != nil {
		return nil, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.transfer().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		defer resp.Body.Close()
		return nil, statusError("GET", "/storage/download", resp)
	}
	return resp, nil
}

// List reads every page of a folder.
func (c *Client) List(ctx context.Context, dir string) ([]StorageEntry, error) {
	var out []StorageEntry
	cursor := ""
	for {
		q := url.Values{"path": {dir}, "limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page StorageListing
		if err := c.Call(ctx, "GET", "/api/v1/storage/list?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Entries...)
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

// Presigned is POST /storage/presign's answer.
type Presigned struct {
	UploadID string `json:"upload_id"`
	Request  struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	} `json:"request"`
}

// Send makes a presigned request with plain HTTP (no platform token), as
// curl would, and returns the response.
func (p Presigned) Send(ctx context.Context, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, p.Request.Method, p.Request.URL, body)
	if err != nil {
		return nil, err
	}
	for k, v := range p.Request.Headers {
		if strings.EqualFold(k, "Content-Length") {
			n, _ := strconv.ParseInt(v, 10, 64)
			req.ContentLength = n
			continue
		}
		req.Header.Set(k, v)
	}
	if body != nil && req.ContentLength == 0 {
		req.ContentLength = size
	}
	return http.DefaultClient.Do(req)
}

// SSHRun runs one command on a node as user with signer (host keys are
// not checked: the scripts test reachability and authorisation).
func SSHRun(addr, user string, signer ssh.Signer, cmd string) (string, error) {
	out, err := sshRun(addr, user, signer, cmd)
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, strings.TrimSpace(out))
	}
	return out, nil
}
