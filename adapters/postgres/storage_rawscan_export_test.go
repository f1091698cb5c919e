package postgres

import (
	"context"

	"github.com/gpuaas/gpuaas/core/storage"
)

// ScanStorageEntriesBothWays reads the rows of sql with rawStorageScanner
// and with pgx's Scan; raw reports whether the raw decoder was used.
func ScanStorageEntriesBothWays(ctx context.Context, db *DB, sql string, args ...any) (viaRaw, viaPgx []storage.Entry, raw bool, err error) {
	rows, err := db.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, false, err
	}
	defer rows.Close()
	var r rawStorageScanner
	for rows.Next() {
		var a storage.Entry
		if err := r.scan(rows, &a); err != nil {
			return nil, nil, false, err
		}
		b, err := scanStorageEntry(rows)
		if err != nil {
			return nil, nil, false, err
		}
		viaRaw, viaPgx = append(viaRaw, a), append(viaPgx, b)
	}
	return viaRaw, viaPgx, r.raw, rows.Err()
}

// StorageEntryCols is the column list every storage entry query selects.
const StorageEntryCols = storageEntryCols
