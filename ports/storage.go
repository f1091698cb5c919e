package ports

import (
	"context"
	"io"
	"time"

	"github.com/gpuaas/gpuaas/core/storage"
)

// The ports of project storage (doc/storage.md): objects in S3 under
// "{tenant}/{project}/", an index of files and folders in Postgres, and the
// quota reservations of uploads in flight.

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string // without quotes
	ContentType  string
	LastModified time.Time
}

// GetOptions select what Get reads.
type GetOptions struct {
	// Offset and Length select a byte range; Length < 0 reads to the end.
	Offset, Length int64
	// IfMatch, when set, refuses an object whose ETag differs (it changed
	// since the caller looked): Conflict storage_conflict.
	IfMatch string
}

// ObjectStore stores objects by key (adapters/s3; testkit/fakes.ObjectStore).
// Keys are made by core/storage; the store never interprets them. A missing
// object is NotFound storage_object_not_found.
type ObjectStore interface {
	// Put stores exactly size bytes read from r under key, replacing any
	// object there, streaming (it never holds the whole body). A body that
	// ends early or holds more than size bytes is storage_upload_size_mismatch
	// and stores nothing; a failed or cancelled Put leaves the key as it
	// was. The returned info is what was stored.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (ObjectInfo, error)
	// Get opens the object, or a byte range of it.
	Get(ctx context.Context, key string, o GetOptions) (io.ReadCloser, error)
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// Copy copies src to dst inside the store (no bytes through the caller).
	Copy(ctx context.Context, src, dst string) (ObjectInfo, error)
	// Delete removes the keys; an absent key is not an error.
	Delete(ctx context.Context, keys ...string) error
	// List pages through the keys under prefix in key order, after cursor
	// ("" to start); next is "" on the last page.
	List(ctx context.Context, prefix, cursor string, limit int) (objects []ObjectInfo, next string, err error)
}

// PresignedRequest is a request anyone holding it may make until it
// expires: an S3 URL signed for one method and one key.
type PresignedRequest struct {
	Method    string
	URL       string
	Headers   map[string]string // headers the request must carry as signed
	ExpiresAt time.Time
}

// ObjectPresigner signs short-lived requests for one key, so large
// transfers (and node syncs) go to the store directly with no long-lived
// credential leaving the platform.
type ObjectPresigner interface {
	// PresignGet signs a GET of key. filename, when set, is sent back as the
	// response's Content-Disposition (attachment).
	PresignGet(ctx context.Context, key, filename string, ttl time.Duration) (PresignedRequest, error)
	// PresignPut signs a PUT of exactly size bytes to key.
	PresignPut(ctx context.Context, key string, size int64, contentType string, ttl time.Duration) (PresignedRequest, error)
}

// CompletedPart is one uploaded part of a multipart upload.
type CompletedPart struct {
	Number int32
	ETag   string
}

// MultipartUpload is an upload in progress in the store.
type MultipartUpload struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// MultipartUploads runs multipart uploads whose parts clients PUT through
// presigned URLs (files over 5 GiB, which one PUT cannot carry).
type MultipartUploads interface {
	CreateMultipart(ctx context.Context, key, contentType string) (uploadID string, err error)
	PresignPart(ctx context.Context, key, uploadID string, number int32, size int64, ttl time.Duration) (PresignedRequest, error)
	// CompleteMultipart assembles the parts; a missing or wrong part is
	// Invalid storage_upload_size_mismatch.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []CompletedPart) (ObjectInfo, error)
	// AbortMultipart discards the parts; an unknown upload is not an error.
	AbortMultipart(ctx context.Context, key, uploadID string) error
	// ListMultipart lists uploads in progress under prefix (the reconciler
	// aborts the abandoned ones).
	ListMultipart(ctx context.Context, prefix string) ([]MultipartUpload, error)
}

