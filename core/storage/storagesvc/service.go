package storagesvc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/cache"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/ports"
)

// Audit actions written by the service.
const (
	ActionUpload   = "storage.upload"
	ActionMkdir    = "storage.mkdir"
	ActionRename   = "storage.rename"
	ActionDelete   = "storage.delete"
	ActionPresign  = "storage.presign"
	ActionComplete = "storage.upload_complete"
	ActionSync     = "storage.node_sync"
	ActionRepair   = "storage.reconcile"
)

// Config tunes the service; zero values take the defaults.
type Config struct {
	// ReservationTTL bounds how long an upload through the API may hold
	// its quota reservation; default 24 h.
	ReservationTTL time.Duration
	// PresignTTL is how long presigned URLs work; default 15 min.
	PresignTTL time.Duration
	// MaxStreamBytes is the largest upload through the API itself (it is
	// streamed with a bounded buffer; larger files go through presigned
	// multipart URLs); default 64 GiB.
	MaxStreamBytes int64
	// SinglePutBytes is the largest presigned upload done in one PUT;
	// larger ones are multipart. Default 5 GiB (S3's limit).
	SinglePutBytes int64
	// PartBytes is the smallest part of a presigned multipart upload;
	// default 64 MiB (raised so that no upload needs over 10,000 parts).
	PartBytes int64
	// Concurrency of object copies and deletes in a folder move; default 8.
	Concurrency int
}

// CheckAndSetDefaults validates the config.
func (c *Config) CheckAndSetDefaults() error {
	if c.ReservationTTL == 0 {
		c.ReservationTTL = 24 * time.Hour
	}
	if c.PresignTTL == 0 {
		c.PresignTTL = 15 * time.Minute
	}
	if c.MaxStreamBytes == 0 {
		c.MaxStreamBytes = 64 << 30
	}
	if c.SinglePutBytes == 0 {
		c.SinglePutBytes = 5 << 30
	}
	if c.PartBytes == 0 {
		c.PartBytes = 64 << 20
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.ReservationTTL < 0 || c.PresignTTL < 0 || c.PresignTTL > 7*24*time.Hour || c.MaxStreamBytes < 0 ||
		c.SinglePutBytes <= 0 || c.PartBytes < 5<<20 || c.Concurrency < 1 {
		return errors.New("storagesvc: invalid Config")
	}
	return nil
}

// Deps are the ports the service needs.
type Deps struct {
	Tx           ports.TxRunner
	Index        ports.StorageIndex
	Reservations ports.StorageReservations
	Objects      ports.ObjectStore
	Presigner    ports.ObjectPresigner
	Multipart    ports.MultipartUploads
	Projects     ports.ProjectStore
	Policies     ports.PolicyStore
	Audit        ports.AuditLog
	Outbox       ports.Outbox
	Clock        ports.Clock
	IDs          ports.IDs
	// Syncs records allocations' storage syncs; optional (without it the
	// node sync use cases answer unavailable).
	Syncs ports.StorageSyncs
}

// Service implements the storage use cases.
type Service struct {
	cfg Config
	d   Deps
	// owners caches the projects scope has read (stored id and tenant),
	// by the id asked for, so a request reads its project once per process
	// instead of once per request. ports.ProjectStore can neither delete a
	// project nor move it to another tenant, so what was read holds for
	// good (should either ever become possible, this cache must go); every
	// request still compares the tenant with the caller's. A project not
	// found, or read inside a transaction (which may not commit), is never
	// cached.
	owners *cache.Bounded[string, projectOwner]
}

// projectOwner is a project's id as stored and its tenant.
type projectOwner struct{ id, tenant string }

// ownersCacheSize bounds the cached project owners (a few ids each).
const ownersCacheSize = 10000

// New checks the config and that every dependency is present.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if d.Tx == nil || d.Index == nil || d.Reservations == nil || d.Objects == nil || d.Presigner == nil ||
		d.Multipart == nil || d.Projects == nil || d.Policies == nil || d.Audit == nil || d.Outbox == nil ||
		d.Clock == nil || d.IDs == nil {
		return nil, errors.New("storagesvc: every dependency is required")
	}
	return &Service{cfg: cfg, d: d, owners: cache.NewBounded[string, projectOwner](ownersCacheSize)}, nil
}

