package connecthost

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/payment"
	allocationsv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/allocations/v1"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/allocations/v1/allocationsv1connect"
	billingv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/billing/v1"
	inventoryv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/inventory/v1"
	paymentsv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/payments/v1"
)

// The handlers decode, call the use case with the principal the
// interceptor resolved, and encode: nothing else.

// limitOf is the page size the REST API allows (1–200; 0: the default).
func limitOf(n int32) (int, error) {
	if n < 0 || n > 200 {
		return 0, fault.Invalid("limit", "limit must be between 0 and 200")
	}
	return int(n), nil
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tsp(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return ts(*t)
}

type allocationRPC struct {
	d   RPCDeps
	log *slog.Logger
}

func allocationToProto(a allocation.Allocation) *allocationsv1.Allocation {
	return &allocationsv1.Allocation{Id: a.ID, ProjectId: a.ProjectID, SkuId: a.SKUID, NodeId: a.NodeID, State: string(a.State),
		PriceMinor: a.PriceMinor, Currency: a.Currency, CreatedAt: ts(a.CreatedAt), ActiveAt: tsp(a.ActiveAt),
		ReleasedAt: tsp(a.ReleasedAt), FailureCode: a.FailureCode, MaxTotalCostMinor: a.MaxTotalCostMinor,
		ReleaseRequestedAt: tsp(a.ReleaseRequestedAt), ReleaseReason: a.ReleaseReason}
}

func (h *allocationRPC) CreateAllocation(ctx context.Context, req *connect.Request[allocationsv1.CreateAllocationRequest]) (*connect.Response[allocationsv1.CreateAllocationResponse], error) {
	m := req.Msg
	resp, err := idempotent(ctx, h.d, h.log, allocationsv1connect.AllocationServiceCreateAllocationProcedure, m,
		func() *allocationsv1.CreateAllocationResponse { return &allocationsv1.CreateAllocationResponse{} },
		func(ctx context.Context) (*allocationsv1.CreateAllocationResponse, error) {
			a, err := h.d.Allocations.Create(ctx, principalFrom(ctx), m.ProjectId, allocationsvc.CreateRequest{SKUID: m.SkuId,
				SSHKeyIDs: m.SshKeyIds, MaxHourlyPriceMinor: m.MaxHourlyPriceMinor, MaxTotalCostMinor: m.MaxTotalCostMinor})
			if err != nil {
				return nil, err
			}
			return &allocationsv1.CreateAllocationResponse{Allocation: allocationToProto(a)}, nil
		})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

func (h *allocationRPC) GetAllocation(ctx context.Context, req *connect.Request[allocationsv1.GetAllocationRequest]) (*connect.Response[allocationsv1.GetAllocationResponse], error) {
	d, err := h.d.Allocations.Get(ctx, principalFrom(ctx), req.Msg.AllocationId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&allocationsv1.GetAllocationResponse{Allocation: allocationToProto(d.Allocation)}), nil
}

func (h *allocationRPC) ListAllocations(ctx context.Context, req *connect.Request[allocationsv1.ListAllocationsRequest]) (*connect.Response[allocationsv1.ListAllocationsResponse], error) {
	limit, err := limitOf(req.Msg.Limit)
	if err != nil {
		return nil, err
	}
	states := make([]allocation.State, len(req.Msg.States))
	for i, s := range req.Msg.States {
		states[i] = allocation.State(s)
	}
	list, next, err := h.d.Allocations.List(ctx, principalFrom(ctx), allocationsvc.ListRequest{ProjectID: req.Msg.ProjectId,
		States: states, Limit: limit, Cursor: req.Msg.Cursor})
	if err != nil {
		return nil, err
	}
	out := &allocationsv1.ListAllocationsResponse{NextCursor: next}
	for _, a := range list {
		out.Allocations = append(out.Allocations, allocationToProto(a))
	}
	return connect.NewResponse(out), nil
}

func (h *allocationRPC) ReleaseAllocation(ctx context.Context, req *connect.Request[allocationsv1.ReleaseAllocationRequest]) (*connect.Response[allocationsv1.ReleaseAllocationResponse], error) {
	a, err := h.d.Allocations.Release(ctx, principalFrom(ctx), req.Msg.AllocationId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&allocationsv1.ReleaseAllocationResponse{Allocation: allocationToProto(a)}), nil
}

type inventoryRPC struct{ d RPCDeps }

func (h *inventoryRPC) ListSkus(ctx context.Context, _ *connect.Request[inventoryv1.ListSkusRequest]) (*connect.Response[inventoryv1.ListSkusResponse], error) {
	skus, err := h.d.Inventory.ListSKUs(ctx)
	if err != nil {
		return nil, err
	}
	out := &inventoryv1.ListSkusResponse{}
	for _, s := range skus {
		out.Skus = append(out.Skus, &inventoryv1.Sku{Id: s.ID, Name: s.Name, GpuModel: s.GPUModel, GpuCount: int32(s.GPUCount),
			GpuMemoryGib: int32(s.GPUMemoryGiB), CpuCores: int32(s.CPUCores), MemoryGib: int32(s.MemoryGiB),
			HourlyPriceMinor: s.HourlyPriceMinor, Currency: s.Currency, Available: int32(s.Available)})
	}
	return connect.NewResponse(out), nil
}

type billingRPC struct{ d RPCDeps }

func (h *billingRPC) GetBalance(ctx context.Context, _ *connect.Request[billingv1.GetBalanceRequest]) (*connect.Response[billingv1.GetBalanceResponse], error) {
	b, err := h.d.Ledger.Balance(ctx, principalFrom(ctx))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&billingv1.GetBalanceResponse{BalanceMinor: b.BalanceMinor, Currency: b.Currency,
		BurnRateMinorPerHour: b.BurnRateMinorPerHour, RunwaySeconds: b.RunwaySeconds}), nil
}

func (h *billingRPC) ListLedgerEntries(ctx context.Context, req *connect.Request[billingv1.ListLedgerEntriesRequest]) (*connect.Response[billingv1.ListLedgerEntriesResponse], error) {
	limit, err := limitOf(req.Msg.Limit)
	if err != nil {
		return nil, err
	}
	entries, next, err := h.d.Ledger.Ledger(ctx, principalFrom(ctx), req.Msg.Cursor, limit)
	if err != nil {
		return nil, err
	}
	out := &billingv1.ListLedgerEntriesResponse{NextCursor: next}
	for _, e := range entries {
		out.Entries = append(out.Entries, ledgerEntryToProto(e))
	}
	return connect.NewResponse(out), nil
}

func ledgerEntryToProto(e ledger.Entry) *billingv1.LedgerEntry {
	return &billingv1.LedgerEntry{Id: e.ID, Type: string(e.Type), AmountMinor: e.AmountMinor, Currency: e.Currency,
		Reference: e.Reference, Reason: e.Reason, CreatedAt: ts(e.CreatedAt)}
}

type paymentsRPC struct{ d RPCDeps }

func (h *paymentsRPC) ListPaymentSessions(ctx context.Context, req *connect.Request[paymentsv1.ListPaymentSessionsRequest]) (*connect.Response[paymentsv1.ListPaymentSessionsResponse], error) {
	if h.d.Payments == nil {
		return nil, fault.Unavailable("payments are not configured", nil)
	}
	limit, err := limitOf(req.Msg.Limit)
	if err != nil {
		return nil, err
	}
	list, next, err := h.d.Payments.ListSessions(ctx, principalFrom(ctx), payment.SessionFilter{
		Status: payment.Status(req.Msg.Status), Limit: limit, Cursor: req.Msg.Cursor})
	if err != nil {
		return nil, err
	}
	out := &paymentsv1.ListPaymentSessionsResponse{NextCursor: next}
	for _, s := range list {
		out.Sessions = append(out.Sessions, &paymentsv1.PaymentSession{Id: s.ID, TenantId: s.TenantID, AmountMinor: s.AmountMinor,
			Currency: s.Currency, Provider: s.Provider, Status: string(s.Status), CreatedAt: ts(s.CreatedAt)})
	}
	return connect.NewResponse(out), nil
}
