package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/ports"
)

// StorageStore implements [ports.StorageIndex] and
// [ports.StorageReservations] on storage_objects and storage_reservations
// (migration 0012). Calls join the transaction in ctx.
type StorageStore struct{ db *DB }

var (
	_ ports.StorageIndex        = (*StorageStore)(nil)
	_ ports.StorageReservations = (*StorageStore)(nil)
)

// NewStorageStore returns the store.
func NewStorageStore(db *DB) *StorageStore { return &StorageStore{db: db} }

// scopeIDs returns the scope's ids in canonical form; ok is false when
// either is not a uuid (such a scope names nothing stored).
func scopeIDs(sc storage.Scope) (tenant, project string, ok bool) {
	t, ok1 := canonicalID(sc.TenantID)
	p, ok2 := canonicalID(sc.ProjectID)
	return t, p, ok1 && ok2
}

// below is the half-open range of paths strictly below dir: ['dir/',
// 'dir0') bytewise ('0' follows '/'); the root's range is everything.
func below(dir storage.Path) (lo, hi string) {
	if dir.IsRoot() {
		return "", "\U0010ffff"
	}
	return dir.Canonical() + "/", dir.Canonical() + "0"
}

const storageEntryCols = `path, kind, size_bytes, etag, content_type, COALESCE(created_by::text, ''), created_at, updated_at`

func scanStorageEntry(r pgx.Row) (storage.Entry, error) {
	var e storage.Entry
	var path, kind string
	if err := r.Scan(&path, &kind, &e.Size, &e.ETag, &e.ContentType, &e.CreatedBy, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return storage.Entry{}, err
	}
	e.Kind = storage.Kind(kind)
	return e, setPath(&e, path)
}

// setPath checks a stored path again (a value that is not canonical is
// refused, never trusted) and sets it.
func setPath(e *storage.Entry, path string) error {
	p, err := storage.FromCanonical(path)
	if err != nil {
		return fault.Internal(err)
	}
	e.Path = p
	return nil
}

// collectStorageEntries reads every row of storageEntryCols, errors
// translated; sizeHint is the rows expected (a page's limit), or 0.
func collectStorageEntries(rows pgx.Rows, sizeHint int) ([]storage.Entry, error) {
	out, err := scanStorageEntries(rows, sizeHint)
	if err != nil {
		return nil, translate(err, "file")
	}
	return out, nil
}

