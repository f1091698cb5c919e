package storagesvc

import (
	"context"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/ports"
)

// PresignRequest asks for a direct transfer of one file of the caller's
// project: GET an existing file, or PUT a new one of Size bytes.
type PresignRequest struct {
	Path        string
	Method      string // GET or PUT
	Size        int64  // PUT only
	ContentType string // PUT only; default application/octet-stream
}

// PresignedPart is one part of a multipart upload.
type PresignedPart struct {
	Number  int32
	Size    int64
	Request ports.PresignedRequest
}

// Presigned is what the caller uses: one request (GET, or a PUT up to
// SinglePutBytes), or the parts of a multipart upload; uploads finish with
// CompleteUpload(UploadID).
type Presigned struct {
	Path      storage.Path
	Method    string
	Request   *ports.PresignedRequest
	UploadID  string
	Parts     []PresignedPart
	PartSize  int64
	ExpiresAt time.Time
}

// MaxParts is S3's limit on the parts of one upload.
const MaxParts = 10000

// completeGrace is how long after its URLs expire an upload may still be
// completed (a last part that started in time).
const completeGrace = time.Hour

// Presign signs a short-lived request for one key of the caller's project.
// A GET needs an existing file. A PUT reserves the quota like an upload
// through the API (released when it is completed, or when the reservation
// expires); over SinglePutBytes it is a multipart upload with one presigned
// URL per part. Only the project's key for the path is ever signed.
func (s *Service) Presign(ctx context.Context, p identity.Principal, projectID string, req PresignRequest) (Presigned, error) {
	pa, err := entryPath("path", req.Path)
	if err != nil {
		return Presigned{}, err
	}
	method := strings.ToUpper(req.Method)
	if method != methodGet && method != methodPut {
		return Presigned{}, fault.Invalid("method", "method must be GET or PUT")
	}
	sc, err := s.scope(ctx, p, projectID)
	if err != nil {
		return Presigned{}, err
	}
	key, err := sc.ObjectKey(pa)
	if err != nil {
		return Presigned{}, err
	}
	if method == methodGet {
		return s.presignGet(ctx, p, sc, pa, key)
	}
	if req.Size < 0 {
		return Presigned{}, fault.Invalid("size", "size must not be negative")
	}
	ct, err := storage.NormalizeContentType("content_type", req.ContentType)
	if err != nil {
		return Presigned{}, err
	}
	ct = storage.FileContentType(pa.Name(), ct) // signed: the client sends the headers it is given
	quota, maxFile, err := s.limits(ctx, sc)
	if err != nil {
		return Presigned{}, err
	}
	if req.Size > maxFile {
		return Presigned{}, storage.TooLarge(req.Size, maxFile)
	}
	if err := s.writable(ctx, sc, pa); err != nil {
		return Presigned{}, err
	}
	multipart := req.Size > s.cfg.SinglePutBytes
	ttl := s.cfg.PresignTTL
	partSize := s.cfg.PartBytes
	if multipart {
		ttl = max(ttl, 24*time.Hour)
		for (req.Size+partSize-1)/partSize > MaxParts {
			partSize *= 2
		}
	}
	now := s.d.Clock.Now()
	res := ports.Reservation{ID: s.d.IDs.NewID(), Scope: sc, Path: pa, Bytes: req.Size, UserID: p.User.ID,
		ContentType: ct, CreatedAt: now, ExpiresAt: now.Add(ttl + completeGrace)}
	if _, err := s.d.Reservations.Reserve(ctx, res, quota); err != nil {
		return Presigned{}, err
	}
	out := Presigned{Path: pa, Method: methodPut, UploadID: res.ID, ExpiresAt: now.Add(ttl)}
	fail := func(err error) (Presigned, error) {
		s.release(ctx, sc, res.ID)
		return Presigned{}, err
	}
	if !multipart {
		r, err := s.d.Presigner.PresignPut(ctx, key, req.Size, ct, ttl)
		if err != nil {
			return fail(err)
		}
		out.Request = &r
	} else {
		id, err := s.d.Multipart.CreateMultipart(ctx, key, ct)
		if err != nil {
			return fail(err)
		}
		if err := s.d.Reservations.SetMultipartID(ctx, sc, res.ID, id); err != nil {
			_ = s.d.Multipart.AbortMultipart(context.WithoutCancel(ctx), key, id)
			return fail(err)
		}
		out.PartSize = partSize
		for n, off := int32(1), int64(0); off < req.Size; n, off = n+1, off+partSize {
			size := min(partSize, req.Size-off)
			r, err := s.d.Multipart.PresignPart(ctx, key, id, n, size, ttl)
			if err != nil {
				_ = s.d.Multipart.AbortMultipart(context.WithoutCancel(ctx), key, id)
				return fail(err)
			}
			out.Parts = append(out.Parts, PresignedPart{Number: n, Size: size, Request: r})
		}
	}
	meta := map[string]any{"method": methodPut, "size_bytes": req.Size, "upload_id": res.ID, "parts": len(out.Parts),
		"expires_at": out.ExpiresAt.UTC().Format(time.RFC3339)}
	if err := s.record(ctx, sc, p.User.ID, ActionPresign, pa, meta); err != nil {
		return fail(err)
	}
	return out, nil
}

