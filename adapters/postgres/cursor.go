package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/core/fault"
)

// keysetCursor is the opaque page cursor of every newest-first list
// (ORDER BY <time> DESC, id DESC): the last row's time in microseconds —
// exact at the column's precision, independent of time zones — and its id.
type keysetCursor struct {
	At int64  `json:"t"`
	ID string `json:"id"`
}

// encodeCursor returns the cursor that continues after the row (at, id).
func encodeCursor(at time.Time, id string) string {
	b, _ := json.Marshal(keysetCursor{At: at.UnixMicro(), ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor encodeCursor made; anything else is a 400 on
// the field "cursor". The id comes back canonical.
func decodeCursor(s string) (keysetCursor, error) {
	bad := fault.Invalid("cursor", "the cursor is not one this server issued")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return keysetCursor{}, bad
	}
	var c keysetCursor
	if err := json.Unmarshal(b, &c); err != nil {
		return keysetCursor{}, bad
	}
	id, ok := canonicalID(c.ID)
	if !ok {
		return keysetCursor{}, bad
	}
	c.ID = id
	return c, nil
}

// keysetPage is the tail every newest-first list shares: it runs the query
// (which asked for limit+1 rows), scans the rows, keeps limit of them and,
// when there was one more, returns the cursor that continues after the last
// kept row (key gives its time and id). resource names the rows in errors.
func keysetPage[T any](ctx context.Context, q querier, sql string, args []any, limit int, resource string,
	scan func(pgx.CollectableRow) (T, error), key func(T) (time.Time, string)) ([]T, string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", translate(err, resource)
	}
	// Sized for the page up front: growing it row by row copied it
	// five times over for a page of 20 (BenchmarkAuthenticatedList).
	out, err := pgx.AppendRows(make([]T, 0, min(limit+1, maxPresized)), rows, scan)
	if err != nil {
		return nil, "", translate(err, resource)
	}
	return keysetTail(out, limit, key)
}

// maxPresized bounds the rows a page's slice is sized for up front.
const maxPresized = 256

// keysetPageInto is keysetPage for a hot list: each row is scanned in place
// (scan fills *T) into a scratch slice from the pool scratch (holding
// *[]T), and the page is then copied into a slice of exactly its length:
// sizing the page for its limit allocated more than everything else a
// cached GET /allocations did (BenchmarkAuthenticatedList).
func keysetPageInto[T any](ctx context.Context, q querier, sql string, args []any, limit int, resource string,
	scratch *sync.Pool, scan func(pgx.Rows, *T) error, key func(T) (time.Time, string)) ([]T, string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", translate(err, resource)
	}
	defer rows.Close()
	sp, _ := scratch.Get().(*[]T)
	if sp == nil {
		sp = new([]T)
	}
	buf := (*sp)[:0]
	defer func() {
		clear(buf) // drop what the rows referenced
		if cap(buf) <= maxPresized {
			*sp = buf[:0]
			scratch.Put(sp)
		}
	}()
	for rows.Next() {
		var zero T
		buf = append(buf, zero)
		if err := scan(rows, &buf[len(buf)-1]); err != nil {
			return nil, "", translate(err, resource)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", translate(err, resource)
	}
	out := make([]T, len(buf))
	copy(out, buf)
	return keysetTail(out, limit, key)
}

// keysetTail keeps limit rows and makes the cursor after the last of them
// when there was one more.
func keysetTail[T any](out []T, limit int, key func(T) (time.Time, string)) ([]T, string, error) {
	next := ""
	if len(out) > limit {
		out = out[:limit]
		at, id := key(out[limit-1])
		next = encodeCursor(at, id)
	}
	return out, next, nil
}
