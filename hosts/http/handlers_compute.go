package httphost

import (
	"net/http"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/ports"
)

// errComputeOff answers compute routes on a host built without the compute
// use cases (Deps.Inventory / Deps.Allocations nil).
var errComputeOff = fault.Unavailable("compute is not configured on this host", nil)

func (s *Server) inventoryReady(w http.ResponseWriter, r *http.Request) bool {
	if s.d.Inventory == nil {
		s.fail(w, r, errComputeOff)
		return false
	}
	return true
}

func (s *Server) allocationsReady(w http.ResponseWriter, r *http.Request) bool {
	if s.d.Allocations == nil {
		s.fail(w, r, errComputeOff)
		return false
	}
	return true
}

func allocationView(a allocation.Allocation, access *allocationsvc.AccessInfo) api.Allocation {
	v := api.Allocation{Id: a.ID, ProjectId: a.ProjectID, UserId: a.UserID, SkuId: a.SKUID, State: api.AllocationState(a.State),
		PriceMinor: a.PriceMinor, Currency: a.Currency, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		ActiveAt: a.ActiveAt, ReleaseRequestedAt: a.ReleaseRequestedAt, ReleasedAt: a.ReleasedAt, NodeId: optional(a.NodeID), FailureCode: optional(a.FailureCode),
		ResourceId: resource.New("", a.TenantID, a.ProjectID, resource.TypeAllocation, a.ID).String()}
	if access != nil {
		v.Access = &api.AllocationAccess{Host: access.Host, Port: access.Port, User: access.User, Command: access.Command,
			HostKey: optional(access.HostKey)}
	}
	if a.MaxTotalCostMinor > 0 {
		c := a.MaxTotalCostMinor
		v.MaxTotalCostMinor = &c
	}
	if a.ReleaseReason != "" {
		r := api.AllocationReleaseReason(a.ReleaseReason)
		v.ReleaseReason = &r
	}
	return v
}

func allocationPage(list []allocation.Allocation, next string) api.AllocationPage {
	page := api.AllocationPage{Allocations: make([]api.Allocation, 0, len(list))}
	for _, a := range list {
		page.Allocations = append(page.Allocations, allocationView(a, nil))
	}
	if next != "" {
		page.NextCursor = &next
	}
	return page
}

func adminNodeView(n inventory.Node) api.AdminNode {
	v := api.AdminNode{Id: n.ID, Name: n.Name, SkuId: n.SKUID, State: api.NodeState(n.State), SshHost: n.SSHHost,
		SshPort: n.SSHPort, AgentVersion: n.AgentVersion, Healthy: n.Health.OK, HealthMessage: optional(n.Health.Message),
		LastHeartbeatAt: n.LastHeartbeatAt, CreatedAt: n.CreatedAt, RetiredAt: n.RetiredAt, Gpus: make([]api.GPU, 0, len(n.GPUs)),
		ResourceId: resource.New("", "", "", resource.TypeNode, n.ID).String()}
	if len(n.Health.Checks) > 0 {
		c := n.Health.Checks
		v.HealthChecks = &c
	}
	for _, g := range n.GPUs {
		gv := api.GPU{Index: g.Index, Uuid: g.UUID, Model: g.Model, MemoryMib: g.MemoryMiB, Healthy: g.Healthy}
		if g.Source != "" {
			src := api.GPUSource(g.Source)
			gv.Source = &src
		}
		v.Gpus = append(v.Gpus, gv)
	}
	return v
}

func sshKeyView(k ports.SSHKey) api.SSHKey {
	return api.SSHKey{Id: k.ID, Name: k.Name, PublicKey: k.PublicKey, Fingerprint: k.Fingerprint, KeyType: k.KeyType,
		CreatedAt: k.CreatedAt}
}

func listLimit(p *int) (int, error) {
	if p == nil {
		return 0, nil
	}
	if *p < 1 || *p > 200 {
		return 0, fault.Invalid("limit", "limit must be between 1 and 200")
	}
	return *p, nil
}

