package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/ports"
)

// Config configures the adapter.
type Config struct {
	// Bucket holds every project's objects under "{tenant}/{project}/".
	Bucket string
	// Region of the bucket; default "us-east-1" (what gateways expect).
	Region string
	// Endpoint is an S3-compatible service's URL (versitygw, MinIO…); empty
	// uses AWS's. Set, it implies path-style addressing unless
	// VirtualHosted is set.
	Endpoint string
	// VirtualHosted uses bucket.host addressing with a custom Endpoint.
	VirtualHosted bool
	// PresignEndpoint, when set, is the endpoint presigned URLs name (the
	// address clients and nodes reach), if the platform reaches the store
	// through another one. Default: Endpoint.
	PresignEndpoint string
	// Credentials overrides the SDK's default chain (environment, shared
	// files, instance or task role); nil uses it. StaticCredentials makes
	// one from a key pair.
	Credentials aws.CredentialsProvider

	// PartSize of multipart uploads (≥ 5 MiB); default 8 MiB. An upload
	// holds at most Concurrency+1 parts in memory, whatever its size.
	PartSize int64
	// Concurrency is the parts of one upload in flight; default 3.
	Concurrency int
	// MaxAttempts of the SDK's retryer; default 3.
	MaxAttempts int
	// HTTPClient is optional (the SDK's default otherwise).
	HTTPClient *http.Client
}

// StaticCredentials is a fixed key pair (gateways in dev and tests).
func StaticCredentials(accessKey, secretKey string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
}

// MinPartSize is S3's smallest part (except the last).
const MinPartSize = 5 << 20

// CheckAndSetDefaults validates the config.
func (c *Config) CheckAndSetDefaults() error {
	if c.Bucket == "" {
		return errors.New("s3: Bucket is required")
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	for name, ep := range map[string]string{"Endpoint": c.Endpoint, "PresignEndpoint": c.PresignEndpoint} {
		if ep == "" {
			continue
		}
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("s3: %s is not an http(s) URL", name)
		}
	}
	if c.PresignEndpoint == "" {
		c.PresignEndpoint = c.Endpoint
	}
	if c.PartSize == 0 {
		c.PartSize = 8 << 20
	}
	if c.PartSize < MinPartSize {
		return errors.New("s3: PartSize must be at least 5 MiB")
	}
	if c.Concurrency == 0 {
		c.Concurrency = 3
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.Concurrency < 1 || c.MaxAttempts < 1 {
		return errors.New("s3: Concurrency and MaxAttempts must be positive")
	}
	return nil
}

// Store implements the object ports on one bucket.
type Store struct {
	cfg     Config
	client  *awss3.Client
	presign *awss3.PresignClient
	tm      *transfermanager.Client
}

var (
	_ ports.ObjectStore      = (*Store)(nil)
	_ ports.ObjectPresigner  = (*Store)(nil)
	_ ports.MultipartUploads = (*Store)(nil)
	_ ports.HealthCheck      = (*Store)(nil)
)

// New builds the clients. Credentials resolve lazily at the first call, so
// it does no network I/O.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Region),
		awsconfig.WithRetryMaxAttempts(cfg.MaxAttempts),
		// S3-compatible gateways differ in which flexible checksums they
		// take; ask for them only where the API requires one, and keep
		// presigned URLs free of checksum headers a plain client would
		// have to repeat.
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Credentials != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, awsconfig.WithHTTPClient(cfg.HTTPClient))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = !cfg.VirtualHosted
		}
	})
	presignClient := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.PresignEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.PresignEndpoint)
			o.UsePathStyle = !cfg.VirtualHosted
		}
	})
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes = cfg.PartSize
		// The first part is read whole before deciding single vs multipart:
		// keep it one part, not the default 16 MiB.
		o.MultipartUploadThreshold = cfg.PartSize
		o.Concurrency = cfg.Concurrency
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		// Abort a failed multipart upload with a fresh context: the usual
		// failure is the request's context ending (the client went away).
		o.FailTimeout = 30 * time.Second
	})
	return &Store{cfg: cfg, client: client, presign: awss3.NewPresignClient(presignClient), tm: tm}, nil
}

// Bucket is the configured bucket.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// EnsureBucket creates the bucket when it does not exist (`gpuaas dev`,
// tests); production buckets are made by their operators.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)})
	if err == nil {
		return nil
	}
	_, err = s.client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(s.cfg.Bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return translate(err, "")
	}
	return nil
}

// Name implements [ports.HealthCheck].
func (s *Store) Name() string { return "s3" }