func (s *Service) presignGet(ctx context.Context, p identity.Principal, sc storage.Scope, pa storage.Path, key string) (Presigned, error) {
	e, err := s.d.Index.Get(ctx, sc, pa)
	if err != nil {
		return Presigned{}, err
	}
	if e.Kind != storage.File {
		return Presigned{}, storage.Conflict("the path is a folder; presign its files", pa)
	}
	r, err := s.d.Presigner.PresignGet(ctx, key, pa.Name(), s.cfg.PresignTTL)
	if err != nil {
		return Presigned{}, err
	}
	meta := map[string]any{"method": methodGet, "expires_at": r.ExpiresAt.UTC().Format(time.RFC3339)}
	if err := s.record(ctx, sc, p.User.ID, ActionPresign, pa, meta); err != nil {
		return Presigned{}, err
	}
	return Presigned{Path: pa, Method: methodGet, Request: &r, ExpiresAt: r.ExpiresAt}, nil
}

// CompleteUpload records a presigned upload once its bytes arrived: the
// multipart upload is assembled from parts (their numbers and ETags as the
// store answered each PUT), the object is checked against the reserved
// size, and the file is committed like an upload through the API. Only
// the user who started the upload may complete it; an expired one is
// storage_conflict (start again), one whose bytes have not arrived is
// storage_upload_size_mismatch.
func (s *Service) CompleteUpload(ctx context.Context, p identity.Principal, projectID, uploadID string, parts []ports.CompletedPart) (Uploaded, error) {
	sc, err := s.scope(ctx, p, projectID)
	if err != nil {
		return Uploaded{}, err
	}
	if identity.ValidateID("upload_id", uploadID) != nil {
		return Uploaded{}, fault.NotFound("upload", "")
	}
	r, err := s.d.Reservations.GetReservation(ctx, sc, uploadID)
	if err != nil {
		return Uploaded{}, err
	}
	if r.UserID != p.User.ID {
		return Uploaded{}, fault.NotFound("upload", "")
	}
	key, err := sc.ObjectKey(r.Path)
	if err != nil {
		return Uploaded{}, err
	}
	if !s.d.Clock.Now().Before(r.ExpiresAt) {
		s.release(ctx, sc, r.ID)
		if r.MultipartID != "" {
			_ = s.d.Multipart.AbortMultipart(context.WithoutCancel(ctx), key, r.MultipartID)
		}
		return Uploaded{}, storage.Conflict("the upload expired; start it again", r.Path)
	}
	var info ports.ObjectInfo
	if r.MultipartID != "" {
		if len(parts) == 0 || len(parts) > MaxParts {
			return Uploaded{}, fault.Invalid("parts", "a multipart upload is completed with its parts (1-10000)")
		}
		info, err = s.d.Multipart.CompleteMultipart(ctx, key, r.MultipartID, parts)
	} else {
		if len(parts) > 0 {
			return Uploaded{}, fault.Invalid("parts", "a single-PUT upload has no parts")
		}
		info, err = s.d.Objects.Head(ctx, key)
		// Skew between the store's clock and ours is allowed a minute.
		if err == nil && info.LastModified.Before(r.CreatedAt.Add(-time.Minute)) {
			err = fault.NotFound("", "")
		}
	}
	notArrived := &fault.Error{Kind: fault.KindInvalid, Code: storage.CodeSizeMismatch,
		Message: "the upload's bytes have not arrived whole; PUT them to the presigned URL first"}
	if fault.IsKind(err, fault.KindNotFound) {
		return Uploaded{}, notArrived
	}
	if err != nil {
		return Uploaded{}, err
	}
	if info.Size != r.Bytes {
		return Uploaded{}, notArrived
	}
	return s.commitFile(ctx, sc, r.ID, r.Path, info, r.ContentType, p.User.ID, "presigned")
}

// The methods a presigned request may have (core does not import net/http).
const (
	methodGet = "GET"
	methodPut = "PUT"
)