// scanStorageEntries is collectStorageEntries with the driver's errors as
// they are. Each row is decoded straight into its slot of the result
// (rawStorageScanner).
func scanStorageEntries(rows pgx.Rows, sizeHint int) ([]storage.Entry, error) {
	defer rows.Close()
	out := make([]storage.Entry, 0, sizeHint)
	var r rawStorageScanner
	for rows.Next() {
		out = append(out, storage.Entry{})
		if err := r.scan(rows, &out[len(out)-1]); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Get implements [ports.StorageIndex]. The root is a folder that always
// exists.
func (s *StorageStore) Get(ctx context.Context, sc storage.Scope, p storage.Path) (storage.Entry, error) {
	if p.IsRoot() {
		return storage.Entry{Path: p, Kind: storage.Dir}, nil
	}
	t, pr, ok := scopeIDs(sc)
	if !ok {
		return storage.Entry{}, storage.NotFound(p)
	}
	e, err := scanStorageEntry(s.db.Q(ctx).QueryRow(ctx, `SELECT `+storageEntryCols+` FROM storage_objects
		WHERE project_id = $1 AND tenant_id = $2 AND path = $3`, pr, t, p.Canonical()))
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Entry{}, storage.NotFound(p)
	}
	return e, translate(err, "file")
}

func encodeNameCursor(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

func decodeNameCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 || len(b) > storage.MaxPathBytes {
		return "", fault.Invalid("cursor", "the cursor is not one this server issued")
	}
	return string(b), nil
}

// List implements [ports.StorageIndex]: a keyset scan of
// storage_objects_children.
func (s *StorageStore) List(ctx context.Context, sc storage.Scope, dir storage.Path, cursor string, limit int) ([]storage.Entry, string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	after := ""
	if cursor != "" {
		var err error
		if after, err = decodeNameCursor(cursor); err != nil {
			return nil, "", err
		}
	}
	t, pr, ok := scopeIDs(sc)
	if !ok {
		return nil, "", storage.NotFound(dir)
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+storageEntryCols+` FROM storage_objects
		WHERE project_id = $1 AND parent = $2 AND name > $3 AND tenant_id = $4
		ORDER BY name LIMIT $5`, pr, dir.Canonical(), after, t, limit+1)
	if err != nil {
		return nil, "", translate(err, "file")
	}
	out, err := collectStorageEntries(rows, limit+1)
	if err != nil {
		return nil, "", err
	}
	if len(out) == 0 {
		// Children exist only below a folder; an empty page asks whether
		// the folder itself does.
		if _, err := s.dirExists(ctx, sc, dir); err != nil {
			return nil, "", err
		}
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeNameCursor(out[limit-1].Path.Name())
	}
	return out, next, nil
}

// dirExists reports NotFound unless dir is the root or a folder.
func (s *StorageStore) dirExists(ctx context.Context, sc storage.Scope, dir storage.Path) (storage.Entry, error) {
	e, err := s.Get(ctx, sc, dir)
	if err != nil {
		return e, err
	}
	if e.Kind != storage.Dir {
		return e, storage.NotFound(dir)
	}
	return e, nil
}

// ensureAncestors inserts p's missing ancestor folders and fails when one
// of them is a file.
func (s *StorageStore) ensureAncestors(ctx context.Context, t, pr string, p storage.Path, by string, at time.Time) error {
	anc := p.Ancestors()
	if len(anc) == 0 {
		return nil
	}
	paths := make([]string, len(anc))
	parents := make([]string, len(anc))
	names := make([]string, len(anc))
	for i, a := range anc {
		paths[i], parents[i], names[i] = a.Canonical(), a.Parent().Canonical(), a.Name()
	}
	q := s.db.Q(ctx)
	if _, err := q.Exec(ctx, `INSERT INTO storage_objects (tenant_id, project_id, path, parent, name, kind, created_by, created_at, updated_at)
		SELECT $1, $2, u.path, u.parent, u.name, 'dir', $6, $7, $7
		FROM unnest($3::text[], $4::text[], $5::text[]) AS u(path, parent, name)
		ON CONFLICT (project_id, path) DO NOTHING`, t, pr, paths, parents, names, nullableID(by), at); err != nil {
		return translate(err, "folder")
	}
	var file string
	err := q.QueryRow(ctx, `SELECT path FROM storage_objects WHERE project_id = $1 AND path = ANY($2::text[]) AND kind = 'file' LIMIT 1`,
		pr, paths).Scan(&file)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return translate(err, "folder")
	}
	fp, _ := storage.FromCanonical(file)
	return storage.Conflict("a file stands where a folder is needed", fp)
}

// inTx runs fn in the transaction in ctx, or in a new one.
func (s *StorageStore) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.db.InTx(ctx, fn)
}

// PutFile implements [ports.StorageIndex].
func (s *StorageStore) PutFile(ctx context.Context, sc storage.Scope, e storage.Entry) (storage.Entry, bool, error) {
	t, pr, ok := scopeIDs(sc)
	if !ok || e.Path.IsRoot() || e.Kind != storage.File {
		return storage.Entry{}, false, fault.Internal(errors.New("postgres: PutFile needs a file path in a valid scope"))
	}
	var prev storage.Entry
	var found bool
	err := s.inTx(ctx, func(ctx context.Context) error {
		if err := s.ensureAncestors(ctx, t, pr, e.Path, e.CreatedBy, e.UpdatedAt); err != nil {
			return err
		}
		q := s.db.Q(ctx)
		var err error
		prev, err = scanStorageEntry(q.QueryRow(ctx, `SELECT `+storageEntryCols+` FROM storage_objects
			WHERE project_id = $1 AND path = $2 FOR UPDATE`, pr, e.Path.Canonical()))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			found = false
		case err != nil:
			return translate(err, "file")
		default:
			found = true
			if prev.Kind == storage.Dir {
				return storage.Conflict("a folder exists at this path", e.Path)
			}
		}
		_, err = q.Exec(ctx, `INSERT INTO storage_objects (tenant_id, project_id, path, parent, name, kind, size_bytes, etag,
				content_type, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'file', $6, $7, $8, $9, $10, $10)
			ON CONFLICT (project_id, path) DO UPDATE SET size_bytes = EXCLUDED.size_bytes, etag = EXCLUDED.etag,
				content_type = EXCLUDED.content_type, updated_at = EXCLUDED.updated_at`,
			t, pr, e.Path.Canonical(), e.Path.Parent().Canonical(), e.Path.Name(), e.Size, e.ETag, e.ContentType,
			nullableID(e.CreatedBy), e.UpdatedAt)
		return translate(err, "file")
	})
	if err != nil {
		return storage.Entry{}, false, err
	}
	return prev, found, nil
}

