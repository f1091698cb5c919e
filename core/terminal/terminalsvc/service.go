package terminalsvc

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"time"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/ports"
)

// Audit actions written by the service.
const (
	ActionMint    = "terminal.token_mint"
	ActionConsume = "terminal.token_consume"
	ActionClose   = "terminal.connection_close"
)

// Deps are the ports the service needs. Rand is optional (crypto/rand).
type Deps struct {
	Allocations ports.AllocationStore
	Tokens      ports.TokenStore
	Audit       ports.AuditLog
	Clock       ports.Clock
	IDs         ports.IDs
	// Rand is the entropy source for tokens; tests never need to set it.
	Rand io.Reader
}

// Service implements the terminal use cases.
type Service struct{ d Deps }

// New checks that every dependency is present.
func New(d Deps) (*Service, error) {
	if d.Allocations == nil || d.Tokens == nil || d.Audit == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("terminalsvc: Allocations, Tokens, Audit, Clock and IDs are required")
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	return &Service{d: d}, nil
}

// Minted is a fresh token and when it stops working. The token is shown to
// the caller once and exists nowhere else: the store holds its hash.
type Minted struct {
	Token     string
	ExpiresAt time.Time
	// SessionID is the terminal session the token opens (Resume false) or
	// resumes.
	SessionID string
	Resume    bool
}

// Mint issues a single-use terminal token for an allocation of the caller.
// projectID, when not empty, is the request's active project: an allocation
// of another project is not found, as is one of another tenant, so ids do
// not leak. Only the user who requested the allocation may mint (the shell
// runs as the allocation's account, which holds that user's keys), and only
// while it is active. resumeSessionID, when not empty, is the terminal
// session the token resumes; otherwise the token starts a new session with
// a fresh id. Whether the session still exists is the node's to say, at the
// gateway.
func (s *Service) Mint(ctx context.Context, p identity.Principal, projectID, allocationID, resumeSessionID string) (Minted, error) {
	if allocationID == "" || len(allocationID) > 128 {
		return Minted{}, fault.NotFound("allocation", "")
	}
	if resumeSessionID != "" && !terminal.ValidSessionID(resumeSessionID) {
		return Minted{}, fault.Invalid("session_id", "session_id must be 8-64 characters [A-Za-z0-9-]")
	}
	a, err := s.d.Allocations.Get(ctx, p.TenantID, allocationID)
	if err != nil {
		if fault.IsKind(err, fault.KindNotFound) || fault.IsKind(err, fault.KindInvalid) {
			return Minted{}, fault.NotFound("allocation", allocationID)
		}
		return Minted{}, err
	}
	if a.TenantID != p.TenantID || (projectID != "" && a.ProjectID != projectID) {
		// The store promised the tenant's allocation; check again so a
		// store bug cannot open another tenant's node.
		return Minted{}, fault.NotFound("allocation", allocationID)
	}
	if a.UserID != p.User.ID {
		err := &fault.Error{Kind: fault.KindForbidden, Code: terminal.CodeNotOwner,
			Message: "only the user who requested the allocation can open its terminal"}
		return Minted{}, s.refuseMint(ctx, p, a, err)
	}
	if a.State != allocation.Active || a.NodeID == "" {
		err := fault.Conflict(terminal.CodeAllocationNotActive, "the allocation is not active").
			With("state", string(a.State))
		return Minted{}, s.refuseMint(ctx, p, a, err)
	}
	token, err := terminal.NewToken(s.d.Rand)
	if err != nil {
		return Minted{}, err
	}
	now := s.d.Clock.Now()
	g := terminal.Grant{
		UserID: p.User.ID, TenantID: a.TenantID, ProjectID: a.ProjectID, AllocationID: a.ID, NodeID: a.NodeID,
		SSHUser: nodetask.UsernameFor(a.ID), ExpiresAt: now.Add(terminal.TokenTTL),
		SessionID: resumeSessionID, Resume: resumeSessionID != "",
	}
	if !g.Resume {
		g.SessionID = s.d.IDs.NewID()
	}
	if err := g.Validate(); err != nil {
		return Minted{}, err
	}
	body, err := g.Encode()
	if err != nil {
		return Minted{}, err
	}
	// Store first, audit second: if the audit write fails the caller gets an
	// error and never sees the token, so an unaudited token is unusable.
	if err := s.d.Tokens.Put(ctx, terminal.StoreKey(token), body, terminal.TokenTTL); err != nil {
		return Minted{}, err
	}
	ev := s.auditEvent(ctx, audit.ActorUser, p.User.ID, a.TenantID, a.ProjectID, ActionMint, a.ID, audit.Success)
	ev.Metadata = map[string]any{"node_id": a.NodeID, "expires_at": g.ExpiresAt.UTC().Format(time.RFC3339),
		"session_id": g.SessionID, "resume": g.Resume}
	if err := s.d.Audit.Record(ctx, ev); err != nil {
		return Minted{}, err
	}
	return Minted{Token: token, ExpiresAt: g.ExpiresAt, SessionID: g.SessionID, Resume: g.Resume}, nil
}

func (s *Service) refuseMint(ctx context.Context, p identity.Principal, a allocation.Allocation, refusal *fault.Error) error {
	ev := s.auditEvent(ctx, audit.ActorUser, p.User.ID, a.TenantID, a.ProjectID, ActionMint, a.ID, audit.Denied)
	ev.Metadata = map[string]any{"reason": string(refusal.Code)}
	if err := s.d.Audit.Record(ctx, ev); err != nil {
		return refusal.Wrap(err)
	}
	return refusal
}

