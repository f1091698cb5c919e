package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of the platform's own spans.
const Scope = "github.com/gpuaas/gpuaas"

// Propagator is the one trace context format every hop uses (W3C
// traceparent): HTTP, the outbox envelope, NATS headers, node tasks and
// Temporal's headers. No baggage crosses: it could carry anything.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// TraceConfig configures the trace pipeline.
type TraceConfig struct {
	// Endpoint is OTEL_EXPORTER_OTLP_ENDPOINT: the OTLP/HTTP base URL
	// (traces go to Endpoint + "/v1/traces"). Required.
	Endpoint string
	// ServiceName and ServiceVersion name the process in its spans.
	ServiceName, ServiceVersion string
	// Exporter replaces the OTLP exporter (tests); optional.
	Exporter sdktrace.SpanExporter
	// Options are added to the provider's (a synchronous span processor in
	// tests, say).
	Options []sdktrace.TracerProviderOption
}

// NewTracerProvider builds the SDK provider exporting over OTLP/HTTP with a
// batching processor. The other OTEL_EXPORTER_OTLP_* variables (headers,
// timeout, compression, a traces-only endpoint) are read by the exporter
// itself. Shut it down to flush.
func NewTracerProvider(ctx context.Context, cfg TraceConfig) (*sdktrace.TracerProvider, error) {
	exp := cfg.Exporter
	if exp == nil {
		if cfg.Endpoint == "" {
			return nil, errors.New("telemetry: an OTLP endpoint is required")
		}
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, errors.New("telemetry: OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL")
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		if exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String())); err != nil {
			return nil, err
		}
	}
	name := cfg.ServiceName
	if name == "" {
		name = "gpuaas"
	}
	// Schemaless: the SDK's default resource carries its own semconv
	// schema, which a second one would conflict with.
	res, err := sdkresource.Merge(sdkresource.Default(), sdkresource.NewSchemaless(
		semconv.ServiceName(name), semconv.ServiceVersion(cfg.ServiceVersion)))
	if err != nil {
		return nil, err
	}
	opts := append([]sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}, cfg.Options...)
	return sdktrace.NewTracerProvider(opts...), nil
}

// carrier carries one traceparent.
type carrier struct{ v string }

func (c *carrier) Get(key string) string {
	if key == "traceparent" {
		return c.v
	}
	return ""
}

func (c *carrier) Set(key, value string) {
	if key == "traceparent" {
		c.v = value
	}
}

func (c *carrier) Keys() []string { return []string{"traceparent"} }

// TraceParent is the W3C traceparent of the span in ctx, "" when there is
// none (tracing off, or no trace started).
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	var c carrier
	Propagator.Inject(ctx, &c)
	return c.v
}

// WithTraceParent returns ctx with the remote span context a traceparent
// names as its parent; ctx unchanged when the value does not parse.
func WithTraceParent(ctx context.Context, traceParent string) context.Context {
	if traceParent == "" {
		return ctx
	}
	return Propagator.Extract(ctx, &carrier{v: traceParent})
}

// LogHandler adds trace_id and span_id to every record logged with a
// context that holds a span, so a log line leads to its trace. Records
// without one are passed through untouched.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(as)}
}
func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }

// SQLSpanName names a statement's span by its operation and first table
// ("SELECT allocations", "INSERT platform_outbox_events"): enough to read a
// trace, without the statement's text, which tripled what tracing exported
// and cost (doc/performance.md#telemetry-overhead).
func SQLSpanName(stmt string) string {
	s := strings.TrimSpace(stmt)
	for strings.HasPrefix(s, "--") { // leading comment lines
		_, rest, ok := strings.Cut(s, "\n")
		if !ok {
			return "SQL"
		}
		s = strings.TrimSpace(rest)
	}
	op, rest := firstWord(s)
	op = strings.ToUpper(op)
	var after string
	switch op {
	case "SELECT", "DELETE":
		after = "FROM"
	case "INSERT":
		after = "INTO"
	case "UPDATE":
		if t, _ := firstWord(rest); t != "" {
			return op + " " + t
		}
	case "WITH":
		after = "FROM"
	case "":
		return "SQL"
	default:
		return op
	}
	if after != "" {
		if i := indexWord(rest, after); i >= 0 {
			if t, _ := firstWord(rest[i+len(after):]); t != "" && t[0] != '(' {
				return op + " " + strings.TrimSuffix(t, ",")
			}
		}
	}
	return op
}

func firstWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t\r\n")
	i := strings.IndexAny(s, " \t\r\n(")
	if i < 0 {
		return s, ""
	}
	if i == 0 {
		return s[:1], s[1:]
	}
	return s[:i], s[i:]
}

// indexWord finds kw as a whole upper- or lower-case word in s.
func indexWord(s, kw string) int {
	for _, k := range []string{kw, strings.ToLower(kw)} {
		for off := 0; ; {
			i := strings.Index(s[off:], k)
			if i < 0 {
				break
			}
			i += off
			before := i == 0 || strings.ContainsRune(" \t\r\n)", rune(s[i-1]))
			end := i + len(k)
			afterOK := end == len(s) || strings.ContainsRune(" \t\r\n(", rune(s[end]))
			if before && afterOK {
				return i
			}
			off = end
		}
	}
	return -1
}
