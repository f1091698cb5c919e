package paymentsvc

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/ports"
)

// Config holds where the provider sends the browser back to.
type Config struct {
	// SuccessURL and CancelURL end a checkout; PortalReturnURL ends a visit
	// to the customer portal. Absolute http(s) URLs.
	SuccessURL      string
	CancelURL       string
	PortalReturnURL string
}

// CheckAndSetDefaults validates the URLs.
func (c *Config) CheckAndSetDefaults() error {
	for name, v := range map[string]string{"SuccessURL": c.SuccessURL, "CancelURL": c.CancelURL,
		"PortalReturnURL": c.PortalReturnURL} {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("paymentsvc: " + name + " must be an absolute http(s) URL")
		}
	}
	return nil
}

// Deps are the ports the service needs.
type Deps struct {
	Tx       ports.TxRunner
	Store    ports.PaymentStore
	Ledger   ports.LedgerStore
	Provider ports.PaymentProvider
	Policies ports.PolicyStore
	Audit    ports.AuditLog
	Outbox   ports.Outbox
	Clock    ports.Clock
	IDs      ports.IDs

	// Refunds and Credits run provider refunds (refund.go). Optional:
	// without them RequestRefund answers 503.
	Refunds ports.RefundStore
	Credits CreditReader
}

// Service implements the payment use cases.
type Service struct {
	cfg Config
	d   Deps
}

// New validates the config and checks every dependency is present.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if d.Tx == nil || d.Store == nil || d.Ledger == nil || d.Provider == nil || d.Policies == nil ||
		d.Audit == nil || d.Outbox == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("paymentsvc: every dependency is required")
	}
	return &Service{cfg: cfg, d: d}, nil
}

// Checkout is a started top-up.
type Checkout struct {
	SessionID   string
	CheckoutURL string
	Status      payment.Status
	AmountMinor int64
	Currency    string
}

// CreateCheckout starts a top-up of amountMinor for the caller's tenant.
// The idempotency key is required: a retry with the same key returns the
// same session (and the same provider checkout) instead of a second one; the
// same key with another amount or currency is 422 idempotency_key_reused.
//
// The session row commits before the provider is called, so a checkout that
// the provider opened always has a row for its webhook to find; the provider
// call itself runs outside any transaction.
func (s *Service) CreateCheckout(ctx context.Context, p identity.Principal, amountMinor int64, currency, idempotencyKey string) (Checkout, error) {
	idempotencyKey = strings.TrimSpace(idempotencyKey)
	if idempotencyKey == "" {
		return Checkout{}, payment.IdempotencyKeyRequired()
	}
	if len(idempotencyKey) > 255 {
		return Checkout{}, fault.Invalid("X-Idempotency-Key", "X-Idempotency-Key must be at most 255 characters")
	}
	vals, err := s.d.Policies.Values(ctx, p.TenantID)
	if err != nil {
		return Checkout{}, err
	}
	ledgerCurrency := payment.NormalizeCurrency(vals.String(policy.BillingCurrency))
	if err := payment.CheckTopUp(amountMinor, vals.Int(policy.PaymentsMinTopUpMinor), vals.Int(policy.PaymentsMaxTopUpMinor),
		currency, ledgerCurrency); err != nil {
		return Checkout{}, err
	}
	customer, err := s.customer(ctx, p)
	if err != nil {
		return Checkout{}, err
	}
	now := s.d.Clock.Now()
	var sess payment.Session
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		stored, created, err := s.d.Store.CreateSession(ctx, payment.Session{
			ID: s.d.IDs.NewID(), TenantID: p.TenantID, UserID: p.User.ID, AmountMinor: amountMinor,
			Currency: ledgerCurrency, Provider: s.d.Provider.Name(), Status: payment.Initiated,
			IdempotencyKey: idempotencyKey, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return err
		}
		sess = stored
		if !created {
			return nil
		}
		ev := s.userAudit(ctx, p, "payment.checkout_create", stored.ID)
		ev.Metadata = map[string]any{"amount_minor": amountMinor, "currency": ledgerCurrency, "provider": stored.Provider}
		return s.d.Audit.Record(ctx, ev)
	})
	if err != nil {
		return Checkout{}, err
	}
	if sess.AmountMinor != amountMinor || sess.Currency != ledgerCurrency || sess.TenantID != p.TenantID {
		return Checkout{}, &fault.Error{Kind: fault.KindUnprocessable, Code: fault.CodeIdempotencyKeyReused,
			Message: "this idempotency key was used for a different checkout"}
	}
	if sess.CheckoutURL != "" || sess.Status != payment.Initiated {
		return checkoutOf(sess), nil
	}
	// A first attempt, or a retry after the provider call failed or the
	// process died before the ref was stored: the provider dedupes on the
	// session id, so this opens (or returns) the one checkout.
	ref, checkoutURL, err := s.d.Provider.CreateCheckout(ctx, ports.CheckoutRequest{
		SessionID: sess.ID, TenantID: sess.TenantID, UserID: sess.UserID, CustomerRef: customer,
		AmountMinor: sess.AmountMinor, Currency: sess.Currency, SuccessURL: s.cfg.SuccessURL, CancelURL: s.cfg.CancelURL,
	})
	if err != nil {
		return Checkout{}, providerError(err)
	}
	if err := s.d.Store.AttachProviderRef(ctx, sess.ID, ref, checkoutURL); err != nil {
		return Checkout{}, err
	}
	sess.ProviderRef, sess.CheckoutURL = ref, checkoutURL
	return checkoutOf(sess), nil
}

