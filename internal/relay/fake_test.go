package relay_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/relay"
)

// memStore is an outbox in memory with the lease semantics of the store.
type memStore struct {
	mu        sync.Mutex
	events    []usersvc.Event // ascending position
	published map[int64]time.Time
	changed   chan struct{}
	lease     struct {
		holder string
		until  time.Time
	}
	marks int // MarkEventsPublished calls
	// markSpans are the spans the calls of MarkEventsPublished ran in.
	markSpans []trace.SpanContext
}

var _ relay.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{published: map[int64]time.Time{}, changed: make(chan struct{})}
}

// add appends n events of user (positions continue the sequence).
func (s *memStore) add(user string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		pos := int64(len(s.events) + 1)
		s.events = append(s.events, usersvc.Event{
			SpecVersion: usersvc.EventSpecVersion, ID: uuid.NewString(), Source: usersvc.EventSource,
			Type: usersvc.EventPreferencesUpdated, Subject: user, Time: time.Now().UTC(),
			DataContentType: usersvc.EventContentType, Position: pos, Data: []byte(`{}`),
		})
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *memStore) UnpublishedEvents(_ context.Context, limit int) ([]usersvc.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []usersvc.Event
	for _, ev := range s.events {
		if _, ok := s.published[ev.Position]; !ok && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (s *memStore) MarkEventsPublished(ctx context.Context, positions []int64, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marks++
	s.markSpans = append(s.markSpans, trace.SpanContextFromContext(ctx))
	for _, p := range positions {
		s.published[p] = now
	}
	return nil
}

func (s *memStore) AcquireLease(_ context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease.holder == holder || s.lease.holder == "" || !now.Before(s.lease.until) {
		s.lease.holder, s.lease.until = holder, now.Add(ttl)
		return true, nil
	}
	return false, nil
}

func (s *memStore) ReleaseLease(_ context.Context, name, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease.holder == holder {
		s.lease.holder = ""
	}
	return nil
}

func (s *memStore) EventsChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *memStore) EventBounds(context.Context) (int64, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == 0 {
		return 0, 0, nil
	}
	return s.events[0].Position, s.events[len(s.events)-1].Position, nil
}

func (s *memStore) unpublished() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events) - len(s.published)
}

// The outbox of the integration tests.

func (s *memStore) write(_ testing.TB, user string) { s.add(user, 1) }

func (s *memStore) all(testing.TB) []usersvc.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]usersvc.Event(nil), s.events...)
}

func (s *memStore) pending(testing.TB) int { return s.unpublished() }

func (s *memStore) replica(testing.TB) relay.Store { return s }

func (s *memStore) holder() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease.holder
}

// keepLease is a store whose ReleaseLease does nothing: a replica that
// crashed never frees its lease.
type keepLease struct{ relay.Store }

func (keepLease) ReleaseLease(context.Context, string, string) error { return nil }

// fakeBroker records what each connection published, in order.
type fakeBroker struct {
	mu        sync.Mutex
	down      bool
	failAfter int // > 0: the next Publish confirms this many, then the connection breaks
	received  []received
	conns     []*fakeConn
}

type received struct {
	ev     usersvc.Event
	holder string
	span   trace.SpanContext // of the publish
}

func (b *fakeBroker) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
	if down {
		for _, c := range b.conns {
			c.Close()
		}
	}
}

func (b *fakeBroker) breakAfter(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failAfter = n
}

func (b *fakeBroker) log() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.received...)
}

// as returns a Broker that records publishes under holder's name.
func (b *fakeBroker) as(holder string) relay.Broker { return brokerAs{b, holder} }

type brokerAs struct {
	b      *fakeBroker
	holder string
}

func (a brokerAs) Describe() (system, destination string) { return "fake", "test.events" }

func (a brokerAs) Connect(ctx context.Context) (relay.Conn, error) {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	if a.b.down {
		return nil, errors.New("connection refused")
	}
	c := &fakeConn{b: a.b, holder: a.holder, done: make(chan struct{})}
	a.b.conns = append(a.b.conns, c)
	return c, nil
}

type fakeConn struct {
	b      *fakeBroker
	holder string
	done   chan struct{}
	once   sync.Once
}

func (c *fakeConn) Done() <-chan struct{} { return c.done }
func (c *fakeConn) Close() error          { c.once.Do(func() { close(c.done) }); return nil }

func (c *fakeConn) Publish(ctx context.Context, events []usersvc.Event) (int, error) {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	select {
	case <-c.done:
		return 0, errors.New("connection closed")
	default:
	}
	if c.b.down {
		c.Close()
		return 0, errors.New("connection reset")
	}
	n := len(events)
	fail := c.b.failAfter > 0 && c.b.failAfter < n
	if fail {
		n = c.b.failAfter
		c.b.failAfter = 0
	}
	for _, ev := range events[:n] {
		c.b.received = append(c.b.received, received{ev, c.holder, trace.SpanContextFromContext(ctx)})
	}
	if fail {
		// The next event arrived too, but its confirm was lost.
		c.b.received = append(c.b.received, received{events[n], c.holder, trace.SpanContextFromContext(ctx)})
		c.Close()
		return n, errors.New("connection reset before the confirm")
	}
	return n, nil
}
