package main

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
)

// tracingOptions export traces over OTLP/HTTP when
// OTEL_EXPORTER_OTLP_ENDPOINT is set (the exporter reads the standard OTEL_*
// variables itself); otherwise hosts use the global no-op provider.
func tracingOptions(s Settings) fx.Option {
	if s.OTLPEndpoint == "" {
		return fx.Options()
	}
	return fx.Provide(func(lc fx.Lifecycle) (trace.TracerProvider, error) {
		exp, err := otlptracehttp.New(context.Background())
		if err != nil {
			return nil, err
		}
		res, err := sdkresource.Merge(sdkresource.Default(), sdkresource.NewWithAttributes(semconv.SchemaURL,
			semconv.ServiceName("gpuaas"), semconv.ServiceVersion(version)))
		if err != nil {
			return nil, err
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
		lc.Append(fx.StopHook(tp.Shutdown))
		return tp, nil
	})
}
