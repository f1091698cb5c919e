package ports

import (
	"context"
	"time"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/nodetask"
)

// SKUStore reads the catalogue.
type SKUStore interface {
	ListSKUs(ctx context.Context) ([]inventory.SKU, error)
	GetSKU(ctx context.Context, id string) (inventory.SKU, error)
	// Capacity returns, per SKU id, how many active nodes hold no live
	// allocation.
	Capacity(ctx context.Context) (map[string]int, error)
}

// NodeFilter selects nodes; zero fields match everything.
type NodeFilter struct {
	State inventory.NodeState
	SKUID string
}

// NodeStore persists nodes and their heartbeats.
type NodeStore interface {
	CreateNode(ctx context.Context, n inventory.Node) error
	GetNode(ctx context.Context, id string) (inventory.Node, error)
	ListNodes(ctx context.Context, f NodeFilter) ([]inventory.Node, error)
	// UpdateNode loads the node under lock, applies fn and saves it.
	UpdateNode(ctx context.Context, id string, fn func(*inventory.Node) error) (inventory.Node, error)
	// RecordHeartbeat stores a heartbeat; an offline or enrolling node
	// becomes active. A non-empty hb.SSHHostKey replaces the node's stored
	// host key; the key stored before the heartbeat is returned, so the
	// caller can tell a change.
	RecordHeartbeat(ctx context.Context, nodeID string, hb inventory.Heartbeat) (previousSSHHostKey string, err error)
	// MarkSilentOffline moves active nodes whose last heartbeat is older than
	// before to offline and returns their ids.
	MarkSilentOffline(ctx context.Context, before time.Time) ([]string, error)
}

// BootstrapTokenStore keeps one-time enrolment tokens, hashed.
type BootstrapTokenStore interface {
	CreateBootstrapToken(ctx context.Context, nodeID string, tokenHash []byte, expiresAt time.Time) error
	// ConsumeBootstrapToken marks the token used and returns its node. Of
	// concurrent consumers exactly one succeeds; used, unknown and expired
	// tokens are Unauthenticated.
	ConsumeBootstrapToken(ctx context.Context, tokenHash []byte, now time.Time) (nodeID string, err error)
}

// NodeCertificateStore records issued node certificates and revocations.
type NodeCertificateStore interface {
	RecordCertificate(ctx context.Context, serial, nodeID string, notAfter time.Time) error
	// UseCertificate reports the node a serial was issued to and whether it
	// is revoked (NotFound for a serial never recorded). When it is not, the
	// node's certificates issued before it are revoked at at: the first call
	// made with a renewed certificate supersedes the one it replaced, which
	// keeps working only until then (a renewal whose answer was lost
	// strands nothing).
	UseCertificate(ctx context.Context, serial string, at time.Time) (nodeID string, revoked bool, err error)
	RevokeNodeCertificates(ctx context.Context, nodeID string, at time.Time) error
	// RevocationGeneration changes whenever a certificate may have been
	// revoked, by this process or any other, so a caller may keep
	// UseCertificate's answer while it stays the same. 0 means "unknown
	// right now": cache nothing. It never blocks.
	RevocationGeneration() uint64
}

// TaskQueue holds node tasks. Enqueue assigns the per-node sequence number
// and signs the envelope through sign, inside the caller's transaction.
type TaskQueue interface {
	Enqueue(ctx context.Context, t nodetask.Task, sign func(nodetask.Envelope) (nodetask.Envelope, error)) (nodetask.Task, error)
	// Lease hands up to max queued (or lease-expired) tasks of the node to its
	// agent, in sequence order, leased until leaseUntil.
	Lease(ctx context.Context, nodeID string, max int, leaseUntil time.Time) ([]nodetask.Task, error)
	// Complete records the agent's result for a task of that node.
	Complete(ctx context.Context, nodeID string, r nodetask.Result) error
	GetTask(ctx context.Context, id string) (nodetask.Task, error)
	// ExpireOverdue marks tasks past their expiry expired.
	ExpireOverdue(ctx context.Context, now time.Time) (int, error)
	// WaitForTasks blocks until a task may be queued for the node, or
	// timeout / ctx ends (long-poll support).
	WaitForTasks(ctx context.Context, nodeID string, timeout time.Duration) error
	// WaitForDone blocks until the task may have finished, or timeout / ctx ends.
	WaitForDone(ctx context.Context, taskID string, timeout time.Duration) error
}