func statesOf(p *api.AllocationState) []allocation.State {
	if p == nil {
		return nil
	}
	return []allocation.State{allocation.State(*p)}
}

// ListSKUs implements [api.ServerInterface].
func (h *handlers) ListSKUs(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if !s.inventoryReady(w, r) {
		return
	}
	skus, err := s.d.Inventory.ListSKUs(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.SKUList{Skus: make([]api.SKU, 0, len(skus))}
	for _, k := range skus {
		out.Skus = append(out.Skus, api.SKU{Id: k.ID, Name: k.Name, GpuModel: k.GPUModel, GpuCount: k.GPUCount,
			GpuMemoryGib: k.GPUMemoryGiB, CpuCores: k.CPUCores, MemoryGib: k.MemoryGiB, HourlyPriceMinor: k.HourlyPriceMinor,
			Currency: k.Currency, Available: k.Available})
	}
	writeJSON(w, http.StatusOK, out)
}

// ListNodes implements [api.ServerInterface].
func (h *handlers) ListNodes(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if !s.inventoryReady(w, r) {
		return
	}
	nodes, err := s.d.Inventory.ListNodes(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.NodeList{Nodes: make([]api.Node, 0, len(nodes))}
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, api.Node{Id: n.ID, Name: n.Name, SkuId: n.SKUID, State: api.NodeState(n.State),
			GpuModel: n.GPUModel, GpuCount: n.GPUCount})
	}
	writeJSON(w, http.StatusOK, out)
}

// AdminListNodes implements [api.ServerInterface].
func (h *handlers) AdminListNodes(w http.ResponseWriter, r *http.Request, params api.AdminListNodesParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.inventoryReady(w, r) {
		return
	}
	f := ports.NodeFilter{SKUID: deref(params.SkuId)}
	if params.State != nil {
		f.State = inventory.NodeState(*params.State)
	}
	nodes, err := s.d.Inventory.AdminListNodes(r.Context(), p, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.AdminNodeList{Nodes: make([]api.AdminNode, 0, len(nodes))}
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, adminNodeView(n))
	}
	writeJSON(w, http.StatusOK, out)
}

// RegisterNode implements [api.ServerInterface]. The bootstrap token is in
// this response only; with an idempotency key, a replay returns the same
// stored response (the idempotency store holds it for its TTL).
func (h *handlers) RegisterNode(w http.ResponseWriter, r *http.Request, _ api.RegisterNodeParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.inventoryReady(w, r) {
		return
	}
	var req api.RegisterNodeRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	port := 0
	if req.SshPort != nil {
		port = *req.SshPort
	}
	reg, err := s.d.Inventory.RegisterNode(r.Context(), p, inventorysvcRegister(req, port))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, api.NodeRegistration{Node: adminNodeView(reg.Node), BootstrapToken: reg.BootstrapToken,
		BootstrapExpiresAt: reg.ExpiresAt})
}

// ProbeNode implements [api.ServerInterface].
func (h *handlers) ProbeNode(w http.ResponseWriter, r *http.Request, nodeID api.NodeIDPath, _ api.ProbeNodeParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.inventoryReady(w, r) {
		return
	}
	res, err := s.d.Inventory.ProbeNode(r.Context(), p, nodeID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ProbeResult{Reachable: res.Reachable, Banner: optional(res.Banner),
		Error: optional(res.Error), LatencyMs: res.Latency.Milliseconds()})
}