// Mkdir implements [ports.StorageIndex].
func (s *StorageStore) Mkdir(ctx context.Context, sc storage.Scope, e storage.Entry) error {
	t, pr, ok := scopeIDs(sc)
	if !ok || e.Path.IsRoot() {
		return storage.Conflict("the folder exists", e.Path)
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		if err := s.ensureAncestors(ctx, t, pr, e.Path, e.CreatedBy, e.CreatedAt); err != nil {
			return err
		}
		_, err := s.db.Q(ctx).Exec(ctx, `INSERT INTO storage_objects (tenant_id, project_id, path, parent, name, kind,
				created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'dir', $6, $7, $7)`,
			t, pr, e.Path.Canonical(), e.Path.Parent().Canonical(), e.Path.Name(), nullableID(e.CreatedBy), e.CreatedAt)
		if IsUniqueViolation(err, "storage_objects_pkey") {
			return storage.Conflict("a file or folder exists at this path", e.Path)
		}
		return translate(err, "folder")
	})
}

// Files implements [ports.StorageIndex].
func (s *StorageStore) Files(ctx context.Context, sc storage.Scope, p storage.Path, cursor string, limit int) ([]storage.Entry, string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	t, pr, ok := scopeIDs(sc)
	if !ok {
		return nil, "", nil
	}
	after := ""
	if cursor != "" {
		var err error
		if after, err = decodeNameCursor(cursor); err != nil {
			return nil, "", err
		}
	}
	lo, hi := below(p)
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+storageEntryCols+` FROM storage_objects
		WHERE project_id = $1 AND tenant_id = $2 AND kind = 'file' AND path > $6
		  AND (path = $3 OR (path >= $4 AND path < $5))
		ORDER BY path LIMIT $7`, pr, t, p.Canonical(), lo, hi, after, limit+1)
	if err != nil {
		return nil, "", translate(err, "file")
	}
	out, err := collectStorageEntries(rows, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeNameCursor(out[limit-1].Path.Canonical())
	}
	return out, next, nil
}

