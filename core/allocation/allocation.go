// Package allocation models the exclusive rental of one GPU node and its
// state machine (doc/state-machines.md#allocation).
package allocation

import (
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
)

// State of an allocation.
type State string

const (
	Requested     State = "requested"
	Provisioning  State = "provisioning"
	Active        State = "active"
	Releasing     State = "releasing"
	Released      State = "released"
	Failed        State = "failed"
	ReleaseFailed State = "release_failed"
)

var transitions = map[State][]State{
	Requested:     {Provisioning, Failed, Releasing},
	Provisioning:  {Active, Failed, Releasing},
	Active:        {Releasing},
	Releasing:     {Released, ReleaseFailed},
	ReleaseFailed: {Releasing},
}

// Why an allocation's release was asked for (Allocation.ReleaseReason).
const (
	ReleaseByUser        = "user"             // its own user
	ReleaseByTenantAdmin = "tenant_admin"     // an owner or admin of its tenant
	ReleaseByOperator    = "operator"         // a platform operator
	ReleaseBalanceOut    = "balance_depleted" // the tenant's balance ran out
	ReleaseCostCap       = "cost_cap_reached" // its total-cost cap would have been passed
)

// Live reports whether the allocation holds (or may hold) its node.
func (s State) Live() bool {
	return s == Requested || s == Provisioning || s == Active || s == Releasing || s == ReleaseFailed
}

// Terminal reports whether no further transition is possible.
func (s State) Terminal() bool { return s == Released || s == Failed }

// CanTransition reports whether from → to is allowed.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Transition checks from → to and returns a conflict error naming both.
func Transition(from, to State) error {
	if !CanTransition(from, to) {
		return fault.Conflict("invalid_state_transition", "allocation cannot go from "+string(from)+" to "+string(to))
	}
	return nil
}

// Allocation is owned by a tenant, scoped to a project, requested by a user.
type Allocation struct {
	ID         string
	TenantID   string
	ProjectID  string
	UserID     string
	SKUID      string
	NodeID     string // empty until placed
	State      State
	PriceMinor int64 // hourly price snapshot for the whole node, minor units
	Currency   string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ActiveAt   *time.Time
	// ReleaseRequestedAt is when the release was first asked for (by the
	// user, an operator or depletion). Billing ends here, not when the node
	// finished cleaning up (doc/billing.md); a retry after release_failed
	// keeps the first request's time.
	ReleaseRequestedAt *time.Time
	// ReleaseReason is who or what asked for the release (ReleaseBy*),
	// kept from the first request like ReleaseRequestedAt; "" before.
	ReleaseReason string
	ReleasedAt    *time.Time
	FailureCode   string
	// MaxTotalCostMinor caps what the allocation may cost (0: no cap): the
	// billing worker releases it before its cost would pass the cap.
	MaxTotalCostMinor int64
	// APIKeyID is the personal API key it was requested with ("" for
	// others): the key's daily spend cap counts it.
	APIKeyID string
}
