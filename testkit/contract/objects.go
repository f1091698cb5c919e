package contract

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/ports"
)

// Objects is what an object store adapter implements: the store, the
// presigner and multipart uploads.
type Objects interface {
	ports.ObjectStore
	ports.ObjectPresigner
	ports.MultipartUploads
}

// ObjectStoreHarness builds a store for one test.
type ObjectStoreHarness struct {
	New func(t *testing.T) Objects
	// Advance moves the store's clock (presigned URL expiry); nil when it
	// cannot be moved: the expiry case then waits out a one-second URL.
	Advance func(d time.Duration)
	// PartSize is the adapter's multipart part size: the large-body cases
	// upload a few parts' worth (0: 8 MiB).
	PartSize int64
	// MinPartSize is the smallest part a multipart upload accepts (all but
	// the last); 0: 5 MiB, as S3.
	MinPartSize int64
}

// RunObjectStoreSuite runs the object store contract (ports.ObjectStore,
// ports.ObjectPresigner, ports.MultipartUploads).
func RunObjectStoreSuite(t *testing.T, h ObjectStoreHarness) {
	if h.PartSize == 0 {
		h.PartSize = 8 << 20
	}
	if h.MinPartSize == 0 {
		h.MinPartSize = 5 << 20
	}
	ctx := context.Background()
	key := func(name string) string { return uniq("t") + "/p/" + name }
	put := func(t *testing.T, s Objects, k string, body []byte, ct string) ports.ObjectInfo {
		t.Helper()
		info, err := s.Put(ctx, k, bytes.NewReader(body), int64(len(body)), ct)
		if err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		return info
	}
	read := func(t *testing.T, s Objects, k string, o ports.GetOptions) []byte {
		t.Helper()
		rc, err := s.Get(ctx, k, o)
		if err != nil {
			t.Fatalf("get %s %+v: %v", k, o, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	isCode := func(err error, c fault.Code) bool { var fe *fault.Error; return errors.As(err, &fe) && fe.Code == c }

	t.Run("put, head, get round-trip", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		k := key("a/b c/ünï.txt")
		body := []byte("hello, storage")
		info := put(t, s, k, body, "text/plain")
		sum := md5.Sum(body)
		if info.Size != int64(len(body)) || info.ETag == "" || strings.Contains(info.ETag, `"`) {
			t.Fatalf("put info %+v", info)
		}
		if info.ETag != hex.EncodeToString(sum[:]) {
			t.Logf("etag %s is not the MD5 (allowed, but unusual for a single PUT)", info.ETag)
		}
		head, err := s.Head(ctx, k)
		if err != nil || head.Size != info.Size || head.ETag != info.ETag || head.ContentType != "text/plain" || head.Key != k {
			t.Fatalf("head %+v %v", head, err)
		}
		if got := read(t, s, k, ports.GetOptions{Length: -1}); !bytes.Equal(got, body) {
			t.Fatalf("get %q", got)
		}
		if got := read(t, s, k, ports.GetOptions{Length: -1, IfMatch: info.ETag}); !bytes.Equal(got, body) {
			t.Fatalf("get if-match %q", got)
		}
	})
	t.Run("ranges", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		k := key("r.bin")
		body := []byte("0123456789abcdef")
		put(t, s, k, body, "")
		for _, c := range []struct {
			o    ports.GetOptions
			want string
		}{
			{ports.GetOptions{Offset: 0, Length: 4}, "0123"},
			{ports.GetOptions{Offset: 10, Length: -1}, "abcdef"},
			{ports.GetOptions{Offset: 15, Length: 1}, "f"},
			{ports.GetOptions{Offset: 12, Length: 100}, "cdef"},
		} {
			if got := string(read(t, s, k, c.o)); got != c.want {
				t.Errorf("range %+v = %q; want %q", c.o, got, c.want)
			}
		}
		if _, err := s.Get(ctx, k, ports.GetOptions{Length: -1, IfMatch: "0123"}); !fault.IsKind(err, fault.KindConflict) {
			t.Fatalf("if-match of another etag: %v; want Conflict", err)
		}
	})
	t.Run("missing objects", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		k := key("nothing")
		if _, err := s.Head(ctx, k); !isCode(err, storage.CodeObjectNotFound) {
			t.Fatalf("head: %v", err)
		}
		if _, err := s.Get(ctx, k, ports.GetOptions{Length: -1}); !isCode(err, storage.CodeObjectNotFound) {
			t.Fatalf("get: %v", err)
		}
		if _, err := s.Copy(ctx, k, key("dst")); !isCode(err, storage.CodeObjectNotFound) {
			t.Fatalf("copy: %v", err)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("delete of a missing key: %v", err)
		}
	})
	t.Run("put replaces; a failed put leaves the old object", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		k := key("f")
		put(t, s, k, []byte("first"), "")
		second := put(t, s, k, []byte("second!"), "")
		if got := read(t, s, k, ports.GetOptions{Length: -1}); string(got) != "second!" {
			t.Fatalf("after replace %q", got)
		}
		short := io.LimitReader(strings.NewReader("abc"), 3)
		if _, err := s.Put(ctx, k, short, 10, ""); !isCode(err, storage.CodeSizeMismatch) {
			t.Fatalf("short body: %v; want %s", err, storage.CodeSizeMismatch)
		}
		if _, err := s.Put(ctx, k, strings.NewReader("0123456789+"), 10, ""); !isCode(err, storage.CodeSizeMismatch) {
			t.Fatalf("long body: %v; want %s", err, storage.CodeSizeMismatch)
		}
		if _, err := s.Put(ctx, k, &failingReader{after: 2}, 10, ""); !isCode(err, storage.CodeSizeMismatch) {
			t.Fatalf("body that fails: %v; want %s", err, storage.CodeSizeMismatch)
		}
		if head, err := s.Head(ctx, k); err != nil || head.ETag != second.ETag {
			t.Fatalf("after failed puts: %+v %v", head, err)
		}
		newKey := key("never")
		if _, err := s.Put(ctx, newKey, strings.NewReader("ab"), 3, ""); err == nil {
			t.Fatal("a short body to a new key succeeded")
		}
		if _, err := s.Head(ctx, newKey); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("a failed put left an object: %v", err)
		}
		empty := put(t, s, key("empty"), nil, "")
		if empty.Size != 0 {
			t.Fatalf("empty object %+v", empty)
		}
	})
	t.Run("large bodies go multipart and fail whole", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		size := 2*h.PartSize + 12345
		k := key("big.bin")
		info, err := s.Put(ctx, k, newPattern(size), size, "application/octet-stream")
		if err != nil || info.Size != size {
			t.Fatalf("put %d bytes: %+v %v", size, info, err)
		}
		rc, err := s.Get(ctx, k, ports.GetOptions{Length: -1})
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(&patternCheck{}, rc)
		rc.Close()
		if err != nil || n != size {
			t.Fatalf("read back %d of %d: %v", n, size, err)
		}
		got := read(t, s, k, ports.GetOptions{Offset: h.PartSize - 3, Length: 6})
		want := patternBytes(h.PartSize-3, 6)
		if !bytes.Equal(got, want) {
			t.Fatalf("range across a part boundary %v; want %v", got, want)
		}
		bad := key("big-bad.bin")
		if _, err := s.Put(ctx, bad, io.LimitReader(newPattern(size), size-1), size, ""); !isCode(err, storage.CodeSizeMismatch) {
			t.Fatalf("short large body: %v", err)
		}
		if _, err := s.Put(ctx, bad, io.MultiReader(newPattern(size), strings.NewReader("x")), size, ""); !isCode(err, storage.CodeSizeMismatch) {
			t.Fatalf("long large body: %v", err)
		}
		if _, err := s.Head(ctx, bad); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("a failed multipart put left an object: %v", err)
		}
		ups, err := s.ListMultipart(ctx, strings.TrimSuffix(bad, "big-bad.bin"))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range ups {
			if u.Key == bad {
				t.Fatalf("a failed multipart put left its upload open: %+v", u)
			}
		}
	})
	t.Run("copy and delete many", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		src := key("src")
		info := put(t, s, src, []byte("copy me"), "text/plain")
		dst := key("dir/dst")
		cp, err := s.Copy(ctx, src, dst)
		if err != nil || cp.Size != info.Size || cp.Key != dst {
			t.Fatalf("copy %+v %v", cp, err)
		}
		if got := read(t, s, dst, ports.GetOptions{Length: -1}); string(got) != "copy me" {
			t.Fatalf("copied %q", got)
		}
		var keys []string
		for i := 0; i < 5; i++ {
			k := key(fmt.Sprintf("m/%d", i))
			put(t, s, k, []byte{byte(i)}, "")
			keys = append(keys, k)
		}
		if err := s.Delete(ctx, append(keys, key("absent"), src)...); err != nil {
			t.Fatal(err)
		}
		for _, k := range append(keys, src) {
			if _, err := s.Head(ctx, k); !fault.IsKind(err, fault.KindNotFound) {
				t.Fatalf("%s after delete: %v", k, err)
			}
		}
		if _, err := s.Head(ctx, dst); err != nil {
			t.Fatalf("the copy went with its source: %v", err)
		}
	})
	t.Run("list pages by prefix", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		prefix := uniq("lp") + "/proj/"
		other := uniq("lp") + "/proj2/"
		want := []string{}
		// No key is a folder of another ("a" and "a/b"): file-system
		// gateways cannot hold both, and the index never asks them to.
		for _, n := range []string{"a", "a-b", "b/c/d", "b/c-d", "z"} {
			put(t, s, prefix+n, []byte(n), "")
			want = append(want, prefix+n)
		}
		put(t, s, other+"x", []byte("x"), "")
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			objs, next, err := s.List(ctx, prefix, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) > 2 || pages > 5 {
				t.Fatalf("page of %d (page %d)", len(objs), pages)
			}
			for _, o := range objs {
				if o.Size != int64(len(strings.TrimPrefix(o.Key, prefix))) || o.ETag == "" {
					t.Fatalf("listed %+v", o)
				}
				got = append(got, o.Key)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(want)) {
			t.Fatalf("listed %v; want %v", got, want)
		}
	})
	t.Run("concurrent puts all land", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		prefix := uniq("cc") + "/p/"
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				b := bytes.Repeat([]byte{byte(i)}, 1000+i)
				if _, err := s.Put(ctx, fmt.Sprintf("%s%02d", prefix, i), bytes.NewReader(b), int64(len(b)), ""); err != nil {
					t.Errorf("put %d: %v", i, err)
				}
			}(i)
		}
		wg.Wait()
		objs, _, err := s.List(ctx, prefix, "", 100)
		if err != nil || len(objs) != 20 {
			t.Fatalf("listed %d: %v", len(objs), err)
		}
		for i, o := range objs {
			if o.Size != int64(1000+i) {
				t.Fatalf("object %d has %d bytes", i, o.Size)
			}
		}
	})
	t.Run("presigned put and get", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		k := key("pre/sig ned.txt")
		body := []byte("through a presigned URL")
		put, err := s.PresignPut(ctx, k, int64(len(body)), "text/plain", time.Minute)
		if err != nil || put.Method != http.MethodPut || !strings.HasPrefix(put.URL, "http") {
			t.Fatalf("presign put %+v %v", put, err)
		}
		if code := do(t, put, bytes.NewReader(body[:5]), 5); code < 400 {
			t.Fatalf("a body of another size was taken: %d", code)
		}
		if _, err := s.Head(ctx, k); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("the refused presigned put stored an object: %v", err)
		}
		if code := do(t, put, bytes.NewReader(body), int64(len(body))); code != http.StatusOK {
			t.Fatalf("presigned put: %d", code)
		}
		info, err := s.Head(ctx, k)
		if err != nil || info.Size != int64(len(body)) {
			t.Fatalf("after presigned put %+v %v", info, err)
		}
		get, err := s.PresignGet(ctx, k, "sig ned.txt", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		resp := doResp(t, get, nil, 0)
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) ||
			!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("presigned get %d %q %v", resp.StatusCode, got, resp.Header)
		}
		other, _ := s.PresignGet(ctx, k, "", time.Minute)
		tampered := other
		tampered.URL = strings.Replace(other.URL, "sig%20ned", "sig%20nex", 1)
		if code := do(t, tampered, nil, 0); code != http.StatusForbidden {
			t.Fatalf("a URL for another key: %d; want 403", code)
		}
	})
	t.Run("presigned URLs expire", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		k := key("exp")
		put(t, s, k, []byte("x"), "")
		get, err := s.PresignGet(ctx, k, "", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if h.Advance != nil {
			h.Advance(2 * time.Second)
		} else {
			time.Sleep(2100 * time.Millisecond) // waiting out a real one-second URL, not synchronising
		}
		if code := do(t, get, nil, 0); code != http.StatusForbidden {
			t.Fatalf("an expired URL: %d; want 403", code)
		}
	})
	t.Run("presigned multipart upload", func(t *testing.T) {
		t.Parallel()
		s := h.New(t)
		k := key("mp.bin")
		id, err := s.CreateMultipart(ctx, k, "application/x-test")
		if err != nil || id == "" {
			t.Fatalf("create %q %v", id, err)
		}
		p1 := patternBytes(0, h.MinPartSize)
		p2 := patternBytes(h.MinPartSize, 1000)
		var parts []ports.CompletedPart
		for i, b := range [][]byte{p1, p2} {
			pr, err := s.PresignPart(ctx, k, id, int32(i+1), int64(len(b)), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			resp := doResp(t, pr, bytes.NewReader(b), int64(len(b)))
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
				t.Fatalf("part %d: %d", i+1, resp.StatusCode)
			}
			parts = append(parts, ports.CompletedPart{Number: int32(i + 1), ETag: strings.Trim(resp.Header.Get("ETag"), `"`)})
		}
		ups, err := s.ListMultipart(ctx, strings.TrimSuffix(k, "mp.bin"))
		if err != nil || len(ups) != 1 || ups[0].UploadID != id || ups[0].Key != k {
			t.Fatalf("in progress: %+v %v", ups, err)
		}
		if _, err := s.CompleteMultipart(ctx, k, id, []ports.CompletedPart{{Number: 1, ETag: "00"}}); !isCode(err, storage.CodeSizeMismatch) {
			t.Fatalf("completion with a wrong part: %v", err)
		}
		info, err := s.CompleteMultipart(ctx, k, id, parts)
		if err != nil || info.Size != int64(len(p1)+len(p2)) || info.ContentType != "application/x-test" {
			t.Fatalf("complete %+v %v", info, err)
		}
		if got := read(t, s, k, ports.GetOptions{Offset: h.MinPartSize - 2, Length: 4}); !bytes.Equal(got, patternBytes(h.MinPartSize-2, 4)) {
			t.Fatalf("assembled bytes %v", got)
		}
		id2, err := s.CreateMultipart(ctx, k+"2", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AbortMultipart(ctx, k+"2", id2); err != nil {
			t.Fatal(err)
		}
		if err := s.AbortMultipart(ctx, k+"2", id2); err != nil {
			t.Fatalf("second abort: %v", err)
		}
		if ups, _ := s.ListMultipart(ctx, strings.TrimSuffix(k, "mp.bin")); len(ups) != 0 {
			t.Fatalf("after complete and abort: %+v", ups)
		}
	})
}

