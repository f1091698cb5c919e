package postgres

import (
	"encoding/binary"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/gpuaas/gpuaas/core/storage"
)

// A folder page is up to a thousand rows of storageEntryCols. pgx's Scan
// finds a plan per column and goes through interfaces for every value and
// allocates each string apart; for a page that cost more than the index
// scan's round trip (BenchmarkStorageListPage). rawStorageScanner decodes
// the raw values itself — text, the binary int8 and timestamptz — when the
// result's columns have exactly the types and formats it knows, and
// otherwise leaves the row to pgx (TestRawStorageScan pins both to the same
// result), as rawAllocationScanner does for allocations.

// storageEntryColumnTypes are storageEntryCols' types, in order.
var storageEntryColumnTypes = [...]uint32{
	pgtype.TextOID, pgtype.TextOID, pgtype.Int8OID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID,
	pgtype.TimestamptzOID, pgtype.TimestamptzOID,
}

// rawStorageScanner decodes rows of storageEntryCols.
type rawStorageScanner struct {
	checked, raw bool
}

// scan fills *e from the current row. The row's strings (path, etag,
// content type, creator) are substrings of one string: a row costs one
// allocation instead of six.
func (r *rawStorageScanner) scan(rows pgx.Rows, e *storage.Entry) error {
	if !r.checked {
		r.checked, r.raw = true, rawDecodable(rows.FieldDescriptions(), storageEntryColumnTypes[:])
	}
	if !r.raw {
		var path, kind string
		if err := rows.Scan(&path, &kind, &e.Size, &e.ETag, &e.ContentType, &e.CreatedBy, &e.CreatedAt, &e.UpdatedAt); err != nil {
			return err
		}
		e.Kind = storage.Kind(kind)
		return setPath(e, path)
	}
	v := rows.RawValues()
	if len(v) != len(storageEntryColumnTypes) {
		return errRawValue
	}
	for i, oid := range storageEntryColumnTypes {
		if v[i] == nil || (oid == pgtype.Int8OID || oid == pgtype.TimestamptzOID) && len(v[i]) != 8 {
			return errRawValue // every column is NOT NULL (created_by through COALESCE)
		}
	}
	var stack [1536]byte
	b := append(stack[:0], v[0]...)
	ends := [4]int{len(b)}
	for j, col := range [...]int{3, 4, 5} {
		b = append(b, v[col]...)
		ends[1+j] = len(b)
	}
	all := string(b)
	e.ETag, e.ContentType, e.CreatedBy = all[ends[0]:ends[1]], all[ends[1]:ends[2]], all[ends[2]:ends[3]]
	e.Size = int64(binary.BigEndian.Uint64(v[2]))
	var err error
	if e.CreatedAt, err = rawTime(v[6]); err != nil {
		return err
	}
	if e.UpdatedAt, err = rawTime(v[7]); err != nil {
		return err
	}
	switch string(v[1]) { // compared, not copied
	case string(storage.File):
		e.Kind = storage.File
	case string(storage.Dir):
		e.Kind = storage.Dir
	default:
		e.Kind = storage.Kind(v[1])
	}
	return setPath(e, all[:ends[0]])
}