// Check implements [ports.HealthCheck]: the bucket answers.
func (s *Store) Check(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)})
	return translate(err, "")
}

// errSizeMismatch marks a body that did not hold the declared size.
var errSizeMismatch = errors.New("s3: body size differs from the declared size")

// exactReader yields exactly size bytes of r: an early end, a read error
// (a client that went away) or a byte past size fails the upload, so
// nothing is stored.
type exactReader struct {
	r    io.Reader
	left int64
	err  error // the first failure seen, reported by Put
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left == 0 {
		var one [1]byte
		n, err := io.ReadFull(e.r, one[:])
		if n > 0 {
			e.err = errSizeMismatch
			return 0, e.err
		}
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			e.err = err
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			e.err = errSizeMismatch
			return n, e.err
		}
		err = nil
	} else if err != nil {
		e.err = err
	}
	return n, err
}

// Put implements [ports.ObjectStore]: one PUT for a body up to PartSize,
// otherwise a multipart upload with at most Concurrency+1 part buffers.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (ports.ObjectInfo, error) {
	if size < 0 {
		return ports.ObjectInfo{}, fault.Invalid("size", "size must not be negative")
	}
	body := &exactReader{r: r, left: size}
	in := &transfermanager.UploadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), Body: body,
		ContentLength: aws.Int64(size)}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	out, err := s.tm.UploadObject(ctx, in)
	if body.err != nil {
		return ports.ObjectInfo{}, sizeMismatch(body.err)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ports.ObjectInfo{}, sizeMismatch(ctx.Err())
		}
		return ports.ObjectInfo{}, translate(err, key)
	}
	if body.left != 0 {
		return ports.ObjectInfo{}, sizeMismatch(errSizeMismatch)
	}
	info := ports.ObjectInfo{Key: key, Size: size, ETag: unquote(aws.ToString(out.ETag)), ContentType: contentType}
	if info.ETag == "" {
		// Some gateways leave it out of the completion; ask.
		return s.Head(ctx, key)
	}
	return info, nil
}

// sizeMismatch is how a body that did not arrive whole reads to a caller.
func sizeMismatch(cause error) error {
	return (&fault.Error{Kind: fault.KindInvalid, Code: storage.CodeSizeMismatch,
		Message: "the upload did not carry the declared number of bytes; nothing was stored"}).Wrap(cause)
}

// Get implements [ports.ObjectStore].
func (s *Store) Get(ctx context.Context, key string, o ports.GetOptions) (io.ReadCloser, error) {
	in := &awss3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)}
	if o.Offset < 0 {
		return nil, fault.Invalid("range", "range start must not be negative")
	}
	if o.Offset > 0 || o.Length >= 0 {
		rng := "bytes=" + strconv.FormatInt(o.Offset, 10) + "-"
		if o.Length == 0 {
			return io.NopCloser(strings.NewReader("")), nil
		}
		if o.Length > 0 {
			rng += strconv.FormatInt(o.Offset+o.Length-1, 10)
		}
		in.Range = aws.String(rng)
	}
	if o.IfMatch != "" {
		in.IfMatch = aws.String(quote(o.IfMatch))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, translate(err, key)
	}
	return out.Body, nil
}

// Head implements [ports.ObjectStore].
func (s *Store) Head(ctx context.Context, key string) (ports.ObjectInfo, error) {
	out, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return ports.ObjectInfo{}, translate(err, key)
	}
	return ports.ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ETag: unquote(aws.ToString(out.ETag)),
		ContentType: aws.ToString(out.ContentType), LastModified: aws.ToTime(out.LastModified)}, nil
}

// maxCopySize is the largest object one CopyObject copies; larger ones are
// copied part by part.
const maxCopySize = 5 << 30

// copyPartSize is the part size of a multipart copy.
const copyPartSize = 512 << 20

