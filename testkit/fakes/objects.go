package fakes

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/ports"
)

// ObjectStore is an in-memory object store with the semantics of the S3
// adapter, including presigned requests: it is an http.Handler that serves
// the URLs it signs, so a test can PUT and GET through them (serve it with
// httptest and set BaseURL).
type ObjectStore struct {
	// BaseURL is where Serve-d requests reach this store; presigned URLs
	// start with it.
	BaseURL string
	// Clock dates objects and checks URL expiry; wall clock when nil.
	Clock ports.Clock

	mu      sync.Mutex
	objs    map[string]fakeObject
	uploads map[string]*fakeUpload
	secret  []byte
	nextID  int
	// BeforePut, when set, runs before a Put stores its object; an error
	// fails the Put (tests inject crashes and outages).
	BeforePut func(key string) error
}

type fakeObject struct {
	data []byte
	etag string
	ct   string
	mod  time.Time
}

type fakeUpload struct {
	key       string
	ct        string
	parts     map[int32][]byte
	initiated time.Time
}

var (
	_ ports.ObjectStore      = (*ObjectStore)(nil)
	_ ports.ObjectPresigner  = (*ObjectStore)(nil)
	_ ports.MultipartUploads = (*ObjectStore)(nil)
)

// NewObjectStore returns an empty store.
func NewObjectStore() *ObjectStore {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return &ObjectStore{objs: map[string]fakeObject{}, uploads: map[string]*fakeUpload{}, secret: secret}
}

func (s *ObjectStore) now() time.Time {
	if s.Clock != nil {
		return s.Clock.Now()
	}
	return time.Now()
}

func notFound() error {
	return &fault.Error{Kind: fault.KindNotFound, Code: storage.CodeObjectNotFound, Message: "no file or folder at this path"}
}

func mismatch() error {
	return &fault.Error{Kind: fault.KindInvalid, Code: storage.CodeSizeMismatch,
		Message: "the upload did not carry the declared number of bytes; nothing was stored"}
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// Put implements [ports.ObjectStore].
func (s *ObjectStore) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (ports.ObjectInfo, error) {
	if size < 0 {
		return ports.ObjectInfo{}, fault.Invalid("size", "size must not be negative")
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, size+1))
	if err != nil || n != size {
		return ports.ObjectInfo{}, mismatch()
	}
	if err := ctx.Err(); err != nil {
		return ports.ObjectInfo{}, mismatch()
	}
	if s.BeforePut != nil {
		if err := s.BeforePut(key); err != nil {
			return ports.ObjectInfo{}, err
		}
	}
	return s.store(key, buf.Bytes(), md5hex(buf.Bytes()), contentType), nil
}

func (s *ObjectStore) store(key string, data []byte, etag, ct string) ports.ObjectInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := fakeObject{data: data, etag: etag, ct: ct, mod: s.now()}
	s.objs[key] = o
	return ports.ObjectInfo{Key: key, Size: int64(len(data)), ETag: etag, ContentType: ct, LastModified: o.mod}
}

// Get implements [ports.ObjectStore].
func (s *ObjectStore) Get(_ context.Context, key string, o ports.GetOptions) (io.ReadCloser, error) {
	s.mu.Lock()
	obj, ok := s.objs[key]
	s.mu.Unlock()
	if !ok {
		return nil, notFound()
	}
	if o.IfMatch != "" && o.IfMatch != obj.etag {
		return nil, fault.Conflict(storage.CodeConflict, "the file changed while it was read")
	}
	size := int64(len(obj.data))
	if o.Offset < 0 || (o.Offset > 0 && o.Offset >= size) {
		return nil, fault.Invalid("range", "the range is outside the file")
	}
	end := size
	if o.Length >= 0 && o.Offset+o.Length < size {
		end = o.Offset + o.Length
	}
	return io.NopCloser(bytes.NewReader(obj.data[o.Offset:end])), nil
}

// Head implements [ports.ObjectStore].
func (s *ObjectStore) Head(_ context.Context, key string) (ports.ObjectInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[key]
	if !ok {
		return ports.ObjectInfo{}, notFound()
	}
	return ports.ObjectInfo{Key: key, Size: int64(len(o.data)), ETag: o.etag, ContentType: o.ct, LastModified: o.mod}, nil
}

