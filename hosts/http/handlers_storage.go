package httphost

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
	"github.com/gpuaas/gpuaas/ports"
)

// errStorageOff answers storage routes on a host built without storage.
var errStorageOff = fault.Unavailable("project storage is not configured on this host", nil)

// storageCall resolves what every storage handler needs: the caller, the
// active project and the use case.
func (s *Server) storageCall(w http.ResponseWriter, r *http.Request) (identity.Principal, string, bool) {
	p, ok := s.principal(w, r)
	if !ok {
		return p, "", false
	}
	if s.d.Storage == nil {
		s.fail(w, r, errStorageOff)
		return p, "", false
	}
	ap, ok := ActiveProjectFrom(r.Context())
	if !ok {
		s.fail(w, r, fault.Internal(errNoProject))
		return p, "", false
	}
	return p, ap.Project.ID, true
}

func storageEntryView(e storage.Entry) api.StorageEntry {
	v := api.StorageEntry{Path: e.Path.String(), Name: e.Path.Name(), Kind: api.StorageEntryKind(e.Kind),
		SizeBytes: e.Size, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, CreatedBy: optional(e.CreatedBy)}
	if e.Path.IsRoot() {
		v.Name = "/"
	}
	if e.Kind == storage.File {
		v.Etag, v.ContentType = optional(e.ETag), optional(e.ContentType)
	}
	return v
}

// ListStorage implements [api.ServerInterface].
func (h *handlers) ListStorage(w http.ResponseWriter, r *http.Request, params api.ListStorageParams) {
	s := h.s
	p, pid, ok := s.storageCall(w, r)
	if !ok {
		return
	}
	limit := 0
	if params.Limit != nil {
		limit = *params.Limit
	}
	page, err := s.d.Storage.List(r.Context(), p, pid, deref(params.Path), deref(params.Cursor), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	buf := listingBuffers.Get().(*[]byte)
	b := appendListing((*buf)[:0], page)
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	// With its length the page goes out as it is, not in chunks.
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= maxPooledListing {
		*buf = b
		listingBuffers.Put(buf)
	}
}

// listingBuffers hold encoded pages between requests: a page of 1,000
// entries is a few hundred kilobytes, which a fresh buffer per request
// would allocate and clear each time. Write has copied it to the connection
// (or to the idempotency capture) when it returns. A buffer grown past
// maxPooledListing by a page of long names is left to the collector.
var listingBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooledListing = 1 << 20

// appendListing encodes a StorageListing by hand: a page holds up to 1,000
// entries, and reflection-based encoding of them cost more than the index
// scan that read them (BenchmarkStorageListPage). The output is what
// encoding/json makes of api.StorageListing (TestListingEncodingMatches).
func appendListing(b []byte, page storagesvc.Page) []byte {
	b = append(b, `{"path":`...)
	b = appendJSONString(b, page.Dir.String())
	b = append(b, `,"entries":[`...)
	for i, e := range page.Entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntry(b, e)
	}
	b = append(b, ']')
	if page.Next != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendJSONString(b, page.Next)
	}
	return append(b, "}\n"...)
}

func appendEntry(b []byte, e storage.Entry) []byte {
	b = append(b, `{"path":"/`...)
	b = appendJSONChars(b, e.Path.Canonical())
	b = append(b, `","name":`...)
	if e.Path.IsRoot() {
		b = append(b, `"/"`...)
	} else {
		b = appendJSONString(b, e.Path.Name())
	}
	b = append(b, `,"kind":"`...)
	b = append(b, e.Kind...)
	b = append(b, `","size_bytes":`...)
	b = strconv.AppendInt(b, e.Size, 10)
	if e.Kind == storage.File {
		if e.ETag != "" {
			b = append(b, `,"etag":`...)
			b = appendJSONString(b, e.ETag)
		}
		if e.ContentType != "" {
			b = append(b, `,"content_type":`...)
			b = appendJSONString(b, e.ContentType)
		}
	}
	if e.CreatedBy != "" {
		b = append(b, `,"created_by":`...)
		b = appendJSONString(b, e.CreatedBy)
	}
	b = append(b, `,"created_at":"`...)
	start := len(b)
	b = e.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	end := len(b)
	b = append(b, `","updated_at":"`...)
	if e.UpdatedAt.Equal(e.CreatedAt) && e.UpdatedAt.Location() == e.CreatedAt.Location() {
		// A file never replaced, a folder: the same instant in the same
		// zone reads the same, and formatting is most of an entry's cost.
		b = append(b, b[start:end]...)
	} else {
		b = e.UpdatedAt.AppendFormat(b, time.RFC3339Nano)
	}
	return append(b, `"}`...)
}

