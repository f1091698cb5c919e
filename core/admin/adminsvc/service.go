// Package adminsvc holds the platform operators' use cases: the user and
// tenant directories and their details, creating and suspending users,
// per-tenant policy overrides, the ops view with its runbooks, and retrying
// failed events. Platform admins only; every change is audited in its
// transaction.
package adminsvc

import (
	"context"
	"encoding/json"
	"errors"
	"net/mail"
	"sort"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/admin"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/core/text"
	"github.com/gpuaas/gpuaas/ports"
)

// BalanceReader reads a tenant's balance, burn and runway, and pages its
// ledger (ledgersvc), each for the tenant of the principal it is given.
type BalanceReader interface {
	Balance(ctx context.Context, p identity.Principal) (ledgersvc.Balance, error)
	Ledger(ctx context.Context, p identity.Principal, cursor string, limit int) ([]ledger.Entry, string, error)
}

// CreditRefunds says, per credit of a tenant, what refunds have returned
// or are returning of it (postgres.LedgerStore.CommittedRefunds).
type CreditRefunds interface {
	CommittedRefunds(ctx context.Context, tenantID string, ids []string) (map[string]int64, error)
}

// PolicyOverrides reads and removes a tenant's own policy values.
type PolicyOverrides interface {
	Overrides(ctx context.Context, tenantID string) (map[string]string, error)
	Unset(ctx context.Context, tenantID, key string) error
}

// Deps are the ports the service needs; Consumers is optional (the ops
// view then has no consumer lag).
type Deps struct {
	Tx          ports.TxRunner
	Directory   ports.AdminDirectory
	Ops         ports.OpsReader
	Consumers   ports.ConsumerMonitor
	Balances    BalanceReader
	Refunds     CreditRefunds
	Projects    ports.ProjectStore
	Members     ports.MembershipStore
	Tenants     ports.TenantStore
	Allocations ports.AllocationStore
	Policies    ports.PolicyStore
	Overrides   PolicyOverrides
	Audit       ports.AuditLog
	Outbox      ports.Outbox
	Clock       ports.Clock
	IDs         ports.IDs
}

// Service implements the operators' use cases.
type Service struct{ d Deps }

// New checks the dependencies.
func New(d Deps) (*Service, error) {
	if d.Tx == nil || d.Directory == nil || d.Ops == nil || d.Balances == nil || d.Refunds == nil || d.Projects == nil || d.Members == nil ||
		d.Tenants == nil || d.Allocations == nil || d.Policies == nil || d.Overrides == nil || d.Audit == nil ||
		d.Outbox == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("adminsvc: every dependency but Consumers is required")
	}
	return &Service{d: d}, nil
}

// Codes of the operators' refusals.
const (
	CodeSelfSuspend     fault.Code = "cannot_suspend_self"
	CodeLastAdmin       fault.Code = "last_platform_admin"
	CodeEmailTaken      fault.Code = "email_taken"
	CodePolicyNotTenant fault.Code = "policy_not_tenant_scoped"
)

func operator(p identity.Principal) error {
	if !p.User.IsAdmin() {
		return fault.Forbidden("only platform administrators can do this")
	}
	return nil
}

func page(limit int) (int, error) {
	if limit == 0 {
		return 50, nil
	}
	if limit < 1 || limit > 200 {
		return 0, fault.Invalid("limit", "limit must be between 1 and 200")
	}
	return limit, nil
}

// ListUsers pages the users, newest first.
func (s *Service) ListUsers(ctx context.Context, p identity.Principal, f admin.UserFilter) ([]admin.UserRow, string, error) {
	if err := operator(p); err != nil {
		return nil, "", err
	}
	var err error
	if f.Limit, err = page(f.Limit); err != nil {
		return nil, "", err
	}
	if err := text.Line("email", f.Email, 0, identity.EmailMaxLength); err != nil {
		return nil, "", err
	}
	if err := text.Line("tenant_id", f.TenantID, 0, identity.IDMaxLength); err != nil {
		return nil, "", err
	}
	if f.Status != "" && f.Status != identity.UserActive && f.Status != identity.UserSuspended {
		return nil, "", fault.Invalid("status", "status must be active or suspended")
	}
	return s.d.Directory.ListUsers(ctx, f)
}