// Copy implements [ports.ObjectStore].
func (s *ObjectStore) Copy(_ context.Context, src, dst string) (ports.ObjectInfo, error) {
	s.mu.Lock()
	o, ok := s.objs[src]
	s.mu.Unlock()
	if !ok {
		return ports.ObjectInfo{}, notFound()
	}
	return s.store(dst, o.data, o.etag, o.ct), nil
}

// Delete implements [ports.ObjectStore].
func (s *ObjectStore) Delete(_ context.Context, keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.objs, k)
	}
	return nil
}

// List implements [ports.ObjectStore].
func (s *ObjectStore) List(_ context.Context, prefix, cursor string, limit int) ([]ports.ObjectInfo, string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.objs {
		if strings.HasPrefix(k, prefix) && k > cursor {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	next := ""
	if len(keys) > limit {
		keys = keys[:limit]
		next = keys[limit-1]
	}
	out := make([]ports.ObjectInfo, len(keys))
	for i, k := range keys {
		o := s.objs[k]
		out[i] = ports.ObjectInfo{Key: k, Size: int64(len(o.data)), ETag: o.etag, ContentType: o.ct, LastModified: o.mod}
	}
	return out, next, nil
}

// Keys lists every stored key (tests).
func (s *ObjectStore) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.objs))
	for k := range s.objs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CreateMultipart implements [ports.MultipartUploads].
func (s *ObjectStore) CreateMultipart(_ context.Context, key, contentType string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := fmt.Sprintf("upload-%d", s.nextID)
	s.uploads[id] = &fakeUpload{key: key, ct: contentType, parts: map[int32][]byte{}, initiated: s.now()}
	return id, nil
}

// CompleteMultipart implements [ports.MultipartUploads].
func (s *ObjectStore) CompleteMultipart(_ context.Context, key, uploadID string, parts []ports.CompletedPart) (ports.ObjectInfo, error) {
	s.mu.Lock()
	u, ok := s.uploads[uploadID]
	if !ok || u.key != key {
		s.mu.Unlock()
		return ports.ObjectInfo{}, fault.NotFound("upload", "")
	}
	var data []byte
	var sums []byte
	for i, p := range parts {
		b, ok := u.parts[p.Number]
		if !ok || md5hex(b) != p.ETag || (i > 0 && p.Number <= parts[i-1].Number) {
			s.mu.Unlock()
			return ports.ObjectInfo{}, mismatch()
		}
		data = append(data, b...)
		sum := md5.Sum(b)
		sums = append(sums, sum[:]...)
	}
	delete(s.uploads, uploadID)
	s.mu.Unlock()
	return s.store(key, data, fmt.Sprintf("%s-%d", md5hex(sums), len(parts)), u.ct), nil
}

// AbortMultipart implements [ports.MultipartUploads].
func (s *ObjectStore) AbortMultipart(_ context.Context, key, uploadID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.uploads[uploadID]; ok && u.key == key {
		delete(s.uploads, uploadID)
	}
	return nil
}

// ListMultipart implements [ports.MultipartUploads].
func (s *ObjectStore) ListMultipart(_ context.Context, prefix string) ([]ports.MultipartUpload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ports.MultipartUpload
	for id, u := range s.uploads {
		if strings.HasPrefix(u.key, prefix) {
			out = append(out, ports.MultipartUpload{Key: u.key, UploadID: id, Initiated: u.initiated})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key+out[i].UploadID < out[j].Key+out[j].UploadID })
	return out, nil
}

// presign signs method, key and the request's constraints.
func (s *ObjectStore) presign(method, key string, q url.Values, ttl time.Duration) ports.PresignedRequest {
	exp := s.now().Add(ttl)
	q.Set("expires", strconv.FormatInt(exp.UnixNano(), 10))
	q.Set("sig", s.sign(method, key, q))
	return ports.PresignedRequest{Method: method, URL: strings.TrimRight(s.BaseURL, "/") + "/" + escapeKey(key) + "?" + q.Encode(),
		Headers: map[string]string{}, ExpiresAt: exp}
}

