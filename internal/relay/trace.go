package relay

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/usersvc/usersvc"
)

// traceContext is the W3C trace context (traceparent, and tracestate when
// there is one) of the span in ctx, for the headers of the messages
// published under it; nil without a span, as when tracing is off.
func traceContext(ctx context.Context) propagation.MapCarrier {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c
}

// maxLinks bounds the links of a publish span (OpenTelemetry's SDK keeps
// 128 by default).
const maxLinks = 128

// origins links a batch's span to the traces of the requests that wrote
// its events (their traceparent), each trace once, at most maxLinks; none
// without a tracer.
func (r *Relay) origins(events []usersvc.Event) []trace.Link {
	if !r.traced {
		return nil
	}
	var links []trace.Link
	seen := map[trace.TraceID]bool{}
	for _, ev := range events {
		if len(links) == maxLinks {
			break
		}
		if ev.TraceParent == "" {
			continue
		}
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
			propagation.MapCarrier{"traceparent": ev.TraceParent}))
		if sc.IsValid() && !seen[sc.TraceID()] {
			seen[sc.TraceID()] = true
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
				attribute.Int64("usersvc.events.position", ev.Position)}})
		}
	}
	return links
}
