package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/tracing"
)

// TestTraceOfALogin follows one login through the service wired as serve
// wires it, with its spans exported to memory: the server span continues
// the caller's W3C trace and is named by route; the store's statements and
// the password verification are its children; the request's log lines
// name the trace.
func TestTraceOfALogin(t *testing.T) {
	cfg, err := loadConfig(env("DATA_DIR="+t.TempDir(), "LOG_FORMAT=json"))
	if err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.WithProcessor(tracing.Config{}, sdktrace.NewSimpleSpanProcessor(exp))
	logs := &syncBuffer{}
	a, err := newAppTraced(t.Context(), cfg, logs, tr, false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	srv := httptest.NewServer(a.tracing.Handler(httpapi.NewServer(a.logger, httpapi.Config{Instrument: a.instrument}, a.accounts, a.health)))
	defer srv.Close()

	email, pw := "ada@example.com", "Analytical#1843"
	if st, body := post(t, srv.URL+"/api/v1/users/", map[string]any{"email": email, "password": pw, "name": "Ada"}); st != http.StatusCreated {
		t.Fatalf("register: %d %v", st, body)
	}
	exp.Reset()
	const (
		callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		callerSpan  = "00f067aa0ba902b7"
	)
	st, body := post(t, srv.URL+"/api/v1/users/login", map[string]any{"email": email, "password": pw},
		"traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	if st != http.StatusOK {
		t.Fatalf("login: %d %v", st, body)
	}

	spans := exp.GetSpans()
	var server *tracetest.SpanStub
	for i := range spans {
		if spans[i].SpanKind == trace.SpanKindServer {
			server = &spans[i]
		}
	}
	if server == nil {
		t.Fatalf("no server span among %d spans", len(spans))
	}
	if server.Name != "POST /api/v1/users/login" {
		t.Errorf("server span named %q", server.Name)
	}
	if server.SpanContext.TraceID().String() != callerTrace || server.Parent.SpanID().String() != callerSpan || !server.Parent.IsRemote() {
		t.Errorf("the server span does not continue the caller's trace: trace %s, parent %s",
			server.SpanContext.TraceID(), server.Parent.SpanID())
	}
	route := ""
	for _, kv := range server.Attributes {
		if kv.Key == "http.route" {
			route = kv.Value.AsString()
		}
	}
	if route != "/api/v1/users/login" {
		t.Errorf("http.route = %q", route)
	}

	var stores, hashes int
	for _, s := range spans {
		if s.Parent.SpanID() != server.SpanContext.SpanID() {
			continue
		}
		system := ""
		for _, kv := range s.Attributes {
			if kv.Key == "db.system.name" {
				system = kv.Value.AsString()
			}
		}
		switch {
		case system == "sqlite":
			stores++
		case s.Name == "password.verify":
			hashes++
		}
	}
	if stores == 0 || hashes != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name)
		}
		t.Errorf("children of the server span: %d store spans, %d password.verify spans; all spans: %v", stores, hashes, names)
	}

	// The request's access log line names its trace.
	deadline := time.Now().Add(5 * time.Second)
	for {
		found := false
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct {
				Msg, Route string
				TraceID    string `json:"trace_id"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "request" && line.Route == "POST /api/v1/users/login" {
				found = true
				if line.TraceID != callerTrace {
					t.Errorf("the login's log line has trace_id %q, want %s", line.TraceID, callerTrace)
				}
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the login:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The OTEL_* variables: off without an endpoint, the traces path added to
// the general endpoint, and a malformed value stops the start naming it.
func TestTracingConfig(t *testing.T) {
	c, err := loadConfig(env("DATA_DIR=" + t.TempDir()))
	if err != nil || c.Tracing.Endpoint != "" {
		t.Fatalf("no endpoint: %v, endpoint %q", err, c.Tracing.Endpoint)
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"}, "http://collector:4318/v1/traces"},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4318/"}, "https://collector:4318/v1/traces"},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://b/traces"}, "http://b/traces"},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4318", "OTEL_SDK_DISABLED=true"}, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4318", "OTEL_TRACES_EXPORTER=none"}, ""},
	} {
		c, err := loadTracing(env(tc.env...))
		if err != nil || c.Endpoint != tc.want {
			t.Errorf("%v: endpoint %q, %v; want %q", tc.env, c.Endpoint, err, tc.want)
		}
	}
	c2, err := loadTracing(env("OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4318", "OTEL_SERVICE_NAME=users-eu",
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=prod,service.name=ignored",
		"OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20s3cret", "OTEL_EXPORTER_OTLP_TIMEOUT=2500",
		"OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.25"))
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]string{}
	for _, kv := range c2.Resource {
		res[string(kv.Key)] = kv.Value.AsString()
	}
	if res["service.name"] != "users-eu" || res["deployment.environment.name"] != "prod" || res["service.version"] == "" {
		t.Errorf("resource %v", res)
	}
	if c2.Headers["authorization"] != "Bearer s3cret" || c2.Timeout != 2500*time.Millisecond {
		t.Errorf("headers %v, timeout %v", c2.Headers, c2.Timeout)
	}
	if !strings.Contains(c2.Sampler.Description(), "TraceIDRatioBased{0.25}") {
		t.Errorf("sampler %s", c2.Sampler.Description())
	}

	for _, tc := range []struct{ env, name string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=ftp://x", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"OTEL_EXPORTER_OTLP_HEADERS=novalue", "OTEL_EXPORTER_OTLP_HEADERS"},
		{"OTEL_EXPORTER_OTLP_TIMEOUT=10s", "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{"OTEL_TRACES_SAMPLER=sometimes", "OTEL_TRACES_SAMPLER"},
		{"OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=2", "OTEL_TRACES_SAMPLER_ARG"},
		{"OTEL_SDK_DISABLED=yes", "OTEL_SDK_DISABLED"},
		{"OTEL_TRACES_EXPORTER=zipkin", "OTEL_TRACES_EXPORTER"},
		{"OTEL_RESOURCE_ATTRIBUTES=a", "OTEL_RESOURCE_ATTRIBUTES"},
	} {
		vars := append([]string{"DATA_DIR=" + t.TempDir(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://a:4318"}, strings.Fields(tc.env)...)
		_, err := loadConfig(env(vars...))
		if err == nil || !strings.HasPrefix(err.Error(), "config: "+tc.name+": ") {
			t.Errorf("%s: %v, want an error naming %s", tc.env, err, tc.name)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error quotes a header value: %v", err)
		}
	}
}

// TestTraceOfAPublishedBatch: with tracing on and a broker, the relay the
// app wires records a producer span per batch, the statements that mark
// the batch published are its children, and the message carries its
// traceparent.
func TestTraceOfAPublishedBatch(t *testing.T) {
	raw, exchange, deliveries := rabbitQueue(t, "#")

	cfg, err := loadConfig(env("DATA_DIR="+t.TempDir(), "EVENTS_BROKER_URL="+raw, "EVENTS_EXCHANGE="+exchange, "EVENTS_RELAY_LEASE=2s"))
	if err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.WithProcessor(tracing.Config{}, sdktrace.NewSimpleSpanProcessor(exp))
	a, err := newAppTraced(t.Context(), cfg, &syncBuffer{}, tr, false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	stop := a.startEvents(t.Context(), a.events)
	defer stop()
	srv := httptest.NewServer(a.tracing.Handler(httpapi.NewServer(a.logger, httpapi.Config{Instrument: a.instrument}, a.accounts, a.health)))
	defer srv.Close()
	if st, body := post(t, srv.URL+"/api/v1/users/", map[string]any{"email": "ada@example.com", "password": "Analytical#1843", "name": "Ada"}); st != http.StatusCreated {
		t.Fatalf("register: %d %v", st, body)
	}

	var traceparent string
	select {
	case d := <-deliveries:
		traceparent, _ = d.Headers["traceparent"].(string)
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
	}
	var publish *tracetest.SpanStub
	var marks int
	deadline := time.Now().Add(5 * time.Second)
	for publish == nil || marks == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("publish span %v with %d store spans under it", publish, marks)
		}
		time.Sleep(10 * time.Millisecond)
		spans := exp.GetSpans()
		for i := range spans {
			if spans[i].Name == "publish "+exchange && spans[i].SpanKind == trace.SpanKindProducer {
				publish = &spans[i]
			}
		}
		marks = 0
		for _, s := range spans {
			if publish != nil && s.Parent.SpanID() == publish.SpanContext.SpanID() {
				for _, kv := range s.Attributes {
					if kv.Key == "db.system.name" && kv.Value.AsString() == "sqlite" {
						marks++
					}
				}
			}
		}
	}
	sc := publish.SpanContext
	if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; traceparent != want {
		t.Errorf("the message's traceparent = %q, want the publish span's %q", traceparent, want)
	}
	// The batch links to the trace of the registration that wrote its
	// event, which the event itself names.
	var register trace.TraceID // of the one request made
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindServer && strings.HasPrefix(s.Name, "POST /api/v1/users") {
			register = s.SpanContext.TraceID()
		}
	}
	if len(publish.Links) != 1 || !register.IsValid() || publish.Links[0].SpanContext.TraceID() != register {
		t.Errorf("publish span links %+v; want one to the registration's trace %s", publish.Links, register)
	}
	evs, err := a.events.(interface {
		Events(ctx context.Context, after int64, limit int) ([]usersvc.Event, error)
	}).Events(t.Context(), 0, 10)
	if err != nil || len(evs) != 1 || !strings.HasPrefix(evs[0].TraceParent, "00-"+register.String()+"-") {
		t.Errorf("events %+v, %v; want one with the registration's traceparent", evs, err)
	}
}
