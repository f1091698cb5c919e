package inventorysvc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/core/text"
	"github.com/gpuaas/gpuaas/ports"
)

// Config tunes the service.
type Config struct {
	// BootstrapTTL is how long a node's one-time enrolment token is valid:
	// at most MaxBootstrapTTL; 0 means DefaultBootstrapTTL.
	BootstrapTTL time.Duration
	// ProbeTimeout caps one SSH reachability probe; 0 means DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// OfflineAfter is how long an active node may stay silent before the
	// sweep marks it offline; 0 means inventory.OfflineAfter.
	OfflineAfter time.Duration
}

// Defaults and bounds.
const (
	DefaultBootstrapTTL = 15 * time.Minute
	MaxBootstrapTTL     = 30 * time.Minute
	DefaultProbeTimeout = 10 * time.Second
)

// CheckAndSetDefaults validates the config.
func (c *Config) CheckAndSetDefaults() error {
	if c.BootstrapTTL < 0 || c.BootstrapTTL > MaxBootstrapTTL {
		return fmt.Errorf("inventorysvc: BootstrapTTL must be between 0 and %s", MaxBootstrapTTL)
	}
	if c.BootstrapTTL == 0 {
		c.BootstrapTTL = DefaultBootstrapTTL
	}
	if c.ProbeTimeout < 0 || c.OfflineAfter < 0 {
		return errors.New("inventorysvc: durations must not be negative")
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.OfflineAfter == 0 {
		c.OfflineAfter = inventory.OfflineAfter
	}
	return nil
}

// Deps are the ports the service needs; all are required.
type Deps struct {
	Tx          ports.TxRunner
	SKUs        ports.SKUStore
	Nodes       ports.NodeStore
	Allocations ports.AllocationStore
	Bootstrap   ports.BootstrapTokenStore
	Certs       ports.NodeCertificateStore
	Prober      ports.NodeProber
	Audit       ports.AuditLog
	Clock       ports.Clock
	IDs         ports.IDs
}

// Service implements the inventory use cases.
type Service struct {
	cfg Config
	d   Deps
}

// New checks the config and that every dependency is present.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if d.Tx == nil || d.SKUs == nil || d.Nodes == nil || d.Allocations == nil || d.Bootstrap == nil ||
		d.Certs == nil || d.Prober == nil || d.Audit == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("inventorysvc: every dependency is required")
	}
	return &Service{cfg: cfg, d: d}, nil
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// SKUView is a rentable SKU with how many nodes are free right now.
type SKUView struct {
	inventory.SKU
	Available int
}

// ListSKUs lists the active catalogue with live capacity.
func (s *Service) ListSKUs(ctx context.Context) ([]SKUView, error) {
	skus, err := s.d.SKUs.ListSKUs(ctx)
	if err != nil {
		return nil, err
	}
	capa, err := s.d.SKUs.Capacity(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SKUView, 0, len(skus))
	for _, k := range skus {
		if k.Active {
			out = append(out, SKUView{SKU: k, Available: capa[k.ID]})
		}
	}
	return out, nil
}

// PublicNode is what users may know about a node: no address, agent
// version, health detail or GPU serials.
type PublicNode struct {
	ID       string
	Name     string
	SKUID    string
	State    inventory.NodeState
	GPUModel string
	GPUCount int
}

// ListNodes lists the fleet for users: nodes that are or may become
// rentable (not enrolling, not retired).
func (s *Service) ListNodes(ctx context.Context) ([]PublicNode, error) {
	nodes, err := s.d.Nodes.ListNodes(ctx, ports.NodeFilter{})
	if err != nil {
		return nil, err
	}
	out := make([]PublicNode, 0, len(nodes))
	for _, n := range nodes {
		if n.State == inventory.NodeRetired || n.State == inventory.NodeEnrolling {
			continue
		}
		pn := PublicNode{ID: n.ID, Name: n.Name, SKUID: n.SKUID, State: n.State, GPUCount: len(n.GPUs)}
		if len(n.GPUs) > 0 {
			pn.GPUModel = n.GPUs[0].Model
		}
		out = append(out, pn)
	}
	return out, nil
}

func requireAdmin(p identity.Principal) error {
	if !p.User.IsAdmin() {
		return fault.Forbidden("platform operators only")
	}
	return nil
}

// AdminListNodes lists nodes with every field, for operators.
func (s *Service) AdminListNodes(ctx context.Context, p identity.Principal, f ports.NodeFilter) ([]inventory.Node, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	return s.d.Nodes.ListNodes(ctx, f)
}