// RetireNode implements [api.ServerInterface].
func (h *handlers) RetireNode(w http.ResponseWriter, r *http.Request, nodeID api.NodeIDPath, _ api.RetireNodeParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.inventoryReady(w, r) {
		return
	}
	if err := s.d.Inventory.RetireNode(r.Context(), p, nodeID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// StartNodeMaintenance implements [api.ServerInterface].
func (h *handlers) StartNodeMaintenance(w http.ResponseWriter, r *http.Request, nodeID api.NodeIDPath, _ api.StartNodeMaintenanceParams) {
	h.setMaintenance(w, r, nodeID, true)
}

// EndNodeMaintenance implements [api.ServerInterface].
func (h *handlers) EndNodeMaintenance(w http.ResponseWriter, r *http.Request, nodeID api.NodeIDPath, _ api.EndNodeMaintenanceParams) {
	h.setMaintenance(w, r, nodeID, false)
}

func (h *handlers) setMaintenance(w http.ResponseWriter, r *http.Request, nodeID string, on bool) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.inventoryReady(w, r) {
		return
	}
	n, err := s.d.Inventory.SetMaintenance(r.Context(), p, nodeID, on)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, adminNodeView(n))
}

// CreateAllocation implements [api.ServerInterface]. The project is the
// one the authorize layer validated from X-Project-ID.
func (h *handlers) CreateAllocation(w http.ResponseWriter, r *http.Request, _ api.CreateAllocationParams) {
	s := h.s
	p, project, req, ok := s.createInput(w, r)
	if !ok {
		return
	}
	a, err := s.d.Allocations.Create(r.Context(), p, project, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, allocationView(a, nil))
}

// createInput is what the create and the quote read: the caller, the
// active project and the request (or it answers and reports false).
func (s *Server) createInput(w http.ResponseWriter, r *http.Request) (identity.Principal, string, allocationsvc.CreateRequest, bool) {
	p, ok := s.principal(w, r)
	if !ok || !s.allocationsReady(w, r) {
		return p, "", allocationsvc.CreateRequest{}, false
	}
	ap, ok := ActiveProjectFrom(r.Context())
	if !ok {
		s.fail(w, r, fault.Internal(errNoProject))
		return p, "", allocationsvc.CreateRequest{}, false
	}
	var req api.CreateAllocationRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return p, "", allocationsvc.CreateRequest{}, false
	}
	return p, ap.Project.ID, createRequest(req), true
}

func createRequest(req api.CreateAllocationRequest) allocationsvc.CreateRequest {
	cr := allocationsvc.CreateRequest{SKUID: req.SkuId, MaxHourlyPriceMinor: derefInt(req.MaxHourlyPriceMinor),
		MaxTotalCostMinor: derefInt(req.MaxTotalCostMinor)}
	if req.SshKeyIds != nil {
		cr.SSHKeyIDs = *req.SshKeyIds
	}
	if req.StorageSync != nil {
		cr.StorageSync = req.StorageSync.Path
	}
	return cr
}