func do(t *testing.T, r ports.PresignedRequest, body io.Reader, size int64) int {
	t.Helper()
	resp := doResp(t, r, body, size)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func doResp(t *testing.T, r ports.PresignedRequest, body io.Reader, size int64) *http.Response {
	t.Helper()
	req, err := http.NewRequest(r.Method, r.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.ContentLength = size
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

type failingReader struct{ after int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), f.after)
	for i := range p[:n] {
		p[i] = 'x'
	}
	f.after -= n
	return n, nil
}

// patternByte is the byte at offset i of the test pattern: it changes
// every byte and does not repeat at part boundaries.
func patternByte(i int64) byte { return byte((i*7 + i/251) % 253) }

func patternBytes(off, n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = patternByte(off + int64(i))
	}
	return b
}

// pattern streams size bytes of the pattern without holding them.
type pattern struct{ off, size int64 }

func newPattern(size int64) *pattern { return &pattern{size: size} }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	n := min(int64(len(b)), p.size-p.off)
	for i := int64(0); i < n; i++ {
		b[i] = patternByte(p.off + i)
	}
	p.off += n
	return int(n), nil
}

type patternCheck struct {
	off int64
	bad bool
}

func (c *patternCheck) Write(b []byte) (int, error) {
	for i, x := range b {
		if x != patternByte(c.off+int64(i)) {
			return i, fmt.Errorf("byte %d differs", c.off+int64(i))
		}
	}
	c.off += int64(len(b))
	return len(b), nil
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
