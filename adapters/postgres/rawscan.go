package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/gpuaas/gpuaas/core/allocation"
)

// The allocation list is the hottest read of the API. pgx's Scan finds a
// plan per column and goes through interfaces for every value; for a page
// of rows that was as much CPU as the query's round trip
// (BenchmarkAuthenticatedList). rawAllocationScanner decodes the row's raw
// values itself — the binary uuid, int8 and timestamptz formats and text —
// when the result's columns have exactly the types and formats it knows,
// and otherwise leaves the row to pgx (TestRawAllocationScan pins both to
// the same result).

// allocationColumnTypes are allocationColumns' types, in order.
var allocationColumnTypes = [...]uint32{
	pgtype.UUIDOID, pgtype.UUIDOID, pgtype.UUIDOID, pgtype.UUIDOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID,
	pgtype.Int8OID, pgtype.TextOID, pgtype.TextOID, pgtype.TimestamptzOID, pgtype.TimestamptzOID, pgtype.TimestamptzOID,
	pgtype.TimestamptzOID, pgtype.TimestamptzOID, pgtype.Int8OID, pgtype.TextOID, pgtype.TextOID,
}

// rawAllocationScanner decodes rows of allocationColumns.
type rawAllocationScanner struct {
	checked, raw bool
}

// scan fills *a from the current row. Every string of the row shares one
// allocation (they are substrings of one string) and its optional times
// another: a row costs two allocations instead of about fifteen.
func (r *rawAllocationScanner) scan(rows pgx.Rows, a *allocation.Allocation) error {
	if !r.checked {
		r.checked, r.raw = true, rawDecodable(rows.FieldDescriptions(), allocationColumnTypes[:])
	}
	if !r.raw {
		return scanAllocationInto(rows, a)
	}
	v := rows.RawValues()
	if len(v) != len(allocationColumnTypes) {
		return errRawValue
	}
	for i, oid := range allocationColumnTypes {
		ok := false
		switch oid {
		case pgtype.UUIDOID:
			ok = len(v[i]) == 16
		case pgtype.Int8OID:
			ok = len(v[i]) == 8
		case pgtype.TimestamptzOID:
			ok = len(v[i]) == 8 || (v[i] == nil && i >= 12 && i <= 14) // active_at, release_requested_at, released_at
		case pgtype.TextOID:
			ok = v[i] != nil
		}
		if !ok {
			return errRawValue
		}
	}
	// The strings: four uuids, then the texts, in one buffer.
	var stack [512]byte
	b := stack[:0]
	var ends [11]int
	for i := range 4 {
		b = appendUUID(b, v[i])
		ends[i] = len(b)
	}
	for j, col := range [...]int{4, 5, 6, 8, 9, 16, 17} {
		b = append(b, v[col]...)
		ends[4+j] = len(b)
	}
	all := string(b)
	part := func(i int) string {
		if i == 0 {
			return all[:ends[0]]
		}
		return all[ends[i-1]:ends[i]]
	}
	a.ID, a.TenantID, a.ProjectID, a.UserID = part(0), part(1), part(2), part(3)
	a.SKUID, a.NodeID, a.State, a.Currency, a.FailureCode, a.APIKeyID, a.ReleaseReason =
		part(4), part(5), allocation.State(part(6)), part(7), part(8), part(9), part(10)
	a.PriceMinor = int64(binary.BigEndian.Uint64(v[7]))
	a.MaxTotalCostMinor = int64(binary.BigEndian.Uint64(v[15]))
	var err error
	if a.CreatedAt, err = rawTime(v[10]); err != nil {
		return err
	}
	if a.UpdatedAt, err = rawTime(v[11]); err != nil {
		return err
	}
	a.ActiveAt, a.ReleaseRequestedAt, a.ReleasedAt = nil, nil, nil
	if v[12] == nil && v[13] == nil && v[14] == nil {
		return nil
	}
	times := new([3]time.Time) // one allocation for the row's optional times
	for i, dst := range [...]**time.Time{&a.ActiveAt, &a.ReleaseRequestedAt, &a.ReleasedAt} {
		if v[12+i] == nil {
			continue
		}
		if times[i], err = rawTime(v[12+i]); err != nil {
			return err
		}
		*dst = &times[i]
	}
	return nil
}

// rawDecodable reports whether the columns have exactly these types in the
// formats the raw decoders read (binary, text for text).
func rawDecodable(fds []pgconn.FieldDescription, types []uint32) bool {
	if len(fds) != len(types) {
		return false
	}
	for i, fd := range fds {
		if fd.DataTypeOID != types[i] ||
			(fd.DataTypeOID != pgtype.TextOID && fd.Format != pgtype.BinaryFormatCode) {
			return false
		}
	}
	return true
}

var errRawValue = errors.New("postgres: unexpected raw value in an allocation row")

// appendUUID appends a binary uuid in its canonical text form.
func appendUUID(b, u []byte) []byte {
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:16])
	return append(b, s[:]...)
}

// microsecFromUnixEpochToY2K is where Postgres' timestamps count from.
const microsecFromUnixEpochToY2K = 946_684_800 * 1_000_000

// rawTime decodes a binary timestamptz (8 bytes) as pgx does (time.Unix:
// local time); infinities are refused, as pgx refuses them for a
// time.Time.
func rawTime(b []byte) (time.Time, error) {
	us := int64(binary.BigEndian.Uint64(b))
	if us == math.MaxInt64 || us == math.MinInt64 {
		return time.Time{}, errRawValue
	}
	return time.Unix(microsecFromUnixEpochToY2K/1_000_000+us/1_000_000,
		(microsecFromUnixEpochToY2K%1_000_000*1_000)+(us%1_000_000*1_000)), nil
}
