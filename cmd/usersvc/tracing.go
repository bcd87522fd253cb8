package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/tracing"
)

// loadTracing reads the standard OpenTelemetry variables that decide
// whether and where traces go. Tracing is on when an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), unless
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. The SDK itself reads
// the rest of the standard variables (OTEL_BSP_*, OTEL_EXPORTER_OTLP_CERTIFICATE,
// OTEL_EXPORTER_OTLP_COMPRESSION, …) from the process environment.
func loadTracing(getenv func(string) string) (tracing.Config, error) {
	var c tracing.Config
	// The signal's own variable wins over the general one.
	traces := func(name string) (string, string) {
		specific := strings.Replace(name, "OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_", 1)
		if v := getenv(specific); v != "" {
			return specific, v
		}
		return name, getenv(name)
	}
	switch v := strings.ToLower(strings.TrimSpace(getenv("OTEL_SDK_DISABLED"))); v {
	case "", "false":
	case "true":
		return c, nil
	default:
		return c, &configError{"OTEL_SDK_DISABLED", "must be true or false"}
	}
	switch v := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); v {
	case "", "otlp":
	case "none":
		return c, nil
	default:
		return c, &configError{"OTEL_TRACES_EXPORTER", "must be otlp or none"}
	}

	if v := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		if !httpURL(v) {
			return c, &configError{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "must be an http:// or https:// URL"}
		}
		c.Endpoint = v // used as it is
	} else if v := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		if !httpURL(v) {
			return c, &configError{"OTEL_EXPORTER_OTLP_ENDPOINT", "must be an http:// or https:// URL"}
		}
		c.Endpoint = strings.TrimSuffix(v, "/") + "/v1/traces"
	} else {
		return c, nil // off
	}
	if name, v := traces("OTEL_EXPORTER_OTLP_PROTOCOL"); v != "" && v != "http/protobuf" {
		return c, &configError{name, "must be http/protobuf (the only protocol this build exports with)"}
	}
	if name, v := traces("OTEL_EXPORTER_OTLP_HEADERS"); v != "" {
		h, err := keyValues(v)
		if err != nil {
			// Header values are credentials: never quoted back.
			return c, &configError{name, "must be comma-separated key=value pairs (values URL-encoded)"}
		}
		c.Headers = h
	}
	if name, v := traces("OTEL_EXPORTER_OTLP_TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return c, &configError{name, "must be a positive number of milliseconds"}
		}
		c.Timeout = time.Duration(ms) * time.Millisecond
	}

	attrs := map[string]string{}
	if v := getenv("OTEL_RESOURCE_ATTRIBUTES"); v != "" {
		kv, err := keyValues(v)
		if err != nil {
			return c, &configError{"OTEL_RESOURCE_ATTRIBUTES", "must be comma-separated key=value pairs (values URL-encoded)"}
		}
		attrs = kv
	}
	if v := getenv("OTEL_SERVICE_NAME"); v != "" {
		attrs[string(semconv.ServiceNameKey)] = v
	}
	if attrs[string(semconv.ServiceNameKey)] == "" {
		attrs[string(semconv.ServiceNameKey)] = "usersvc"
	}
	if attrs[string(semconv.ServiceVersionKey)] == "" {
		attrs[string(semconv.ServiceVersionKey)] = version()
	}
	for k, v := range attrs {
		c.Resource = append(c.Resource, attribute.String(k, v))
	}

	var err error
	if c.Sampler, err = sampler(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG")); err != nil {
		return c, err
	}
	return c, nil
}

// httpURL reports whether s is an absolute http or https URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// keyValues parses the W3C Baggage-like list of the OTEL_* variables:
// key=value pairs separated by commas, values URL-encoded.
func keyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("malformed pair")
		}
		v, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// sampler is the sampler OTEL_TRACES_SAMPLER names, with its argument.
func sampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if arg != "" && (name == "traceidratio" || name == "parentbased_traceidratio") {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, &configError{"OTEL_TRACES_SAMPLER_ARG", "must be a ratio from 0 to 1"}
		}
		ratio = r
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	}
	return nil, &configError{"OTEL_TRACES_SAMPLER", "must be always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio"}
}

// startTracing sets up the app's tracing from the configuration: off
// (nothing wrapped, nothing exported) without an endpoint. The exporter
// flushes when the app closes.
func (a *app) startTracing(ctx context.Context) error {
	t, err := tracing.New(ctx, a.cfg.Tracing)
	if err != nil {
		return err
	}
	a.tracing = t
	if t.Enabled() {
		a.closers = append(a.closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := t.Shutdown(sctx); err != nil {
				a.logger.Warn("exporting the last spans failed", "error", err)
			}
		})
	}
	return nil
}

// instrument is the router's wrapper (httpapi.Config.Instrument): the
// metrics of each request, and its server span named by route.
func (a *app) instrument(next http.Handler, route func(*http.Request) string) http.Handler {
	return a.metrics.Middleware(a.tracing.NameSpans(next, route), route)
}

// storeTracing is what the store's dialect takes to trace its statements:
// nothing when tracing is off.
func storeTracing(t *tracing.Tracing) (pg []postgres.Option, lite []sqlite.Option) {
	if t == nil || !t.Enabled() {
		return nil, nil
	}
	pg = []postgres.Option{postgres.WithTracer(otelpgx.NewTracer(
		otelpgx.WithTracerProvider(t.Provider),
		otelpgx.WithMeterProvider(noop.NewMeterProvider()), // metrics are Prometheus's
	))}
	lite = []sqlite.Option{sqlite.WithTracerProvider(t.Provider)}
	return pg, lite
}

// hasherTracing has the password hasher record its spans when tracing is on.
func hasherTracing(t *tracing.Tracing) []password.Option {
	if t == nil || !t.Enabled() {
		return nil
	}
	return []password.Option{password.WithTracerProvider(t.Provider)}
}

// traceRedis has every command of rdb recorded as a span when tracing is on.
func traceRedis(t *tracing.Tracing, rdb redis.UniversalClient) error {
	if t == nil || !t.Enabled() {
		return nil
	}
	if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(t.Provider)); err != nil {
		return fmt.Errorf("trace redis: %w", err)
	}
	return nil
}