// RegisterRequest describes a node an operator adds.
type RegisterRequest struct {
	Name    string
	SKUID   string
	SSHHost string
	SSHPort int
}

// nodeNameRE allows 1..inventory.NodeNameMaxLength (63) characters.
var nodeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func (r *RegisterRequest) validate() error {
	r.Name = strings.TrimSpace(r.Name)
	r.SSHHost = strings.TrimSpace(r.SSHHost)
	if !nodeNameRE.MatchString(r.Name) {
		return fault.Invalid("name", "name must be 1-63 characters of a-z, 0-9, '.', '_' or '-'")
	}
	if err := text.Line("sku_id", r.SKUID, 1, inventory.SKUIDMaxLength); err != nil {
		return err
	}
	if err := text.Line("ssh_host", r.SSHHost, 1, inventory.SSHHostMaxLength); err != nil {
		return err
	}
	if r.SSHPort == 0 {
		r.SSHPort = 22
	}
	if r.SSHPort < 1 || r.SSHPort > 65535 {
		return fault.Invalid("ssh_port", "ssh_port must be between 1 and 65535")
	}
	if !validHost(r.SSHHost) {
		return fault.Invalid("ssh_host", "ssh_host must be a host name or an IP address")
	}
	return nil
}

var hostnameRE = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	return len(h) <= 253 && hostnameRE.MatchString(h)
}

// Registration is a new node with its bootstrap token. The token is
// returned exactly once: only its SHA-256 is stored.
type Registration struct {
	Node           inventory.Node
	BootstrapToken string
	ExpiresAt      time.Time
}

// RegisterNode creates an enrolling node and its one-time bootstrap token
// (32 random bytes, base64url) in one transaction, audited. Operators only.
func (s *Service) RegisterNode(ctx context.Context, p identity.Principal, req RegisterRequest) (Registration, error) {
	if err := requireAdmin(p); err != nil {
		return Registration{}, err
	}
	if err := req.validate(); err != nil {
		return Registration{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Registration{}, fault.Internal(err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	hash := HashBootstrapToken(token)
	now := s.d.Clock.Now()
	reg := Registration{BootstrapToken: token, ExpiresAt: now.Add(s.cfg.BootstrapTTL)}
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.d.SKUs.GetSKU(ctx, req.SKUID); err != nil {
			if fault.IsKind(err, fault.KindNotFound) {
				return fault.Invalid("sku_id", "unknown SKU")
			}
			return err
		}
		n := inventory.Node{ID: s.d.IDs.NewID(), Name: req.Name, SKUID: req.SKUID, State: inventory.NodeEnrolling,
			SSHHost: req.SSHHost, SSHPort: req.SSHPort, GPUs: []inventory.GPU{}, CreatedAt: now}
		if err := s.d.Nodes.CreateNode(ctx, n); err != nil {
			return err
		}
		if err := s.d.Bootstrap.CreateBootstrapToken(ctx, n.ID, hash, reg.ExpiresAt); err != nil {
			return err
		}
		ev := s.auditEvent(ctx, p, "node.register", n.ID, audit.Success)
		ev.Metadata = map[string]any{"name": n.Name, "sku_id": n.SKUID, "bootstrap_expires_at": reg.ExpiresAt.UTC().Format(time.RFC3339)}
		if err := s.d.Audit.Record(ctx, ev); err != nil {
			return err
		}
		reg.Node = n
		return nil
	})
	if err != nil {
		return Registration{}, err
	}
	return reg, nil
}

// HashBootstrapToken is how bootstrap tokens are stored and looked up.
func HashBootstrapToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// GetNode returns one node with every field, for operators.
func (s *Service) GetNode(ctx context.Context, p identity.Principal, id string) (inventory.Node, error) {
	if err := requireAdmin(p); err != nil {
		return inventory.Node{}, err
	}
	return s.d.Nodes.GetNode(ctx, id)
}

// ProbeNode checks that the node's SSH endpoint answers within the probe
// timeout. An unreachable node is a result, not an error. Audited.
func (s *Service) ProbeNode(ctx context.Context, p identity.Principal, id string) (ports.ProbeResult, error) {
	if err := requireAdmin(p); err != nil {
		return ports.ProbeResult{}, err
	}
	n, err := s.d.Nodes.GetNode(ctx, id)
	if err != nil {
		return ports.ProbeResult{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	res, err := s.d.Prober.Probe(pctx, n.SSHHost, n.SSHPort)
	cancel()
	if err != nil {
		return ports.ProbeResult{}, err
	}
	ev := s.auditEvent(ctx, p, "node.probe", n.ID, audit.Success)
	ev.Metadata = map[string]any{"reachable": res.Reachable}
	if !res.Reachable {
		ev.Outcome = audit.Failure
	}
	if err := s.d.Audit.Record(ctx, ev); err != nil {
		return ports.ProbeResult{}, err
	}
	return res, nil
}

// RetireNode takes a node out for good and revokes its certificates, in
// one transaction. A node a live allocation holds is refused with Conflict
// node_in_use: release the allocation first. The node row stays locked
// while deciding, so a concurrent placement (which skips locked nodes)
// cannot slip an allocation onto it. Retiring a retired node is a no-op.
func (s *Service) RetireNode(ctx context.Context, p identity.Principal, id string) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		already := false
		n, err := s.d.Nodes.UpdateNode(ctx, id, func(n *inventory.Node) error {
			if n.State == inventory.NodeRetired {
				already = true
				return nil
			}
			live, _, err := s.d.Allocations.List(ctx, ports.AllocationFilter{NodeID: n.ID, States: liveStates(), Limit: 1})
			if err != nil {
				return err
			}
			if len(live) > 0 {
				return fault.Conflict("node_in_use", "a live allocation holds this node; release it first").
					With("allocation_id", live[0].ID)
			}
			if err := inventory.TransitionNode(n.State, inventory.NodeRetired); err != nil {
				return err
			}
			now := s.d.Clock.Now()
			n.State, n.RetiredAt = inventory.NodeRetired, &now
			return nil
		})
		if err != nil || already {
			return err
		}
		if err := s.d.Certs.RevokeNodeCertificates(ctx, n.ID, s.d.Clock.Now()); err != nil {
			return err
		}
		return s.d.Audit.Record(ctx, s.auditEvent(ctx, p, "node.retire", n.ID, audit.Success))
	})
}