// CreateUserRequest creates a user an operator vouches for. They sign in
// through the identity provider with this email; their first sign-in binds
// the account (doc/admin.md).
type CreateUserRequest struct {
	Email       string
	DisplayName string
	// TenantID joins an existing tenant; NewTenantName makes one (the user
	// its owner). Exactly one is set.
	TenantID      string
	NewTenantName string
	Role          identity.TenantRole // for an existing tenant: owner, admin or member
}

// CreateUser creates a pending user in a tenant.
func (s *Service) CreateUser(ctx context.Context, p identity.Principal, r CreateUserRequest) (admin.UserRow, error) {
	if err := operator(p); err != nil {
		return admin.UserRow{}, err
	}
	email := strings.ToLower(strings.TrimSpace(r.Email))
	if err := text.Line("email", r.Email, 1, identity.EmailMaxLength); err != nil {
		return admin.UserRow{}, err
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || a.Name != "" {
		return admin.UserRow{}, fault.Invalid("email", "a valid email address is required")
	}
	if err := text.Line("display_name", r.DisplayName, 0, identity.DisplayNameMaxLength); err != nil {
		return admin.UserRow{}, err
	}
	switch {
	case (r.TenantID == "") == (r.NewTenantName == ""):
		return admin.UserRow{}, fault.Invalid("tenant_id", "give tenant_id or new_tenant_name, not both")
	case r.NewTenantName != "":
		if err := identity.ValidateName("new_tenant_name", r.NewTenantName); err != nil {
			return admin.UserRow{}, err
		}
		r.Role = identity.TenantOwner
	case !r.Role.Valid():
		return admin.UserRow{}, fault.Invalid("role", "role must be owner, admin or member")
	}
	now := s.d.Clock.Now()
	u := identity.User{ID: s.d.IDs.NewID(), Email: email, DisplayName: r.DisplayName, Role: identity.RoleUser,
		Status: identity.UserActive, CreatedAt: now, UpdatedAt: now}
	var row admin.UserRow
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		tenantID := r.TenantID
		if r.NewTenantName != "" {
			t := identity.Tenant{ID: s.d.IDs.NewID(), Name: r.NewTenantName, CreatedAt: now}
			t.Slug = identity.Slugify(t.Name) + "-" + t.ID[len(t.ID)-8:]
			if err := s.d.Tenants.CreateTenant(ctx, t); err != nil {
				return err
			}
			if err := s.d.Projects.CreateProject(ctx, identity.Project{ID: s.d.IDs.NewID(), TenantID: t.ID,
				Name: "default", IsDefault: true, CreatedAt: now}); err != nil {
				return err
			}
			tenantID = t.ID
		} else if _, err := s.d.Tenants.GetTenant(ctx, tenantID); err != nil {
			return err
		}
		if err := s.d.Directory.CreatePendingUser(ctx, u); err != nil {
			if fault.IsKind(err, fault.KindConflict) {
				return fault.Conflict(CodeEmailTaken, "a user with this email exists")
			}
			return err
		}
		if err := s.d.Members.AddTenantMember(ctx, identity.TenantMembership{TenantID: tenantID, UserID: u.ID, Role: r.Role,
			CreatedAt: now}); err != nil {
			return err
		}
		projects, err := s.d.Projects.ListProjectsByTenant(ctx, tenantID)
		if err != nil {
			return err
		}
		for _, pr := range projects {
			if pr.IsDefault {
				role := identity.ProjectMember
				if r.Role.CanManage() {
					role = identity.ProjectAdmin
				}
				if err := s.d.Members.AddProjectMember(ctx, identity.ProjectMembership{ProjectID: pr.ID, UserID: u.ID,
					Role: role, CreatedAt: now}); err != nil {
					return err
				}
			}
		}
		if err := s.record(ctx, p, "admin.user_create", tenantID, resource.TypeUser, u.ID,
			map[string]any{"email": email, "role": string(r.Role)}); err != nil {
			return err
		}
		row, err = s.d.Directory.User(ctx, u.ID)
		return err
	})
	return row, err
}

// UserDetail is an operator's view of one user.
type UserDetail struct {
	Row             admin.UserRow
	Projects        []ProjectRole
	Balance         ledgersvc.Balance
	LiveAllocations []allocation.Allocation
}

// ProjectRole is a project and a member's role in it.
type ProjectRole struct {
	Project identity.Project
	Role    identity.ProjectRole
}

// liveStates are the states in which an allocation holds its node.
var liveStates = []allocation.State{allocation.Requested, allocation.Provisioning, allocation.Active,
	allocation.Releasing, allocation.ReleaseFailed}

