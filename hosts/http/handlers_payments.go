package httphost

import (
	"net/http"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/hosts/http/api"
)

// errPaymentsOff answers payment routes on a host built without the
// payment use cases (Deps.Payments nil).
var errPaymentsOff = fault.Unavailable("payments are not configured on this host", nil)

func (s *Server) paymentsReady(w http.ResponseWriter, r *http.Request) bool {
	if s.d.Payments == nil {
		s.fail(w, r, errPaymentsOff)
		return false
	}
	return true
}

// CreateCheckoutSession implements [api.ServerInterface].
func (h *handlers) CreateCheckoutSession(w http.ResponseWriter, r *http.Request, params api.CreateCheckoutSessionParams) {
	s := h.s
	if !s.paymentsReady(w, r) {
		return
	}
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	// The key is checked before the body so a client that forgot it learns
	// that first, whatever else is wrong.
	key := deref(params.XIdempotencyKey)
	if key == "" {
		s.fail(w, r, payment.IdempotencyKeyRequired())
		return
	}
	var req api.CreateCheckoutSessionRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.d.Payments.CreateCheckout(r.Context(), p, req.AmountMinor, req.Currency, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.CheckoutSession{SessionId: c.SessionID, CheckoutUrl: c.CheckoutURL,
		Status: api.PaymentSessionStatus(c.Status), AmountMinor: c.AmountMinor, Currency: c.Currency})
}

// CreateCustomerPortalSession implements [api.ServerInterface].
func (h *handlers) CreateCustomerPortalSession(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if !s.paymentsReady(w, r) {
		return
	}
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	u, err := s.d.Payments.CustomerPortal(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.CustomerPortalSession{Url: u})
}

// PaymentWebhook implements [api.ServerInterface]. The body is read raw
// (bounded by the host's body limit) and handed over as bytes: the
// signature covers the exact bytes, so nothing may decode, re-encode or
// require a media type before it is verified. The generated params are not
// used for the signature because the provider header is read as sent.
func (h *handlers) PaymentWebhook(w http.ResponseWriter, r *http.Request, _ api.PaymentWebhookParams) {
	s := h.s
	if !s.paymentsReady(w, r) {
		return
	}
	raw, err := s.readBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := s.d.Payments.HandleWebhook(r.Context(), raw, r.Header.Get("Stripe-Signature"))
	s.metrics.paymentWebhook(string(out), err)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, api.WebhookAck{Received: true, Outcome: api.WebhookAckOutcome(out)})
}

// AdminListPaymentSessions implements [api.ServerInterface].
func (h *handlers) AdminListPaymentSessions(w http.ResponseWriter, r *http.Request, params api.AdminListPaymentSessionsParams) {
	s := h.s
	if !s.paymentsReady(w, r) {
		return
	}
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	f := payment.SessionFilter{Status: payment.Status(deref(params.Status)), Cursor: deref(params.Cursor)}
	if params.Limit != nil {
		if *params.Limit < 1 || *params.Limit > 200 {
			s.fail(w, r, fault.Invalid("limit", "limit must be between 1 and 200"))
			return
		}
		f.Limit = *params.Limit
	}
	list, next, err := s.d.Payments.ListSessions(r.Context(), p, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := api.PaymentSessionPage{Sessions: make([]api.PaymentSession, 0, len(list))}
	for _, ps := range list {
		page.Sessions = append(page.Sessions, api.PaymentSession{Id: ps.ID, TenantId: ps.TenantID, UserId: ps.UserID,
			AmountMinor: ps.AmountMinor, Currency: ps.Currency, Provider: ps.Provider, ProviderRef: optional(ps.ProviderRef),
			Status: api.PaymentSessionStatus(ps.Status), CreditEntryId: optional(ps.CreditEntryID),
			CreatedAt: ps.CreatedAt, UpdatedAt: ps.UpdatedAt})
	}
	if next != "" {
		page.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, page)
}