// Move implements [ports.StorageIndex] in one statement: the entry and
// every path below it take the new prefix.
func (s *StorageStore) Move(ctx context.Context, sc storage.Scope, p, to storage.Path, at time.Time) ([]storage.Entry, error) {
	t, pr, ok := scopeIDs(sc)
	if !ok || p.IsRoot() {
		return nil, storage.NotFound(p)
	}
	if to.IsRoot() || to.Within(p) {
		return nil, storage.Conflict("a folder cannot move into itself", to)
	}
	var moved []storage.Entry
	err := s.inTx(ctx, func(ctx context.Context) error {
		q := s.db.Q(ctx)
		src, err := s.Get(ctx, sc, p)
		if err != nil {
			return err
		}
		lo, hi := below(p)
		var longest int
		if src.Kind == storage.Dir {
			if err := q.QueryRow(ctx, `SELECT COALESCE(max(octet_length(path)), 0) FROM storage_objects
				WHERE project_id = $1 AND path >= $2 AND path < $3`, pr, lo, hi).Scan(&longest); err != nil {
				return translate(err, "file")
			}
		}
		if longest-len(p.Canonical())+len(to.Canonical()) > storage.MaxPathBytes {
			return &fault.Error{Kind: fault.KindInvalid, Code: storage.CodePathTraversal, Field: "to",
				Message: "to would make a path below it longer than the path limit"}
		}
		if err := s.ensureAncestors(ctx, t, pr, to, src.CreatedBy, at); err != nil {
			return err
		}
		var exists bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM storage_objects WHERE project_id = $1 AND path = $2)`,
			pr, to.Canonical()).Scan(&exists); err != nil {
			return translate(err, "file")
		}
		if exists {
			return storage.Conflict("a file or folder exists at the target path", to)
		}
		// char_length, not octet_length: substring counts characters, and
		// p is a prefix of every path it rewrites.
		rows, err := q.Query(ctx, `UPDATE storage_objects SET
				path = CASE WHEN path = $3 THEN $6 ELSE $6 || substring(path FROM char_length($3) + 1) END,
				parent = CASE WHEN path = $3 THEN $7 ELSE $6 || substring(parent FROM char_length($3) + 1) END,
				name = CASE WHEN path = $3 THEN $8 ELSE name END,
				updated_at = $9
			WHERE project_id = $1 AND tenant_id = $2 AND (path = $3 OR (path >= $4 AND path < $5))
			RETURNING `+storageEntryCols,
			pr, t, p.Canonical(), lo, hi, to.Canonical(), to.Parent().Canonical(), to.Name(), at)
		if err == nil {
			moved, err = scanStorageEntries(rows, 0)
		}
		if IsUniqueViolation(err, "storage_objects_pkey") {
			return storage.Conflict("a file or folder exists at the target path", to)
		}
		return translate(err, "file")
	})
	return moved, err
}

// Delete implements [ports.StorageIndex].
func (s *StorageStore) Delete(ctx context.Context, sc storage.Scope, p storage.Path, recursive bool) ([]storage.Entry, error) {
	t, pr, ok := scopeIDs(sc)
	if !ok || p.IsRoot() {
		return nil, storage.NotFound(p)
	}
	var files []storage.Entry
	err := s.inTx(ctx, func(ctx context.Context) error {
		q := s.db.Q(ctx)
		e, err := scanStorageEntry(q.QueryRow(ctx, `SELECT `+storageEntryCols+` FROM storage_objects
			WHERE project_id = $1 AND tenant_id = $2 AND path = $3 FOR UPDATE`, pr, t, p.Canonical()))
		if errors.Is(err, pgx.ErrNoRows) {
			return storage.NotFound(p)
		}
		if err != nil {
			return translate(err, "file")
		}
		lo, hi := below(p)
		if e.Kind == storage.Dir && !recursive {
			var children bool
			if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM storage_objects WHERE project_id = $1 AND parent = $2)`,
				pr, p.Canonical()).Scan(&children); err != nil {
				return translate(err, "file")
			}
			if children {
				return storage.Conflict("the folder is not empty; delete it with recursive=true", p)
			}
		}
		rows, err := q.Query(ctx, `DELETE FROM storage_objects
			WHERE project_id = $1 AND tenant_id = $2 AND (path = $3 OR (path >= $4 AND path < $5))
			RETURNING `+storageEntryCols, pr, t, p.Canonical(), lo, hi)
		if err != nil {
			return translate(err, "file")
		}
		all, err := collectStorageEntries(rows, 0)
		if err != nil {
			return err
		}
		files = files[:0]
		for _, x := range all {
			if x.Kind == storage.File {
				files = append(files, x)
			}
		}
		return nil
	})
	return files, err
}

