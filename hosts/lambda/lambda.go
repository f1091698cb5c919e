package lambdahost

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/gpuaas/gpuaas/core/event/relay"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	httphost "github.com/gpuaas/gpuaas/hosts/http"
)

// Function names: the argument of `gpuaas lambda` and the directory of
// each bootstrap binary `make lambda` builds.
const (
	FunctionAPI         = "api"
	FunctionWebhook     = "payments-webhook"
	FunctionBillingTick = "billing-tick"
	FunctionOutboxDrain = "outbox-drain"
)

// Functions lists every function name.
var Functions = []string{FunctionAPI, FunctionWebhook, FunctionBillingTick, FunctionOutboxDrain}

// API serves the REST API from API Gateway HTTP API (payload format 2.0)
// and function URL events (the same shape).
type API struct {
	adapter *httpadapter.HandlerAdapterV2
}

// NewAPI wraps the HTTP host's handler.
func NewAPI(h http.Handler) (*API, error) {
	if h == nil {
		return nil, errors.New("lambdahost: the HTTP handler is required")
	}
	return &API{adapter: httpadapter.NewV2(withPeerPort(h))}, nil
}

// withPeerPort gives the request the host:port RemoteAddr net/http servers
// set: the adapter puts API Gateway's sourceIp there (the client as the
// gateway saw it) without a port.
func withPeerPort(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := net.SplitHostPort(r.RemoteAddr); err != nil && r.RemoteAddr != "" {
			r.RemoteAddr = net.JoinHostPort(r.RemoteAddr, "0")
		}
		next.ServeHTTP(w, r)
	})
}

// Handle answers one request.
func (a *API) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return a.adapter.ProxyWithContext(ctx, ev)
}

// Webhook receives the payment provider's webhooks.
type Webhook struct {
	payments *paymentsvc.Service
	log      *slog.Logger
}

// NewWebhook serves payments' webhook use case.
func NewWebhook(p *paymentsvc.Service, log *slog.Logger) (*Webhook, error) {
	if p == nil {
		return nil, errors.New("lambdahost: the payment use cases are required (STRIPE_SECRET_KEY)")
	}
	return &Webhook{payments: p, log: logOrDiscard(log).With("component", "lambda-webhook")}, nil
}

// maxWebhookBody bounds the body like the HTTP host's body limit.
const maxWebhookBody = 1 << 20

// Handle verifies and applies one webhook. The body is handed over exactly
// as the provider signed it (API Gateway base64-encodes bodies it does not
// take for text); statuses follow the HTTP host's table, so the provider
// retries what the API would have made it retry.
func (h *Webhook) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if ev.RequestContext.HTTP.Method != "" && ev.RequestContext.HTTP.Method != http.MethodPost {
		return h.fail(ctx, fault.Invalid("method", "the webhook takes POST")), nil
	}
	raw := []byte(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return h.fail(ctx, fault.Invalid("body", "the body is not valid base64")), nil
		}
		raw = b
	}
	if len(raw) > maxWebhookBody {
		return h.fail(ctx, fault.New(fault.KindTooLarge, fault.CodePayloadTooLarge, "the body is too large")), nil
	}
	out, err := h.payments.HandleWebhook(ctx, raw, header(ev.Headers, "Stripe-Signature"))
	if err != nil {
		return h.fail(ctx, err), nil
	}
	return jsonResponse(http.StatusOK, map[string]any{"received": true, "outcome": out}), nil
}

func (h *Webhook) fail(ctx context.Context, err error) events.APIGatewayV2HTTPResponse {
	fe := fault.From(err)
	status := httphost.StatusOf(fe.Kind)
	msg, code := fe.Message, string(fe.Code)
	if status >= 500 {
		h.log.ErrorContext(ctx, "webhook failed", "error_code", code, "error", err.Error())
		msg, code = "internal error", string(fault.CodeInternal)
		if fe.Kind == fault.KindUnavailable {
			msg, code = "service unavailable", string(fe.Code)
		}
	}
	return jsonResponse(status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// header finds a header case-insensitively (API Gateway lower-cases them).
func header(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func jsonResponse(status int, body any) events.APIGatewayV2HTTPResponse {
	b, _ := json.Marshal(body)
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Body: string(b),
		Headers: map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}}
}

// BillingTick runs one billing accrual cycle per invocation.
type BillingTick struct {
	worker *billing.Worker
}

// NewBillingTick wraps the billing worker.
func NewBillingTick(w *billing.Worker) (*BillingTick, error) {
	if w == nil {
		return nil, errors.New("lambdahost: the billing worker is required")
	}
	return &BillingTick{worker: w}, nil
}

// TickResult is what a tick answers (and what the function's log shows).
type TickResult struct {
	WindowEnd time.Time `json:"window_end"`
	Tenants   int       `json:"tenants_debited"`
}

// Handle runs the cycle at the clock's time. The schedule's event carries
// nothing the cycle needs: accrual is exactly-once per record and window,
// so a retried or doubled invocation debits nothing twice.
func (t *BillingTick) Handle(ctx context.Context, _ events.EventBridgeEvent) (TickResult, error) {
	res, err := t.worker.RunCycle(ctx)
	if err != nil {
		return TickResult{}, err
	}
	return TickResult{WindowEnd: res.WindowEnd, Tenants: len(res.Debited)}, nil
}

// OutboxDrain relays the outbox until nothing is due.
type OutboxDrain struct {
	relay *relay.Relay
}

// NewOutboxDrain wraps a relay.
func NewOutboxDrain(r *relay.Relay) (*OutboxDrain, error) {
	if r == nil {
		return nil, errors.New("lambdahost: the relay is required")
	}
	return &OutboxDrain{relay: r}, nil
}

// DrainResult is what a drain answers.
type DrainResult struct {
	Batches int `json:"batches"`
	Claimed int `json:"claimed"`
}

// drainMargin is left of the invocation's deadline so the claim in hand
// commits (or rolls back) before the runtime freezes the process.
const drainMargin = 5 * time.Second

// Handle drains. An error (the bus refused a batch, the database failed)
// fails the invocation so the scheduler's retry comes; events are never
// lost either way (at least once, deduplicated by id).
func (d *OutboxDrain) Handle(ctx context.Context, _ events.EventBridgeEvent) (DrainResult, error) {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-drainMargin))
		defer cancel()
	}
	res, err := d.relay.Drain(ctx)
	out := DrainResult{Batches: res.Batches, Claimed: res.Claimed}
	if errors.Is(err, context.DeadlineExceeded) {
		return out, nil // the next invocation goes on
	}
	return out, err
}

func logOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
