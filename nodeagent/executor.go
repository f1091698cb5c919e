package nodeagent

import (
	"context"

	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/nodetask"
)

// Executor carries out the catalogue's handlers on the host. Every method
// must be idempotent: a task re-delivered after a lost report, or retried by
// the control plane, runs them again.
type Executor interface {
	// ProvisionUser creates (or refreshes) the per-allocation account with
	// its authorized keys and trust in the user CA for that principal.
	ProvisionUser(ctx context.Context, p nodetask.ProvisionUserParams) error
	// StopUser refuses the account's logins and ends its sessions and
	// processes (SIGTERM, the grace period, SIGKILL) but keeps the account
	// and its files. Stopping an unknown account succeeds.
	StopUser(ctx context.Context, p nodetask.StopUserParams) error
	// RevokeUser ends the account's sessions and processes and removes the
	// account and its files. Revoking an unknown account succeeds.
	RevokeUser(ctx context.Context, p nodetask.RevokeUserParams) error
	// Health reports executor-specific checks (name → "ok" or a problem).
	Health(ctx context.Context) map[string]string
}

// HostKeyReporter is implemented by an executor that knows the host key
// of the sshd users reach (optional). The agent reports it in every
// heartbeat; the terminal gateway trusts exactly that key for the node.
type HostKeyReporter interface {
	// SSHHostKey is the host public key in authorized_keys format, or ""
	// when it cannot be read.
	SSHHostKey() string
}

// GPUSource reports the node's GPUs (see package nodeagent/gpu).
type GPUSource func(ctx context.Context) ([]inventory.GPU, error)
