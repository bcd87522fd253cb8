package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/usersvc/usersvc/internal/tracing"
)

// Off wraps nothing and records nothing: the handlers come back as they
// were, and the provider's spans are not recorded.
func TestOffCostsNothing(t *testing.T) {
	off, err := tracing.New(t.Context(), tracing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if off.Enabled() {
		t.Fatal("tracing without an endpoint is on")
	}
	mux := http.NewServeMux()
	if h := off.Handler(mux); h != http.Handler(mux) {
		t.Error("Handler wrapped the handler while tracing is off")
	}
	if h := off.NameSpans(mux, nil); h != http.Handler(mux) {
		t.Error("NameSpans wrapped the handler while tracing is off")
	}
	_, span := off.Provider.Tracer("t").Start(t.Context(), "x")
	if span.IsRecording() {
		t.Error("a span of the off provider records")
	}
	if err := off.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}
}

// On, a request is a server span named by the route the router matched,
// and the log lines written with its context carry its trace and span ids.
func TestServerSpanAndLogLine(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.WithProcessor(tracing.Config{}, sdktrace.NewSimpleSpanProcessor(exp))
	var logs bytes.Buffer
	logger := slog.New(tracing.LogHandler(slog.NewJSONHandler(&logs, nil)))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "inside")
	})
	route := func(r *http.Request) string { return r.Pattern }
	srv := httptest.NewServer(tr.Handler(tr.NameSpans(mux, route)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/things/42")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "GET /things/{id}" {
		t.Fatalf("spans: %+v", spans)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["trace_id"] != spans[0].SpanContext.TraceID().String() || line["span_id"] != spans[0].SpanContext.SpanID().String() {
		t.Errorf("log line %v, span %s/%s", line, spans[0].SpanContext.TraceID(), spans[0].SpanContext.SpanID())
	}

	// Without a span in the context, no ids.
	logs.Reset()
	logger.InfoContext(context.Background(), "outside")
	if bytes.Contains(logs.Bytes(), []byte("trace_id")) {
		t.Errorf("a line outside any request has a trace id: %s", logs.String())
	}
}
