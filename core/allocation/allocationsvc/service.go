package allocationsvc

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/ports"
)

// Deps are the ports the service needs; all are required but Spend.
type Deps struct {
	Tx          ports.TxRunner
	Allocations ports.AllocationStore
	SKUs        ports.SKUStore
	Nodes       ports.NodeStore
	SSHKeys     ports.SSHKeyStore
	Ledger      ports.LedgerStore
	Policies    ports.PolicyStore
	Audit       ports.AuditLog
	Outbox      ports.Outbox
	Clock       ports.Clock
	IDs         ports.IDs
	// Spend reads API keys' spend for their daily caps; without it a key
	// with a cap cannot create allocations (503).
	Spend ports.KeySpendReader
}

// Service implements the allocation and SSH key use cases.
type Service struct{ d Deps }

// New checks that every dependency is present.
func New(d Deps) (*Service, error) {
	if d.Tx == nil || d.Allocations == nil || d.SKUs == nil || d.Nodes == nil || d.SSHKeys == nil || d.Ledger == nil ||
		d.Policies == nil || d.Audit == nil || d.Outbox == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("allocationsvc: every dependency is required")
	}
	return &Service{d: d}, nil
}

// Stable codes of this package's refusals.
const (
	CodeNoCapacity        fault.Code = "no_capacity"
	CodeCapReached        fault.Code = "allocation_cap_reached"
	CodeSSHKeyRequired    fault.Code = "ssh_key_required"
	CodeNotActive         fault.Code = "allocation_not_active"
	CodeInvalidTransition fault.Code = "invalid_state_transition"
	maxSSHKeysPerRequest             = 32
)

// CreateRequest is what a user asks for. SSHKeyIDs selects which of the
// user's keys to install; empty means all of them.
type CreateRequest struct {
	SKUID     string
	SSHKeyIDs []string
	// StorageSync, when set, is a folder of the project's storage pulled
	// into the account's home once the allocation is active and pushed
	// back at release (doc/storage.md, "Files on the node").
	StorageSync string
	// MaxHourlyPriceMinor refuses a SKU that costs more per hour (422
	// max_hourly_price_exceeded); 0: any price.
	MaxHourlyPriceMinor int64
	// MaxTotalCostMinor caps what the allocation may cost: the billing
	// worker releases it before its cost passes the cap (guards.go); 0:
	// no cap.
	MaxTotalCostMinor int64
}

// RequestedPayload is the provisioning.allocation_requested event payload.
type RequestedPayload struct {
	AllocationID string   `json:"allocation_id"`
	NodeID       string   `json:"node_id"`
	UserID       string   `json:"user_id"`
	Username     string   `json:"username"`
	SKUID        string   `json:"sku_id"`
	SSHKeyIDs    []string `json:"ssh_key_ids"`
	// Sessions is the browser-terminal policy the node enforces for the
	// allocation's account, from the tenant's policy at request time.
	Sessions nodetask.SessionPolicy `json:"sessions"`
	// StorageSync is the project folder to sync to the node ("" none).
	StorageSync string `json:"storage_sync,omitempty"`
}

// StatePayload is the payload of every later allocation event.
type StatePayload struct {
	AllocationID string `json:"allocation_id"`
	NodeID       string `json:"node_id"`
	UserID       string `json:"user_id"`
	Username     string `json:"username"`
	SKUID        string `json:"sku_id"`
	State        string `json:"state"`
	FailureCode  string `json:"failure_code,omitempty"`
	Forced       bool   `json:"forced,omitempty"`
	// GraceSeconds (release requests only) is how long the account's
	// processes get between SIGTERM and SIGKILL, from the tenant's
	// allocation.release_grace_seconds policy.
	GraceSeconds int `json:"grace_seconds,omitempty"`
	// ReleaseReason (release requested and later) is who or what asked for
	// the release: user, tenant_admin, operator, balance_depleted or
	// cost_cap_reached (allocation.ReleaseBy*).
	ReleaseReason string `json:"release_reason,omitempty"`
	// Usage (released and release_failed only) is what the allocation was
	// billed: from active_at to the first release request, at its price
	// snapshot, the same whole seconds and rounding the billing worker
	// debits (doc/billing.md).
	Usage *UsageSummary `json:"usage,omitempty"`
}