func checkoutOf(s payment.Session) Checkout {
	return Checkout{SessionID: s.ID, CheckoutURL: s.CheckoutURL, Status: s.Status, AmountMinor: s.AmountMinor, Currency: s.Currency}
}

// CustomerPortal returns a URL of the provider's customer portal for the
// caller's tenant (payment methods, receipts). Tenant owners and admins only.
func (s *Service) CustomerPortal(ctx context.Context, p identity.Principal) (string, error) {
	if !p.CanManageTenant() {
		return "", fault.Forbidden("the billing portal is for tenant owners and admins")
	}
	customer, err := s.customer(ctx, p)
	if err != nil {
		return "", err
	}
	u, err := s.d.Provider.CustomerPortalURL(ctx, customer, s.cfg.PortalReturnURL)
	if err != nil {
		return "", providerError(err)
	}
	return u, nil
}

// customer returns the tenant's customer at the provider, creating it on
// first use. Two first uses at once may both create one; the store keeps the
// first and the other stays unused at the provider, which is harmless.
func (s *Service) customer(ctx context.Context, p identity.Principal) (string, error) {
	provider := s.d.Provider.Name()
	ref, err := s.d.Store.CustomerRef(ctx, p.TenantID, provider)
	if err == nil {
		return ref, nil
	}
	if !fault.IsKind(err, fault.KindNotFound) {
		return "", err
	}
	ref, err = s.d.Provider.EnsureCustomer(ctx, p.TenantID, p.User.Email)
	if err != nil {
		return "", providerError(err)
	}
	return s.d.Store.SaveCustomerRef(ctx, p.TenantID, provider, ref)
}

// providerError keeps platform faults and turns anything else (network,
// provider outage) into 503: the caller may retry with the same key.
func providerError(err error) error {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	return fault.Unavailable("the payment provider is unavailable", err)
}

// Outcome says what a webhook did.
type Outcome string

const (
	OutcomeIgnored   Outcome = "ignored"   // an event type the platform does not act on
	OutcomeDuplicate Outcome = "duplicate" // the event id was processed before
	OutcomeCredited  Outcome = "credited"  // the session's amount was credited
	OutcomeReconcile Outcome = "reconcile" // amount or currency mismatch: failed_reconcile, no credit
	OutcomeExpired   Outcome = "expired"   // the session expired
	OutcomeNoChange  Outcome = "no_change" // the session had already settled
)