// scope resolves the caller's project. The host has checked membership;
// this checks again that the project is the caller's tenant's, so a slip
// in a host cannot reach another tenant's objects (404, never 403).
func (s *Service) scope(ctx context.Context, p identity.Principal, projectID string) (storage.Scope, error) {
	if projectID == "" {
		return storage.Scope{}, &fault.Error{Kind: fault.KindInvalid, Code: fault.CodeProjectRequired,
			Message: "project storage needs a project", Field: "X-Project-ID"}
	}
	if identity.ValidateID("X-Project-ID", projectID) != nil {
		return storage.Scope{}, fault.NotFound("project", "")
	}
	o, err := s.owner(ctx, projectID)
	if err != nil {
		return storage.Scope{}, err
	}
	if o.tenant != p.TenantID || p.TenantID == "" {
		return storage.Scope{}, fault.NotFound("project", "")
	}
	sc := storage.Scope{TenantID: o.tenant, ProjectID: o.id}
	if err := sc.Validate(); err != nil {
		return storage.Scope{}, err
	}
	return sc, nil
}

// owner reads a project's stored id and tenant once (Service.owners).
func (s *Service) owner(ctx context.Context, projectID string) (projectOwner, error) {
	if o, ok := s.owners.Get(projectID); ok {
		return o, nil
	}
	pr, err := s.d.Projects.GetProject(ctx, projectID)
	if err != nil {
		if fault.IsKind(err, fault.KindNotFound) || fault.IsKind(err, fault.KindInvalid) {
			return projectOwner{}, fault.NotFound("project", "")
		}
		return projectOwner{}, err
	}
	o := projectOwner{id: pr.ID, tenant: pr.TenantID}
	if !inTransaction(ctx, s.d.Tx) {
		s.owners.Put(projectID, o)
	}
	return o, nil
}

// inTransaction reports whether ctx carries a transaction of tx, when tx
// can tell (postgres.DB can); a runner that cannot is assumed to.
func inTransaction(ctx context.Context, tx ports.TxRunner) bool {
	r, ok := tx.(interface{ InTransaction(context.Context) bool })
	return !ok || r.InTransaction(ctx)
}

// entryPath parses a path that must name an entry (not the root).
func entryPath(field, raw string) (storage.Path, error) {
	p, err := storage.ParsePath(field, raw)
	if err != nil {
		return p, err
	}
	if p.IsRoot() {
		return p, &fault.Error{Kind: fault.KindInvalid, Code: storage.CodePathTraversal, Field: field,
			Message: field + " names the project's top folder, not a file or folder in it"}
	}
	return p, nil
}

// Page is one page of a folder listing.
type Page struct {
	Dir     storage.Path
	Entries []storage.Entry
	Next    string
}

// MaxListLimit bounds a page.
const MaxListLimit = 1000

