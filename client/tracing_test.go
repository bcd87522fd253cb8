package client_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/usersvc/usersvc/client"
)

// WithTracing makes each request a client span, child of the caller's
// span, and sends its context in traceparent; the caller's http.Client is
// left as it was.
func TestWithTracing(t *testing.T) {
	var (
		mu     sync.Mutex
		parent string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		parent = r.Header.Get("Traceparent")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status": "healthy", "database": "connected", "redis": "not_configured", "version": "dev", "timestamp": "2026-01-01T00:00:00Z"}`))
	}))
	defer srv.Close()

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	hc := &http.Client{}
	c, err := client.New(srv.URL, client.WithHTTPClient(hc), client.WithTracing(tp))
	if err != nil {
		t.Fatal(err)
	}
	ctx, caller := tp.Tracer("test").Start(t.Context(), "caller")
	if _, err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	caller.End()
	if hc.Transport != nil {
		t.Error("WithTracing changed the caller's http.Client")
	}

	var clientSpan *tracetest.SpanStub
	spans := exp.GetSpans()
	for i := range spans {
		if spans[i].SpanKind == trace.SpanKindClient {
			clientSpan = &spans[i]
		}
	}
	if clientSpan == nil {
		t.Fatalf("no client span among %d spans", len(spans))
	}
	if clientSpan.Parent.SpanID() != caller.SpanContext().SpanID() {
		t.Error("the client span is not a child of the caller's span")
	}
	mu.Lock()
	got := parent
	mu.Unlock()
	// traceparent: 00-<trace id>-<span id>-<flags>
	want := "00-" + clientSpan.SpanContext.TraceID().String() + "-" + clientSpan.SpanContext.SpanID().String() + "-"
	if !strings.HasPrefix(got, want) {
		t.Errorf("traceparent %q, want it to start with %q", got, want)
	}

	// Without WithTracing no trace context is sent.
	plain, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Health(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if parent != "" {
		t.Errorf("a client without WithTracing sent traceparent %q", parent)
	}
}