// User returns a user with tenant, memberships, the tenant's balance and
// runway, and the user's live allocations.
func (s *Service) User(ctx context.Context, p identity.Principal, id string) (UserDetail, error) {
	if err := operator(p); err != nil {
		return UserDetail{}, err
	}
	if err := identity.ValidateID("user_id", id); err != nil {
		return UserDetail{}, err
	}
	row, err := s.d.Directory.User(ctx, id)
	if err != nil {
		return UserDetail{}, err
	}
	d := UserDetail{Row: row}
	projects, err := s.d.Projects.ListProjectsForUser(ctx, id)
	if err != nil {
		return UserDetail{}, err
	}
	for _, pr := range projects {
		m, err := s.d.Members.ProjectMembership(ctx, pr.ID, id)
		if err != nil {
			return UserDetail{}, err
		}
		d.Projects = append(d.Projects, ProjectRole{Project: pr, Role: m.Role})
	}
	if row.TenantID != "" {
		if d.Balance, err = s.d.Balances.Balance(ctx, identity.Principal{TenantID: row.TenantID}); err != nil {
			return UserDetail{}, err
		}
		if d.LiveAllocations, _, err = s.d.Allocations.List(ctx, ports.AllocationFilter{TenantID: row.TenantID, UserID: id,
			States: liveStates, Limit: 200}); err != nil {
			return UserDetail{}, err
		}
	}
	return d, nil
}

// SetSuspended suspends or reinstates a user. A suspended user's tokens
// are refused from their next request (identitysvc.Resolve) and the event
// identity.user_suspended tells the rest of the platform. Operators cannot
// suspend themselves or the last active platform admin (409).
func (s *Service) SetSuspended(ctx context.Context, p identity.Principal, id string, suspend bool) (admin.UserRow, error) {
	if err := operator(p); err != nil {
		return admin.UserRow{}, err
	}
	if err := identity.ValidateID("user_id", id); err != nil {
		return admin.UserRow{}, err
	}
	if suspend && id == p.User.ID {
		return admin.UserRow{}, fault.Conflict(CodeSelfSuspend, "you cannot suspend yourself")
	}
	status, action, subject := identity.UserActive, "admin.user_unsuspend", event.UserReinstated
	if suspend {
		status, action, subject = identity.UserSuspended, "admin.user_suspend", event.UserSuspended
	}
	var row admin.UserRow
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		if row, err = s.d.Directory.User(ctx, id); err != nil {
			return err
		}
		if suspend && row.User.IsAdmin() && row.User.Status == identity.UserActive {
			n, err := s.d.Directory.ActiveAdmins(ctx)
			if err != nil {
				return err
			}
			if n <= 1 {
				return fault.Conflict(CodeLastAdmin, "the last active platform admin cannot be suspended")
			}
		}
		changed, err := s.d.Directory.SetUserStatus(ctx, id, status, s.d.Clock.Now())
		if err != nil || !changed {
			return err
		}
		row.User.Status = status
		if err := s.record(ctx, p, action, row.TenantID, resource.TypeUser, id, nil); err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]any{"user_id": id, "tenant_id": row.TenantID, "by": p.User.ID})
		return s.d.Outbox.Append(ctx, event.Envelope{ID: s.d.IDs.NewID(), Type: subject, Version: 1,
			OccurredAt: s.d.Clock.Now(), TenantID: row.TenantID, AggregateType: "user", AggregateID: id,
			CorrelationID: callctx.CorrelationID(ctx), Payload: body})
	})
	return row, err
}

// ListTenants pages the tenants, newest first, with members and balance.
func (s *Service) ListTenants(ctx context.Context, p identity.Principal, f admin.TenantFilter) ([]admin.TenantRow, string, error) {
	if err := operator(p); err != nil {
		return nil, "", err
	}
	var err error
	if f.Limit, err = page(f.Limit); err != nil {
		return nil, "", err
	}
	if err := text.Line("name", f.Name, 0, identity.NameMaxLength); err != nil {
		return nil, "", err
	}
	rows, next, err := s.d.Directory.ListTenants(ctx, f)
	if err != nil {
		return nil, "", err
	}
	cur := ""
	for i := range rows {
		if rows[i].Currency != "" {
			continue
		}
		if cur == "" {
			if cur, err = s.ledgerCurrency(ctx); err != nil {
				return nil, "", err
			}
		}
		rows[i].Currency = cur
	}
	return rows, next, nil
}