// List lists a folder's children in name order, from the index (never an
// S3 LIST).
func (s *Service) List(ctx context.Context, p identity.Principal, projectID, dir, cursor string, limit int) (Page, error) {
	d, err := storage.ParsePath("path", dir)
	if err != nil {
		return Page{}, err
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > MaxListLimit {
		return Page{}, fault.Invalid("limit", "limit must be between 1 and 1000")
	}
	sc, err := s.scope(ctx, p, projectID)
	if err != nil {
		return Page{}, err
	}
	es, next, err := s.d.Index.List(ctx, sc, d, cursor, limit)
	if err != nil {
		return Page{}, err
	}
	return Page{Dir: d, Entries: es, Next: next}, nil
}

// Stat returns one entry (the root is a folder).
func (s *Service) Stat(ctx context.Context, p identity.Principal, projectID, path string) (storage.Entry, error) {
	pa, err := storage.ParsePath("path", path)
	if err != nil {
		return storage.Entry{}, err
	}
	sc, err := s.scope(ctx, p, projectID)
	if err != nil {
		return storage.Entry{}, err
	}
	return s.d.Index.Get(ctx, sc, pa)
}

// Download is a file opened for reading: its entry, and a way to read any
// byte range of exactly that version (a file replaced meanwhile fails the
// read with storage_conflict instead of mixing versions).
type Download struct {
	Entry storage.Entry
	open  func(ctx context.Context, offset, length int64) (io.ReadCloser, error)
}

// Open reads length bytes from offset (length < 0: to the end).
func (d Download) Open(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	return d.open(ctx, offset, length)
}

// Open opens a file for download. A folder is storage_conflict.
func (s *Service) Open(ctx context.Context, p identity.Principal, projectID, path string) (Download, error) {
	pa, err := entryPath("path", path)
	if err != nil {
		return Download{}, err
	}
	sc, err := s.scope(ctx, p, projectID)
	if err != nil {
		return Download{}, err
	}
	e, err := s.d.Index.Get(ctx, sc, pa)
	if err != nil {
		return Download{}, err
	}
	if e.Kind != storage.File {
		return Download{}, storage.Conflict("the path is a folder; list it or download its files", pa)
	}
	key, err := sc.ObjectKey(pa)
	if err != nil {
		return Download{}, err
	}
	return Download{Entry: e, open: func(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
		rc, err := s.d.Objects.Get(ctx, key, ports.GetOptions{Offset: offset, Length: length, IfMatch: e.ETag})
		if fault.IsKind(err, fault.KindNotFound) {
			return nil, storage.NotFound(pa)
		}
		return rc, err
	}}, nil
}

// limits reads the tenant's quota and per-file limit.
func (s *Service) limits(ctx context.Context, sc storage.Scope) (quota, maxFile int64, err error) {
	vals, err := s.d.Policies.Values(ctx, sc.TenantID)
	if err != nil {
		return 0, 0, err
	}
	return vals.Int(policy.StorageQuotaBytes), vals.Int(policy.StorageMaxUploadBytes), nil
}

// Uploaded is the outcome of an upload.
type Uploaded struct {
	Entry    storage.Entry
	Replaced bool
}

// Upload stores a file from r, which must carry exactly size bytes. The
// quota is reserved first (one atomic check per project, so concurrent
// uploads cannot pass it together), the bytes are streamed to the object
// store (never held whole), then the index row, the audit record and the
// storage.object_created event commit together and the reservation is
// released. A body that ends early, runs long or breaks off stores nothing
// (storage_upload_size_mismatch) and releases the reservation.
func (s *Service) Upload(ctx context.Context, p identity.Principal, projectID, path string, r io.Reader, size int64, contentType string) (Uploaded, error) {
	pa, err := entryPath("path", path)
	if err != nil {
		return Uploaded{}, err
	}
	if size < 0 {
		return Uploaded{}, fault.Invalid("size", "size must not be negative")
	}
	ct, err := storage.NormalizeContentType("content_type", contentType)
	if err != nil {
		return Uploaded{}, err
	}
	ct = storage.FileContentType(pa.Name(), ct)
	sc, err := s.scope(ctx, p, projectID)
	if err != nil {
		return Uploaded{}, err
	}
	quota, maxFile, err := s.limits(ctx, sc)
	if err != nil {
		return Uploaded{}, err
	}
	if size > min(maxFile, s.cfg.MaxStreamBytes) {
		e := storage.TooLarge(size, min(maxFile, s.cfg.MaxStreamBytes))
		if size <= maxFile {
			e.Message = "the file is larger than an upload through the API may be; use a presigned upload (POST /storage/presign)"
		}
		return Uploaded{}, e
	}
	if err := s.writable(ctx, sc, pa); err != nil {
		return Uploaded{}, err
	}
	key, err := sc.ObjectKey(pa)
	if err != nil {
		return Uploaded{}, err
	}
	now := s.d.Clock.Now()
	res := ports.Reservation{ID: s.d.IDs.NewID(), Scope: sc, Path: pa, Bytes: size, UserID: p.User.ID,
		ContentType: ct, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ReservationTTL)}
	if _, err := s.d.Reservations.Reserve(ctx, res, quota); err != nil {
		return Uploaded{}, err
	}
	info, err := s.d.Objects.Put(ctx, key, r, size, ct)
	if err != nil {
		s.release(ctx, sc, res.ID)
		return Uploaded{}, err
	}
	out, err := s.commitFile(ctx, sc, res.ID, pa, info, ct, p.User.ID, "api")
	if err != nil {
		s.release(ctx, sc, res.ID)
		if fault.IsKind(err, fault.KindConflict) {
			// A folder took the path meanwhile: no row will ever name this
			// object, so it goes (the reconciler would remove it too).
			_ = s.d.Objects.Delete(context.WithoutCancel(ctx), key)
		}
		return Uploaded{}, err
	}
	return out, nil
}