// HandleWebhook verifies and applies one provider event. The signature is
// checked over the raw bytes before anything is parsed or written; a bad one
// is 400 webhook_signature_invalid. Each event id is applied once: its
// dedupe row, the ledger credit, the session's state change, the audit record
// and the outbox event commit in one transaction, so a redelivery, a
// concurrent duplicate or a crash mid-way can neither credit twice nor lose
// the credit.
func (s *Service) HandleWebhook(ctx context.Context, rawBody []byte, signatureHeader string) (Outcome, error) {
	ev, err := s.d.Provider.ParseWebhook(rawBody, signatureHeader)
	if err != nil {
		if fe := fault.From(err); fe.Code == payment.CodeWebhookSignatureInvalid {
			return "", err
		}
		return "", payment.ErrSignature(err)
	}
	if ev.Kind == payment.EventIgnored {
		// Nothing is written: unknown types must not grow the dedupe table.
		return OutcomeIgnored, nil
	}
	if ev.ID == "" {
		return "", fault.Invalid("id", "the event has no id")
	}
	var out Outcome
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		now := s.d.Clock.Now()
		fresh, err := s.d.Store.MarkEventProcessed(ctx, s.d.Provider.Name(), ev.ID, ev.Type, now)
		if err != nil {
			return err
		}
		if !fresh {
			out = OutcomeDuplicate
			return nil
		}
		switch ev.Kind {
		case payment.EventRefundSucceeded, payment.EventRefundFailed, payment.EventRefundPending:
			out, err = s.applyRefundEvent(ctx, ev)
			return err
		}
		sess, err := s.sessionOf(ctx, ev)
		if err != nil {
			return err
		}
		switch ev.Kind {
		case payment.EventPaid:
			out, err = s.applyPaid(ctx, sess, ev)
		case payment.EventExpired:
			out, err = s.applyExpired(ctx, sess, ev)
		default:
			out = OutcomeIgnored
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return out, nil
}

// sessionOf finds the event's session by the provider's checkout id or, for
// a webhook that overtook AttachProviderRef, by the client reference the
// checkout was opened with (accepted only while the session has no other ref).
// An event for a session the platform never opened is 404 and rolls back, so
// its dedupe row is not kept and the provider's retry can still apply it.
func (s *Service) sessionOf(ctx context.Context, ev ports.WebhookEvent) (payment.Session, error) {
	if ev.SessionRef != "" {
		sess, err := s.d.Store.GetSessionByProviderRef(ctx, ev.SessionRef)
		if err == nil && sess.Provider == s.d.Provider.Name() {
			return sess, nil
		}
		if err != nil && !fault.IsKind(err, fault.KindNotFound) {
			return payment.Session{}, err
		}
	}
	if ev.ClientReference != "" {
		sess, err := s.d.Store.GetSession(ctx, ev.ClientReference)
		if err == nil && sess.Provider == s.d.Provider.Name() && (sess.ProviderRef == "" || sess.ProviderRef == ev.SessionRef) {
			return sess, nil
		}
		if err != nil && !fault.IsKind(err, fault.KindNotFound) {
			return payment.Session{}, err
		}
	}
	return payment.Session{}, &fault.Error{Kind: fault.KindNotFound, Code: payment.CodeUnknownPaymentSession,
		Message: "the event names no payment session of this platform"}
}

func (s *Service) applyPaid(ctx context.Context, sess payment.Session, ev ports.WebhookEvent) (Outcome, error) {
	now := s.d.Clock.Now()
	if reason := payment.Mismatch(sess, ev.AmountMinor, ev.Currency); reason != "" {
		moved, err := s.d.Store.TransitionSession(ctx, sess.ID, payment.Initiated, payment.FailedReconcile, now)
		if err != nil || !moved {
			return OutcomeNoChange, err
		}
		a := s.systemAudit(ctx, sess, "payment.reconcile_failed", ev)
		a.Outcome = audit.Failure
		a.Metadata["reason"] = reason
		a.Metadata["paid_minor"] = ev.AmountMinor
		a.Metadata["paid_currency"] = payment.NormalizeCurrency(ev.Currency)
		if err := s.d.Audit.Record(ctx, a); err != nil {
			return "", err
		}
		return OutcomeReconcile, s.emit(ctx, event.PaymentReconcileFailed, sess, map[string]any{
			"session_id": sess.ID, "tenant_id": sess.TenantID, "user_id": sess.UserID, "reason": reason,
			"expected_minor": sess.AmountMinor, "expected_currency": sess.Currency,
			"paid_minor": ev.AmountMinor, "paid_currency": payment.NormalizeCurrency(ev.Currency),
			"provider": sess.Provider, "provider_event_id": ev.ID,
		})
	}
	// The conditional transition comes first: it takes the session's row
	// lock, so of two different "paid" events for one session only one
	// gets past here (the ledger key would stop a second credit anyway).
	moved, err := s.d.Store.TransitionSession(ctx, sess.ID, payment.Initiated, payment.Credited, now)
	if err != nil || !moved {
		return OutcomeNoChange, err
	}
	if _, err := s.d.Ledger.Post(ctx, ledger.Entry{
		TenantID: sess.TenantID, UserID: sess.UserID, Type: ledger.Credit, AmountMinor: sess.AmountMinor,
		Currency: sess.Currency, IdempotencyKey: payment.LedgerKey(sess.ID), Reference: sess.ID,
		Reason: "top-up via " + sess.Provider, CreatedAt: now,
	}); err != nil {
		return "", err
	}
	balance, _, err := s.d.Ledger.Balance(ctx, sess.TenantID)
	if err != nil {
		return "", err
	}
	a := s.systemAudit(ctx, sess, "payment.credited", ev)
	a.Metadata["amount_minor"] = sess.AmountMinor
	if err := s.d.Audit.Record(ctx, a); err != nil {
		return "", err
	}
	return OutcomeCredited, s.emit(ctx, event.BalanceCredited, sess, map[string]any{
		"session_id": sess.ID, "tenant_id": sess.TenantID, "user_id": sess.UserID,
		"amount_minor": sess.AmountMinor, "currency": sess.Currency, "balance_minor": balance,
		"provider": sess.Provider, "provider_event_id": ev.ID,
	})
}

func (s *Service) applyExpired(ctx context.Context, sess payment.Session, ev ports.WebhookEvent) (Outcome, error) {
	moved, err := s.d.Store.TransitionSession(ctx, sess.ID, payment.Initiated, payment.Expired, s.d.Clock.Now())
	if err != nil || !moved {
		return OutcomeNoChange, err
	}
	return OutcomeExpired, s.d.Audit.Record(ctx, s.systemAudit(ctx, sess, "payment.expired", ev))
}

// Admin list page sizes.
const (
	DefaultListLimit = 50
	MaxListLimit     = 200
)

// ListSessions is the operator's view of sessions, newest first, e.g. the
// ones stuck in initiated or waiting in failed_reconcile for a person.
func (s *Service) ListSessions(ctx context.Context, p identity.Principal, f payment.SessionFilter) ([]payment.Session, string, error) {
	if !p.User.IsAdmin() {
		return nil, "", fault.Forbidden("this is for platform administrators")
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, "", fault.Invalid("status", "unknown payment session status")
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultListLimit
	case f.Limit < 1 || f.Limit > MaxListLimit:
		return nil, "", fault.Invalid("limit", "limit must be between 1 and 200")
	}
	return s.d.Store.ListSessions(ctx, f)
}

func (s *Service) userAudit(ctx context.Context, p identity.Principal, action, sessionID string) audit.Event {
	return audit.Event{
		ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorUser, ActorID: p.User.ID,
		TenantID: p.TenantID, Action: action, ResourceType: resource.TypePayment,
		ResourceID: resource.New("", p.TenantID, "", resource.TypePayment, sessionID).String(),
		Outcome:    audit.Success, CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx),
	}
}

// systemAudit records a webhook-driven change; the actor is the provider.
func (s *Service) systemAudit(ctx context.Context, sess payment.Session, action string, ev ports.WebhookEvent) audit.Event {
	return audit.Event{
		ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorSystem, ActorID: "payments:" + sess.Provider,
		TenantID: sess.TenantID, Action: action, ResourceType: resource.TypePayment,
		ResourceID: resource.New("", sess.TenantID, "", resource.TypePayment, sess.ID).String(),
		Outcome:    audit.Success, CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx),
		Metadata: map[string]any{"provider_event_id": ev.ID, "provider_event_type": ev.Type},
	}
}

func (s *Service) emit(ctx context.Context, typ string, sess payment.Session, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fault.Internal(err)
	}
	return s.d.Outbox.Append(ctx, event.Envelope{
		ID: s.d.IDs.NewID(), Type: typ, Version: 1, OccurredAt: s.d.Clock.Now(), TenantID: sess.TenantID,
		AggregateType: "payment_session", AggregateID: sess.ID, CorrelationID: callctx.CorrelationID(ctx),
		Payload: body,
	})
}
