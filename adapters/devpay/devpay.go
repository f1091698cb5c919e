package devpay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gpuaas/gpuaas/adapters/stripe"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/payment"
	"github.com/gpuaas/gpuaas/ports"
)

// ProviderName is stored with sessions and events.
const ProviderName = "devpay"

// DefaultMountPath is where the host mounts Handler.
const DefaultMountPath = "/dev-pay/"

// Config configures the dev provider.
type Config struct {
	// PublicBaseURL is how a browser reaches the API server that mounts
	// Handler, e.g. http://127.0.0.1:8080. Required.
	PublicBaseURL string
	// WebhookURL is where paid events are delivered. Default
	// PublicBaseURL + "/api/v1/payments/webhook".
	WebhookURL string
	// MountPath is the prefix Handler serves. Default DefaultMountPath.
	MountPath string
	// WebhookSecret signs the deliveries; a random one is generated when
	// empty (it never leaves the process).
	WebhookSecret string
	// HTTPClient delivers webhooks. Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Clock dates signatures; the wall clock when nil.
	Clock ports.Clock
}

// CheckAndSetDefaults validates the config and fills defaults.
func (c *Config) CheckAndSetDefaults() error {
	c.PublicBaseURL = strings.TrimRight(c.PublicBaseURL, "/")
	if !absHTTP(c.PublicBaseURL) {
		return errors.New("devpay: PublicBaseURL must be an absolute http(s) URL")
	}
	if c.WebhookURL == "" {
		c.WebhookURL = c.PublicBaseURL + "/api/v1/payments/webhook"
	}
	if !absHTTP(c.WebhookURL) {
		return errors.New("devpay: WebhookURL must be an absolute http(s) URL")
	}
	if c.MountPath == "" {
		c.MountPath = DefaultMountPath
	}
	if !strings.HasPrefix(c.MountPath, "/") || !strings.HasSuffix(c.MountPath, "/") {
		return errors.New("devpay: MountPath must start and end with /")
	}
	if c.WebhookSecret == "" {
		c.WebhookSecret = "whsec_dev_" + randomHex(24)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	return nil
}

func absHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// checkout is one open dev checkout.
type checkout struct {
	req  ports.CheckoutRequest
	paid bool
}

// Provider implements [ports.PaymentProvider] for development.
type Provider struct {
	cfg      Config
	verifier *stripe.Verifier

	mu        sync.Mutex
	checkouts map[string]*checkout // by ref
	byClient  map[string]string    // session id → ref: a retried create returns the same checkout
	portals   map[string]string    // portal id → return URL
}

var _ ports.PaymentProvider = (*Provider)(nil)

// New builds the provider.
func New(cfg Config) (*Provider, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	v, err := stripe.NewVerifier([]string{cfg.WebhookSecret}, stripe.DefaultTolerance)
	if err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, verifier: v, checkouts: map[string]*checkout{}, byClient: map[string]string{},
		portals: map[string]string{}}, nil
}

// Name implements [ports.PaymentProvider].
func (p *Provider) Name() string { return ProviderName }

// EnsureCustomer implements [ports.PaymentProvider]: the tenant is its own
// customer in development.
func (p *Provider) EnsureCustomer(_ context.Context, tenantID, _ string) (string, error) {
	return "devcus_" + tenantID, nil
}