// writable refuses early what the index would refuse after the bytes
// moved: a folder at the path, or a file where a folder is needed.
func (s *Service) writable(ctx context.Context, sc storage.Scope, pa storage.Path) error {
	e, err := s.d.Index.Get(ctx, sc, pa)
	switch {
	case err == nil && e.Kind == storage.Dir:
		return storage.Conflict("a folder exists at this path", pa)
	case err != nil && !fault.IsKind(err, fault.KindNotFound):
		return err
	}
	for _, a := range pa.Ancestors() {
		e, err := s.d.Index.Get(ctx, sc, a)
		switch {
		case err == nil && e.Kind == storage.File:
			return storage.Conflict("a file stands where a folder is needed", a)
		case fault.IsKind(err, fault.KindNotFound):
			return nil // the rest will be made
		case err != nil:
			return err
		}
	}
	return nil
}

// release drops a reservation whatever happened to the request's context.
func (s *Service) release(ctx context.Context, sc storage.Scope, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = s.d.Reservations.Release(ctx, sc, id) // an expired reservation stops counting anyway
}

// commitFile records a written object in the index, with its audit record
// and event, and releases the reservation, in one transaction.
func (s *Service) commitFile(ctx context.Context, sc storage.Scope, resID string, pa storage.Path, info ports.ObjectInfo, ct, userID, via string) (Uploaded, error) {
	now := s.d.Clock.Now()
	e := storage.Entry{Path: pa, Kind: storage.File, Size: info.Size, ETag: info.ETag, ContentType: ct, CreatedBy: userID,
		CreatedAt: now, UpdatedAt: now}
	var out Uploaded
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		prev, found, err := s.d.Index.PutFile(ctx, sc, e)
		if err != nil {
			return err
		}
		if found {
			e.CreatedAt, e.CreatedBy = prev.CreatedAt, prev.CreatedBy
		}
		out = Uploaded{Entry: e, Replaced: found}
		if resID != "" {
			if err := s.d.Reservations.Release(ctx, sc, resID); err != nil {
				return err
			}
		}
		action := ActionUpload
		switch via {
		case "presigned":
			action = ActionComplete
		case "node_sync":
			action = ActionSync
		}
		if err := s.record(ctx, sc, userID, action, pa, map[string]any{"size_bytes": e.Size, "replaced": found, "via": via}); err != nil {
			return err
		}
		return s.emit(ctx, sc, event.StorageObjectCreated, pa, map[string]any{"path": pa.String(), "kind": storage.File,
			"size_bytes": e.Size, "etag": e.ETag, "replaced": found, "user_id": userID, "via": via})
	})
	return out, err
}

// Mkdir makes a folder and its missing ancestors.
func (s *Service) Mkdir(ctx context.Context, p identity.Principal, projectID, path string) (storage.Entry, error) {
	pa, err := entryPath("path", path)
	if err != nil {
		return storage.Entry{}, err
	}
	sc, err := s.scope(ctx, p, projectID)
	if err != nil {
		return storage.Entry{}, err
	}
	now := s.d.Clock.Now()
	e := storage.Entry{Path: pa, Kind: storage.Dir, CreatedBy: p.User.ID, CreatedAt: now, UpdatedAt: now}
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Index.Mkdir(ctx, sc, e); err != nil {
			return err
		}
		if err := s.record(ctx, sc, p.User.ID, ActionMkdir, pa, nil); err != nil {
			return err
		}
		return s.emit(ctx, sc, event.StorageObjectCreated, pa, map[string]any{"path": pa.String(), "kind": storage.Dir,
			"size_bytes": 0, "etag": "", "replaced": false, "user_id": p.User.ID, "via": "api"})
	})
	return e, err
}