// UsageSummary is an ended allocation's bill.
type UsageSummary struct {
	BilledSeconds int64  `json:"billed_seconds"`
	CostMinor     int64  `json:"cost_minor"`
	Currency      string `json:"currency"`
}

// usageOf is the bill of an allocation whose billing has ended (nil while
// it is still billed).
func usageOf(a allocation.Allocation) *UsageSummary {
	secs, cost, ok := billing.Bill(a)
	if !ok {
		return nil
	}
	return &UsageSummary{BilledSeconds: secs, CostMinor: cost, Currency: a.Currency}
}

// Create requests an allocation in the caller's project. In ONE
// transaction: the tenant's balance must be positive (402
// insufficient_balance), the user must have an SSH key (422
// ssh_key_required), the SKU's price is snapshotted, a free node is placed
// (409 no_capacity), the outbox event and audit row are written, and the
// live counts must stay under the user, project and tenant caps (429
// allocation_cap_reached; the tenant row lock serialises concurrent
// creates), as must an API key's spend cap (402 spend_cap_reached). The
// refusals come in that order, except that no_capacity is answered after
// the caps: a capped caller hears that it is capped whether or not a node
// is free. Capped means by what has committed when its count runs: a create
// that found every node held by concurrent creates still open, and counts
// before they commit, hears no_capacity even if those are then capped
// (TestCapRace). The caller's project membership is checked by the host.
//
// The tenant lock is taken last: everything that does not need it —
// reads, placement (which locks only the node it takes), the audit row and
// the event — is done first, so the lock is held for the count, the caps
// check and the commit, and not across the other round trips
// (doc/performance.md#allocation-creates). Counted after the insert, the
// counts include the new allocation; nothing is committed unless they stay
// within the caps.
func (s *Service) Create(ctx context.Context, p identity.Principal, projectID string, req CreateRequest) (allocation.Allocation, error) {
	if projectID == "" {
		return allocation.Allocation{}, &fault.Error{Kind: fault.KindInvalid, Code: fault.CodeProjectRequired,
			Message: "an allocation needs a project", Field: "X-Project-ID"}
	}
	if strings.TrimSpace(req.SKUID) == "" {
		return allocation.Allocation{}, fault.Invalid("sku_id", "sku_id is required")
	}
	if len(req.SSHKeyIDs) > maxSSHKeysPerRequest {
		return allocation.Allocation{}, fault.Invalid("ssh_key_ids", "at most 32 keys")
	}
	if err := checkCreateText(req); err != nil {
		return allocation.Allocation{}, err
	}
	if err := checkGuardAmounts(req); err != nil {
		return allocation.Allocation{}, err
	}
	if req.StorageSync != "" {
		p, err := storage.ParsePath("storage_sync.path", req.StorageSync)
		if err != nil {
			return allocation.Allocation{}, err
		}
		req.StorageSync = p.String()
	}
	// The caps and session limits are read before the transaction, where
	// the policy store serves them from its cache (inside one it reads
	// through): a change made while this request runs is no more or less
	// seen than one made just after it read them.
	vals, err := s.d.Policies.Values(ctx, p.TenantID)
	if err != nil {
		return allocation.Allocation{}, err
	}
	var out allocation.Allocation
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		sku, err := s.d.SKUs.GetSKU(ctx, req.SKUID)
		if err != nil || !sku.Active {
			if err == nil || fault.IsKind(err, fault.KindNotFound) {
				return fault.Invalid("sku_id", "unknown or retired SKU")
			}
			return err
		}
		if err := priceGuard(req, sku); err != nil {
			return err
		}
		bal, _, err := s.d.Ledger.Balance(ctx, p.TenantID)
		if err != nil {
			return err
		}
		if bal <= 0 {
			return fault.New(fault.KindPaymentRequired, fault.CodeInsufficientBalance,
				"the balance is not positive: top up before requesting a node").With("balance_minor", bal)
		}
		keys, err := s.selectKeys(ctx, p.User.ID, req.SSHKeyIDs)
		if err != nil {
			return err
		}
		now := s.d.Clock.Now()
		a := allocation.Allocation{ID: s.d.IDs.NewID(), TenantID: p.TenantID, ProjectID: projectID, UserID: p.User.ID,
			SKUID: sku.ID, State: allocation.Requested, PriceMinor: sku.HourlyPriceMinor, Currency: sku.Currency,
			CreatedAt: now, UpdatedAt: now, MaxTotalCostMinor: req.MaxTotalCostMinor}
		if m := p.Machine; m != nil && m.Kind == identity.CallerAPIKey {
			a.APIKeyID = m.ID
		}
		// No node is refused after the caps are checked.
		out, err = s.d.Allocations.CreatePlaced(ctx, a)
		placeErr := err
		if err != nil && fault.From(err).Code != CodeNoCapacity {
			return err
		}
		if placeErr == nil {
			ev := s.auditEvent(ctx, audit.ActorUser, p.User.ID, out, "allocation.create")
			ev.Metadata = map[string]any{"sku_id": sku.ID, "node_id": out.NodeID, "price_minor": sku.HourlyPriceMinor}
			if req.MaxTotalCostMinor > 0 {
				ev.Metadata["max_total_cost_minor"] = req.MaxTotalCostMinor
			}
			if err := s.d.Audit.Record(ctx, ev); err != nil {
				return err
			}
			if err := s.emit(ctx, event.AllocationRequested, out, RequestedPayload{AllocationID: out.ID, NodeID: out.NodeID,
				UserID: out.UserID, Username: nodetask.UsernameFor(out.ID), SKUID: out.SKUID, SSHKeyIDs: keys,
				Sessions: nodetask.SessionPolicy{ReconnectWindowSeconds: int(vals.Int(policy.TerminalReconnectWindow)),
					MaxSessions: int(vals.Int(policy.TerminalMaxSessions))}, StorageSync: req.StorageSync}); err != nil {
				return err
			}
		}
		// The critical section: CountLive takes the tenant lock, held
		// until commit, and counts what committed before it was granted.
		counts, err := s.d.Allocations.CountLive(ctx, p.TenantID, projectID, p.User.ID)
		if err != nil {
			return err
		}
		own, ownHourly := 0, int64(0) // the new allocation, already counted
		if placeErr == nil {
			own, ownHourly = 1, sku.HourlyPriceMinor
		}
		for _, c := range []struct {
			scope string
			n     int
			key   policy.Key
		}{{"user", counts.User, policy.AllocationMaxPerUser}, {"project", counts.Project, policy.AllocationMaxPerProject},
			{"tenant", counts.Tenant, policy.AllocationMaxPerTenant}} {
			if limit := vals.Int(c.key); int64(c.n-own) >= limit {
				return fault.New(fault.KindRateLimited, CodeCapReached,
					"the "+c.scope+" already holds the most live allocations allowed").
					With("scope", c.scope).With("limit", limit)
			}
		}
		// Under the tenant lock: a key's concurrent creates see each
		// other's live allocations.
		if err := s.spendGuard(ctx, p, req, sku, now, ownHourly); err != nil {
			return err
		}
		return placeErr
	})
	if err != nil {
		return allocation.Allocation{}, err
	}
	return out, nil
}

