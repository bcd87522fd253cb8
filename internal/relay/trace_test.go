package relay_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/usersvc/usersvc/internal/relay"
)

// spanAttr returns the value of the attribute key of span s.
func spanAttr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func spanLinkPosition(l sdktrace.Link) int64 {
	for _, kv := range l.Attributes {
		if kv.Key == "usersvc.events.position" {
			return kv.Value.AsInt64()
		}
	}
	return 0
}

// Each batch is a producer span: the messages are published, and the
// batch marked, under it; a batch whose publishing fails says so.
func TestRelayTracesEachBatch(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	st, b := newMemStore(), &fakeBroker{}
	b.breakAfter(40)
	st.add("u1", 90)
	// Events written under two traced requests: the first three under
	// one, the sixth under another.
	const traceA, traceB = "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"
	for i, tid := range map[int]string{0: traceA, 1: traceA, 2: traceA, 5: traceB} {
		st.events[i].TraceParent = "00-" + tid + "-00f067aa0ba902b7-01"
	}
	_, cancel, done := start(t, st, b.as("a"), relay.Options{Holder: "a", Tracer: tp})
	eventually(t, 3*time.Second, "every event published", func() bool { return st.unpublished() == 0 })
	cancel()
	<-done

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2 (the batch that broke, then the rest)", len(spans))
	}
	want := []struct {
		count, first, last, confirmed int64
		failed                        bool
	}{{90, 1, 90, 40, true}, {50, 41, 90, 50, false}}
	for i, s := range spans {
		w := want[i]
		if s.Name() != "publish test.events" || s.SpanKind() != trace.SpanKindProducer {
			t.Errorf("span %d: %q of kind %v", i, s.Name(), s.SpanKind())
		}
		for key, v := range map[string]int64{"messaging.batch.message_count": w.count, "usersvc.events.first_position": w.first,
			"usersvc.events.last_position": w.last, "usersvc.events.confirmed": w.confirmed} {
			if got := spanAttr(s, key).AsInt64(); got != v {
				t.Errorf("span %d: %s = %d, want %d", i, key, got, v)
			}
		}
		if sys, dest := spanAttr(s, "messaging.system").AsString(), spanAttr(s, "messaging.destination.name").AsString(); sys != "fake" || dest != "test.events" {
			t.Errorf("span %d: system %q, destination %q", i, sys, dest)
		}
		if failed := s.Status().Code == codes.Error; failed != w.failed || (failed && len(s.Events()) == 0) {
			t.Errorf("span %d: status %+v with %d events; failed: want %v", i, s.Status(), len(s.Events()), w.failed)
		}
	}
	// The first batch links to the two requests' traces, each once, with
	// the position of its first event; the second batch has none.
	var links []string
	for _, l := range spans[0].Links() {
		links = append(links, fmt.Sprintf("%s@%d", l.SpanContext.TraceID(), spanLinkPosition(l)))
	}
	if want := []string{traceA + "@1", traceB + "@6"}; !slices.Equal(links, want) || len(spans[1].Links()) != 0 {
		t.Errorf("links: first batch %v, want %v; second batch %d, want none", links, want, len(spans[1].Links()))
	}
	// The messages of each batch, and its mark, ran in its span: 41
	// messages in the first (the 41st arrived, its confirm did not), 50
	// in the second.
	got := b.log()
	if len(got) != 91 {
		t.Fatalf("%d messages, want 91", len(got))
	}
	for i, r := range got {
		want := spans[0].SpanContext()
		if i > 40 {
			want = spans[1].SpanContext()
		}
		if !r.span.Equal(want) {
			t.Fatalf("message %d published in span %v, want %v", i, r.span.SpanID(), want.SpanID())
		}
	}
	st.mu.Lock()
	marks := slices.Clone(st.markSpans)
	st.mu.Unlock()
	if len(marks) != 2 || !marks[0].Equal(spans[0].SpanContext()) || !marks[1].Equal(spans[1].SpanContext()) {
		t.Errorf("marks ran in spans %v; want one in each batch's span", marks)
	}
}

// Without a tracer the relay publishes as before, with no trace context.
func TestRelayWithoutTracer(t *testing.T) {
	st, b := newMemStore(), &fakeBroker{}
	st.add("u1", 5)
	start(t, st, b.as("a"), relay.Options{Holder: "a"})
	eventually(t, 3*time.Second, "every event published", func() bool { return st.unpublished() == 0 })
	for i, r := range b.log() {
		if r.span.IsValid() {
			t.Fatalf("message %d published in span %v without a tracer", i, r.span.SpanID())
		}
	}
}

// Through each broker, a message carries the W3C trace context of the
// span of its batch, for a consumer to continue the trace.
func TestBrokersCarryTheTraceContext(t *testing.T) {
	bothBrokers(t, func(t *testing.T, b *testBroker) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		st := newMemStore()
		st.add("u1", 3)
		_, cancel, done := start(t, st, b.at(b.addr), relay.Options{Holder: "a", Lease: 2 * time.Second, Tracer: tp})
		waitDelivered(t, b, 3, 10*time.Second)
		eventually(t, 5*time.Second, "every event marked published", func() bool { return st.unpublished() == 0 })
		cancel()
		<-done
		spans := rec.Ended()
		if len(spans) != 1 {
			t.Fatalf("%d spans, want 1", len(spans))
		}
		sc := spans[0].SpanContext()
		want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
		for i, tp := range b.parents() {
			if tp != want {
				t.Errorf("message %d: traceparent %q, want %q", i, tp, want)
			}
		}
		if sys := spanAttr(spans[0], "messaging.system").AsString(); sys != map[string]string{"RabbitMQ": "rabbitmq", "NATS": "nats"}[b.name] {
			t.Errorf("messaging.system = %q", sys)
		}
	})
}
