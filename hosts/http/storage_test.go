package httphost

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// storageClient calls the storage routes as one user in one project.
type storageClient struct {
	t       *testing.T
	ts      *httptest.Server
	tok     string
	project string
}

func (c storageClient) call(method, route string, q url.Values, hdr http.Header, body io.Reader) (*http.Response, []byte) {
	c.t.Helper()
	u := c.ts.URL + "/api/v1/storage/" + route
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.tok)
	req.Header.Set("X-Project-ID", c.project)
	resp, err := c.ts.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (c storageClient) jsonCall(method, route string, v any) (*http.Response, []byte) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	return c.call(method, route, nil, http.Header{"Content-Type": {"application/json"}}, bytes.NewReader(b))
}

func (c storageClient) upload(path string, body []byte) (*http.Response, []byte) {
	c.t.Helper()
	return c.call(http.MethodPut, "upload", url.Values{"path": {path}}, http.Header{"Content-Type": {"text/plain"}},
		bytes.NewReader(body))
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func wantCode(t *testing.T, name string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	var e struct {
		Error errorJSON `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != status || (code != "" && e.Error.Code != code) {
		t.Errorf("%s: %d %s; want %d %s\n%s", name, resp.StatusCode, e.Error.Code, status, code, body)
	}
}

func TestStorageRoutes(t *testing.T) {
	t.Parallel()
	ts, _, iss := fullStack(t)
	tok := iss.Mint(t, tokens.Subject("alice-storage"), tokens.Email("alice-storage@example.com"), tokens.Name("Alice"))
	c := storageClient{t: t, ts: ts, tok: tok, project: signInDefaultProject(t, ts, tok)}

	// A body far over the 1 MiB JSON limit streams through.
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	resp, body := c.upload("/data/big.bin", big)
	wantCode(t, "upload big", resp, body, http.StatusCreated, "")
	var e struct {
		Path      string `json:"path"`
		Kind      string `json:"kind"`
		SizeBytes int64  `json:"size_bytes"`
		Etag      string `json:"etag"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Path != "/data/big.bin" || e.Kind != "file" || e.SizeBytes != int64(len(big)) || e.Etag == "" {
		t.Fatalf("upload answer %s", body)
	}
	resp, body = c.upload("/data/big.bin", []byte("small now"))
	wantCode(t, "overwrite", resp, body, http.StatusOK, "")
	resp, _ = c.upload("/data/big.bin", big)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second overwrite %d", resp.StatusCode)
	}

	resp, body = c.call(http.MethodGet, "list", nil, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"data","kind":"dir"`) {
		t.Fatalf("list root %d %s", resp.StatusCode, body)
	}
	resp, body = c.call(http.MethodGet, "stat", q("path", "data/big.bin"), nil, nil)
	wantCode(t, "stat", resp, body, 200, "")

	// Download: whole, ranges, ETag.
	resp, body = c.call(http.MethodGet, "download", q("path", "/data/big.bin"), nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, big) || resp.Header.Get("Content-Type") != "text/plain" ||
		resp.Header.Get("Content-Security-Policy") != "sandbox" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("download %d %d bytes %v", resp.StatusCode, len(body), resp.Header)
	}
	etag := resp.Header.Get("ETag")
	resp, body = c.call(http.MethodGet, "download", q("path", "/data/big.bin"), http.Header{"Range": {"bytes=100-199"}}, nil)
	if resp.StatusCode != 206 || !bytes.Equal(body, big[100:200]) || resp.Header.Get("Content-Range") != "bytes 100-199/3145728" {
		t.Fatalf("range %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = c.call(http.MethodGet, "download", q("path", "/data/big.bin"), http.Header{"Range": {"bytes=-10"}}, nil)
	if resp.StatusCode != 206 || !bytes.Equal(body, big[len(big)-10:]) {
		t.Fatalf("suffix range %d %q", resp.StatusCode, body)
	}
	resp, body = c.call(http.MethodGet, "download", q("path", "/data/big.bin"), http.Header{"Range": {"bytes=3145728-"}}, nil)
	wantCode(t, "range past the end", resp, body, http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable")
	if resp.Header.Get("Content-Range") != "bytes */3145728" {
		t.Fatalf("416 Content-Range %q", resp.Header.Get("Content-Range"))
	}
	resp, body = c.call(http.MethodGet, "download", q("path", "/data/big.bin"), http.Header{"Range": {"bytes=0-1,5-6"}}, nil)
	if resp.StatusCode != 200 || len(body) != len(big) {
		t.Fatalf("several ranges: %d %d", resp.StatusCode, len(body))
	}
	resp, body = c.call(http.MethodGet, "download", q("path", "/data/big.bin"), http.Header{"If-None-Match": {etag}}, nil)
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("If-None-Match %d", resp.StatusCode)
	}
	resp, body = c.call(http.MethodGet, "download", q("path", "/data/big.bin"),
		http.Header{"Range": {"bytes=0-0"}, "If-Range": {`"stale"`}}, nil)
	if resp.StatusCode != 200 || len(body) != len(big) {
		t.Fatalf("If-Range with another ETag: %d %d", resp.StatusCode, len(body))
	}

	// Mkdir, rename a folder, delete, usage.
	resp, body = c.jsonCall(http.MethodPost, "mkdir", map[string]string{"path": "/empty/inner"})
	wantCode(t, "mkdir", resp, body, http.StatusCreated, "")
	resp, body = c.jsonCall(http.MethodPost, "mkdir", map[string]string{"path": "/empty/inner"})
	wantCode(t, "mkdir again", resp, body, http.StatusConflict, "storage_conflict")
	resp, body = c.jsonCall(http.MethodPost, "rename", map[string]string{"from": "/data", "to": "/archive/data"})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"entries":2`) {
		t.Fatalf("rename %d %s", resp.StatusCode, body)
	}
	resp, body = c.call(http.MethodGet, "download", q("path", "/archive/data/big.bin"), http.Header{"Range": {"bytes=0-9"}}, nil)
	if resp.StatusCode != 206 || string(body) != "0123456789" {
		t.Fatalf("moved file %d %q", resp.StatusCode, body)
	}
	resp, body = c.call(http.MethodDelete, "delete", q("path", "/archive"), nil, nil)
	wantCode(t, "delete non-empty", resp, body, http.StatusConflict, "storage_conflict")
	resp, body = c.call(http.MethodDelete, "delete", q("path", "/archive", "recursive", "true"), nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"files":1`) {
		t.Fatalf("delete %d %s", resp.StatusCode, body)
	}
	resp, body = c.call(http.MethodGet, "usage", nil, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"used_bytes":0`) || !strings.Contains(string(body), `"folders":2`) {
		t.Fatalf("usage %d %s", resp.StatusCode, body)
	}

	// Presigned round trip through the store's own URLs.
	payload := []byte("via a presigned URL")
	resp, body = c.jsonCall(http.MethodPost, "presign", map[string]any{"path": "/pre.txt", "method": "PUT",
		"size_bytes": len(payload), "content_type": "text/plain"})
	var pre struct {
		UploadID string `json:"upload_id"`
		Request  struct {
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"request"`
	}
	if err := json.Unmarshal(body, &pre); err != nil || resp.StatusCode != 200 || pre.UploadID == "" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("presign %d %s", resp.StatusCode, body)
	}
	// Presigned URLs are credentials: an idempotency key never replays them.
	var ids []string
	for i := 0; i < 2; i++ {
		b, _ := json.Marshal(map[string]any{"path": "/other.txt", "method": "PUT", "size_bytes": 1})
		resp, body := c.call(http.MethodPost, "presign", nil, http.Header{"Content-Type": {"application/json"},
			"X-Idempotency-Key": {"same-key"}}, bytes.NewReader(b))
		var p struct {
			UploadID string `json:"upload_id"`
		}
		_ = json.Unmarshal(body, &p)
		if resp.StatusCode != 200 || resp.Header.Get("Idempotent-Replayed") != "" || p.UploadID == "" {
			t.Fatalf("presign with a key: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		ids = append(ids, p.UploadID)
	}
	if ids[0] == ids[1] {
		t.Fatal("a presign answer was replayed from the idempotency store")
	}
	put, _ := http.NewRequest(pre.Request.Method, pre.Request.URL, bytes.NewReader(payload))
	for k, v := range pre.Request.Headers {
		put.Header.Set(k, v)
	}
	if pr, err := http.DefaultClient.Do(put); err != nil || pr.StatusCode != 200 {
		t.Fatalf("PUT to the presigned URL: %v %v", pr, err)
	}
	resp, body = c.jsonCall(http.MethodPost, "presign/complete", map[string]any{"upload_id": pre.UploadID})
	wantCode(t, "complete", resp, body, http.StatusCreated, "")
	resp, body = c.call(http.MethodGet, "download", q("path", "/pre.txt"), nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, payload) {
		t.Fatalf("download of the presigned upload %d %q", resp.StatusCode, body)
	}
}

// failAfter is a body that breaks off after n bytes, as a client that
// goes away mid-upload.
type failAfter struct{ n int }

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("client went away")
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'z'
	}
	f.n -= k
	return k, nil
}

func TestStorageRoutesRefuseBadInput(t *testing.T) {
	t.Parallel()
	ts, db, iss := fullStack(t)
	tok := iss.Mint(t, tokens.Subject("bob-storage"), tokens.Email("bob-storage@example.com"), tokens.Name("Bob"))
	c := storageClient{t: t, ts: ts, tok: tok, project: signInDefaultProject(t, ts, tok)}
	if resp, body := c.upload("/f.txt", []byte("x")); resp.StatusCode != 201 {
		t.Fatalf("upload %d %s", resp.StatusCode, body)
	}
	before := rowCounts(t, db)

	for _, p := range []string{"../etc/passwd", "/a/../../b", `a\b`, "/a//b", "/a/./b", "/a\x1b[2Jb", "/a\u202eb", "C:/x"} {
		resp, body := c.call(http.MethodGet, "stat", q("path", p), nil, nil)
		wantCode(t, "stat "+p, resp, body, 400, "storage_path_traversal")
		resp, body = c.upload(p, []byte("x"))
		wantCode(t, "upload "+p, resp, body, 400, "storage_path_traversal")
		resp, body = c.jsonCall(http.MethodPost, "mkdir", map[string]string{"path": p})
		wantCode(t, "mkdir "+p, resp, body, 400, "storage_path_traversal")
	}
	resp, body := c.call(http.MethodGet, "stat", q("path", "/a\x00b"), nil, nil)
	wantCode(t, "NUL", resp, body, 400, "validation_failed")
	resp, body = c.call(http.MethodGet, "download", q("path", "/missing"), nil, nil)
	wantCode(t, "missing", resp, body, 404, "storage_object_not_found")
	resp, body = c.call(http.MethodPut, "upload", q("path", "/short", "size", "100"), nil, strings.NewReader("only this"))
	wantCode(t, "size and Content-Length differ", resp, body, 400, "storage_upload_size_mismatch")
	// A chunked body longer than the declared size.
	chunked := io.MultiReader(strings.NewReader("0123456789"), strings.NewReader("+"))
	resp, body = c.call(http.MethodPut, "upload", q("path", "/long", "size", "10"), nil, chunked)
	wantCode(t, "chunked body past its size", resp, body, 400, "storage_upload_size_mismatch")
	resp, body = c.call(http.MethodPut, "upload", q("path", "/nosize"), nil, io.MultiReader(strings.NewReader("x")))
	wantCode(t, "chunked without size", resp, body, 400, "validation_failed")

	// A client that goes away mid-upload: nothing stored, no reservation.
	req, _ := http.NewRequest(http.MethodPut, ts.URL+"/api/v1/storage/upload?path=/gone", &failAfter{n: 100 << 10})
	req.ContentLength = 1 << 20
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Project-ID", c.project)
	if resp, err := ts.Client().Do(req); err == nil {
		resp.Body.Close()
	}
	after := rowCounts(t, db)
	for _, tb := range []string{"storage_objects", "storage_reservations"} {
		if after[tb] != before[tb] {
			t.Errorf("%s went from %d to %d rows", tb, before[tb], after[tb])
		}
	}
	resp, body = c.call(http.MethodGet, "usage", nil, nil, nil)
	if !strings.Contains(string(body), `"reserved_bytes":0`) || !strings.Contains(string(body), `"used_bytes":1`) {
		t.Fatalf("usage after the refusals %d %s", resp.StatusCode, body)
	}
}

// TestStorageIsolation: another tenant's user naming this project in
// X-Project-ID gets 404 on every storage route and never a byte.
func TestStorageIsolation(t *testing.T) {
	t.Parallel()
	ts, _, iss := fullStack(t)
	owner := iss.Mint(t, tokens.Subject("owner-storage"), tokens.Email("owner-storage@example.com"), tokens.Name("Owner"))
	victim := storageClient{t: t, ts: ts, tok: owner, project: signInDefaultProject(t, ts, owner)}
	secret := []byte("the owner's secret bytes")
	if resp, body := victim.upload("/secret.txt", secret); resp.StatusCode != 201 {
		t.Fatalf("upload %d %s", resp.StatusCode, body)
	}
	spyTok := iss.Mint(t, tokens.Subject("spy-storage"), tokens.Email("spy-storage@example.com"), tokens.Name("Spy"))
	signInDefaultProject(t, ts, spyTok)
	spy := storageClient{t: t, ts: ts, tok: spyTok, project: victim.project}
	type call struct {
		name          string
		method, route string
		query         url.Values
		body          any
		raw           []byte
	}
	for _, cl := range []call{
		{"list", http.MethodGet, "list", nil, nil, nil},
		{"stat", http.MethodGet, "stat", q("path", "/secret.txt"), nil, nil},
		{"download", http.MethodGet, "download", q("path", "/secret.txt"), nil, nil},
		{"upload", http.MethodPut, "upload", q("path", "/planted.txt"), nil, []byte("x")},
		{"mkdir", http.MethodPost, "mkdir", nil, map[string]string{"path": "/x"}, nil},
		{"rename", http.MethodPost, "rename", nil, map[string]string{"from": "/secret.txt", "to": "/mine.txt"}, nil},
		{"delete", http.MethodDelete, "delete", q("path", "/secret.txt"), nil, nil},
		{"usage", http.MethodGet, "usage", nil, nil, nil},
		{"presign", http.MethodPost, "presign", nil, map[string]string{"path": "/secret.txt", "method": "GET"}, nil},
		{"complete", http.MethodPost, "presign/complete", nil, map[string]string{"upload_id": "0193aaaa-0000-7000-8000-000000000001"}, nil},
	} {
		var resp *http.Response
		var body []byte
		switch {
		case cl.body != nil:
			b, _ := json.Marshal(cl.body)
			resp, body = spy.call(cl.method, cl.route, cl.query, http.Header{"Content-Type": {"application/json"}}, bytes.NewReader(b))
		case cl.raw != nil:
			resp, body = spy.call(cl.method, cl.route, cl.query, nil, bytes.NewReader(cl.raw))
		default:
			resp, body = spy.call(cl.method, cl.route, cl.query, nil, nil)
		}
		wantCode(t, cl.name, resp, body, http.StatusNotFound, "not_found")
		if bytes.Contains(body, secret) || bytes.Contains(body, []byte("secret.txt")) {
			t.Errorf("%s leaked: %s", cl.name, body)
		}
	}
	resp, body := victim.call(http.MethodGet, "download", q("path", "/secret.txt"), nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, secret) {
		t.Fatalf("the owner's file changed: %d %q", resp.StatusCode, body)
	}
	resp, body = victim.call(http.MethodGet, "list", nil, nil, nil)
	if strings.Contains(string(body), "planted") || strings.Contains(string(body), "mine.txt") {
		t.Fatalf("the spy changed the owner's storage: %s", body)
	}
}
