package httphost

import (
	"net/http"

	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	"github.com/gpuaas/gpuaas/hosts/http/api"
)

func refundView(r payment.Refund) api.RefundRequest {
	return api.RefundRequest{Id: r.ID, TenantId: r.TenantID, SessionId: r.SessionID, CreditEntryId: r.CreditEntryID,
		AmountMinor: r.AmountMinor, Currency: r.Currency, Reason: r.Reason, Status: api.RefundRequestStatus(r.Status),
		Provider: r.Provider, ProviderRef: optional(r.ProviderRef), FailureReason: optional(r.FailureReason),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// AdminRequestRefund implements [api.ServerInterface].
func (h *handlers) AdminRequestRefund(w http.ResponseWriter, r *http.Request, tenantID api.TenantIDPath, params api.AdminRequestRefundParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	var req api.RefundRequestInput
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.paymentsReady(w, r) {
		return
	}
	ref, err := s.d.Payments.RequestRefund(r.Context(), p, paymentsvc.RefundInput{TenantID: tenantID,
		CreditEntryID: req.CreditEntryId, AmountMinor: req.AmountMinor, Reason: req.Reason,
		IdempotencyKey: deref(params.XIdempotencyKey)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, refundView(ref))
}

// AdminListRefundRequests implements [api.ServerInterface].
func (h *handlers) AdminListRefundRequests(w http.ResponseWriter, r *http.Request, params api.AdminListRefundRequestsParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.paymentsReady(w, r) {
		return
	}
	f := payment.RefundFilter{TenantID: deref(params.TenantId), Cursor: deref(params.Cursor)}
	if params.Status != nil {
		f.Status = payment.RefundStatus(*params.Status)
	}
	if params.Limit != nil {
		f.Limit = *params.Limit
	}
	list, next, err := s.d.Payments.ListRefunds(r.Context(), p, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.RefundRequestPage{RefundRequests: make([]api.RefundRequest, 0, len(list)), NextCursor: optional(next)}
	for _, x := range list {
		out.RefundRequests = append(out.RefundRequests, refundView(x))
	}
	writeJSON(w, http.StatusOK, out)
}
