package relay_test

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/relay"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs a relay until the test ends (or cancel is called) and
// returns the cancel and a channel closed once Run returned.
func start(t *testing.T, st relay.Store, b relay.Broker, opts relay.Options) (*relay.Relay, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	if opts.Lease == 0 {
		opts.Lease = 600 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	r := relay.New(st, b, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, cancel, done
}

// eventually fails the test unless cond holds within d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func events(rs []received) []usersvc.Event {
	out := make([]usersvc.Event, len(rs))
	for i, r := range rs {
		out[i] = r.ev
	}
	return out
}

func TestRelayPublishesInOrderAndMarks(t *testing.T) {
	st, b := newMemStore(), &fakeBroker{}
	st.add("u1", 3)
	st.add("u2", 1200) // more than a batch
	_, _, _ = start(t, st, b.as("a"), relay.Options{Holder: "a", BatchSize: 100})
	eventually(t, 5*time.Second, "every event published", func() bool { return st.unpublished() == 0 })
	// Written after the relay went idle: woken by EventsChanged, long
	// before the lease's renewal would look again.
	began := time.Now()
	st.add("u1", 1)
	eventually(t, 150*time.Millisecond, "a new event published at once", func() bool { return st.unpublished() == 0 })
	t.Logf("a new event was published %v after its commit", time.Since(began))
	checkDelivery(t, st.events, events(b.log()))
	if got := len(b.log()); got != len(st.events) {
		t.Errorf("broker received %d messages for %d events: repeats without a failure", got, len(st.events))
	}
}

func TestRelayWaitsForTheBroker(t *testing.T) {
	st, b := newMemStore(), &fakeBroker{down: true}
	r, _, _ := start(t, st, b.as("a"), relay.Options{Holder: "a"})
	st.add("u1", 50)
	time.Sleep(300 * time.Millisecond)
	if n := st.unpublished(); n != 50 {
		t.Fatalf("with the broker down, %d of 50 events left the outbox", 50-n)
	}
	if s := r.Status(t.Context()); s != "disconnected" {
		t.Errorf("status with the broker down = %q, want disconnected", s)
	}
	b.setDown(false)
	eventually(t, 3*time.Second, "the backlog published once the broker is back", func() bool { return st.unpublished() == 0 })
	if s := r.Status(t.Context()); s != "connected" {
		t.Errorf("status with the broker up = %q, want connected", s)
	}
	// The connection breaks while idle: reconnected without a restart.
	b.setDown(true)
	eventually(t, time.Second, "status disconnected", func() bool { return r.Status(t.Context()) == "disconnected" })
	st.add("u2", 20)
	time.Sleep(100 * time.Millisecond)
	b.setDown(false)
	eventually(t, 3*time.Second, "events after the second outage published", func() bool { return st.unpublished() == 0 })
	checkDelivery(t, st.events, events(b.log()))
}

func TestRelayRetriesFromTheFirstUnconfirmedEvent(t *testing.T) {
	st, b := newMemStore(), &fakeBroker{}
	b.breakAfter(40)
	st.add("u1", 30)
	st.add("u2", 30)
	st.add("u1", 30)
	obs := &countObserver{}
	start(t, st, b.as("a"), relay.Options{Holder: "a", Observer: obs})
	eventually(t, 3*time.Second, "every event published", func() bool { return st.unpublished() == 0 })
	got := events(b.log())
	checkDelivery(t, st.events, got)
	// Event 41 arrived before the break and again after it.
	if len(got) != 91 || got[40].ID != got[41].ID {
		t.Errorf("got %d messages; want 91 with event 41 repeated", len(got))
	}
	if f := obs.get().failures; f != 1 {
		t.Errorf("publish failures = %d, want 1", f)
	}
	if p := obs.get().published; p != 90 {
		t.Errorf("published = %d, want 90", p)
	}
}

func TestOneRelayAtATime(t *testing.T) {
	st, b := newMemStore(), &fakeBroker{}
	lease := 600 * time.Millisecond
	// a crashes: its lease is never released, it only expires.
	_, cancelA, doneA := start(t, keepLease{st}, b.as("a"), relay.Options{Holder: "a", Lease: lease, BatchSize: 10})
	eventually(t, time.Second, "a holds the lease", func() bool { return st.holder() == "a" })
	start(t, st, b.as("b"), relay.Options{Holder: "b", Lease: lease, BatchSize: 10})
	st.add("u1", 100)
	eventually(t, 2*time.Second, "first events published", func() bool { return st.unpublished() == 0 })
	for _, r := range b.log() {
		if r.holder != "a" {
			t.Fatalf("b published while a held the lease")
		}
	}
	cancelA()
	<-doneA
	crashed := time.Now()
	st.add("u2", 100)
	eventually(t, 2*lease, "b takes over", func() bool { return st.unpublished() == 0 })
	t.Logf("b published the backlog %v after a died (lease %v)", time.Since(crashed), lease)
	if st.holder() != "b" {
		t.Errorf("lease holder = %q, want b", st.holder())
	}
	checkDelivery(t, st.events, events(b.log()))
}

func TestStopReleasesTheLease(t *testing.T) {
	st, b := newMemStore(), &fakeBroker{}
	lease := 5 * time.Second
	_, cancelA, doneA := start(t, st, b.as("a"), relay.Options{Holder: "a", Lease: lease})
	eventually(t, time.Second, "a holds the lease", func() bool { return st.holder() == "a" })
	start(t, st, b.as("b"), relay.Options{Holder: "b", Lease: lease})
	cancelA()
	<-doneA
	// Released: nobody holds it, or b already took it (b may look at any
	// moment after the release), but never a, whose lease had 5 s to run.
	if h := st.holder(); h == "a" {
		t.Fatalf("after a stopped, lease holder = %q, want none or b", h)
	}
	// b looks again within a third of the lease.
	eventually(t, lease/2, "b takes the freed lease", func() bool { return st.holder() == "b" })
}

func TestBacklog(t *testing.T) {
	st := newMemStore()
	now := time.Now()
	if n, age, err := relay.Backlog(t.Context(), st, now); err != nil || n != 0 || age != 0 {
		t.Fatalf("empty outbox: backlog %d, age %v, err %v", n, age, err)
	}
	st.add("u1", 10)
	st.events[0].Time = now.Add(-time.Minute)
	st.MarkEventsPublished(t.Context(), []int64{1, 2, 3}, now)
	st.events[3].Time = now.Add(-30 * time.Second)
	n, age, err := relay.Backlog(t.Context(), st, now)
	if err != nil || n != 7 || age != 30*time.Second {
		t.Fatalf("backlog %d, age %v, err %v; want 7, 30s", n, age, err)
	}
}

type countObserver struct {
	mu sync.Mutex
	c  counts
}

type counts struct {
	published, failures int
	backlog             int64
	leading             bool
}

func (o *countObserver) get() counts { o.mu.Lock(); defer o.mu.Unlock(); return o.c }
func (o *countObserver) EventsPublished(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.c.published += n
}
func (o *countObserver) EventPublishFailed() { o.mu.Lock(); defer o.mu.Unlock(); o.c.failures++ }
func (o *countObserver) EventBacklog(n int64, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.c.backlog = n
}
func (o *countObserver) EventRelayLeading(l bool) { o.mu.Lock(); defer o.mu.Unlock(); o.c.leading = l }