// ledgerCurrency is the currency every ledger keeps (billing.currency, a
// platform-wide key), shown for a tenant with no ledger entry yet, as its
// balance shows it, instead of "".
func (s *Service) ledgerCurrency(ctx context.Context) (string, error) {
	vals, err := s.d.Policies.Values(ctx, "")
	if err != nil {
		return "", err
	}
	return vals.String(policy.BillingCurrency), nil
}

// TenantDetail is an operator's view of one tenant.
type TenantDetail struct {
	Row             admin.TenantRow
	Balance         ledgersvc.Balance
	Projects        []identity.Project
	Members         []admin.Member
	LiveAllocations []allocation.Allocation
	Overrides       map[string]string
}

// Tenant returns a tenant with balance, burn, projects, members, live
// allocations and its policy overrides.
func (s *Service) Tenant(ctx context.Context, p identity.Principal, id string) (TenantDetail, error) {
	if err := operator(p); err != nil {
		return TenantDetail{}, err
	}
	if err := identity.ValidateID("tenant_id", id); err != nil {
		return TenantDetail{}, err
	}
	var d TenantDetail
	var err error
	if d.Row, err = s.d.Directory.Tenant(ctx, id); err != nil {
		return d, err
	}
	if d.Row.Currency == "" {
		if d.Row.Currency, err = s.ledgerCurrency(ctx); err != nil {
			return d, err
		}
	}
	if d.Balance, err = s.d.Balances.Balance(ctx, identity.Principal{TenantID: id}); err != nil {
		return d, err
	}
	if d.Projects, err = s.d.Projects.ListProjectsByTenant(ctx, id); err != nil {
		return d, err
	}
	if d.Members, err = s.d.Directory.TenantMembers(ctx, id); err != nil {
		return d, err
	}
	if d.LiveAllocations, _, err = s.d.Allocations.List(ctx, ports.AllocationFilter{TenantID: id, States: liveStates, Limit: 200}); err != nil {
		return d, err
	}
	d.Overrides, err = s.d.Overrides.Overrides(ctx, id)
	return d, err
}

// LedgerPage is a page of a tenant's ledger as operators see it.
type LedgerPage struct {
	Entries []ledger.Entry
	// Refundable is, for each credit on the page, what may still be
	// refunded of it: the credit less what refunds have returned or are
	// returning (the payment provider's in flight), 0 once the credit is
	// older than the tenant's refund window (billing.refund_window_days).
	// What the balance allows is checked when a refund is asked for.
	Refundable map[string]int64
	Next       string
}

// TenantLedger pages a tenant's ledger, newest first, with the limits and
// cursors of the tenant's own ledger: operators look up here the credit
// entry id that a refund names, and what is left to refund of each credit.
// An unknown tenant is NotFound (its empty ledger would not say so). Not
// audited, like the other reads here.
func (s *Service) TenantLedger(ctx context.Context, p identity.Principal, tenantID, cursor string, limit int) (LedgerPage, error) {
	if err := operator(p); err != nil {
		return LedgerPage{}, err
	}
	if err := identity.ValidateID("tenant_id", tenantID); err != nil {
		return LedgerPage{}, err
	}
	limit, err := page(limit)
	if err != nil {
		return LedgerPage{}, err
	}
	if _, err := s.d.Tenants.GetTenant(ctx, tenantID); err != nil {
		return LedgerPage{}, err
	}
	var out LedgerPage
	if out.Entries, out.Next, err = s.d.Balances.Ledger(ctx, identity.Principal{TenantID: tenantID}, cursor, limit); err != nil {
		return LedgerPage{}, err
	}
	var credits []string
	for _, e := range out.Entries {
		if e.Type == ledger.Credit {
			credits = append(credits, e.ID)
		}
	}
	out.Refundable = make(map[string]int64, len(credits))
	if len(credits) == 0 {
		return out, nil
	}
	vals, err := s.d.Policies.Values(ctx, tenantID)
	if err != nil {
		return LedgerPage{}, err
	}
	committed, err := s.d.Refunds.CommittedRefunds(ctx, tenantID, credits)
	if err != nil {
		return LedgerPage{}, err
	}
	since := vals.RefundWindowStart(s.d.Clock.Now())
	for _, e := range out.Entries {
		if e.Type != ledger.Credit {
			continue
		}
		left := int64(0)
		if !e.CreatedAt.Before(since) {
			left = max(e.AmountMinor-committed[e.ID], 0)
		}
		out.Refundable[e.ID] = left
	}
	return out, nil
}