// SSHKey is a user's registered public key.
type SSHKey struct {
	ID          string
	UserID      string
	Name        string
	PublicKey   string
	Fingerprint string
	KeyType     string
	CreatedAt   time.Time
}

// SSHKeyStore persists users' SSH public keys.
type SSHKeyStore interface {
	AddSSHKey(ctx context.Context, k SSHKey) error
	ListSSHKeys(ctx context.Context, userID string) ([]SSHKey, error)
	DeleteSSHKey(ctx context.Context, userID, id string) error
}

// AllocationFilter selects allocations; zero fields match everything.
type AllocationFilter struct {
	TenantID  string
	ProjectID string
	UserID    string
	NodeID    string
	States    []allocation.State
	// CostCapped selects allocations with a total-cost cap only.
	CostCapped bool
	Limit      int
	Cursor     string
}

// KeySpend is what an API key's allocations cost.
type KeySpend struct {
	// SpentMinor: what allocations requested with the key cost between
	// the given times (their active seconds at their price).
	SpentMinor int64
	// LiveHourlyMinor: the hourly prices of its live allocations.
	LiveHourlyMinor int64
}

// KeySpendReader reads an API key's spend (its daily spend cap).
type KeySpendReader interface {
	KeySpend(ctx context.Context, apiKeyID string, since, now time.Time) (KeySpend, error)
}

// LiveCounts are live allocations held per scope, for concurrency caps.
type LiveCounts struct {
	User, Project, Tenant int
}

// AllocationStore persists allocations. The database refuses a second live
// allocation on a node (a unique partial index), whatever the caller does.
type AllocationStore interface {
	// CreatePlaced inserts the allocation on a free active node of its SKU,
	// chosen and locked inside the caller's transaction. No free node →
	// Conflict no_capacity.
	CreatePlaced(ctx context.Context, a allocation.Allocation) (allocation.Allocation, error)
	// Get returns an allocation of the tenant ("" for any tenant: admins).
	Get(ctx context.Context, tenantID, id string) (allocation.Allocation, error)
	List(ctx context.Context, f AllocationFilter) ([]allocation.Allocation, string, error)
	// Update loads the allocation under lock, applies fn and saves it.
	Update(ctx context.Context, id string, fn func(*allocation.Allocation) error) (allocation.Allocation, error)
	// CountLive counts live allocations of the user, project and tenant,
	// locking the tenant's row so concurrent creates serialize on caps. The
	// counts are taken after the lock is granted and include what the
	// caller's transaction wrote.
	CountLive(ctx context.Context, tenantID, projectID, userID string) (LiveCounts, error)
}

// SecretStore keeps encrypted platform secrets (CA keys, signing keys) by name.
type SecretStore interface {
	PutSecret(ctx context.Context, name string, envelope []byte) error
	GetSecret(ctx context.Context, name string) ([]byte, error)
}

// SSHCertificateAuthority signs short-lived SSH user certificates (the
// browser terminal's credentials, never stored). Nodes trust its public key
// for per-allocation accounts.
type SSHCertificateAuthority interface {
	// PublicKey is the CA key in authorized_keys format.
	PublicKey(ctx context.Context) (string, error)
	// SignUserKey certifies publicKey (authorized_keys format) for principal
	// until ttl from now and returns the certificate in authorized_keys format.
	SignUserKey(ctx context.Context, publicKey, principal string, ttl time.Duration) (string, error)
}

// ProbeResult is what an SSH reachability probe saw.
type ProbeResult struct {
	Reachable bool
	Banner    string // the server's SSH identification string
	Latency   time.Duration
	Error     string
}

// NodeProber checks that a node's SSH endpoint answers.
type NodeProber interface {
	Probe(ctx context.Context, host string, port int) (ProbeResult, error)
}

// WorkflowEngine starts durable workflows (Temporal). Starting a workflow
// whose id is already running is not an error.
type WorkflowEngine interface {
	Start(ctx context.Context, workflow, id string, input any) error
	Signal(ctx context.Context, id, signal string, arg any) error
}
