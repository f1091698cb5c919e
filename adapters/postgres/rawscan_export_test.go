package postgres

import (
	"context"

	"github.com/gpuaas/gpuaas/core/allocation"
)

// ScanAllocationsBothWays runs sql (selecting allocationColumns) and scans
// every row with the raw decoder and with pgx's Scan; raw reports whether
// the raw decoder took the rows.
func ScanAllocationsBothWays(ctx context.Context, db *DB, sql string, args ...any) (viaRaw, viaPgx []allocation.Allocation, raw bool, err error) {
	rows, err := db.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, false, err
	}
	defer rows.Close()
	var r rawAllocationScanner
	for rows.Next() {
		var a, b allocation.Allocation
		if err := r.scan(rows, &a); err != nil {
			return nil, nil, false, err
		}
		if err := scanAllocationInto(rows, &b); err != nil {
			return nil, nil, false, err
		}
		viaRaw, viaPgx = append(viaRaw, a), append(viaPgx, b)
	}
	return viaRaw, viaPgx, r.raw, rows.Err()
}

// AllocationColumns is the column list every allocation query selects.
const AllocationColumns = allocationColumns
