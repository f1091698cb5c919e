package connecthost

import (
	"context"
	"errors"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1/agentv1connect"
)

// Telemetry is what a Connect listener reports (doc/observability.md):
// spans when Tracer is set, Prometheus families when Metrics is. Both are
// optional; with neither the interceptor is not installed.
type Telemetry struct {
	Tracer  trace.TracerProvider
	Metrics prometheus.Registerer
	// Untraced procedures get no span (the agents' heartbeats and long
	// polls: a root trace every few seconds per node says nothing).
	Untraced []string
}

// observer is the interceptor: a server span per RPC — a caller's trace
// context is linked, not adopted (callers are agents and other services,
// not part of the platform's traces) — and request counts and latencies by
// procedure and code.
type observer struct {
	listener   string
	tracer     trace.Tracer
	untraced   map[string]bool
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	heartbeats *prometheus.CounterVec // agent gateway only
}

var _ connect.Interceptor = (*observer)(nil)

func newObserver(listener string, t Telemetry) (*observer, error) {
	if t.Tracer == nil && t.Metrics == nil {
		return nil, nil
	}
	o := &observer{listener: listener, untraced: map[string]bool{}}
	for _, p := range t.Untraced {
		o.untraced[p] = true
	}
	if t.Tracer != nil {
		o.tracer = t.Tracer.Tracer("github.com/gpuaas/gpuaas/hosts/connect")
	}
	if t.Metrics == nil {
		return o, nil
	}
	var err error
	if o.requests, err = register(t.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gpuaas_rpc_requests_total",
		Help: "Connect RPCs served, by listener (agent, internal), procedure and code."},
		[]string{"listener", "procedure", "code"})); err != nil {
		return nil, err
	}
	if o.duration, err = register(t.Metrics, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gpuaas_rpc_request_duration_seconds",
		Help:    "Connect RPC latency by listener and procedure, seconds (the agents' task polls wait up to 25 s).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
		[]string{"listener", "procedure"})); err != nil {
		return nil, err
	}
	if listener == "agent" {
		if o.heartbeats, err = register(t.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gpuaas_node_heartbeats_total",
			Help: "Node agent heartbeats received, by outcome (ok, refused, error)."}, []string{"outcome"})); err != nil {
			return nil, err
		}
		for _, v := range []string{"ok", "refused", "error"} {
			o.heartbeats.WithLabelValues(v)
		}
	}
	return o, nil
}

// register adds c to reg, or returns what is registered under its name
// (two listeners of one process share the families).
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

func (o *observer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		proc := req.Spec().Procedure
		began := time.Now()
		var span trace.Span
		if o.tracer != nil && !o.untraced[proc] {
			service, method, _ := strings.Cut(strings.TrimPrefix(proc, "/"), "/")
			opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
				attribute.String("rpc.system", "connect_rpc"), attribute.String("rpc.service", service),
				attribute.String("rpc.method", method))}
			remote := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
				propagation.HeaderCarrier(req.Header())))
			if remote.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: remote}))
			}
			ctx, span = o.tracer.Start(trace.ContextWithSpanContext(ctx, trace.SpanContext{}), proc, opts...)
		}
		resp, err := next(ctx, req)
		code := "ok"
		if err != nil {
			code = connect.CodeOf(err).String()
		}
		if span != nil {
			span.SetAttributes(attribute.String("rpc.connect_rpc.error_code", code))
			if err != nil && connect.CodeOf(err) != connect.CodeCanceled {
				span.SetStatus(codes.Error, code)
			}
			span.End()
		}
		if o.requests != nil {
			o.requests.WithLabelValues(o.listener, proc, code).Inc()
			o.duration.WithLabelValues(o.listener, proc).Observe(time.Since(began).Seconds())
		}
		if o.heartbeats != nil && proc == agentv1connect.AgentServiceHeartbeatProcedure {
			outcome := "ok"
			switch connect.CodeOf(err) {
			case connect.CodeUnauthenticated, connect.CodePermissionDenied, connect.CodeInvalidArgument:
				outcome = "refused"
			default:
				if err != nil {
					outcome = "error"
				}
			}
			o.heartbeats.WithLabelValues(outcome).Inc()
		}
		return resp, err
	}
}

func (o *observer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (o *observer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// interceptors returns the observer first (so it sees every outcome),
// then the others.
func interceptors(o *observer, others ...connect.Interceptor) []connect.Interceptor {
	if o == nil {
		return others
	}
	return append([]connect.Interceptor{o}, others...)
}