// Usage implements [ports.StorageIndex].
func (s *StorageStore) Usage(ctx context.Context, sc storage.Scope, now time.Time) (storage.Usage, error) {
	_, pr, ok := scopeIDs(sc)
	if !ok {
		return storage.Usage{}, nil
	}
	var u storage.Usage
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT
			(SELECT COALESCE(sum(size_bytes), 0)::bigint FROM storage_objects WHERE project_id = $1),
			(SELECT count(*) FILTER (WHERE kind = 'file') FROM storage_objects WHERE project_id = $1),
			(SELECT count(*) FILTER (WHERE kind = 'dir') FROM storage_objects WHERE project_id = $1),
			(SELECT COALESCE(sum(bytes), 0)::bigint FROM storage_reservations WHERE project_id = $1 AND expires_at > $2)`,
		pr, now).Scan(&u.UsedBytes, &u.Files, &u.Folders, &u.ReservedBytes)
	return u, translate(err, "file")
}

// Scopes implements [ports.StorageIndex].
func (s *StorageStore) Scopes(ctx context.Context, cursor string, limit int) ([]storage.Scope, string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	after := "00000000-0000-0000-0000-000000000000"
	if cursor != "" {
		c, ok := canonicalID(cursor)
		if !ok {
			return nil, "", fault.Invalid("cursor", "the cursor is not one this server issued")
		}
		after = c
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT DISTINCT project_id::text, tenant_id::text FROM storage_objects
		WHERE project_id > $1 ORDER BY 1 LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, "", translate(err, "project")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Scope, error) {
		var sc storage.Scope
		err := r.Scan(&sc.ProjectID, &sc.TenantID)
		return sc, err
	})
	if err != nil {
		return nil, "", translate(err, "project")
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ProjectID
	}
	return out, next, nil
}

// storageLockClass is the first key of the per-project advisory lock that
// serialises quota checks (the second is the project id's hash).
const storageLockClass = 0x5354 // "ST"

// Reserve implements [ports.StorageReservations]: under a transaction-level
// advisory lock on the project, sum the files (less the one at r.Path) and
// the live reservations, check, insert. Concurrent reservations of one
// project queue on the lock, so their checks see each other.
func (s *StorageStore) Reserve(ctx context.Context, r ports.Reservation, quotaBytes int64) (storage.Usage, error) {
	t, pr, ok := scopeIDs(r.Scope)
	if !ok || r.Path.IsRoot() {
		return storage.Usage{}, fault.Internal(errors.New("postgres: Reserve needs a file path in a valid scope"))
	}
	var u storage.Usage
	err := s.inTx(ctx, func(ctx context.Context) error {
		q := s.db.Q(ctx)
		if _, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, storageLockClass, pr); err != nil {
			return translate(err, "project")
		}
		var err error
		if u, err = s.Usage(ctx, r.Scope, r.CreatedAt); err != nil {
			return err
		}
		u.QuotaBytes = quotaBytes
		var replaced int64
		err = q.QueryRow(ctx, `SELECT size_bytes FROM storage_objects WHERE project_id = $1 AND path = $2 AND kind = 'file'`,
			pr, r.Path.Canonical()).Scan(&replaced)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return translate(err, "file")
		}
		if err := u.Check(storage.Request{Bytes: r.Bytes, Replaced: replaced}); err != nil {
			return err
		}
		_, err = q.Exec(ctx, `INSERT INTO storage_reservations (id, tenant_id, project_id, path, bytes, user_id, content_type,
				multipart_id, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			r.ID, t, pr, r.Path.Canonical(), r.Bytes, nullableID(r.UserID), r.ContentType, r.MultipartID, r.CreatedAt, r.ExpiresAt)
		return translate(err, "project")
	})
	return u, err
}

const reservationCols = `id::text, tenant_id::text, project_id::text, path, bytes, COALESCE(user_id::text, ''), content_type,
	multipart_id, created_at, expires_at`

func scanReservation(r pgx.Row) (ports.Reservation, error) {
	var res ports.Reservation
	var path string
	err := r.Scan(&res.ID, &res.Scope.TenantID, &res.Scope.ProjectID, &path, &res.Bytes, &res.UserID, &res.ContentType,
		&res.MultipartID, &res.CreatedAt, &res.ExpiresAt)
	if err != nil {
		return res, err
	}
	if res.Path, err = storage.FromCanonical(path); err != nil {
		return res, fault.Internal(err)
	}
	return res, nil
}

// GetReservation implements [ports.StorageReservations].
func (s *StorageStore) GetReservation(ctx context.Context, sc storage.Scope, id string) (ports.Reservation, error) {
	t, pr, ok := scopeIDs(sc)
	rid, ok2 := canonicalID(id)
	if !ok || !ok2 {
		return ports.Reservation{}, fault.NotFound("upload", "")
	}
	r, err := scanReservation(s.db.Q(ctx).QueryRow(ctx, `SELECT `+reservationCols+` FROM storage_reservations
		WHERE id = $1 AND project_id = $2 AND tenant_id = $3`, rid, pr, t))
	return r, translate(err, "upload")
}

// SetMultipartID implements [ports.StorageReservations].
func (s *StorageStore) SetMultipartID(ctx context.Context, sc storage.Scope, id, multipartID string) error {
	t, pr, ok := scopeIDs(sc)
	rid, ok2 := canonicalID(id)
	if !ok || !ok2 {
		return fault.NotFound("upload", "")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, `UPDATE storage_reservations SET multipart_id = $4
		WHERE id = $1 AND project_id = $2 AND tenant_id = $3`, rid, pr, t, multipartID)
	if err != nil {
		return translate(err, "upload")
	}
	if tag.RowsAffected() == 0 {
		return fault.NotFound("upload", "")
	}
	return nil
}

// Release implements [ports.StorageReservations].
func (s *StorageStore) Release(ctx context.Context, sc storage.Scope, id string) error {
	_, pr, ok := scopeIDs(sc)
	rid, ok2 := canonicalID(id)
	if !ok || !ok2 {
		return nil
	}
	_, err := s.db.Q(ctx).Exec(ctx, `DELETE FROM storage_reservations WHERE id = $1 AND project_id = $2`, rid, pr)
	return translate(err, "upload")
}

