package paymentsvc

import (
	"context"
	"encoding/json"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/core/text"
	"github.com/gpuaas/gpuaas/ports"
)

// CreditReader reads ledger credits and what ledger refunds returned of
// them (postgres.LedgerStore).
type CreditReader interface {
	GetEntry(ctx context.Context, tenantID, id string) (ledger.Entry, error)
	RefundedMinor(ctx context.Context, creditEntryID string) (int64, error)
	LockTenantMoney(ctx context.Context, tenantID string) error
}

// Refund outcomes of webhook events.
const (
	OutcomeRefunded     Outcome = "refunded"
	OutcomeRefundFailed Outcome = "refund_failed"
)

// Refund refusals (422), shared with the ledger-only refund path.
const (
	CodeRefundWindowExceeded fault.Code = "refund_window_exceeded"
	CodeRefundExceedsCredit  fault.Code = "refund_exceeds_credit"
	CodeRefundExceedsBalance fault.Code = "refund_exceeds_balance"
)

// RefundInput is an operator's refund of (part of) a provider-paid credit.
type RefundInput struct {
	TenantID       string
	CreditEntryID  string
	AmountMinor    int64
	Reason         string
	IdempotencyKey string
}

var errRefundsOff = fault.Unavailable("provider refunds are not configured on this host", nil)

// RequestRefund returns money of a provider-paid credit through the
// provider and the ledger in one designed flow (doc/payments.md#refunds):
//
//  1. one transaction, under the tenant's money lock: the limits (the
//     credit's refund window, what is left of it after refunds posted and
//     requested, the balance) and the refund_requests row (requested),
//     audited; the operator's key makes a retry return the same request;
//  2. outside any transaction, the provider is asked with the request id as
//     its idempotency key (a crash or outage here leaves the request
//     requested; the operator's retry with the same key asks again and
//     gets the same refund);
//  3. its answer moves the request: submitted (pending at the provider),
//     succeeded, or failed.
//
// The ledger refund is posted exactly once, in the transaction that moves
// the request to succeeded — whichever of the provider's answer here and
// its webhook (refund.updated / charge.refunded) gets there first: both go
// through settleRefund's conditional transition (one row, one winner), and
// the entry's idempotency key refund:<request id> stops a second post.
func (s *Service) RequestRefund(ctx context.Context, p identity.Principal, in RefundInput) (payment.Refund, error) {
	if !p.User.IsAdmin() {
		return payment.Refund{}, fault.Forbidden("only platform administrators can refund")
	}
	if s.d.Refunds == nil || s.d.Credits == nil {
		return payment.Refund{}, errRefundsOff
	}
	if in.IdempotencyKey == "" {
		return payment.Refund{}, payment.IdempotencyKeyRequired()
	}
	if in.AmountMinor < 1 || in.AmountMinor > 10_000_000_000 {
		return payment.Refund{}, (&fault.Error{Kind: fault.KindInvalid, Code: "amount_out_of_range", Field: "amount_minor",
			Message: "amount_minor must be between 1 and 10000000000"})
	}
	if err := text.Line("reason", in.Reason, 1, 500); err != nil {
		return payment.Refund{}, err
	}
	for _, f := range []struct{ name, v string }{{"tenant_id", in.TenantID}, {"credit_entry_id", in.CreditEntryID}} {
		if err := identity.ValidateID(f.name, f.v); err != nil {
			return payment.Refund{}, err
		}
	}
	var r refundWithRef
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		r, err = s.recordRefund(ctx, p, in)
		return err
	})
	if err != nil || r.Status != payment.RefundRequested {
		return r.Refund, err // refused, or a retry of a request the provider already answered
	}
	res, err := s.d.Provider.Refund(ctx, ports.RefundCall{RefundID: r.ID, SessionRef: r.sessionRef, AmountMinor: r.AmountMinor,
		Currency: r.Currency})
	switch {
	case fault.IsKind(err, fault.KindUnprocessable):
		res = ports.RefundResult{Status: payment.RefundFailed, Failure: fault.From(err).Message}
	case err != nil:
		return r.Refund, err // still requested: retry with the same key
	}
	return s.applyRefundResult(ctx, r.Refund, res)
}

