package httphost

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gpuaas/gpuaas/core/fault"
)

// httpMetrics are the request counters and latency histograms, labelled by
// route pattern (never the raw path: unbounded label values would blow up
// the time series).
type httpMetrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// webhooks counts the payment provider's webhooks by outcome: what the
	// use case did (credited, duplicate, …), rejected (the signature or the
	// body was refused) or error (the platform failed; the provider retries).
	webhooks *prometheus.CounterVec
	handler  http.Handler
}

// paymentWebhookOutcomes are every outcome label, exported at zero from the start.
var paymentWebhookOutcomes = []string{"credited", "duplicate", "ignored", "reconcile", "expired", "no_change",
	"refunded", "refund_failed", "rejected", "error"}

func newHTTPMetrics(reg *prometheus.Registry) (*httpMetrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &httpMetrics{registry: reg}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gpuaas_http_requests_total", Help: "HTTP requests by method, route pattern and status.",
	}, []string{"method", "route", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gpuaas_http_request_duration_seconds", Help: "HTTP request latency by method, route pattern and status.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route", "status"})
	var err error
	if m.requests, err = register(reg, requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, duration); err != nil {
		return nil, err
	}
	webhooks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gpuaas_payment_webhooks_total", Help: "Payment provider (Stripe) webhooks received, by outcome.",
	}, []string{"outcome"})
	if m.webhooks, err = register(reg, webhooks); err != nil {
		return nil, err
	}
	for _, o := range paymentWebhookOutcomes {
		m.webhooks.WithLabelValues(o)
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m, nil
}

// register adds c to reg, or returns the collector already registered under
// the same name (two servers sharing one registry, as tests do).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	code := strconv.Itoa(status)
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
	default:
		method = "other" // clients choose methods freely; keep the label set bounded
	}
	m.requests.WithLabelValues(method, route, code).Inc()
	m.duration.WithLabelValues(method, route, code).Observe(d.Seconds())
}

// paymentWebhook counts one payment webhook: its outcome, or how it failed.
func (m *httpMetrics) paymentWebhook(outcome string, err error) {
	if err != nil {
		outcome = "rejected"
		if fault.IsKind(err, fault.KindInternal) || fault.IsKind(err, fault.KindUnavailable) {
			outcome = "error"
		}
	} else if !slices.Contains(paymentWebhookOutcomes, outcome) {
		outcome = "ignored"
	}
	m.webhooks.WithLabelValues(outcome).Inc()
}
