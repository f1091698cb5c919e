package linuxexec

import (
	"context"
	"fmt"
	"os/user"
	"strconv"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/nodeagent"
	"github.com/gpuaas/gpuaas/nodeagent/storagesync"
)

var _ nodeagent.StorageSyncer = (*Executor)(nil)

// SyncStorage implements [nodeagent.StorageSyncer]: the allocation
// account's home from the user database, what a pull writes owned by it.
func (e *Executor) SyncStorage(ctx context.Context, p nodetask.StorageSyncParams) (nodetask.SyncReport, error) {
	if !nodetask.ValidUsername(p.Username) {
		return nodetask.SyncReport{}, fmt.Errorf("linuxexec: %q is not an allocation account", p.Username)
	}
	u, err := user.Lookup(p.Username)
	if err != nil {
		return nodetask.SyncReport{}, fmt.Errorf("linuxexec: account %s: %w", p.Username, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil || u.HomeDir == "" {
		return nodetask.SyncReport{}, fmt.Errorf("linuxexec: account %s has no usable ids or home", p.Username)
	}
	return storagesync.Run(ctx, nil, storagesync.Target{Home: u.HomeDir, UID: uid, GID: gid}, p)
}
