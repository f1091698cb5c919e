package postgres_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/testkit/seed"
)

// TestRawStorageScan: the storage index's own decoder reads every row
// exactly as pgx's Scan does — files and folders, a creator and none,
// names outside ASCII and at the length limits, times before 2000 and with
// microseconds, a session in another time zone — and a result of other
// types is left to pgx.
func TestRawStorageScan(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	m := seed.NewMember(t, db, 0)
	long := strings.Repeat("n", 255)
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO storage_objects (tenant_id, project_id, path, parent, name, kind, size_bytes, etag, content_type,
			created_by, created_at, updated_at)
		VALUES
			($1, $2, 'raw', '', 'raw', 'dir', 0, '', '', NULL, '1999-12-31 23:59:59.999999+00', '2000-01-01 00:00:00+00'),
			($1, $2, 'raw/données ü "q" x', 'raw', 'données ü "q" x', 'file', 9223372036854775807,
				'0123456789abcdef0123456789abcdef-12', 'text/plain; charset=utf-8', $3, '1970-01-01 00:00:00+00', now()),
			($1, $2, 'raw/' || $4, 'raw', $4, 'file', 0, 'e', 'application/octet-stream', NULL,
				'2026-03-04 05:06:07.123456+00', '2026-03-04 05:06:07.123457+00')`,
		m.Principal.TenantID, m.ProjectID, m.Principal.User.ID, long); err != nil {
		t.Fatal(err)
	}
	q := `SELECT ` + postgres.StorageEntryCols + ` FROM storage_objects WHERE project_id = $1 ORDER BY path`
	raw, viaPgx, used, err := postgres.ScanStorageEntriesBothWays(ctx, db, q, m.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	if !used || len(raw) != 3 {
		t.Fatalf("raw decoder used %v for %d rows", used, len(raw))
	}
	if !reflect.DeepEqual(raw, viaPgx) {
		t.Fatalf("raw\n%+v\npgx\n%+v", raw, viaPgx)
	}
	if raw[1].CreatedBy != m.Principal.User.ID || raw[1].Size != 1<<63-1 || raw[2].Path.Name() != long {
		t.Fatalf("decoded %+v", raw)
	}
	// Other column types (here: the size as text) are pgx's.
	q = `SELECT path, kind, size_bytes::numeric, etag, content_type, COALESCE(created_by::text, ''), created_at, updated_at
		FROM storage_objects WHERE project_id = $1 ORDER BY path`
	raw, viaPgx, used, err = postgres.ScanStorageEntriesBothWays(ctx, db, q, m.ProjectID)
	if used || err == nil && !reflect.DeepEqual(raw, viaPgx) {
		t.Fatalf("fallback: used %v, err %v", used, err)
	}
}
