package relay_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/relay"
)

// outbox is a store whose changes the tests can make.
type outbox interface {
	relay.Store
	// write makes one change of user, which writes its event.
	write(t testing.TB, user string)
	// all is every event of the outbox, in ascending position.
	all(t testing.TB) []usersvc.Event
	// pending counts the events not yet marked published.
	pending(t testing.TB) int
	// replica is the store of another replica on the same database.
	replica(t testing.TB) relay.Store
}

// outboxes are the stores the integration tests run on.
func outboxes(t *testing.T, test func(t *testing.T, o func(t testing.TB) outbox)) {
	t.Run("SQLite", func(t *testing.T) { test(t, sqliteOutbox) })
	t.Run("PostgreSQL", func(t *testing.T) { test(t, postgresOutbox) })
}

// writeRounds makes n changes over users users, one per user in turn,
// from four writers at once (each writes the changes of its own users,
// in order).
func writeRounds(t testing.TB, o outbox, users, n int) {
	const writers = 4
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range n {
				if u := i % users; u%writers == w {
					o.write(t, fmt.Sprintf("user-%02d", u))
				}
			}
		})
	}
	wg.Wait()
}

func waitDelivered(t *testing.T, b *testBroker, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for b.distinct() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d events arrived within %v", b.name, b.distinct(), want, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every event arrives at a consumer of each broker, in order.
func TestBrokersReceiveEveryEvent(t *testing.T) {
	outboxes(t, func(t *testing.T, newOutbox func(testing.TB) outbox) {
		bothBrokers(t, func(t *testing.T, b *testBroker) {
			o := newOutbox(t)
			writeRounds(t, o, 5, 100)
			r, _, _ := start(t, o, b.at(b.addr), relay.Options{Holder: "a", Lease: 2 * time.Second, BatchSize: 32})
			waitDelivered(t, b, 100, 10*time.Second)
			writeRounds(t, o, 7, 150) // while the relay runs
			waitDelivered(t, b, 250, 10*time.Second)
			eventually(t, 5*time.Second, "every event marked published", func() bool { return o.pending(t) == 0 })
			if s := r.Status(t.Context()); s != "connected" {
				t.Errorf("status = %q, want connected", s)
			}
			got := b.received()
			checkDelivery(t, o.all(t), got)
			// Without a failure, nothing is repeated and the order is global.
			for i, ev := range o.all(t) {
				if i >= len(got) || got[i].ID != ev.ID {
					t.Fatalf("message %d is not event %d: the global order was not kept", i, ev.Position)
				}
			}
		})
	})
}

// With the connection to the broker cut, 10,000 changes wait in the
// outbox; once it is restored every event arrives, without a restart.
func TestBrokerOutage(t *testing.T) {
	const users, total, before = 20, 10_000, 1_000
	outboxes(t, func(t *testing.T, newOutbox func(testing.TB) outbox) {
		bothBrokers(t, func(t *testing.T, b *testBroker) {
			o := newOutbox(t)
			p := newProxy(t, b.addr)
			r, _, _ := start(t, o, b.at(p.Addr()), relay.Options{Holder: "a", Lease: 3 * time.Second, MaxBackoff: 500 * time.Millisecond})
			// Cut while the first thousand are being written and relayed.
			first := make(chan struct{})
			go func() { defer close(first); writeRounds(t, o, users, before) }()
			for b.distinct() < 100 {
				time.Sleep(time.Millisecond)
			}
			p.Cut()
			atCut := b.distinct()
			<-first
			began := time.Now()
			writeRounds(t, o, users, total-before)
			t.Logf("%d changes written in %v with the broker cut (%d events had arrived at the cut)", total-before, time.Since(began), atCut)
			time.Sleep(time.Second)
			if s := r.Status(t.Context()); s != "disconnected" {
				t.Errorf("status with the connection cut = %q, want disconnected", s)
			}
			if n := o.pending(t); n < total-before {
				t.Fatalf("%d events pending in the outbox during the outage, want at least %d", n, total-before)
			}
			arrived := b.distinct()
			p.Restore()
			restored := time.Now()
			waitDelivered(t, b, total, 60*time.Second)
			t.Logf("%d events arrived %v after the connection was restored (%d before it)", total-arrived, time.Since(restored), arrived)
			eventually(t, 5*time.Second, "every event marked published", func() bool { return o.pending(t) == 0 })
			checkDelivery(t, o.all(t), b.received())
		})
	})
}

// Two relays on one store: the lease holder dies mid-stream without
// releasing its lease; the other continues within seconds; nothing is lost.
func TestTwoRelaysTakeOver(t *testing.T) {
	const lease = 2 * time.Second
	outboxes(t, func(t *testing.T, newOutbox func(testing.TB) outbox) {
		bothBrokers(t, func(t *testing.T, b *testBroker) {
			o := newOutbox(t)
			obsA, obsB := &countObserver{}, &countObserver{}
			_, crashA, doneA := start(t, keepLease{o}, b.at(b.addr), relay.Options{Holder: "a", Lease: lease, BatchSize: 50, Observer: obsA})
			eventually(t, 5*time.Second, "a holds the lease", func() bool { return obsA.get().leading })
			start(t, o.replica(t), b.at(b.addr), relay.Options{Holder: "b", Lease: lease, BatchSize: 50, Observer: obsB})

			var written atomic.Int64
			stop := make(chan struct{})
			writing := make(chan struct{})
			go func() { // a steady stream of changes over 10 users
				defer close(writing)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					o.write(t, fmt.Sprintf("user-%02d", i%10))
					written.Add(1)
					if i%10 == 9 {
						time.Sleep(5 * time.Millisecond)
					}
				}
			}()
			for b.distinct() < 500 {
				time.Sleep(5 * time.Millisecond)
			}
			crashA()
			<-doneA
			// Only b can publish what is written after the crash.
			crashed, sofar := time.Now(), o.all(t)
			lastBefore := sofar[len(sofar)-1].Position
			for !arrivedAfter(b, lastBefore) {
				if time.Since(crashed) > 3*lease {
					t.Fatalf("no event written after the crash arrived within %v", 3*lease)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("b took over: the first event written after a crashed arrived %v after the crash (lease %v)", time.Since(crashed), lease)
			time.Sleep(500 * time.Millisecond)
			close(stop)
			<-writing
			waitDelivered(t, b, int(written.Load()), 30*time.Second)
			if !obsB.get().leading {
				t.Errorf("b does not hold the lease")
			}
			checkDelivery(t, o.all(t), b.received())
		})
	})
}

// The relay's throughput to RabbitMQ with publisher confirms, into a
// durable queue: the outbox holds b.N events when the relay starts.
func BenchmarkRelayRabbitMQ(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchmarkRelay(b, newMemStore()) }) // the broker's part alone
	b.Run("SQLite", func(b *testing.B) { benchmarkRelay(b, sqliteOutbox(b)) })
	b.Run("PostgreSQL", func(b *testing.B) { benchmarkRelay(b, postgresOutbox(b)) })
}

func benchmarkRelay(b *testing.B, o outbox) {
	tb := rabbitMQDurable(b)
	b.StopTimer()
	writeRounds(b, o, 100, b.N)
	b.StartTimer()
	r := relay.New(o, tb.at(tb.addr), relay.Options{Holder: "bench", Lease: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.ResetTimer()
	began := time.Now()
	go func() { defer close(done); r.Run(ctx) }()
	for o.pending(b) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(began)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// arrivedAfter reports whether an event after position pos has arrived.
func arrivedAfter(b *testBroker, pos int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.got) - 1; i >= 0; i-- {
		if b.got[i].Position > pos {
			return true
		}
	}
	return false
}