// TenantPolicy is a tenant-scoped key with the tenant's effective value.
type TenantPolicy struct {
	Key        policy.Key
	Value      string
	Overridden bool
}

// TenantPolicies lists the keys that may be overridden per tenant with the
// tenant's effective values.
func (s *Service) TenantPolicies(ctx context.Context, p identity.Principal, tenantID string) ([]TenantPolicy, error) {
	if err := operator(p); err != nil {
		return nil, err
	}
	if err := identity.ValidateID("tenant_id", tenantID); err != nil {
		return nil, err
	}
	if _, err := s.d.Tenants.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	vals, err := s.d.Policies.Values(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	own, err := s.d.Overrides.Overrides(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	var out []TenantPolicy
	for _, k := range policy.Keys() {
		if k.Tenant {
			_, overridden := own[k.Name]
			out = append(out, TenantPolicy{Key: k, Value: vals.String(k), Overridden: overridden})
		}
	}
	return out, nil
}

// SetTenantPolicy overrides a tenant-scoped key for one tenant, or with
// value nil removes the override (the global value applies again).
func (s *Service) SetTenantPolicy(ctx context.Context, p identity.Principal, tenantID, key string, value *string) (TenantPolicy, error) {
	if err := operator(p); err != nil {
		return TenantPolicy{}, err
	}
	if err := identity.ValidateID("tenant_id", tenantID); err != nil {
		return TenantPolicy{}, err
	}
	k, ok := policy.Lookup(key)
	if !ok {
		return TenantPolicy{}, fault.Invalid("key", "unknown policy key")
	}
	if !k.Tenant {
		return TenantPolicy{}, &fault.Error{Kind: fault.KindInvalid, Code: CodePolicyNotTenant, Field: "key",
			Message: k.Name + " is platform-wide; it cannot be overridden for one tenant"}
	}
	if value != nil {
		if err := k.Validate(*value); err != nil {
			return TenantPolicy{}, err
		}
	}
	var out TenantPolicy
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.d.Tenants.GetTenant(ctx, tenantID); err != nil {
			return err
		}
		before, err := s.d.Policies.Values(ctx, tenantID)
		if err != nil {
			return err
		}
		if value != nil {
			err = s.d.Policies.Set(ctx, tenantID, k.Name, *value, p.User.ID)
		} else {
			err = s.d.Overrides.Unset(ctx, tenantID, k.Name)
		}
		if err != nil {
			return err
		}
		after, err := s.d.Policies.Values(ctx, tenantID)
		if err != nil {
			return err
		}
		out = TenantPolicy{Key: k, Value: after.String(k), Overridden: value != nil}
		return s.record(ctx, p, "policy.tenant_set", tenantID, resource.TypeTenant, tenantID,
			map[string]any{"key": k.Name, "old_value": before.String(k), "new_value": after.String(k), "override": value != nil})
	})
	return out, err
}

// OpsView is the operators' health page.
type OpsView struct {
	Snapshot  admin.OpsSnapshot
	Consumers []admin.ConsumerLag
	Entries   []admin.Entry
	At        time.Time
}

