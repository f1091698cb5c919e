package storagesvc

import (
	"context"

	"github.com/gpuaas/gpuaas/adapters/postgres"
)

// AuditLogForTest counts the tenant's storage audit records by action.
func (s *Service) AuditLogForTest(ctx context.Context, db *postgres.DB, tenantID string) (map[string]int, int, error) {
	rows, err := db.Pool.Query(ctx, `SELECT action, count(*) FROM audit_log WHERE tenant_id = $1 GROUP BY action`, tenantID)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := map[string]int{}
	total := 0
	for rows.Next() {
		var a string
		var n int
		if err := rows.Scan(&a, &n); err != nil {
			return nil, 0, err
		}
		out[a] = n
		total += n
	}
	return out, total, rows.Err()
}