// refundWithRef carries the session's provider ref next to the request.
type refundWithRef struct {
	payment.Refund
	sessionRef string
}

func (s *Service) recordRefund(ctx context.Context, p identity.Principal, in RefundInput) (refundWithRef, error) {
	if err := s.d.Credits.LockTenantMoney(ctx, in.TenantID); err != nil {
		return refundWithRef{}, err
	}
	credit, err := s.d.Credits.GetEntry(ctx, in.TenantID, in.CreditEntryID)
	if err != nil {
		return refundWithRef{}, err
	}
	notProvider := &fault.Error{Kind: fault.KindUnprocessable, Code: payment.CodeNotProviderCredit, Field: "credit_entry_id",
		Message: "this credit was not paid through " + s.d.Provider.Name() + "; refund it through the ledger"}
	if credit.Type != ledger.Credit || credit.Reference == "" {
		return refundWithRef{}, notProvider
	}
	sess, err := s.d.Store.GetSession(ctx, credit.Reference)
	if fault.IsKind(err, fault.KindNotFound) || (err == nil && (sess.Provider != s.d.Provider.Name() || sess.Status != payment.Credited)) {
		return refundWithRef{}, notProvider
	}
	if err != nil {
		return refundWithRef{}, err
	}
	now := s.d.Clock.Now()
	r := payment.Refund{ID: s.d.IDs.NewID(), TenantID: in.TenantID, SessionID: sess.ID, CreditEntryID: credit.ID,
		AmountMinor: in.AmountMinor, Currency: credit.Currency, Reason: in.Reason, RequestedBy: p.User.ID,
		IdempotencyKey: in.IdempotencyKey, Provider: s.d.Provider.Name(), Status: payment.RefundRequested,
		CreatedAt: now, UpdatedAt: now}
	// A retry returns the first request (checked before the limits, so the
	// retry of a refund that used the credit up is not refused).
	stored, created, err := s.d.Refunds.CreateRefund(ctx, r)
	if err != nil {
		return refundWithRef{}, err
	}
	if !created {
		if stored.CreditEntryID != r.CreditEntryID || stored.AmountMinor != r.AmountMinor {
			return refundWithRef{}, fault.New(fault.KindUnprocessable, fault.CodeIdempotencyKeyReused,
				"this idempotency key was used for another refund")
		}
		return refundWithRef{Refund: stored, sessionRef: sess.ProviderRef}, nil
	}
	vals, err := s.d.Policies.Values(ctx, in.TenantID)
	if err != nil {
		return refundWithRef{}, err
	}
	if credit.CreatedAt.Before(vals.RefundWindowStart(now)) {
		return refundWithRef{}, fault.New(fault.KindUnprocessable, CodeRefundWindowExceeded,
			"the credit is older than the refund window").With("refund_window_days", vals.Int(policy.RefundWindowDays))
	}
	refunded, err := s.d.Credits.RefundedMinor(ctx, credit.ID)
	if err != nil {
		return refundWithRef{}, err
	}
	pending, err := s.d.Refunds.PendingRefundMinor(ctx, credit.ID)
	if err != nil {
		return refundWithRef{}, err
	}
	// pending already counts this request (inserted above, same tx).
	if left := credit.AmountMinor - refunded - (pending - r.AmountMinor); r.AmountMinor > left {
		return refundWithRef{}, fault.New(fault.KindUnprocessable, CodeRefundExceedsCredit,
			"the refund is larger than what is left of the credit").With("refundable_minor", max(left, 0))
	}
	balance, _, err := s.d.Ledger.Balance(ctx, in.TenantID)
	if err != nil {
		return refundWithRef{}, err
	}
	if pending > balance {
		return refundWithRef{}, fault.New(fault.KindUnprocessable, CodeRefundExceedsBalance,
			"the balance does not cover the refund (spent credit is not refundable)").With("balance_minor", balance)
	}
	a := s.refundAudit(ctx, r, "payment.refund_request")
	a.ActorType, a.ActorID = audit.ActorUser, p.User.ID
	a.Metadata["reason"] = r.Reason
	if err := s.d.Audit.Record(ctx, a); err != nil {
		return refundWithRef{}, err
	}
	return refundWithRef{Refund: r, sessionRef: sess.ProviderRef}, nil
}