// appendJSONString quotes s as JSON, escaping as encoding/json does with
// HTML escaping off (paths and names are valid UTF-8 without controls,
// core/storage; the escapes are for completeness).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	return append(appendJSONChars(b, s), '"')
}

// appendJSONChars appends s escaped for the inside of a JSON string.
func appendJSONChars(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look (ids, names, times:
		// almost everything), then byte by byte.
		if i+8 <= len(s) && plainJSON8(s[i:i+8]) {
			i += 8
			continue
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// plainJSON8 reports whether none of the 8 bytes of s is a control
// character, '"', '\\' or outside ASCII (bit tricks on one word: "has a
// zero byte" of the word xor each byte value, "has a byte less than" 0x20,
// and the high bits).
func plainJSON8(s string) bool {
	w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	return (w&highs)|zero(w^(ones*'"'))|zero(w^(ones*'\\'))|((w-ones*0x20) & ^w & highs) == 0
}

// StatStorage implements [api.ServerInterface].
func (h *handlers) StatStorage(w http.ResponseWriter, r *http.Request, params api.StatStorageParams) {
	s := h.s
	p, pid, ok := s.storageCall(w, r)
	if !ok {
		return
	}
	e, err := s.d.Storage.Stat(r.Context(), p, pid, params.Path)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, storageEntryView(e))
}

// DownloadStorage implements [api.ServerInterface]: the file streamed from
// the object store, whole or one range, with ETag, If-None-Match and
// If-Range. A failure after the first byte aborts the connection, so a
// partial body is never mistaken for the file.
func (h *handlers) DownloadStorage(w http.ResponseWriter, r *http.Request, params api.DownloadStorageParams) {
	s := h.s
	p, pid, ok := s.storageCall(w, r)
	if !ok {
		return
	}
	d, err := s.d.Storage.Open(r.Context(), p, pid, params.Path)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e := d.Entry
	etag := `"` + e.ETag + `"`
	hdr := w.Header()
	hdr.Set("ETag", etag)
	hdr.Set("Accept-Ranges", "bytes")
	if inm := deref(params.IfNoneMatch); inm != "" && etagListHas(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	offset, length, status := int64(0), e.Size, http.StatusOK
	if rng := deref(params.Range); rng != "" && (deref(params.IfRange) == "" || deref(params.IfRange) == etag) {
		off, n, ok, err := parseRange(rng, e.Size)
		if err != nil {
			hdr.Set("Content-Range", "bytes */"+strconv.FormatInt(e.Size, 10))
			st := stateOf(r.Context())
			st.errCode = "range_not_satisfiable"
			s.writeFault(w, r, http.StatusRequestedRangeNotSatisfiable, &fault.Error{Kind: fault.KindInvalid,
				Code: "range_not_satisfiable", Message: "the range lies outside the file", Field: "Range"})
			return
		}
		if ok {
			offset, length, status = off, n, http.StatusPartialContent
			hdr.Set("Content-Range", "bytes "+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+n-1, 10)+"/"+
				strconv.FormatInt(e.Size, 10))
		}
	}
	var body io.ReadCloser = io.NopCloser(strings.NewReader(""))
	if length > 0 {
		if body, err = d.Open(r.Context(), offset, length); err != nil {
			hdr.Del("Content-Range")
			s.fail(w, r, err)
			return
		}
	}
	defer body.Close()
	ct := e.ContentType
	if ct == "" {
		ct = storage.DefaultContentType
	}
	hdr.Set("Content-Type", ct)
	hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	hdr.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": e.Path.Name()}))
	// The bytes are the user's, of the type the user said: a browser must
	// never run them in the API's origin (attachment and nosniff already
	// keep it from rendering them; this also sandboxes what slips through).
	hdr.Set("Content-Security-Policy", "sandbox")
	w.WriteHeader(status)
	// Large reads and writes: with io.Copy's 32 KiB the relay costs a
	// syscall pair per 32 KiB on both sides (BenchmarkStorageTransfer).
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(writerOnly{w}, body, *buf)
	if err == nil && n != length {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		if r.Context().Err() == nil {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "storage download failed mid-stream; aborting the response",
				slog.String("error", redact.Text(err.Error())))
		}
		panic(http.ErrAbortHandler)
	}
}

// copyBuffers are the download relay's buffers (1 MiB each, reused).
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// writerOnly hides a ReaderFrom so CopyBuffer uses the buffer it is given.
type writerOnly struct{ io.Writer }

// etagListHas reports whether an If-None-Match list names etag (or is *).
func etagListHas(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// errRange is a range outside the file (416).
var errRange = errors.New("range not satisfiable")

// parseRange reads one byte range of a file of size bytes: bytes=a-b,
// bytes=a- or bytes=-n. ok is false when the header is not one range this
// serves (several ranges, another unit, malformed): the whole file is sent,
// as RFC 9110 allows. err is a single range outside the file.
func parseRange(h string, size int64) (off, n int64, ok bool, err error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" { // suffix: the last b bytes
		last, err := strconv.ParseInt(b, 10, 64)
		if err != nil || last < 0 {
			return 0, 0, false, nil
		}
		if last == 0 || size == 0 {
			return 0, 0, false, errRange
		}
		last = min(last, size)
		return size - last, last, true, nil
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false, nil
	}
	end := size - 1
	if b != "" {
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
			return 0, 0, false, nil
		}
		end = min(end, size-1)
	}
	if start >= size {
		return 0, 0, false, errRange
	}
	return start, end - start + 1, true, nil
}