// selectKeys resolves the requested key ids against the user's keys (all of
// them when none are named) and refuses an empty selection.
func (s *Service) selectKeys(ctx context.Context, userID string, ids []string) ([]string, error) {
	keys, err := s.d.SSHKeys.ListSSHKeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fault.New(fault.KindUnprocessable, CodeSSHKeyRequired,
			"register an SSH public key before requesting a node")
	}
	mine := map[string]bool{}
	all := make([]string, 0, len(keys))
	for _, k := range keys {
		mine[k.ID] = true
		all = append(all, k.ID)
	}
	if len(ids) == 0 {
		return all, nil
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.ToLower(id)
		if !mine[id] {
			return nil, fault.Invalid("ssh_key_ids", "unknown SSH key id "+strconv.Quote(id))
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// hiddenFrom reports whether an allocation of the caller's tenant lies
// outside what the caller may see: a machine credential (service account,
// API key) sees its one project's allocations only, and anything else is
// NotFound to it, as another tenant's is.
func hiddenFrom(p identity.Principal, a allocation.Allocation) bool {
	return p.Machine != nil && a.ProjectID != p.Machine.ProjectID
}

// AccessInfo says how to reach an active allocation over SSH.
type AccessInfo struct {
	Host    string
	Port    int
	User    string
	Command string
	// HostKey is the node's SSH host key as its agent reported it
	// (authorized_keys format; "" before the first report).
	HostKey string
}

// Detail is an allocation with its access information (present while it
// is active).
type Detail struct {
	allocation.Allocation
	Access *AccessInfo
}

// Get returns an allocation of the caller's tenant with its access
// information; another tenant's is NotFound.
func (s *Service) Get(ctx context.Context, p identity.Principal, id string) (Detail, error) {
	a, err := s.d.Allocations.Get(ctx, p.TenantID, id)
	if err != nil {
		return Detail{}, err
	}
	if hiddenFrom(p, a) {
		return Detail{}, fault.NotFound("allocation", "")
	}
	d := Detail{Allocation: a}
	if a.State == allocation.Active && a.NodeID != "" {
		info, err := s.accessFor(ctx, a)
		if err != nil {
			return Detail{}, err
		}
		d.Access = &info
	}
	return d, nil
}

// AccessInfo returns how to connect to an active allocation of the caller's
// tenant; any other state is Conflict allocation_not_active.
func (s *Service) AccessInfo(ctx context.Context, p identity.Principal, id string) (AccessInfo, error) {
	a, err := s.d.Allocations.Get(ctx, p.TenantID, id)
	if err != nil {
		return AccessInfo{}, err
	}
	if hiddenFrom(p, a) {
		return AccessInfo{}, fault.NotFound("allocation", "")
	}
	if a.State != allocation.Active || a.NodeID == "" {
		return AccessInfo{}, fault.Conflict(CodeNotActive, "the allocation is not active").With("state", string(a.State))
	}
	return s.accessFor(ctx, a)
}

func (s *Service) accessFor(ctx context.Context, a allocation.Allocation) (AccessInfo, error) {
	n, err := s.d.Nodes.GetNode(ctx, a.NodeID)
	if err != nil {
		return AccessInfo{}, err
	}
	user := nodetask.UsernameFor(a.ID)
	host := n.SSHHost
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	return AccessInfo{Host: n.SSHHost, Port: n.SSHPort, User: user, HostKey: n.SSHHostKey,
		Command: "ssh -p " + strconv.Itoa(n.SSHPort) + " " + user + "@" + host}, nil
}

// ListRequest selects the caller's allocations.
type ListRequest struct {
	ProjectID string // required: the caller's active project
	States    []allocation.State
	Limit     int
	Cursor    string
}

// List lists allocations of the caller's tenant in one project, newest first.
func (s *Service) List(ctx context.Context, p identity.Principal, r ListRequest) ([]allocation.Allocation, string, error) {
	if r.ProjectID == "" {
		return nil, "", &fault.Error{Kind: fault.KindInvalid, Code: fault.CodeProjectRequired,
			Message: "listing allocations needs a project", Field: "X-Project-ID"}
	}
	return s.d.Allocations.List(ctx, ports.AllocationFilter{TenantID: p.TenantID, ProjectID: r.ProjectID,
		States: r.States, Limit: r.Limit, Cursor: r.Cursor})
}

// AdminList lists allocations of every tenant, optionally by state.
// Operators only.
func (s *Service) AdminList(ctx context.Context, p identity.Principal, states []allocation.State, limit int, cursor string) ([]allocation.Allocation, string, error) {
	if !p.User.IsAdmin() {
		return nil, "", fault.Forbidden("platform operators only")
	}
	for _, st := range states {
		if !validState(st) {
			return nil, "", fault.Invalid("status", "unknown allocation state "+strconv.Quote(string(st)))
		}
	}
	return s.d.Allocations.List(ctx, ports.AllocationFilter{States: states, Limit: limit, Cursor: cursor})
}

func validState(st allocation.State) bool {
	switch st {
	case allocation.Requested, allocation.Provisioning, allocation.Active, allocation.Releasing,
		allocation.Released, allocation.Failed, allocation.ReleaseFailed:
		return true
	}
	return false
}

// Release asks for the caller's allocation to be taken down: → releasing
// with provisioning.allocation_release_requested. The requesting user or a
// tenant owner/admin may release; others of the tenant get 403. Releasing
// one already releasing is a no-op; a released or failed one is 409
// invalid_state_transition.
func (s *Service) Release(ctx context.Context, p identity.Principal, id string) (allocation.Allocation, error) {
	return s.release(ctx, p, p.TenantID, id, false)
}

// ForceRelease is the operator's release of any tenant's allocation. It
// also retries a release_failed one, and re-emits the release request for
// one stuck in releasing (a lost workflow gets a new start).
func (s *Service) ForceRelease(ctx context.Context, p identity.Principal, id string) (allocation.Allocation, error) {
	if !p.User.IsAdmin() {
		return allocation.Allocation{}, fault.Forbidden("platform operators only")
	}
	return s.release(ctx, p, "", id, true)
}

func (s *Service) release(ctx context.Context, p identity.Principal, tenantID, id string, forced bool) (allocation.Allocation, error) {
	var out allocation.Allocation
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		cur, err := s.d.Allocations.Get(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if !forced && hiddenFrom(p, cur) {
			return fault.NotFound("allocation", "")
		}
		emit := true
		a, err := s.d.Allocations.Update(ctx, id, func(a *allocation.Allocation) error {
			if !forced && a.UserID != p.User.ID && !p.CanManageTenant() {
				return fault.Forbidden("only the requesting user or a tenant admin may release this allocation")
			}
			if a.State == allocation.Releasing {
				emit = forced
				return nil
			}
			if err := allocation.Transition(a.State, allocation.Releasing); err != nil {
				return err
			}
			a.State = allocation.Releasing
			reason := allocation.ReleaseByTenantAdmin
			switch {
			case forced:
				reason = allocation.ReleaseByOperator
			case a.UserID == p.User.ID:
				reason = allocation.ReleaseByUser
			}
			s.markReleaseRequested(a, reason)
			return nil
		})
		if err != nil {
			return err
		}
		out = a
		if !emit {
			return nil
		}
		action := "allocation.release"
		if forced {
			action = "allocation.force_release"
		}
		if err := s.d.Audit.Record(ctx, s.auditEvent(ctx, audit.ActorUser, p.User.ID, a, action)); err != nil {
			return err
		}
		return s.emitReleaseRequested(ctx, a, forced)
	})
	return out, err
}

// The transitions below are the provisioning worker's. Each validates the
// move with core/allocation, writes the state, its outbox event and an
// audit row in one transaction, and is idempotent: calling it when the
// allocation is already in the target state changes nothing, emits nothing
// and returns the allocation. A move the state machine forbids is 409
// invalid_state_transition.

// MarkProvisioning: requested → provisioning (no event: the workflow that
// calls it is the only consumer).
func (s *Service) MarkProvisioning(ctx context.Context, id string) (allocation.Allocation, error) {
	return s.transition(ctx, id, allocation.Provisioning, "", "")
}

// MarkActive: provisioning → active, sets active_at; emits
// provisioning.allocation_active (billing opens usage on it).
func (s *Service) MarkActive(ctx context.Context, id string) (allocation.Allocation, error) {
	return s.transition(ctx, id, allocation.Active, "", event.AllocationActive)
}

// MarkFailed: requested/provisioning → failed with a failure code; emits
// provisioning.allocation_failed. The node is free again.
func (s *Service) MarkFailed(ctx context.Context, id string, code string) (allocation.Allocation, error) {
	return s.transition(ctx, id, allocation.Failed, code, event.AllocationFailed)
}

// MarkReleased: releasing → released, sets released_at; emits
// provisioning.allocation_released (billing closes usage). The node is
// free again.
func (s *Service) MarkReleased(ctx context.Context, id string) (allocation.Allocation, error) {
	return s.transition(ctx, id, allocation.Released, "", event.AllocationReleased)
}

// MarkReleaseFailed: releasing → release_failed with a failure code; emits
// provisioning.allocation_release_failed. The node stays held until a
// retry (ForceRelease) succeeds.
func (s *Service) MarkReleaseFailed(ctx context.Context, id string, code string) (allocation.Allocation, error) {
	return s.transition(ctx, id, allocation.ReleaseFailed, code, event.AllocationReleaseFailed)
}

var failureCodeOK = func(c string) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func (s *Service) transition(ctx context.Context, id string, to allocation.State, code, subject string) (allocation.Allocation, error) {
	if (to == allocation.Failed || to == allocation.ReleaseFailed) && !failureCodeOK(code) {
		return allocation.Allocation{}, fault.Invalid("code", "a failure code of 1-64 characters [a-z0-9_.] is required")
	}
	var out allocation.Allocation
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		changed := false
		a, err := s.d.Allocations.Update(ctx, id, func(a *allocation.Allocation) error {
			if a.State == to {
				return nil
			}
			if err := allocation.Transition(a.State, to); err != nil {
				return err
			}
			now := s.d.Clock.Now()
			a.State, changed = to, true
			switch to {
			case allocation.Active:
				a.ActiveAt = &now
			case allocation.Released:
				a.ReleasedAt = &now
			case allocation.Failed, allocation.ReleaseFailed:
				a.FailureCode = code
			}
			return nil
		})
		if err != nil {
			return err
		}
		out = a
		if !changed {
			return nil
		}
		ev := s.auditEvent(ctx, audit.ActorSystem, "provisioning", a, "allocation."+string(to))
		if code != "" {
			ev.Metadata = map[string]any{"failure_code": code}
			ev.Outcome = audit.Failure
		}
		if err := s.d.Audit.Record(ctx, ev); err != nil {
			return err
		}
		if subject == "" {
			return nil
		}
		p := statePayload(a, false)
		if to == allocation.Released || to == allocation.ReleaseFailed {
			p.Usage = usageOf(a)
		}
		return s.emit(ctx, subject, a, p)
	})
	return out, err
}