// Deleted says what a delete removed.
type Deleted struct {
	Entry storage.Entry
	Files int
	Bytes int64
}

// Delete removes a file, or a folder (with recursive, everything in it).
// The index rows go first, in one transaction with the audit record and
// the event; the objects after. An object whose delete fails is an orphan
// the reconciler removes.
func (s *Service) Delete(ctx context.Context, p identity.Principal, projectID, path string, recursive bool) (Deleted, error) {
	pa, err := entryPath("path", path)
	if err != nil {
		return Deleted{}, err
	}
	sc, err := s.scope(ctx, p, projectID)
	if err != nil {
		return Deleted{}, err
	}
	var out Deleted
	var keys []string
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		e, err := s.d.Index.Get(ctx, sc, pa)
		if err != nil {
			return err
		}
		files, err := s.d.Index.Delete(ctx, sc, pa, recursive)
		if err != nil {
			return err
		}
		out, keys = Deleted{Entry: e, Files: len(files)}, keys[:0]
		for _, f := range files {
			out.Bytes += f.Size
			k, err := sc.ObjectKey(f.Path)
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		meta := map[string]any{"kind": e.Kind, "files": out.Files, "bytes": out.Bytes, "recursive": recursive}
		if err := s.record(ctx, sc, p.User.ID, ActionDelete, pa, meta); err != nil {
			return err
		}
		return s.emit(ctx, sc, event.StorageObjectDeleted, pa, map[string]any{"path": pa.String(), "kind": e.Kind,
			"files": out.Files, "bytes": out.Bytes, "recursive": recursive, "user_id": p.User.ID})
	})
	if err != nil {
		return Deleted{}, err
	}
	dctx := context.WithoutCancel(ctx)
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		_ = s.d.Objects.Delete(dctx, keys[:n]...) // orphans left by a failure are the reconciler's
		keys = keys[n:]
	}
	return out, nil
}

// Usage reports the project's storage against its quota.
func (s *Service) Usage(ctx context.Context, p identity.Principal, projectID string) (storage.Usage, error) {
	sc, err := s.scope(ctx, p, projectID)
	if err != nil {
		return storage.Usage{}, err
	}
	quota, _, err := s.limits(ctx, sc)
	if err != nil {
		return storage.Usage{}, err
	}
	u, err := s.d.Index.Usage(ctx, sc, s.d.Clock.Now())
	if err != nil {
		return storage.Usage{}, err
	}
	u.QuotaBytes = quota
	return u, nil
}

func (s *Service) record(ctx context.Context, sc storage.Scope, userID, action string, pa storage.Path, meta map[string]any) error {
	actor := audit.ActorUser
	if userID == "" {
		actor = audit.ActorSystem
	}
	return s.d.Audit.Record(ctx, audit.Event{ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: actor,
		ActorID: userID, TenantID: sc.TenantID, ProjectID: sc.ProjectID, Action: action, ResourceType: "storage_object",
		ResourceID: pa.String(), Outcome: audit.Success, CorrelationID: callctx.CorrelationID(ctx),
		SourceIP: callctx.SourceIP(ctx), Metadata: meta})
}

func (s *Service) emit(ctx context.Context, sc storage.Scope, subject string, pa storage.Path, payload map[string]any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fault.Internal(err)
	}
	return s.d.Outbox.Append(ctx, event.Envelope{ID: s.d.IDs.NewID(), Type: subject, Version: 1,
		OccurredAt: s.d.Clock.Now(), TenantID: sc.TenantID, ProjectID: sc.ProjectID, AggregateType: "storage_object",
		AggregateID: pa.String(), CorrelationID: callctx.CorrelationID(ctx), Payload: body})
}
