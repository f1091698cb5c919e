package s3

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// MaxPresignTTL is SigV4's limit on a presigned URL's lifetime.
const MaxPresignTTL = 7 * 24 * time.Hour

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > MaxPresignTTL {
		return errors.New("s3: presign ttl must be in (0, 7 days]")
	}
	return nil
}

func presigned(r *v4.PresignedHTTPRequest, ttl time.Duration, now time.Time) ports.PresignedRequest {
	h := map[string]string{}
	for k, v := range r.SignedHeader {
		if http.CanonicalHeaderKey(k) == "Host" || len(v) == 0 {
			continue
		}
		h[http.CanonicalHeaderKey(k)] = v[0]
	}
	return ports.PresignedRequest{Method: r.Method, URL: r.URL, Headers: h, ExpiresAt: now.Add(ttl)}
}

// PresignGet implements [ports.ObjectPresigner].
func (s *Store) PresignGet(ctx context.Context, key, filename string, ttl time.Duration) (ports.PresignedRequest, error) {
	if err := checkTTL(ttl); err != nil {
		return ports.PresignedRequest{}, fault.Internal(err)
	}
	in := &awss3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)}
	if filename != "" {
		in.ResponseContentDisposition = aws.String(mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	}
	now := time.Now()
	r, err := s.presign.PresignGetObject(ctx, in, awss3.WithPresignExpires(ttl))
	if err != nil {
		return ports.PresignedRequest{}, translate(err, key)
	}
	return presigned(r, ttl, now), nil
}

// PresignPut implements [ports.ObjectPresigner]: Content-Length (and
// Content-Type when given) are signed, so the URL takes exactly that body.
func (s *Store) PresignPut(ctx context.Context, key string, size int64, contentType string, ttl time.Duration) (ports.PresignedRequest, error) {
	if err := checkTTL(ttl); err != nil {
		return ports.PresignedRequest{}, fault.Internal(err)
	}
	in := &awss3.PutObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), ContentLength: aws.Int64(size)}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	now := time.Now()
	r, err := s.presign.PresignPutObject(ctx, in, awss3.WithPresignExpires(ttl))
	if err != nil {
		return ports.PresignedRequest{}, translate(err, key)
	}
	return presigned(r, ttl, now), nil
}

// CreateMultipart implements [ports.MultipartUploads].
func (s *Store) CreateMultipart(ctx context.Context, key, contentType string) (string, error) {
	in := &awss3.CreateMultipartUploadInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	out, err := s.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", translate(err, key)
	}
	return aws.ToString(out.UploadId), nil
}

// PresignPart implements [ports.MultipartUploads].
func (s *Store) PresignPart(ctx context.Context, key, uploadID string, number int32, size int64, ttl time.Duration) (ports.PresignedRequest, error) {
	if err := checkTTL(ttl); err != nil {
		return ports.PresignedRequest{}, fault.Internal(err)
	}
	now := time.Now()
	r, err := s.presign.PresignUploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key),
		UploadId: aws.String(uploadID), PartNumber: aws.Int32(number), ContentLength: aws.Int64(size)},
		awss3.WithPresignExpires(ttl))
	if err != nil {
		return ports.PresignedRequest{}, translate(err, key)
	}
	return presigned(r, ttl, now), nil
}

// CompleteMultipart implements [ports.MultipartUploads].
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []ports.CompletedPart) (ports.ObjectInfo, error) {
	cp := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		cp[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(quote(p.ETag))}
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String(s.cfg.Bucket),
		Key: aws.String(key), UploadId: aws.String(uploadID), MultipartUpload: &types.CompletedMultipartUpload{Parts: cp}})
	if err != nil {
		return ports.ObjectInfo{}, translate(err, key)
	}
	return s.Head(ctx, key)
}

// AbortMultipart implements [ports.MultipartUploads].
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	_, err := s.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: aws.String(s.cfg.Bucket),
		Key: aws.String(key), UploadId: aws.String(uploadID)})
	if err != nil && !fault.IsKind(translate(err, key), fault.KindNotFound) {
		return translate(err, key)
	}
	return nil
}

// ListMultipart implements [ports.MultipartUploads].
func (s *Store) ListMultipart(ctx context.Context, prefix string) ([]ports.MultipartUpload, error) {
	var out []ports.MultipartUpload
	in := &awss3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(prefix)}
	for {
		page, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, translate(err, "")
		}
		for _, u := range page.Uploads {
			out = append(out, ports.MultipartUpload{Key: aws.ToString(u.Key), UploadID: aws.ToString(u.UploadId),
				Initiated: aws.ToTime(u.Initiated)})
		}
		if !aws.ToBool(page.IsTruncated) {
			return out, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}
