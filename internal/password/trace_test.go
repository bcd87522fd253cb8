package password

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Hashes and verifications are spans when a tracer provider is given, a
// verification against a dummy hash named as one against a real hash.
func TestSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	cheap := Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, err := New(WithParams(cheap), WithTracerProvider(tp), WithMaxConcurrent(1))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.Hash(t.Context(), "Secret#1234")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := h.Verify(t.Context(), "Secret#1234", enc); !ok || err != nil {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	h.Burn(t.Context(), "whatever")
	var names []string
	for _, s := range exp.GetSpans() {
		names = append(names, s.Name)
		found := false
		for _, a := range s.Attributes {
			found = found || a.Key == "usersvc.password.wait_ms"
		}
		if !found {
			t.Errorf("span %s has no wait time", s.Name)
		}
	}
	want := []string{"password.hash", "password.verify", "password.verify"}
	if len(names) != len(want) || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
		t.Errorf("spans %v, want %v", names, want)
	}

	// A hash that finds no slot before its context ends is an error span.
	exp.Reset()
	h.sem <- struct{}{} // the only slot is taken
	defer func() { <-h.sem }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "Secret#1234"); err == nil {
		t.Fatal("Hash without a slot succeeded")
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "password.hash" || spans[0].Status.Code != codes.Error {
		t.Errorf("a hash that waited in vain: %+v", spans)
	}
}
