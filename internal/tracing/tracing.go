// Package tracing is the service's OpenTelemetry tracing: the tracer
// provider and its OTLP exporter, the server's HTTP spans, the W3C trace
// context, and the trace id in the log lines of a request.
//
// Tracing is off unless an OTLP endpoint is configured (cmd/usersvc reads
// the standard OTEL_* variables). Off means no exporter, no SDK, no HTTP
// wrapper: a no-op provider whose spans are never recorded, and adapters
// that are not instrumented at all, so an untraced service pays nothing.
//
// # What is traced
//
//   - every request, as a server span named by its route
//     ("GET /api/v1/users/{user_id}"), continuing the caller's trace when
//     the request carries a W3C traceparent header;
//   - every statement the store sends to its database;
//   - every Redis command (cache, rate limits);
//   - every password hash and verification (internal/password), the most
//     expensive thing a request does, with the time it waited for a slot;
//   - in the Go client (client.WithTracing), every request it sends, with
//     traceparent set so that the service's spans join the caller's trace.
//
// # The libraries, and why each
//
//   - go.opentelemetry.io/otel/sdk with otlptracehttp: the reference SDK and
//     its OTLP exporter over HTTP/protobuf, the protocol the specification
//     names as the default (port 4318 of a collector); the SDK's batch
//     processor keeps exporting off the request path.
//   - go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp, for
//     the server and for the client's transport: the OpenTelemetry
//     project's own net/http instrumentation, kept at the SDK's release,
//     with the semantic-convention attributes of HTTP spans and the
//     propagation of the trace context. Spans are renamed by route once
//     the service's router has matched (see NameSpans), since otelhttp
//     starts the span before routing.
//   - github.com/exaring/otelpgx, for PostgreSQL: pgx has a tracer hook of
//     its own (pgx.QueryTracer, which internal/postgres takes through
//     postgres.WithTracer), and otelpgx is the maintained implementation of
//     it listed in the OpenTelemetry registry. At the driver's level it
//     sees what database/sql does not (connecting, batches) and names
//     spans by the SQL operation; statements carry their text with ?
//     placeholders, never their arguments.
//   - github.com/XSAM/otelsql, for SQLite: modernc.org/sqlite has no tracer
//     hook, and otelsql is the maintained database/sql instrumentation of
//     the registry: it wraps the driver, so the store's code is unchanged
//     (internal/sqlite takes it through sqlite.WithTracerProvider). Row
//     iteration, session resets and pings make no spans of their own.
//   - github.com/redis/go-redis/extra/redisotel/v9, for Redis: go-redis's
//     own instrumentation, released with the client at the same version.
//   - The password spans are the service's own (a library cannot know
//     where the cost is).
//
// The trace id reaches the log through LogHandler, which reads the span of
// each record's context: every line logged with a request's context (the
// access log, warnings of the use cases) names its trace.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config is how traces are exported, as the OTEL_* variables say.
type Config struct {
	// Endpoint is the OTLP/HTTP URL that receives spans
	// (http://collector:4318/v1/traces); empty turns tracing off.
	Endpoint string
	// Headers are sent with every export (authentication of a vendor).
	Headers map[string]string
	// Timeout bounds one export (default 10 s).
	Timeout time.Duration
	// Resource describes the process: service.name, service.version and
	// whatever else OTEL_RESOURCE_ATTRIBUTES adds.
	Resource []attribute.KeyValue
	// Sampler decides which traces are recorded (default: the parent's
	// decision, else every trace).
	Sampler sdktrace.Sampler
}

// Tracing is the service's tracer provider and propagator, on or off.
type Tracing struct {
	// Provider makes the tracers of the service and of its adapters: a
	// no-op provider when tracing is off.
	Provider trace.TracerProvider
	// Propagator reads and writes the W3C traceparent and tracestate
	// headers.
	Propagator propagation.TextMapPropagator
	sdk        *sdktrace.TracerProvider
}

// Off is tracing turned off: nothing is recorded, nothing is wrapped.
func Off() *Tracing {
	return &Tracing{Provider: noop.NewTracerProvider(), Propagator: propagation.TraceContext{}}
}

// New returns tracing that exports to cfg.Endpoint over OTLP/HTTP, or Off
// when there is no endpoint. Nothing is sent until the first span ends;
// an unreachable collector costs dropped spans and a logged error, never a
// failed request.
func New(ctx context.Context, cfg Config) (*Tracing, error) {
	if cfg.Endpoint == "" {
		return Off(), nil
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(cfg.Endpoint)}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	if cfg.Timeout > 0 {
		opts = append(opts, otlptracehttp.WithTimeout(cfg.Timeout))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	return WithProcessor(cfg, sdktrace.NewBatchSpanProcessor(exp)), nil
}

// WithProcessor returns tracing on, with its spans handed to p (tests give
// a synchronous processor over an in-memory exporter).
func WithProcessor(cfg Config, p sdktrace.SpanProcessor) *Tracing {
	sampler := cfg.Sampler
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, cfg.Resource...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	return &Tracing{Provider: tp, Propagator: propagation.TraceContext{}, sdk: tp}
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.sdk != nil }

// Shutdown exports the spans still buffered and stops the exporter,
// within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// Handler wraps the service's handler in a server span per request that
// continues the trace of an incoming traceparent. Off, it returns h as it
// is. Spans are named by method until NameSpans (or otelhttp itself, for a
// router that sees otelhttp's own request) renames them by route.
func (t *Tracing) Handler(h http.Handler) http.Handler {
	if !t.Enabled() {
		return h
	}
	return otelhttp.NewHandler(h, "usersvc",
		otelhttp.WithTracerProvider(t.Provider),
		otelhttp.WithPropagators(t.Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus's
	)
}

// NameSpans wraps a router so that, once it has served a request, the
// request's server span is named by the route that matched ("GET
// /api/v1/users/{user_id}") and carries it as http.route. Its signature is
// httpapi.Config's Instrument hook.
func (t *Tracing) NameSpans(next http.Handler, route func(*http.Request) string) http.Handler {
	if !t.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		span := trace.SpanFromContext(r.Context())
		if !span.IsRecording() {
			return
		}
		rt := route(r)
		if rt == "unmatched" {
			span.SetName(r.Method)
			return
		}
		span.SetName(rt)
		if _, pattern, ok := strings.Cut(rt, " "); ok {
			span.SetAttributes(semconv.HTTPRoute(pattern))
		}
	})
}

// LogHandler adds trace_id and span_id to every record logged with a
// context that holds a valid span (a request's, once Handler has started
// it, or the caller's trace when tracing is off but a span reached the
// context some other way).
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }
