package sandbox

import (
	"context"
	"fmt"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/nodeagent"
	"github.com/gpuaas/gpuaas/nodeagent/storagesync"
)

var _ nodeagent.StorageSyncer = (*Server)(nil)

// SyncStorage implements [nodeagent.StorageSyncer] for a provisioned
// account: its home below Root/home, files owned by its OS user when the
// sandbox runs as root.
func (s *Server) SyncStorage(ctx context.Context, p nodetask.StorageSyncParams) (nodetask.SyncReport, error) {
	if err := validName(p.Username); err != nil {
		return nodetask.SyncReport{}, err
	}
	s.mu.Lock()
	a := s.accounts[p.Username]
	var uid, gid int
	if a != nil {
		uid, gid = a.state.UID, a.state.GID
	}
	s.mu.Unlock()
	// A stopped account (release: stop_user, then the push) still has its
	// files to scan and push; only a pull into it is refused.
	if a == nil || (a.revoked && p.Direction == nodetask.SyncPull) {
		return nodetask.SyncReport{}, fmt.Errorf("sandbox: no account %s", p.Username)
	}
	return storagesync.Run(ctx, nil, storagesync.Target{Home: a.home, UID: uid, GID: gid}, p)
}
