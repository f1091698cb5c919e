package stripe

import (
	"context"
	"errors"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/ports"
)

// Provider implements [ports.PaymentProvider] on Stripe.
type Provider struct {
	cfg      Config
	api      *client.API
	verifier *Verifier
}

var _ ports.PaymentProvider = (*Provider)(nil)

// ProviderName is stored with sessions and events.
const ProviderName = "stripe"

// New builds the provider. It makes no network call.
func New(cfg Config) (*Provider, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	v, err := NewVerifier(cfg.WebhookSecrets, cfg.Tolerance)
	if err != nil {
		return nil, err
	}
	bc := &stripego.BackendConfig{
		HTTPClient: cfg.HTTPClient,
		// stripe-go's default logger prints to stderr; errors reach the
		// platform's log through the returned error instead.
		LeveledLogger:     &stripego.LeveledLogger{Level: stripego.LevelNull},
		MaxNetworkRetries: stripego.Int64(2),
	}
	if cfg.BackendURL != "" {
		bc.URL = stripego.String(cfg.BackendURL)
	}
	backend := stripego.GetBackendWithConfig(stripego.APIBackend, bc)
	// A private client: the global stripe.Key is never set, so two
	// providers (or tests) with different keys cannot see each other's.
	api := client.New(cfg.SecretKey, &stripego.Backends{API: backend, Connect: backend, Uploads: backend})
	return &Provider{cfg: cfg, api: api, verifier: v}, nil
}

// Name implements [ports.PaymentProvider].
func (p *Provider) Name() string { return ProviderName }

// EnsureCustomer implements [ports.PaymentProvider]. The idempotency key
// makes a retried creation return the same customer.
func (p *Provider) EnsureCustomer(ctx context.Context, tenantID, email string) (string, error) {
	params := &stripego.CustomerParams{}
	params.Context = ctx
	if email != "" {
		params.Email = stripego.String(email)
	}
	params.AddMetadata("tenant_id", tenantID)
	params.SetIdempotencyKey("gpuaas-customer-" + tenantID)
	c, err := p.api.Customers.New(params)
	if err != nil {
		return "", apiError(err)
	}
	return c.ID, nil
}

// CreateCheckout implements [ports.PaymentProvider]: a hosted checkout in
// payment mode for one line of r.AmountMinor, tagged with the platform's
// session id (client_reference_id and metadata). The session id is also the
// idempotency key, so a retried call returns the same checkout.
func (p *Provider) CreateCheckout(ctx context.Context, r ports.CheckoutRequest) (string, string, error) {
	params := &stripego.CheckoutSessionParams{
		Mode:              stripego.String(string(stripego.CheckoutSessionModePayment)),
		ClientReferenceID: stripego.String(r.SessionID),
		SuccessURL:        stripego.String(r.SuccessURL),
		CancelURL:         stripego.String(r.CancelURL),
		LineItems: []*stripego.CheckoutSessionLineItemParams{{
			Quantity: stripego.Int64(1),
			PriceData: &stripego.CheckoutSessionLineItemPriceDataParams{
				Currency:    stripego.String(r.Currency),
				UnitAmount:  stripego.Int64(r.AmountMinor),
				ProductData: &stripego.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripego.String(p.cfg.ProductName)},
			},
		}},
	}
	if r.CustomerRef != "" {
		params.Customer = stripego.String(r.CustomerRef)
	}
	params.Context = ctx
	params.AddMetadata("session_id", r.SessionID)
	params.AddMetadata("tenant_id", r.TenantID)
	params.AddMetadata("user_id", r.UserID)
	params.SetIdempotencyKey("gpuaas-checkout-" + r.SessionID)
	cs, err := p.api.CheckoutSessions.New(params)
	if err != nil {
		return "", "", apiError(err)
	}
	if cs.ID == "" || cs.URL == "" {
		return "", "", fault.Unavailable("the payment provider returned no checkout", nil)
	}
	return cs.ID, cs.URL, nil
}

// CustomerPortalURL implements [ports.PaymentProvider].
func (p *Provider) CustomerPortalURL(ctx context.Context, customerRef, returnURL string) (string, error) {
	params := &stripego.BillingPortalSessionParams{Customer: stripego.String(customerRef), ReturnURL: stripego.String(returnURL)}
	params.Context = ctx
	s, err := p.api.BillingPortalSessions.New(params)
	if err != nil {
		return "", apiError(err)
	}
	return s.URL, nil
}

// ParseWebhook implements [ports.PaymentProvider].
func (p *Provider) ParseWebhook(payload []byte, header string) (ports.WebhookEvent, error) {
	return p.verifier.Parse(payload, header)
}

// apiError maps Stripe errors: a request Stripe refused as invalid is the
// platform's bug or a bad input (422); everything else is an outage (503).
// Stripe's message is kept as the cause (logged), never shown.
func apiError(err error) error {
	var se *stripego.Error
	if errors.As(err, &se) && se.Type == stripego.ErrorTypeInvalidRequest && se.HTTPStatusCode < 500 {
		return (&fault.Error{Kind: fault.KindUnprocessable, Code: "payment_provider_refused",
			Message: "the payment provider refused the request"}).Wrap(err)
	}
	return fault.Unavailable("the payment provider is unavailable", err)
}

// Refund implements [ports.PaymentProvider]: the checkout's payment intent
// is looked up, then refunded for the amount with the platform's request id
// as idempotency key and metadata (refund_request_id), so a retry returns
// the same refund and the webhook names the request.
func (p *Provider) Refund(ctx context.Context, r ports.RefundCall) (ports.RefundResult, error) {
	gp := &stripego.CheckoutSessionParams{}
	gp.Context = ctx
	cs, err := p.api.CheckoutSessions.Get(r.SessionRef, gp)
	if err != nil {
		return ports.RefundResult{}, apiError(err)
	}
	if cs.PaymentIntent == nil || cs.PaymentIntent.ID == "" {
		return ports.RefundResult{}, &fault.Error{Kind: fault.KindUnprocessable, Code: "payment_provider_refused",
			Message: "the checkout has no payment to refund"}
	}
	params := &stripego.RefundParams{PaymentIntent: stripego.String(cs.PaymentIntent.ID),
		Amount: stripego.Int64(r.AmountMinor)}
	params.Context = ctx
	params.AddMetadata("refund_request_id", r.RefundID)
	params.SetIdempotencyKey("gpuaas-refund-" + r.RefundID)
	re, err := p.api.Refunds.New(params)
	if err != nil {
		return ports.RefundResult{}, apiError(err)
	}
	return ports.RefundResult{Ref: re.ID, Status: refundStatus(re.Status), Failure: string(re.FailureReason)}, nil
}

// refundStatus maps Stripe's refund status to the platform's.
func refundStatus(s stripego.RefundStatus) payment.RefundStatus {
	switch s {
	case stripego.RefundStatusSucceeded:
		return payment.RefundSucceeded
	case stripego.RefundStatusFailed, stripego.RefundStatusCanceled:
		return payment.RefundFailed
	default: // pending, requires_action
		return payment.RefundSubmitted
	}
}