func (s *ObjectStore) sign(method, key string, q url.Values) string {
	m := hmac.New(sha256.New, s.secret)
	for _, k := range []string{"expires", "size", "ct", "upload", "part", "filename"} {
		fmt.Fprintf(m, "%s=%s\n", k, q.Get(k))
	}
	fmt.Fprintf(m, "%s %s", method, key)
	return hex.EncodeToString(m.Sum(nil))
}

func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// PresignGet implements [ports.ObjectPresigner].
func (s *ObjectStore) PresignGet(_ context.Context, key, filename string, ttl time.Duration) (ports.PresignedRequest, error) {
	q := url.Values{}
	if filename != "" {
		q.Set("filename", filename)
	}
	return s.presign(http.MethodGet, key, q, ttl), nil
}

// PresignPut implements [ports.ObjectPresigner].
func (s *ObjectStore) PresignPut(_ context.Context, key string, size int64, contentType string, ttl time.Duration) (ports.PresignedRequest, error) {
	q := url.Values{"size": {strconv.FormatInt(size, 10)}}
	if contentType != "" {
		q.Set("ct", contentType)
	}
	r := s.presign(http.MethodPut, key, q, ttl)
	if contentType != "" {
		r.Headers["Content-Type"] = contentType
	}
	return r, nil
}

// PresignPart implements [ports.MultipartUploads].
func (s *ObjectStore) PresignPart(_ context.Context, key, uploadID string, number int32, size int64, ttl time.Duration) (ports.PresignedRequest, error) {
	q := url.Values{"size": {strconv.FormatInt(size, 10)}, "upload": {uploadID}, "part": {strconv.Itoa(int(number))}}
	return s.presign(http.MethodPut, key, q, ttl), nil
}

// ServeHTTP serves presigned requests: a bad or expired signature is 403,
// a body of another size 400, like S3.
func (s *ObjectStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/"))
	if err != nil {
		http.Error(w, "bad key", http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	exp, _ := strconv.ParseInt(q.Get("expires"), 10, 64)
	if !hmac.Equal([]byte(q.Get("sig")), []byte(s.sign(r.Method, key, q))) || s.now().UnixNano() > exp {
		http.Error(w, "AccessDenied", http.StatusForbidden)
		return
	}
	switch r.Method {
	case http.MethodGet:
		rc, err := s.Get(r.Context(), key, ports.GetOptions{Length: -1})
		if err != nil {
			http.Error(w, "NoSuchKey", http.StatusNotFound)
			return
		}
		defer rc.Close()
		info, _ := s.Head(r.Context(), key)
		w.Header().Set("ETag", `"`+info.ETag+`"`)
		w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
		if fn := q.Get("filename"); fn != "" {
			w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fn}))
		}
		_, _ = io.Copy(w, rc)
	case http.MethodPut:
		size, _ := strconv.ParseInt(q.Get("size"), 10, 64)
		if r.ContentLength != size || (q.Get("ct") != "" && r.Header.Get("Content-Type") != q.Get("ct")) {
			http.Error(w, "SignatureDoesNotMatch", http.StatusForbidden)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, size+1))
		if err != nil || int64(len(body)) != size {
			http.Error(w, "IncompleteBody", http.StatusBadRequest)
			return
		}
		var etag string
		if id := q.Get("upload"); id != "" {
			n, _ := strconv.Atoi(q.Get("part"))
			s.mu.Lock()
			u, ok := s.uploads[id]
			if ok {
				u.parts[int32(n)] = body
			}
			s.mu.Unlock()
			if !ok {
				http.Error(w, "NoSuchUpload", http.StatusNotFound)
				return
			}
			etag = md5hex(body)
		} else {
			etag = s.store(key, body, md5hex(body), q.Get("ct")).ETag
		}
		w.Header().Set("ETag", `"`+etag+`"`)
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "MethodNotAllowed", http.StatusMethodNotAllowed)
	}
}

// ErrInjected is what tests return from BeforePut to simulate an outage.
var ErrInjected = errors.New("fakes: injected failure")