// StorageIndex is the index of a project's files and folders
// (adapters/postgres). Every call joins the transaction in ctx. Paths are
// canonical (core/storage); a missing entry is NotFound
// storage_object_not_found.
type StorageIndex interface {
	Get(ctx context.Context, sc storage.Scope, p storage.Path) (storage.Entry, error)
	// List pages through dir's children in name order (bytewise), after
	// cursor ("" to start); next is "" on the last page. A dir that is not a
	// folder is NotFound (the root always exists).
	List(ctx context.Context, sc storage.Scope, dir storage.Path, cursor string, limit int) (entries []storage.Entry, next string, err error)
	// PutFile records a file whose object was written, creating its missing
	// ancestor folders. It returns the file it replaced (found=false when
	// new). A folder at the path, or a file where an ancestor folder should
	// be, is Conflict storage_conflict.
	PutFile(ctx context.Context, sc storage.Scope, e storage.Entry) (replaced storage.Entry, found bool, err error)
	// Mkdir records a folder and its missing ancestors; an existing entry at
	// the path is Conflict storage_conflict (a file on the way, too).
	Mkdir(ctx context.Context, sc storage.Scope, e storage.Entry) error
	// Files pages through the files at or below p (p itself when it is a
	// file), in path order after cursor.
	Files(ctx context.Context, sc storage.Scope, p storage.Path, cursor string, limit int) (files []storage.Entry, next string, err error)
	// Move renames p and everything below it to `to`, creating to's missing
	// ancestors: Conflict when `to` exists or lies within p, NotFound when
	// p does not exist. It returns the entries it moved, at their new paths
	// (the caller checks them against the objects it copied).
	Move(ctx context.Context, sc storage.Scope, p, to storage.Path, at time.Time) ([]storage.Entry, error)
	// Delete removes p, and with recursive everything below it, and returns
	// the files removed (their objects are the caller's to delete). A folder
	// with children without recursive is Conflict storage_conflict.
	Delete(ctx context.Context, sc storage.Scope, p storage.Path, recursive bool) ([]storage.Entry, error)
	// Usage sums the project's files (QuotaBytes is left 0) and the
	// reservations live at now.
	Usage(ctx context.Context, sc storage.Scope, now time.Time) (storage.Usage, error)
	// Scopes pages through the projects that have entries, after cursor.
	Scopes(ctx context.Context, cursor string, limit int) (scopes []storage.Scope, next string, err error)
}

// Reservation holds quota for an upload in flight. It is taken before the
// bytes move and released when the upload is committed to the index or
// fails; one that outlives ExpiresAt no longer counts and the reconciler
// removes it (aborting its multipart upload, if any).
type Reservation struct {
	ID        string
	Scope     storage.Scope
	Path      storage.Path
	Bytes     int64
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	// ContentType of a presigned upload, checked at completion.
	ContentType string
	// MultipartID is the store's upload id of a presigned multipart upload.
	MultipartID string
}

// StorageReservations takes and releases quota reservations
// (adapters/postgres). Calls join the transaction in ctx.
type StorageReservations interface {
	// Reserve checks r against the project's quota and records it, as one
	// atomic step serialised per project: used (less the file at r.Path it
	// would replace) + the live reservations + r.Bytes must not exceed
	// quotaBytes, else storage_quota_exceeded. It returns the usage it
	// checked against.
	Reserve(ctx context.Context, r Reservation, quotaBytes int64) (storage.Usage, error)
	// GetReservation returns a live or expired reservation of the scope.
	GetReservation(ctx context.Context, sc storage.Scope, id string) (Reservation, error)
	// SetMultipartID records the store's multipart upload id.
	SetMultipartID(ctx context.Context, sc storage.Scope, id, multipartID string) error
	// Release removes a reservation; an absent one is not an error.
	Release(ctx context.Context, sc storage.Scope, id string) error
	// Expired lists up to limit reservations that expired before now.
	Expired(ctx context.Context, now time.Time, limit int) ([]Reservation, error)
	// Live lists the scope's reservations still live at now (uploads in
	// flight, whose objects the reconciler must leave alone).
	Live(ctx context.Context, sc storage.Scope, now time.Time) ([]Reservation, error)
}

// NodeSync is an allocation's storage sync: the project folder pulled into
// a folder of the account's home at activation and pushed back at release.
type NodeSync struct {
	AllocationID string
	Scope        storage.Scope
	UserID       string
	Path         storage.Path // the project folder
	Dir          string       // the folder below the account's home
	// PulledNodeTime is the node's clock (Unix nanoseconds) when the pull
	// ended; 0 until then. Files not modified since are not pushed back.
	PulledNodeTime int64
	PushedAt       time.Time // zero until pushed
	CreatedAt      time.Time
}

// StorageSyncs records allocations' storage syncs (adapters/postgres).
type StorageSyncs interface {
	// SaveSync records ns; an allocation's existing record is kept (the
	// activation may run again).
	SaveSync(ctx context.Context, ns NodeSync) error
	// SyncOf returns the allocation's record, NotFound when it has none.
	SyncOf(ctx context.Context, allocationID string) (NodeSync, error)
	MarkPulled(ctx context.Context, allocationID string, nodeTime int64) error
	MarkPushed(ctx context.Context, allocationID string, at time.Time) error
}