// markReleaseRequested stamps the first release request and why it was
// made: billing ends there. A retry (release_failed → releasing) keeps the
// first time and reason.
func (s *Service) markReleaseRequested(a *allocation.Allocation, reason string) {
	if a.ReleaseRequestedAt == nil {
		now := s.d.Clock.Now()
		a.ReleaseRequestedAt = &now
		a.ReleaseReason = reason
	}
}

// emitReleaseRequested writes provisioning.allocation_release_requested with
// the tenant's grace period for the account's processes.
func (s *Service) emitReleaseRequested(ctx context.Context, a allocation.Allocation, forced bool) error {
	vals, err := s.d.Policies.Values(ctx, a.TenantID)
	if err != nil {
		return err
	}
	p := statePayload(a, forced)
	p.GraceSeconds = int(vals.Int(policy.AllocationReleaseGrace))
	return s.emit(ctx, event.AllocationReleaseReq, a, p)
}

func statePayload(a allocation.Allocation, forced bool) StatePayload {
	return StatePayload{AllocationID: a.ID, NodeID: a.NodeID, UserID: a.UserID, Username: nodetask.UsernameFor(a.ID),
		SKUID: a.SKUID, State: string(a.State), FailureCode: a.FailureCode, Forced: forced, ReleaseReason: a.ReleaseReason}
}

