package nodeagent

import (
	"context"

	"github.com/gpuaas/gpuaas/core/nodetask"
)

// StorageSyncer is implemented by an executor that can run storage_sync
// tasks (optional): it resolves the account's home and ids and hands the
// transfers to nodeagent/storagesync. An executor without it refuses the
// task as an unknown type.
type StorageSyncer interface {
	SyncStorage(ctx context.Context, p nodetask.StorageSyncParams) (nodetask.SyncReport, error)
}