// UploadStorage implements [api.ServerInterface]. The body is handed to the
// use case as it arrives (x-stream-body: the host neither buffers nor
// bounds it by the JSON body limit; the use case holds it to the size).
func (h *handlers) UploadStorage(w http.ResponseWriter, r *http.Request, params api.UploadStorageParams) {
	s := h.s
	p, pid, ok := s.storageCall(w, r)
	if !ok {
		return
	}
	size := r.ContentLength
	if params.Size != nil {
		if size >= 0 && size != *params.Size {
			s.fail(w, r, &fault.Error{Kind: fault.KindInvalid, Code: storage.CodeSizeMismatch, Field: "size",
				Message: "size and Content-Length differ; nothing was stored"})
			return
		}
		size = *params.Size
	}
	if size < 0 {
		s.fail(w, r, fault.Invalid("size", "a chunked upload needs the size parameter"))
		return
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	up, err := s.d.Storage.Upload(r.Context(), p, pid, params.Path, body, size, r.Header.Get("Content-Type"))
	if err != nil {
		if fault.From(err).Code == storage.CodeSizeMismatch || fault.From(err).Code == storage.CodeTooLarge {
			// What is left of the body is not read: the connection closes.
			w.Header().Set("Connection", "close")
		}
		s.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if up.Replaced {
		status = http.StatusOK
	}
	writeJSON(w, status, storageEntryView(up.Entry))
}

// MkdirStorage implements [api.ServerInterface].
func (h *handlers) MkdirStorage(w http.ResponseWriter, r *http.Request, _ api.MkdirStorageParams) {
	s := h.s
	p, pid, ok := s.storageCall(w, r)
	if !ok {
		return
	}
	var req api.StorageMkdirRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	e, err := s.d.Storage.Mkdir(r.Context(), p, pid, req.Path)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, storageEntryView(e))
}

// RenameStorage implements [api.ServerInterface].
func (h *handlers) RenameStorage(w http.ResponseWriter, r *http.Request, _ api.RenameStorageParams) {
	s := h.s
	p, pid, ok := s.storageCall(w, r)
	if !ok {
		return
	}
	var req api.StorageRenameRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.d.Storage.Rename(r.Context(), p, pid, req.From, req.To)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.StorageMoved{Entry: storageEntryView(m.Entry), Entries: m.Entries})
}