// Expired implements [ports.StorageReservations].
func (s *StorageStore) Expired(ctx context.Context, now time.Time, limit int) ([]ports.Reservation, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+reservationCols+` FROM storage_reservations
		WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, translate(err, "upload")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ports.Reservation, error) { return scanReservation(r) })
	return out, translate(err, "upload")
}

// Live implements [ports.StorageReservations].
func (s *StorageStore) Live(ctx context.Context, sc storage.Scope, now time.Time) ([]ports.Reservation, error) {
	t, pr, ok := scopeIDs(sc)
	if !ok {
		return nil, nil
	}
	rows, err := s.db.Q(ctx).Query(ctx, `SELECT `+reservationCols+` FROM storage_reservations
		WHERE project_id = $1 AND tenant_id = $2 AND expires_at > $3 ORDER BY created_at`, pr, t, now)
	if err != nil {
		return nil, translate(err, "upload")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ports.Reservation, error) { return scanReservation(r) })
	return out, translate(err, "upload")
}

var _ ports.StorageSyncs = (*StorageStore)(nil)

// SaveSync implements [ports.StorageSyncs].
func (s *StorageStore) SaveSync(ctx context.Context, ns ports.NodeSync) error {
	t, pr, ok := scopeIDs(ns.Scope)
	aid, ok2 := canonicalID(ns.AllocationID)
	if !ok || !ok2 {
		return fault.Invalid("allocation_id", "a storage sync needs an allocation and a project")
	}
	_, err := s.db.Q(ctx).Exec(ctx, `INSERT INTO storage_node_syncs (allocation_id, tenant_id, project_id, user_id, path, dir, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (allocation_id) DO NOTHING`,
		aid, t, pr, nullableID(ns.UserID), ns.Path.Canonical(), ns.Dir, ns.CreatedAt)
	return translate(err, "storage sync")
}

// SyncOf implements [ports.StorageSyncs].
func (s *StorageStore) SyncOf(ctx context.Context, allocationID string) (ports.NodeSync, error) {
	aid, ok := canonicalID(allocationID)
	if !ok {
		return ports.NodeSync{}, fault.NotFound("storage sync", "")
	}
	var ns ports.NodeSync
	var path string
	var pushed *time.Time
	err := s.db.Q(ctx).QueryRow(ctx, `SELECT allocation_id::text, tenant_id::text, project_id::text, COALESCE(user_id::text, ''),
			path, dir, pulled_node_time, pushed_at, created_at
		FROM storage_node_syncs WHERE allocation_id = $1`, aid).Scan(&ns.AllocationID, &ns.Scope.TenantID, &ns.Scope.ProjectID,
		&ns.UserID, &path, &ns.Dir, &ns.PulledNodeTime, &pushed, &ns.CreatedAt)
	if err != nil {
		return ports.NodeSync{}, translate(err, "storage sync")
	}
	if pushed != nil {
		ns.PushedAt = *pushed
	}
	if path != "" {
		if ns.Path, err = storage.FromCanonical(path); err != nil {
			return ports.NodeSync{}, fault.Internal(err)
		}
	}
	return ns, nil
}

// MarkPulled implements [ports.StorageSyncs].
func (s *StorageStore) MarkPulled(ctx context.Context, allocationID string, nodeTime int64) error {
	return s.markSync(ctx, `UPDATE storage_node_syncs SET pulled_node_time = $2 WHERE allocation_id = $1`, allocationID, nodeTime)
}

// MarkPushed implements [ports.StorageSyncs].
func (s *StorageStore) MarkPushed(ctx context.Context, allocationID string, at time.Time) error {
	return s.markSync(ctx, `UPDATE storage_node_syncs SET pushed_at = $2 WHERE allocation_id = $1`, allocationID, at)
}

func (s *StorageStore) markSync(ctx context.Context, sql, allocationID string, arg any) error {
	aid, ok := canonicalID(allocationID)
	if !ok {
		return fault.NotFound("storage sync", "")
	}
	tag, err := s.db.Q(ctx).Exec(ctx, sql, aid, arg)
	if err != nil {
		return translate(err, "storage sync")
	}
	if tag.RowsAffected() == 0 {
		return fault.NotFound("storage sync", "")
	}
	return nil
}