// QuoteAllocation implements [api.ServerInterface]: the create's checks,
// nothing written (allocationsvc.Quote).
func (h *handlers) QuoteAllocation(w http.ResponseWriter, r *http.Request, _ api.QuoteAllocationParams) {
	s := h.s
	p, project, req, ok := s.createInput(w, r)
	if !ok {
		return
	}
	q, err := s.d.Allocations.Quote(r.Context(), p, project, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.AllocationQuote{SkuId: q.SKUID, HourlyPriceMinor: q.HourlyPriceMinor, Currency: q.Currency,
		BalanceMinor: q.BalanceMinor, BurnRateMinorPerHour: q.BurnRateMinorPerHour, RunwaySecondsAfter: q.RunwaySecondsAfter,
		FreeNodes: q.FreeNodes, Allowed: q.Allowed, Refusals: make([]api.QuoteRefusal, 0, len(q.Refusals))}
	if q.MaxDurationSeconds > 0 {
		d := q.MaxDurationSeconds
		out.MaxDurationSeconds = &d
	}
	for _, rf := range q.Refusals {
		out.Refusals = append(out.Refusals, api.QuoteRefusal{Code: string(rf.Code), Message: rf.Message})
	}
	writeJSON(w, http.StatusOK, out)
}

const errNoProject = wiringError("httphost: project route reached without an active project")

// ListAllocations implements [api.ServerInterface].
func (h *handlers) ListAllocations(w http.ResponseWriter, r *http.Request, params api.ListAllocationsParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.allocationsReady(w, r) {
		return
	}
	ap, ok := ActiveProjectFrom(r.Context())
	if !ok {
		s.fail(w, r, fault.Internal(errNoProject))
		return
	}
	limit, err := listLimit(params.Limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, next, err := s.d.Allocations.List(r.Context(), p, allocationsvc.ListRequest{ProjectID: ap.Project.ID,
		States: statesOf(params.Status), Limit: limit, Cursor: deref(params.Cursor)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writePage(w, func(b []byte) []byte { return appendAllocationPage(b, list, next) })
}

// GetAllocation implements [api.ServerInterface].
func (h *handlers) GetAllocation(w http.ResponseWriter, r *http.Request, allocationID api.AllocationIDPath) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.allocationsReady(w, r) {
		return
	}
	d, err := s.d.Allocations.Get(r.Context(), p, allocationID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, allocationView(d.Allocation, d.Access))
}

// ReleaseAllocation implements [api.ServerInterface].
func (h *handlers) ReleaseAllocation(w http.ResponseWriter, r *http.Request, allocationID api.AllocationIDPath, _ api.ReleaseAllocationParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.allocationsReady(w, r) {
		return
	}
	a, err := s.d.Allocations.Release(r.Context(), p, allocationID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, allocationView(a, nil))
}

// AdminListAllocations implements [api.ServerInterface].
func (h *handlers) AdminListAllocations(w http.ResponseWriter, r *http.Request, params api.AdminListAllocationsParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.allocationsReady(w, r) {
		return
	}
	limit, err := listLimit(params.Limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, next, err := s.d.Allocations.AdminList(r.Context(), p, statesOf(params.Status), limit, deref(params.Cursor))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writePage(w, func(b []byte) []byte { return appendAllocationPage(b, list, next) })
}

// ForceReleaseAllocation implements [api.ServerInterface].
func (h *handlers) ForceReleaseAllocation(w http.ResponseWriter, r *http.Request, allocationID api.AllocationIDPath, _ api.ForceReleaseAllocationParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.allocationsReady(w, r) {
		return
	}
	a, err := s.d.Allocations.ForceRelease(r.Context(), p, allocationID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, allocationView(a, nil))
}

// ListSSHKeys implements [api.ServerInterface].
func (h *handlers) ListSSHKeys(w http.ResponseWriter, r *http.Request) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.allocationsReady(w, r) {
		return
	}
	keys, err := s.d.Allocations.ListSSHKeys(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.SSHKeyList{SshKeys: make([]api.SSHKey, 0, len(keys))}
	for _, k := range keys {
		out.SshKeys = append(out.SshKeys, sshKeyView(k))
	}
	writeJSON(w, http.StatusOK, out)
}

// AddSSHKey implements [api.ServerInterface].
func (h *handlers) AddSSHKey(w http.ResponseWriter, r *http.Request, _ api.AddSSHKeyParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.allocationsReady(w, r) {
		return
	}
	var req api.AddSSHKeyRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	k, err := s.d.Allocations.AddSSHKey(r.Context(), p, req.Name, req.PublicKey)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, sshKeyView(k))
}

// DeleteSSHKey implements [api.ServerInterface].
func (h *handlers) DeleteSSHKey(w http.ResponseWriter, r *http.Request, keyID string, _ api.DeleteSSHKeyParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.allocationsReady(w, r) {
		return
	}
	if err := s.d.Allocations.DeleteSSHKey(r.Context(), p, keyID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func inventorysvcRegister(req api.RegisterNodeRequest, port int) inventorysvc.RegisterRequest {
	return inventorysvc.RegisterRequest{Name: req.Name, SKUID: req.SkuId, SSHHost: req.SshHost, SSHPort: port}
}
