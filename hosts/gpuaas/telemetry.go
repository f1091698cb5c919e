package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/hosts/internal/adminhttp"
	"github.com/gpuaas/gpuaas/hosts/internal/telemetry"
	"github.com/gpuaas/gpuaas/ports"
)

// This file wires observability (doc/observability.md): traces when
// OTEL_EXPORTER_OTLP_ENDPOINT is set, the process's one Prometheus registry
// and what registers in it, and the decorators that put spans and metrics
// around ports. With tracing off nothing of it is in a request's path: no
// tracer provider is in the graph, so the HTTP host, pgx, NATS and Temporal
// are wired without their tracing.

// tracingOptions provide the OpenTelemetry tracer provider (OTLP/HTTP,
// batched) when OTEL_EXPORTER_OTLP_ENDPOINT is set, and make it and W3C
// trace context the process's globals; otherwise they provide nothing.
func tracingOptions(s Settings) fx.Option {
	if s.OTLPEndpoint == "" {
		return fx.Options()
	}
	return fx.Provide(func(lc fx.Lifecycle) (trace.TracerProvider, error) {
		tp, err := telemetry.NewTracerProvider(context.Background(), telemetry.TraceConfig{
			Endpoint: s.OTLPEndpoint, ServiceName: "gpuaas", ServiceVersion: version})
		if err != nil {
			return nil, err
		}
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(telemetry.Propagator)
		lc.Append(fx.StopHook(tp.Shutdown)) // flushes what is batched
		return tp, nil
	})
}

// tracerIn is the tracer provider when tracing is on.
type tracerIn struct {
	fx.In
	Tracer trace.TracerProvider `optional:"true"`
}

// metricsOptions give every process one Prometheus registry (Go runtime,
// process and pgx pool collectors included) that the hosts, decorators and
// collectors register their families in, and — when GPUAAS_METRICS_ADDR is
// set (":9090" unless "off"; gpuaas dev leaves it off and the API serves
// /metrics) — the admin listener serving it with /livez and /readyz.
func metricsOptions(s Settings) fx.Option {
	reg := fx.Options(
		fx.Provide(func() *prometheus.Registry {
			r := prometheus.NewRegistry()
			r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			return r
		}),
		fx.Invoke(func(reg *prometheus.Registry, db *postgres.DB) error {
			return reg.Register(telemetry.PoolCollector(db.Pool))
		}),
	)
	if s.MetricsAddr == "" {
		return reg
	}
	return fx.Options(reg, fx.Supply(adminhttp.Config{Addr: s.MetricsAddr}), adminhttp.Module)
}

// baseTelemetryOptions build the Postgres and NATS configs (each traced
// when tracing is on) and decorate the outbox (the change's trace context
// stored with its events) and the relay's publisher (events and allocation
// transitions counted).
func baseTelemetryOptions(s Settings) fx.Option {
	return fx.Options(
		fx.Provide(func(t tracerIn) postgres.Config {
			cfg := postgres.Config{URL: s.DatabaseURL}
			if t.Tracer != nil {
				// Statements are traced inside a trace only (no root
				// spans), named by operation and table, without their
				// text, arguments or the server's messages.
				cfg.Tracer = telemetry.NewSQLTracer(t.Tracer)
			}
			return cfg
		}),
		fx.Provide(func(t tracerIn) nats.Config { return nats.Config{URL: s.NATSURL, TracerProvider: t.Tracer} }),
		fx.Decorate(func(o ports.Outbox, t tracerIn) ports.Outbox { return telemetry.Outbox(o, t.Tracer) }),
		fx.Decorate(func(p ports.Publisher, reg *prometheus.Registry) ports.Publisher {
			return telemetry.Publisher(p, reg)
		}),
	)
}

// computeTelemetryOptions decorate the node task queue: the enqueuer's trace
// context is stored with each task and the agent's work becomes a span of
// it; reports are counted and timed.
func computeTelemetryOptions() fx.Option {
	return fx.Decorate(func(q ports.TaskQueue, t tracerIn, reg *prometheus.Registry) ports.TaskQueue {
		return telemetry.TaskQueue(q, t.Tracer, reg)
	})
}

// temporalConfig is the provisioning worker's Temporal client config, with
// OpenTelemetry's interceptor on the client (starting workflows) and, through
// it, on the worker (workflows and activities) when tracing is on.
func temporalConfig(s Settings, t tracerIn) (temporal.Config, error) {
	cfg := temporal.Config{HostPort: s.TemporalAddress, Namespace: s.TemporalNS}
	if t.Tracer != nil {
		i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
			Tracer: t.Tracer.Tracer("go.temporal.io/sdk"), TextMapPropagator: telemetry.Propagator, DisableBaggage: true})
		if err != nil {
			return cfg, err
		}
		cfg.Interceptors = []interceptor.ClientInterceptor{i}
	}
	return cfg, nil
}

// provisioningTelemetryOptions decorate what the workflows call: state
// transitions (spans; request → active) and node tasks (spans; duration by
// type and outcome).
func provisioningTelemetryOptions() fx.Option {
	return fx.Options(
		fx.Decorate(func(a temporal.AllocationTransitions, t tracerIn, reg *prometheus.Registry) temporal.AllocationTransitions {
			return telemetry.Transitions(a, t.Tracer, reg)
		}),
		fx.Decorate(func(r temporal.TaskRunner, t tracerIn, reg *prometheus.Registry) temporal.TaskRunner {
			return telemetry.TaskRunner(r, t.Tracer, reg)
		}),
	)
}

// billingTelemetryOptions time the billing windows and count their debits.
func billingTelemetryOptions() fx.Option {
	return fx.Decorate(func(a billing.Accruer, reg *prometheus.Registry) billing.Accruer {
		return telemetry.Accruer(a, reg)
	})
}

// webhookTelemetryOptions count outbound webhook outcomes.
func webhookTelemetryOptions() fx.Option {
	return fx.Decorate(func(w ports.WebhookSender, reg *prometheus.Registry) ports.WebhookSender {
		return telemetry.WebhookSender(w, reg)
	})
}

// platformGaugeOptions export the platform's state read at scrape time — the
// outbox backlog and age, nodes, allocations, queues (the ops view) and each
// durable consumer's lag — from the API process (every replica: alerts take
// the max).
func platformGaugeOptions() fx.Option {
	type params struct {
		fx.In
		Registry  *prometheus.Registry
		Ops       *postgres.AdminStore
		Consumers ports.ConsumerMonitor `optional:"true"`
		Logger    *slog.Logger
	}
	return fx.Invoke(func(p params) error {
		if err := p.Registry.Register(telemetry.OpsCollector(p.Ops, p.Registry, p.Logger)); err != nil {
			return err
		}
		if p.Consumers != nil {
			return p.Registry.Register(telemetry.ConsumerLagCollector(p.Consumers, p.Registry, p.Logger))
		}
		return nil
	})
}
