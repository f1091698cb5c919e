package stripe

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/ports"
)

// Verifier checks Stripe-Signature headers and maps verified events.
type Verifier struct {
	secrets   []string
	tolerance time.Duration
}

// NewVerifier returns a verifier accepting any of secrets (rotation) within
// tolerance (DefaultTolerance when 0).
func NewVerifier(secrets []string, tolerance time.Duration) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("stripe: at least one webhook secret is required")
	}
	for _, s := range secrets {
		if s == "" {
			return nil, errors.New("stripe: webhook secrets must not be empty")
		}
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	return &Verifier{secrets: append([]string(nil), secrets...), tolerance: tolerance}, nil
}

// errFutureTimestamp is the cause logged for a signature dated ahead of now
// by more than the tolerance.
var errFutureTimestamp = errors.New("stripe: the signature's timestamp is in the future")

// signedAt reads the t= element of a Stripe-Signature header (already
// verified: the signature covers it).
func signedAt(header string) (time.Time, bool) {
	for _, part := range strings.Split(header, ",") {
		if k, val, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == "t" {
			sec, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(sec, 0), true
		}
	}
	return time.Time{}, false
}

// errNoSecretMatched is the cause logged when no configured secret verifies.
var errNoSecretMatched = errors.New("stripe: no configured webhook secret verifies the signature")

// Parse verifies the signature over the raw payload with each secret, then
// decodes the event. Nothing is parsed before a signature verifies. Events
// carrying another API version are accepted: the fields read here (id, type,
// the checkout session's id, client reference, amount, currency and payment
// status) are stable across versions.
func (v *Verifier) Parse(payload []byte, header string) (ports.WebhookEvent, error) {
	if header == "" {
		return ports.WebhookEvent{}, payment.ErrSignature(webhook.ErrNotSigned)
	}
	var (
		ev  stripego.Event
		err error
		ok  bool
	)
	for _, secret := range v.secrets {
		ev, err = webhook.ConstructEventWithOptions(payload, header, secret, webhook.ConstructEventOptions{
			Tolerance: v.tolerance, IgnoreAPIVersionMismatch: true,
		})
		if err == nil {
			ok = true
			break
		}
		if !errors.Is(err, webhook.ErrNoValidSignature) {
			// A bad header, a stale timestamp or a body that is not JSON
			// fails the same way for every secret.
			break
		}
	}
	if !ok {
		if errors.Is(err, webhook.ErrNoValidSignature) {
			err = errNoSecretMatched
		}
		return ports.WebhookEvent{}, payment.ErrSignature(err)
	}
	// stripe-go refuses a timestamp older than the tolerance but not one
	// from the future; a delivery signed ahead of time (a leaked secret, a
	// skewed signer) would then replay for as long as it likes. Refused
	// both ways: |now - t| <= tolerance.
	// The wall clock, as stripe-go reads it for the past bound.
	if t, ok := signedAt(header); !ok || time.Until(t) > v.tolerance {
		return ports.WebhookEvent{}, payment.ErrSignature(errFutureTimestamp)
	}
	return mapEvent(ev)
}

// mapEvent turns a verified Stripe event into the platform's view of it.
func mapEvent(ev stripego.Event) (ports.WebhookEvent, error) {
	out := ports.WebhookEvent{ID: ev.ID, Type: string(ev.Type)}
	switch ev.Type {
	case stripego.EventTypeRefundCreated, stripego.EventTypeRefundUpdated, stripego.EventTypeChargeRefunded:
		return mapRefund(ev, out)
	case stripego.EventTypeCheckoutSessionCompleted, stripego.EventTypeCheckoutSessionAsyncPaymentSucceeded,
		stripego.EventTypeCheckoutSessionExpired:
	default:
		return out, nil // acknowledged and ignored
	}
	if ev.Data == nil || len(ev.Data.Raw) == 0 {
		return ports.WebhookEvent{}, fault.Invalid("data", "the event carries no object")
	}
	var cs stripego.CheckoutSession
	if err := json.Unmarshal(ev.Data.Raw, &cs); err != nil {
		return ports.WebhookEvent{}, fault.Invalid("data", "the event's object is not a checkout session").Wrap(err)
	}
	out.SessionRef, out.ClientReference = cs.ID, cs.ClientReferenceID
	out.AmountMinor, out.Currency = cs.AmountTotal, string(cs.Currency)
	switch ev.Type {
	case stripego.EventTypeCheckoutSessionExpired:
		out.Kind = payment.EventExpired
	case stripego.EventTypeCheckoutSessionAsyncPaymentSucceeded:
		out.Kind = payment.EventPaid
	case stripego.EventTypeCheckoutSessionCompleted:
		// A delayed payment method completes the checkout unpaid; the
		// money arrives with async_payment_succeeded.
		if cs.PaymentStatus == stripego.CheckoutSessionPaymentStatusPaid {
			out.Kind = payment.EventPaid
		}
	}
	return out, nil
}

// SignatureHeader signs payload with secret at t in Stripe's scheme
// ("t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<payload>">"). The dev provider
// and tests use it to produce deliveries that Verifier accepts.
func SignatureHeader(payload []byte, secret string, t time.Time) string {
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(webhook.ComputeSignature(t, payload, secret)))
}

// mapRefund reads a refund event: refund.created/refund.updated carry the
// refund; charge.refunded carries the charge with its refunds (the newest
// first; older API versions only). The refund's metadata names the
// platform's request.
func mapRefund(ev stripego.Event, out ports.WebhookEvent) (ports.WebhookEvent, error) {
	if ev.Data == nil || len(ev.Data.Raw) == 0 {
		return ports.WebhookEvent{}, fault.Invalid("data", "the event carries no object")
	}
	var re stripego.Refund
	if ev.Type == stripego.EventTypeChargeRefunded {
		var ch stripego.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
			return ports.WebhookEvent{}, fault.Invalid("data", "the event's object is not a charge").Wrap(err)
		}
		if ch.Refunds == nil || len(ch.Refunds.Data) == 0 || ch.Refunds.Data[0] == nil {
			return out, nil // nothing to match: acknowledged and ignored
		}
		re = *ch.Refunds.Data[0]
	} else if err := json.Unmarshal(ev.Data.Raw, &re); err != nil {
		return ports.WebhookEvent{}, fault.Invalid("data", "the event's object is not a refund").Wrap(err)
	}
	out.RefundRef, out.RefundID, out.AmountMinor, out.Currency = re.ID, re.Metadata["refund_request_id"], re.Amount, string(re.Currency)
	switch refundStatus(re.Status) {
	case payment.RefundSucceeded:
		out.Kind = payment.EventRefundSucceeded
	case payment.RefundFailed:
		out.Kind, out.RefundFailure = payment.EventRefundFailed, string(re.FailureReason)
		if out.RefundFailure == "" {
			out.RefundFailure = string(re.Status)
		}
	default:
		out.Kind = payment.EventRefundPending
	}
	return out, nil
}