// applyRefundResult moves the request by the provider's answer.
func (s *Service) applyRefundResult(ctx context.Context, r payment.Refund, res ports.RefundResult) (payment.Refund, error) {
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		switch res.Status {
		case payment.RefundSucceeded:
			_, err = s.settleRefund(ctx, r.ID, res.Ref)
		case payment.RefundFailed:
			_, err = s.failRefund(ctx, r.ID, res.Ref, res.Failure)
		default:
			_, err = s.d.Refunds.TransitionRefund(ctx, r.ID, []payment.RefundStatus{payment.RefundRequested},
				payment.RefundSubmitted, res.Ref, "", s.d.Clock.Now())
		}
		return err
	})
	if err != nil {
		return r, err
	}
	out, err := s.d.Refunds.GetRefund(ctx, r.ID)
	if err == nil && out.Status == payment.RefundFailed {
		return out, &fault.Error{Kind: fault.KindUnprocessable, Code: "payment_provider_refused",
			Message: "the payment provider refused the refund", Details: map[string]any{"refund_request_id": out.ID}}
	}
	return out, err
}

// settleRefund moves a request to succeeded and, in the same transaction
// and only when that move wins, posts the ledger refund (negative, against
// the credit) with its audit record and event.
func (s *Service) settleRefund(ctx context.Context, id, providerRef string) (bool, error) {
	now := s.d.Clock.Now()
	moved, err := s.d.Refunds.TransitionRefund(ctx, id, []payment.RefundStatus{payment.RefundRequested, payment.RefundSubmitted},
		payment.RefundSucceeded, providerRef, "", now)
	if err != nil || !moved {
		return false, err
	}
	r, err := s.d.Refunds.GetRefund(ctx, id)
	if err != nil {
		return false, err
	}
	if _, err := s.d.Ledger.Post(ctx, ledger.Entry{TenantID: r.TenantID, Type: ledger.Refund,
		AmountMinor: -r.AmountMinor, Currency: r.Currency, IdempotencyKey: payment.RefundLedgerKey(r.ID),
		Reference: r.CreditEntryID, Reason: "refund via " + r.Provider + ": " + r.Reason, CreatedAt: now}); err != nil {
		return false, err
	}
	if err := s.d.Audit.Record(ctx, s.refundAudit(ctx, r, "payment.refund_succeeded")); err != nil {
		return false, err
	}
	balance, _, err := s.d.Ledger.Balance(ctx, r.TenantID)
	if err != nil {
		return false, err
	}
	return true, s.emitRefund(ctx, event.RefundSucceeded, r, map[string]any{"balance_minor": balance})
}

func (s *Service) failRefund(ctx context.Context, id, providerRef, failure string) (bool, error) {
	moved, err := s.d.Refunds.TransitionRefund(ctx, id, []payment.RefundStatus{payment.RefundRequested, payment.RefundSubmitted},
		payment.RefundFailed, providerRef, text.Clean(failure, 200), s.d.Clock.Now())
	if err != nil || !moved {
		return false, err
	}
	r, err := s.d.Refunds.GetRefund(ctx, id)
	if err != nil {
		return false, err
	}
	a := s.refundAudit(ctx, r, "payment.refund_failed")
	a.Outcome = audit.Failure
	a.Metadata["failure"] = r.FailureReason
	if err := s.d.Audit.Record(ctx, a); err != nil {
		return false, err
	}
	return true, s.emitRefund(ctx, event.RefundFailed, r, map[string]any{"failure": r.FailureReason})
}