// Ops reads the platform's health: nodes, allocations (stuck and
// release_failed), the outbox backlog and its oldest age, failed events,
// consumer lag, payments awaiting reconciliation and the notification
// queues, each entry ok or degraded with the runbook to follow.
func (s *Service) Ops(ctx context.Context, p identity.Principal, stuckAfter time.Duration) (OpsView, error) {
	if err := operator(p); err != nil {
		return OpsView{}, err
	}
	if stuckAfter == 0 {
		stuckAfter = admin.DefaultStuckAfter
	}
	if stuckAfter < time.Minute || stuckAfter > 7*24*time.Hour {
		return OpsView{}, fault.Invalid("stuck_after_minutes", "stuck_after_minutes must be between 1 and 10080")
	}
	now := s.d.Clock.Now()
	snap, err := s.d.Ops.Snapshot(ctx, now, stuckAfter)
	if err != nil {
		return OpsView{}, err
	}
	v := OpsView{Snapshot: snap, At: now}
	consumerErr := ""
	if s.d.Consumers != nil {
		if v.Consumers, err = s.d.Consumers.ConsumerLag(ctx); err != nil {
			consumerErr = "the bus did not answer"
		}
	}
	entry := func(name string, value int64, bad bool, runbook, detail string) {
		e := admin.Entry{Name: name, Status: admin.OK, Value: value, Detail: detail}
		if bad {
			e.Status, e.Runbook = admin.Degraded, runbook
		}
		v.Entries = append(v.Entries, e)
	}
	offline := 0
	for _, c := range snap.NodesByState {
		if c.Name == "offline" {
			offline = c.Count
		}
	}
	unhealthy := 0
	for _, c := range snap.NodesByHealth {
		if c.Name != "ok" && c.Name != "" {
			unhealthy += c.Count
		}
	}
	entry("nodes_offline", int64(offline), offline > 0, admin.RunbookNodesOffline, "")
	entry("nodes_unhealthy", int64(unhealthy), unhealthy > 0, admin.RunbookNodesOffline, "")
	entry("allocations_stuck", int64(snap.Stuck), snap.Stuck > 0, admin.RunbookStuckAllocations,
		"in requested, provisioning or releasing for more than "+stuckAfter.String())
	entry("allocations_release_failed", int64(snap.ReleaseFailed), snap.ReleaseFailed > 0, admin.RunbookStuckAllocations, "")
	age := int64(0)
	if snap.OutboxOldest != nil {
		age = int64(now.Sub(*snap.OutboxOldest) / time.Second)
	}
	entry("outbox_pending", int64(snap.OutboxPending), time.Duration(age)*time.Second > admin.OutboxAgeDegraded,
		admin.RunbookOutboxBacklog, "")
	entry("outbox_oldest_age_seconds", age, time.Duration(age)*time.Second > admin.OutboxAgeDegraded, admin.RunbookOutboxBacklog, "")
	entry("events_failed", int64(snap.OutboxFailed), snap.OutboxFailed > 0, admin.RunbookFailedEvents,
		"retry with POST /api/v1/admin/events/{id}/retry once the cause is fixed")
	entry("payments_to_reconcile", int64(snap.PaymentsToReconcile), snap.PaymentsToReconcile > 0, admin.RunbookReconcile, "")
	entry("emails_pending", int64(snap.EmailsPending), snap.EmailsPending > admin.NotificationsDegraded, admin.RunbookNotifications, "")
	entry("webhooks_pending", int64(snap.WebhooksPending), snap.WebhooksPending > admin.NotificationsDegraded, admin.RunbookNotifications, "")
	if consumerErr != "" {
		entry("consumer_lag", 0, true, admin.RunbookConsumerLag, consumerErr)
	}
	sort.Slice(v.Consumers, func(i, j int) bool { return v.Consumers[i].Durable < v.Consumers[j].Durable })
	for _, c := range v.Consumers {
		lag := int64(c.Pending) + int64(c.AckPending)
		entry("consumer_lag:"+c.Durable, lag, lag > admin.ConsumerLagDegraded, admin.RunbookConsumerLag, c.Stream)
	}
	return v, nil
}

// Runbooks lists the runbooks the ops view refers to.
func (s *Service) Runbooks(p identity.Principal) ([]admin.Runbook, error) {
	if err := operator(p); err != nil {
		return nil, err
	}
	return admin.Runbooks, nil
}

// RetryEvent puts a failed outbox event back to pending (the relay
// publishes it within its poll interval; consumers dedupe by event id).
func (s *Service) RetryEvent(ctx context.Context, p identity.Principal, id string) (admin.FailedEvent, error) {
	if err := operator(p); err != nil {
		return admin.FailedEvent{}, err
	}
	if err := identity.ValidateID("event_id", id); err != nil {
		return admin.FailedEvent{}, err
	}
	var ev admin.FailedEvent
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		if ev, err = s.d.Ops.RetryEvent(ctx, id); err != nil {
			return err
		}
		return s.record(ctx, p, "admin.event_retry", "", "event", id,
			map[string]any{"subject": ev.Subject, "retry_count": ev.RetryCount})
	})
	return ev, err
}

func (s *Service) record(ctx context.Context, p identity.Principal, action, tenantID, typ, id string, md map[string]any) error {
	rid := id
	if typ == resource.TypeUser || typ == resource.TypeTenant {
		rid = resource.New("", tenantID, "", typ, id).String()
	}
	return s.d.Audit.Record(ctx, audit.Event{ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorUser,
		ActorID: p.User.ID, TenantID: tenantID, Action: action, ResourceType: typ, ResourceID: rid, Outcome: audit.Success,
		CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx), Metadata: md})
}
