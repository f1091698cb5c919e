package client

import "github.com/gpuaas/gpuaas/hosts/http/api"

// The contract's types, by alias: one copy, the host's (see the package
// documentation).
type (
	Me                   = api.Me
	User                 = api.User
	Project              = api.Project
	SKU                  = api.SKU
	Node                 = api.Node
	Allocation           = api.Allocation
	AllocationState      = api.AllocationState
	ReleaseReason        = api.AllocationReleaseReason
	AllocationAccess     = api.AllocationAccess
	CreateAllocation     = api.CreateAllocationRequest
	Quote                = api.AllocationQuote
	QuoteRefusal         = api.QuoteRefusal
	SSHKey               = api.SSHKey
	BillingBalance       = api.BillingBalance
	LedgerEntry          = api.LedgerEntry
	UsageRecord          = api.UsageRecord
	CheckoutSession      = api.CheckoutSession
	APIKey               = api.APIKey
	CreateAPIKey         = api.CreateAPIKeyRequest
	CreatedAPIKey        = api.CreatedAPIKey
	CredentialScope      = api.CredentialScope
	ServiceAccount       = api.ServiceAccount
	CreatedCredential    = api.CreatedCredential
	ServiceTokenResponse = api.ServiceTokenResponse
	StorageEntry         = api.StorageEntry
	StorageEntryKind     = api.StorageEntryKind
	StorageUsage         = api.StorageUsage
)

// Kinds of storage entries.
const (
	StorageFile StorageEntryKind = "file"
	StorageDir  StorageEntryKind = "dir"
)

// Allocation states.
const (
	StateRequested     AllocationState = "requested"
	StateProvisioning  AllocationState = "provisioning"
	StateActive        AllocationState = "active"
	StateReleasing     AllocationState = "releasing"
	StateReleased      AllocationState = "released"
	StateFailed        AllocationState = "failed"
	StateReleaseFailed AllocationState = "release_failed"
)

// Why an allocation's release was asked for (Allocation.ReleaseReason).
const (
	ReleasedByUser        ReleaseReason = "user"
	ReleasedByTenantAdmin ReleaseReason = "tenant_admin"
	ReleasedByOperator    ReleaseReason = "operator"
	ReleasedBalanceOut    ReleaseReason = "balance_depleted"
	ReleasedCostCap       ReleaseReason = "cost_cap_reached"
)

// Scopes an API key may hold.
const (
	ScopeRead        CredentialScope = "read"
	ScopeAllocations CredentialScope = "allocations"
	ScopeStorage     CredentialScope = "storage"
	ScopeBilling     CredentialScope = "billing"
)