// SetMaintenance takes a node out of placement (on) or returns it (off:
// maintenance → active; a node that stays silent then goes offline through
// the sweep). A node held by a live allocation may enter maintenance: the
// allocation keeps running, no new one is placed. Audited.
func (s *Service) SetMaintenance(ctx context.Context, p identity.Principal, id string, on bool) (inventory.Node, error) {
	if err := requireAdmin(p); err != nil {
		return inventory.Node{}, err
	}
	var out inventory.Node
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		changed := false
		n, err := s.d.Nodes.UpdateNode(ctx, id, func(n *inventory.Node) error {
			to := inventory.NodeActive
			if on {
				to = inventory.NodeMaintenance
			}
			if n.State == to {
				return nil
			}
			if err := inventory.TransitionNode(n.State, to); err != nil {
				return err
			}
			n.State, changed = to, true
			return nil
		})
		if err != nil {
			return err
		}
		out = n
		if !changed {
			return nil
		}
		action := "node.maintenance_end"
		if on {
			action = "node.maintenance_start"
		}
		return s.d.Audit.Record(ctx, s.auditEvent(ctx, p, action, n.ID, audit.Success))
	})
	return out, err
}

// SweepOffline marks active nodes silent for longer than OfflineAfter as
// offline and audits each as a system action. Workers call it
// periodically; concurrent sweepers never report a node twice.
func (s *Service) SweepOffline(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		ids, err = s.d.Nodes.MarkSilentOffline(ctx, s.d.Clock.Now().Add(-s.cfg.OfflineAfter))
		if err != nil {
			return err
		}
		for _, id := range ids {
			ev := s.auditEvent(ctx, identity.Principal{}, "node.offline", id, audit.Success)
			ev.ActorType, ev.ActorID = audit.ActorSystem, "node-sweeper"
			ev.Metadata = map[string]any{"silent_for_more_than": s.cfg.OfflineAfter.String()}
			if err := s.d.Audit.Record(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

func liveStates() []allocation.State {
	return []allocation.State{allocation.Requested, allocation.Provisioning, allocation.Active,
		allocation.Releasing, allocation.ReleaseFailed}
}

func (s *Service) auditEvent(ctx context.Context, p identity.Principal, action, nodeID string, outcome audit.Outcome) audit.Event {
	return audit.Event{
		ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorUser, ActorID: p.User.ID,
		TenantID: p.TenantID, Action: action, ResourceType: resource.TypeNode,
		ResourceID: resource.New("", "", "", resource.TypeNode, nodeID).String(), Outcome: outcome,
		CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx),
	}
}