// Consume redeems a token for a terminal on allocationID. The token is
// consumed atomically (of concurrent callers exactly one gets it) whatever
// the outcome, so a token presented anywhere it does not belong is burnt.
// It is refused when unknown, used or expired (401 terminal_token_invalid),
// minted for another allocation (403 terminal_token_mismatch), or when the
// allocation stopped being active since it was minted (409
// allocation_not_active). Every outcome is audited.
func (s *Service) Consume(ctx context.Context, token, allocationID string) (terminal.Grant, error) {
	if !terminal.WellFormed(token) {
		return terminal.Grant{}, s.refuseConsume(ctx, terminal.Grant{}, allocationID, terminal.ErrTokenInvalid())
	}
	raw, err := s.d.Tokens.Consume(ctx, terminal.StoreKey(token))
	if err != nil {
		if fault.IsKind(err, fault.KindNotFound) {
			return terminal.Grant{}, s.refuseConsume(ctx, terminal.Grant{}, allocationID, terminal.ErrTokenInvalid())
		}
		return terminal.Grant{}, err
	}
	g, err := terminal.DecodeGrant(raw)
	if err != nil {
		return terminal.Grant{}, s.refuseConsume(ctx, terminal.Grant{}, allocationID, fault.From(err))
	}
	if err := g.Check(allocationID, s.d.Clock.Now()); err != nil {
		return terminal.Grant{}, s.refuseConsume(ctx, g, allocationID, fault.From(err))
	}
	// The allocation may have been released between mint and connect; a
	// released node's account is gone or going, and must not get a shell.
	a, err := s.d.Allocations.Get(ctx, g.TenantID, g.AllocationID)
	switch {
	case fault.IsKind(err, fault.KindNotFound):
		return terminal.Grant{}, s.refuseConsume(ctx, g, allocationID, terminal.ErrTokenInvalid())
	case err != nil:
		return terminal.Grant{}, err
	}
	if a.State != allocation.Active || a.NodeID != g.NodeID || a.UserID != g.UserID {
		return terminal.Grant{}, s.refuseConsume(ctx, g, allocationID,
			fault.Conflict(terminal.CodeAllocationNotActive, "the allocation is not active").With("state", string(a.State)))
	}
	ev := s.auditEvent(ctx, audit.ActorUser, g.UserID, g.TenantID, g.ProjectID, ActionConsume, g.AllocationID, audit.Success)
	ev.Metadata = map[string]any{"node_id": g.NodeID, "ssh_user": g.SSHUser, "session_id": g.SessionID, "resume": g.Resume}
	if err := s.d.Audit.Record(ctx, ev); err != nil {
		return terminal.Grant{}, err
	}
	return g, nil
}

// Closed audits the end of a browser connection the gateway relayed for g
// (a consumed token): how long it lasted, the bytes each way and how it
// ended. Operators read who had a shell on which node, and for how long,
// from the consume and close rows of one session_id.
func (s *Service) Closed(ctx context.Context, g terminal.Grant, c terminal.ConnectionEnd) error {
	ev := s.auditEvent(ctx, audit.ActorUser, g.UserID, g.TenantID, g.ProjectID, ActionClose, g.AllocationID, audit.Success)
	ev.Metadata = map[string]any{"node_id": g.NodeID, "session_id": g.SessionID, "end": c.End,
		"duration_ms": c.Duration.Milliseconds(), "bytes_to_node": c.BytesToNode, "bytes_to_browser": c.BytesToBrowser}
	if c.Detail != "" {
		ev.Metadata["detail"] = c.Detail
	}
	return s.d.Audit.Record(ctx, ev)
}

// refuseConsume audits a refused redemption. What is known of the grant
// (nothing for an unknown token) names the actor; the token itself and its
// hash are never recorded.
func (s *Service) refuseConsume(ctx context.Context, g terminal.Grant, allocationID string, refusal *fault.Error) error {
	ev := s.auditEvent(ctx, audit.ActorUser, g.UserID, g.TenantID, g.ProjectID, ActionConsume, allocationID, audit.Denied)
	ev.Metadata = map[string]any{"reason": string(refusal.Code)}
	if g.AllocationID != "" && g.AllocationID != allocationID {
		ev.Metadata["token_allocation_id"] = g.AllocationID
	}
	if err := s.d.Audit.Record(ctx, ev); err != nil {
		return refusal.Wrap(err)
	}
	return refusal
}

// RefuseAtGate audits a request the gateway refused before any token was
// consumed (foreign Origin, token in the query string, no token). reason is
// the refusal's stable code.
func (s *Service) RefuseAtGate(ctx context.Context, allocationID string, reason fault.Code) error {
	ev := s.auditEvent(ctx, audit.ActorUser, "", "", "", ActionConsume, allocationID, audit.Denied)
	ev.Metadata = map[string]any{"reason": string(reason)}
	return s.d.Audit.Record(ctx, ev)
}

func (s *Service) auditEvent(ctx context.Context, actorType audit.ActorType, actorID, tenantID, projectID,
	action, allocationID string, outcome audit.Outcome) audit.Event {
	rid := ""
	if allocationID != "" && len(allocationID) <= 128 {
		rid = resource.New("", tenantID, projectID, resource.TypeAllocation, allocationID).String()
	}
	return audit.Event{
		ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: actorType, ActorID: actorID,
		TenantID: tenantID, ProjectID: projectID, Action: action, ResourceType: resource.TypeAllocation,
		ResourceID: rid, Outcome: outcome, CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx),
	}
}