// applyRefundEvent applies a provider's refund event inside the webhook's
// transaction (after its dedupe row). The request is found by the
// provider's refund id, else by the request id in the refund's metadata (a
// webhook that overtook the API answer). A refund the platform did not
// request (made at the provider's dashboard) is acknowledged and left to an
// operator.
func (s *Service) applyRefundEvent(ctx context.Context, ev ports.WebhookEvent) (Outcome, error) {
	if s.d.Refunds == nil {
		return OutcomeIgnored, nil
	}
	r, err := s.d.Refunds.GetRefundByProviderRef(ctx, s.d.Provider.Name(), ev.RefundRef)
	if fault.IsKind(err, fault.KindNotFound) && ev.RefundID != "" {
		r, err = s.d.Refunds.GetRefund(ctx, ev.RefundID)
		if err == nil && r.Provider != s.d.Provider.Name() {
			err = fault.NotFound("refund request", "")
		}
	}
	if fault.IsKind(err, fault.KindNotFound) {
		return OutcomeIgnored, nil
	}
	if err != nil {
		return "", err
	}
	var moved bool
	switch ev.Kind {
	case payment.EventRefundSucceeded:
		if moved, err = s.settleRefund(ctx, r.ID, ev.RefundRef); moved {
			return OutcomeRefunded, err
		}
	case payment.EventRefundFailed:
		if moved, err = s.failRefund(ctx, r.ID, ev.RefundRef, ev.RefundFailure); moved {
			return OutcomeRefundFailed, err
		}
	case payment.EventRefundPending:
		_, err = s.d.Refunds.TransitionRefund(ctx, r.ID, []payment.RefundStatus{payment.RefundRequested},
			payment.RefundSubmitted, ev.RefundRef, "", s.d.Clock.Now())
	}
	return OutcomeNoChange, err
}

// ListRefunds pages refund requests of every tenant (or one), newest first.
func (s *Service) ListRefunds(ctx context.Context, p identity.Principal, f payment.RefundFilter) ([]payment.Refund, string, error) {
	if !p.User.IsAdmin() {
		return nil, "", fault.Forbidden("only platform administrators can list refunds")
	}
	if s.d.Refunds == nil {
		return nil, "", errRefundsOff
	}
	if f.Limit == 0 {
		f.Limit = DefaultListLimit
	}
	if f.Limit < 1 || f.Limit > MaxListLimit {
		return nil, "", fault.Invalid("limit", "limit must be between 1 and 200")
	}
	switch f.Status {
	case "", payment.RefundRequested, payment.RefundSubmitted, payment.RefundSucceeded, payment.RefundFailed:
	default:
		return nil, "", fault.Invalid("status", "status must be requested, submitted, succeeded or failed")
	}
	return s.d.Refunds.ListRefunds(ctx, f)
}

func (s *Service) refundAudit(ctx context.Context, r payment.Refund, action string) audit.Event {
	return audit.Event{ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorSystem, ActorID: "payments",
		TenantID: r.TenantID, Action: action, ResourceType: resource.TypeRefund,
		ResourceID: resource.New("", r.TenantID, "", resource.TypeRefund, r.ID).String(), Outcome: audit.Success,
		CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx),
		Metadata: map[string]any{"amount_minor": r.AmountMinor, "currency": r.Currency, "credit_entry_id": r.CreditEntryID,
			"session_id": r.SessionID, "provider_ref": r.ProviderRef}}
}

func (s *Service) emitRefund(ctx context.Context, typ string, r payment.Refund, extra map[string]any) error {
	payload := map[string]any{"refund_request_id": r.ID, "tenant_id": r.TenantID, "session_id": r.SessionID,
		"credit_entry_id": r.CreditEntryID, "amount_minor": r.AmountMinor, "currency": r.Currency, "provider": r.Provider,
		"provider_ref": r.ProviderRef}
	for k, v := range extra {
		payload[k] = v
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return fault.Internal(err)
	}
	return s.d.Outbox.Append(ctx, event.Envelope{ID: s.d.IDs.NewID(), Type: typ, Version: 1, OccurredAt: s.d.Clock.Now(),
		TenantID: r.TenantID, AggregateType: "refund_request", AggregateID: r.ID, CorrelationID: callctx.CorrelationID(ctx),
		Payload: b})
}