// SSH keys.

// AddSSHKey registers a public key for the caller. Private keys, DSA, short
// RSA and malformed keys are 400 naming public_key; the same key twice is
// 409 ssh_key_duplicate. The comment of the key is dropped: only the
// canonical "type base64" form is stored.
func (s *Service) AddSSHKey(ctx context.Context, p identity.Principal, name, publicKey string) (ports.SSHKey, error) {
	name = strings.TrimSpace(name)
	publicKey = strings.TrimSpace(publicKey)
	if err := checkSSHKeyText(name, publicKey); err != nil {
		return ports.SSHKey{}, err
	}
	if err := nodetask.ValidatePublicKey(publicKey); err != nil {
		return ports.SSHKey{}, err
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil {
		return ports.SSHKey{}, fault.Invalid("public_key", "not an SSH public key in authorized_keys format")
	}
	k := ports.SSHKey{ID: s.d.IDs.NewID(), UserID: p.User.ID, Name: name,
		PublicKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))),
		Fingerprint: ssh.FingerprintSHA256(pk), KeyType: pk.Type(), CreatedAt: s.d.Clock.Now()}
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.SSHKeys.AddSSHKey(ctx, k); err != nil {
			return err
		}
		ev := s.keyAudit(ctx, p, "ssh_key.add", k.ID)
		ev.Metadata = map[string]any{"fingerprint": k.Fingerprint, "key_type": k.KeyType}
		return s.d.Audit.Record(ctx, ev)
	})
	if err != nil {
		return ports.SSHKey{}, err
	}
	return k, nil
}