// CreateCheckout implements [ports.PaymentProvider]: the URL is the local
// checkout page.
func (p *Provider) CreateCheckout(_ context.Context, r ports.CheckoutRequest) (string, string, error) {
	if r.SessionID == "" || r.AmountMinor <= 0 || len(r.Currency) != 3 || !absHTTP(r.SuccessURL) || !absHTTP(r.CancelURL) {
		return "", "", fault.Invalid("checkout", "a dev checkout needs a session id, a positive amount, a currency and http(s) return URLs")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ref, ok := p.byClient[r.SessionID]
	if !ok {
		ref = "devcs_" + randomHex(16)
		p.checkouts[ref] = &checkout{req: r}
		p.byClient[r.SessionID] = ref
	}
	return ref, p.cfg.PublicBaseURL + p.cfg.MountPath + "checkout/" + ref, nil
}

// CustomerPortalURL implements [ports.PaymentProvider]: a local page that
// links back to returnURL.
func (p *Provider) CustomerPortalURL(_ context.Context, customerRef, returnURL string) (string, error) {
	if !absHTTP(returnURL) {
		return "", fault.Invalid("return_url", "the return URL must be an absolute http(s) URL")
	}
	id := "devportal_" + randomHex(16)
	p.mu.Lock()
	p.portals[id] = returnURL
	p.mu.Unlock()
	return p.cfg.PublicBaseURL + p.cfg.MountPath + "portal/" + id, nil
}

// ParseWebhook implements [ports.PaymentProvider] with the Stripe verifier
// over the dev secret.
func (p *Provider) ParseWebhook(payload []byte, header string) (ports.WebhookEvent, error) {
	return p.verifier.Parse(payload, header)
}

// ErrUnknownCheckout is returned by Pay for a ref this provider never made.
var ErrUnknownCheckout = errors.New("devpay: unknown checkout")

// Pay completes the checkout ref: it delivers a signed
// checkout.session.completed (paid) event to the platform's webhook and
// returns the success URL. Paying twice delivers again with the same event
// id, which the platform ignores as a duplicate.
func (p *Provider) Pay(ctx context.Context, ref string) (successURL string, err error) {
	p.mu.Lock()
	c, ok := p.checkouts[ref]
	p.mu.Unlock()
	if !ok {
		return "", ErrUnknownCheckout
	}
	body, err := json.Marshal(map[string]any{
		// The event id derives from the ref so a repeated Pay is a
		// redelivery of one event, as Stripe's retries are.
		"id": "evt_" + ref, "object": "event", "type": "checkout.session.completed",
		"api_version": "dev", "created": p.cfg.Clock.Now().Unix(), "livemode": false,
		"data": map[string]any{"object": map[string]any{
			"id": ref, "object": "checkout.session", "mode": "payment", "client_reference_id": c.req.SessionID,
			"amount_total": c.req.AmountMinor, "currency": c.req.Currency, "payment_status": "paid", "status": "complete",
			"metadata": map[string]string{"session_id": c.req.SessionID, "tenant_id": c.req.TenantID},
		}},
	})
	if err != nil {
		return "", err
	}
	if err := p.deliver(ctx, body); err != nil {
		return "", err
	}
	p.mu.Lock()
	c.paid = true
	p.mu.Unlock()
	return c.req.SuccessURL, nil
}

// deliver POSTs a signed event to the webhook URL and expects 2xx.
func (p *Provider) deliver(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripe.SignatureHeader(body, p.cfg.WebhookSecret, p.cfg.Clock.Now()))
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("devpay: deliver webhook: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("devpay: webhook answered %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("devpay: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// Refund implements [ports.PaymentProvider] like Stripe does it: the refund
// is accepted as pending (submitted) and confirmed a moment later by a
// signed refund.updated (succeeded) event to the platform's webhook, the
// path real refunds settle through. The refund id derives from the
// platform's request id, so a retry is the same refund.
func (p *Provider) Refund(ctx context.Context, r ports.RefundCall) (ports.RefundResult, error) {
	p.mu.Lock()
	c, ok := p.checkouts[r.SessionRef]
	paid := ok && c.paid
	p.mu.Unlock()
	if !paid {
		return ports.RefundResult{}, &fault.Error{Kind: fault.KindUnprocessable, Code: "payment_provider_refused",
			Message: "the dev checkout was not paid here (checkouts live in memory: a restarted gpuaas dev forgets them)"}
	}
	ref := "re_dev_" + strings.ReplaceAll(r.RefundID, "-", "")
	body, err := json.Marshal(map[string]any{
		"id": "evt_" + ref, "object": "event", "type": "refund.updated", "api_version": "dev",
		"created": p.cfg.Clock.Now().Unix(), "livemode": false,
		"data": map[string]any{"object": map[string]any{
			"id": ref, "object": "refund", "amount": r.AmountMinor, "currency": r.Currency, "status": "succeeded",
			"metadata": map[string]string{"refund_request_id": r.RefundID},
		}},
	})
	if err != nil {
		return ports.RefundResult{}, err
	}
	go func() {
		// Confirmed after the caller has recorded the submission, as a
		// provider's webhook would be (it may also overtake it: the
		// platform settles either order once).
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.deliver(ctx, body)
	}()
	return ports.RefundResult{Ref: ref, Status: payment.RefundSubmitted}, nil
}