// DeleteStorage implements [api.ServerInterface].
func (h *handlers) DeleteStorage(w http.ResponseWriter, r *http.Request, params api.DeleteStorageParams) {
	s := h.s
	p, pid, ok := s.storageCall(w, r)
	if !ok {
		return
	}
	d, err := s.d.Storage.Delete(r.Context(), p, pid, params.Path, params.Recursive != nil && *params.Recursive)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.StorageDeleted{Path: d.Entry.Path.String(), Kind: api.StorageDeletedKind(d.Entry.Kind),
		Files: d.Files, Bytes: d.Bytes})
}

// StorageUsage implements [api.ServerInterface].
func (h *handlers) StorageUsage(w http.ResponseWriter, r *http.Request, _ api.StorageUsageParams) {
	s := h.s
	p, pid, ok := s.storageCall(w, r)
	if !ok {
		return
	}
	u, err := s.d.Storage.Usage(r.Context(), p, pid)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.StorageUsage{UsedBytes: u.UsedBytes, ReservedBytes: u.ReservedBytes,
		QuotaBytes: u.QuotaBytes, FreeBytes: u.Free(), Files: u.Files, Folders: u.Folders})
}

func signedView(r ports.PresignedRequest) api.StorageSignedRequest {
	h := map[string]string{}
	for k, v := range r.Headers {
		h[k] = v
	}
	return api.StorageSignedRequest{Method: r.Method, Url: r.URL, Headers: h, ExpiresAt: r.ExpiresAt}
}

// PresignStorage implements [api.ServerInterface]. Its answer holds
// credentials, so it is never stored for idempotent replay (the operation
// takes no X-Idempotency-Key).
func (h *handlers) PresignStorage(w http.ResponseWriter, r *http.Request, _ api.PresignStorageParams) {
	s := h.s
	p, pid, ok := s.storageCall(w, r)
	if !ok {
		return
	}
	var req api.StoragePresignRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	pre, err := s.d.Storage.Presign(r.Context(), p, pid, storagesvc.PresignRequest{Path: req.Path, Method: string(req.Method),
		Size: derefInt(req.SizeBytes), ContentType: deref(req.ContentType)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.StoragePresigned{Path: pre.Path.String(), Method: api.StoragePresignedMethod(pre.Method), ExpiresAt: pre.ExpiresAt}
	if pre.Request != nil {
		v := signedView(*pre.Request)
		out.Request = &v
	}
	if pre.UploadID != "" {
		out.UploadId = &pre.UploadID
	}
	if len(pre.Parts) > 0 {
		parts := make([]api.StoragePresignedPart, 0, len(pre.Parts))
		for _, pt := range pre.Parts {
			parts = append(parts, api.StoragePresignedPart{Number: int(pt.Number), SizeBytes: pt.Size, Request: signedView(pt.Request)})
		}
		out.Parts = &parts
		out.PartSizeBytes = &pre.PartSize
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

func derefInt(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// CompleteStorageUpload implements [api.ServerInterface].
func (h *handlers) CompleteStorageUpload(w http.ResponseWriter, r *http.Request, _ api.CompleteStorageUploadParams) {
	s := h.s
	p, pid, ok := s.storageCall(w, r)
	if !ok {
		return
	}
	var req api.StorageCompleteRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	var parts []ports.CompletedPart
	if req.Parts != nil {
		for _, pt := range *req.Parts {
			parts = append(parts, ports.CompletedPart{Number: int32(pt.Number), ETag: strings.Trim(pt.Etag, `"`)})
		}
	}
	up, err := s.d.Storage.CompleteUpload(r.Context(), p, pid, req.UploadId, parts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if up.Replaced {
		status = http.StatusOK
	}
	writeJSON(w, status, storageEntryView(up.Entry))
}