// ListSSHKeys lists the caller's keys.
func (s *Service) ListSSHKeys(ctx context.Context, p identity.Principal) ([]ports.SSHKey, error) {
	return s.d.SSHKeys.ListSSHKeys(ctx, p.User.ID)
}

// DeleteSSHKey removes one of the caller's keys (another user's is
// NotFound). Allocations already provisioned keep the key until released.
func (s *Service) DeleteSSHKey(ctx context.Context, p identity.Principal, id string) error {
	return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.SSHKeys.DeleteSSHKey(ctx, p.User.ID, id); err != nil {
			return err
		}
		return s.d.Audit.Record(ctx, s.keyAudit(ctx, p, "ssh_key.delete", id))
	})
}

func (s *Service) keyAudit(ctx context.Context, p identity.Principal, action, id string) audit.Event {
	return audit.Event{ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorUser, ActorID: p.User.ID,
		TenantID: p.TenantID, Action: action, ResourceType: resource.TypeSSHKey,
		ResourceID: resource.New("", p.TenantID, "", resource.TypeSSHKey, id).String(), Outcome: audit.Success,
		CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx)}
}

func (s *Service) auditEvent(ctx context.Context, actorType audit.ActorType, actorID string, a allocation.Allocation, action string) audit.Event {
	return audit.Event{ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: actorType, ActorID: actorID,
		TenantID: a.TenantID, ProjectID: a.ProjectID, Action: action, ResourceType: resource.TypeAllocation,
		ResourceID: resource.New("", a.TenantID, a.ProjectID, resource.TypeAllocation, a.ID).String(),
		Outcome:    audit.Success, CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx)}
}

func (s *Service) emit(ctx context.Context, subject string, a allocation.Allocation, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fault.Internal(err)
	}
	return s.d.Outbox.Append(ctx, event.Envelope{ID: s.d.IDs.NewID(), Type: subject, Version: 1,
		OccurredAt: s.d.Clock.Now(), TenantID: a.TenantID, ProjectID: a.ProjectID, AggregateType: resource.TypeAllocation,
		AggregateID: a.ID, CorrelationID: callctx.CorrelationID(ctx), Payload: body})
}