// Copy implements [ports.ObjectStore] with CopyObject, or UploadPartCopy
// for objects over 5 GiB.
func (s *Store) Copy(ctx context.Context, src, dst string) (ports.ObjectInfo, error) {
	info, err := s.Head(ctx, src)
	if err != nil {
		return ports.ObjectInfo{}, err
	}
	source := s.cfg.Bucket + "/" + escapeKey(src)
	if info.Size <= maxCopySize {
		_, err := s.client.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(dst),
			CopySource: aws.String(source), CopySourceIfMatch: aws.String(quote(info.ETag))})
		if err != nil {
			return ports.ObjectInfo{}, translate(err, src)
		}
		return s.Head(ctx, dst)
	}
	id, err := s.CreateMultipart(ctx, dst, info.ContentType)
	if err != nil {
		return ports.ObjectInfo{}, err
	}
	var parts []ports.CompletedPart
	for off, n := int64(0), int32(1); off < info.Size; off, n = off+copyPartSize, n+1 {
		end := min(off+copyPartSize, info.Size) - 1
		out, err := s.client.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: aws.String(s.cfg.Bucket),
			Key: aws.String(dst), UploadId: aws.String(id), PartNumber: aws.Int32(n), CopySource: aws.String(source),
			CopySourceIfMatch: aws.String(quote(info.ETag)),
			CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", off, end))})
		if err != nil {
			_ = s.AbortMultipart(context.WithoutCancel(ctx), dst, id)
			return ports.ObjectInfo{}, translate(err, src)
		}
		parts = append(parts, ports.CompletedPart{Number: n, ETag: unquote(aws.ToString(out.CopyPartResult.ETag))})
	}
	return s.CompleteMultipart(ctx, dst, id, parts)
}

// escapeKey URL-encodes a key for x-amz-copy-source, keeping its slashes.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// Delete implements [ports.ObjectStore]: DeleteObjects in batches of 1,000.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 1 {
		_, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(keys[0])})
		if err != nil && !isNotFound(err) {
			return translate(err, keys[0])
		}
		return nil
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		ids := make([]types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := s.client.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: aws.String(s.cfg.Bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return translate(err, "")
		}
		for _, e := range out.Errors {
			if aws.ToString(e.Code) != "NoSuchKey" {
				return fault.Unavailable("object store refused a delete", fmt.Errorf("s3: delete %q: %s: %s",
					aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
			}
		}
		keys = keys[n:]
	}
	return nil
}

// List implements [ports.ObjectStore] with ListObjectsV2 (StartAfter).
func (s *Store) List(ctx context.Context, prefix, cursor string, limit int) ([]ports.ObjectInfo, string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	in := &awss3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(prefix),
		MaxKeys: aws.Int32(int32(limit))}
	if cursor != "" {
		in.StartAfter = aws.String(cursor)
	}
	out, err := s.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, "", translate(err, "")
	}
	objs := make([]ports.ObjectInfo, 0, len(out.Contents))
	for _, o := range out.Contents {
		key := aws.ToString(o.Key)
		if strings.HasSuffix(key, "/") {
			continue // a gateway's folder marker, never one of ours
		}
		objs = append(objs, ports.ObjectInfo{Key: key, Size: aws.ToInt64(o.Size), ETag: unquote(aws.ToString(o.ETag)),
			LastModified: aws.ToTime(o.LastModified)})
	}
	next := ""
	if aws.ToBool(out.IsTruncated) && len(out.Contents) > 0 {
		next = aws.ToString(out.Contents[len(out.Contents)-1].Key)
	}
	return objs, next, nil
}

func quote(etag string) string {
	if strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") {
		return etag
	}
	return `"` + etag + `"`
}

func unquote(etag string) string { return strings.Trim(etag, `"`) }

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var ae smithy.APIError
	return errors.As(err, &nsk) || errors.As(err, &nf) ||
		(errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound"))
}

// translate maps S3 errors to fault kinds at the boundary. The key is not
// put in messages shown to callers.
func translate(err error, key string) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	if isNotFound(err) {
		return (&fault.Error{Kind: fault.KindNotFound, Code: storage.CodeObjectNotFound,
			Message: "no file or folder at this path"}).Wrap(err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed":
			return fault.Conflict(storage.CodeConflict, "the file changed while it was read").Wrap(err)
		case "InvalidRange":
			return fault.Invalid("range", "the range is outside the file").Wrap(err)
		case "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "EntityTooLarge", "IncompleteBody", "BadDigest", "InvalidDigest":
			return (&fault.Error{Kind: fault.KindInvalid, Code: storage.CodeSizeMismatch,
				Message: "the uploaded parts do not make up the declared file"}).Wrap(err)
		case "ObjectParentIsFile", "ExistingObjectIsDirectory":
			// File-system gateways (versitygw posix) cannot hold a file and a
			// folder of the same name; the index never asks them to.
			return fault.Conflict(storage.CodeConflict, "a file and a folder cannot share a name").Wrap(err)
		case "NoSuchUpload":
			return fault.NotFound("upload", "").Wrap(err)
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fault.Unavailable("object store did not answer in time", err)
	}
	return fault.Unavailable("object store unavailable", err)
}
