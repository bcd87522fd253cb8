package relay

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/usersvc/usersvc"
)

// LeaseName is the store lease whose holder relays.
const LeaseName = "relay"

// Store is what the relay needs of the outbox.
type Store interface {
	// UnpublishedEvents returns up to limit events not yet marked
	// published, in ascending position.
	UnpublishedEvents(ctx context.Context, limit int) ([]usersvc.Event, error)
	// MarkEventsPublished marks the events at positions published. The
	// positions must be the oldest unpublished events, in order: a
	// prefix of what UnpublishedEvents returned. The SQL store keeps
	// only a watermark (published through the greatest position), which
	// never moves back, so a relay that marks late changes nothing.
	MarkEventsPublished(ctx context.Context, positions []int64, now time.Time) error
	// AcquireLease reports whether holder holds the lease name until
	// now+ttl (it was free, expired, or already holder's).
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	// ReleaseLease frees the lease if holder holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
	// EventsChanged returns a channel closed when new events may have
	// committed; a fresh one is needed after each wake.
	EventsChanged() <-chan struct{}
	// EventBounds returns the oldest and newest positions (0, 0 when
	// there are none); the relay estimates its backlog with it.
	EventBounds(ctx context.Context) (oldest, newest int64, err error)
}

// Broker opens connections to a message broker.
type Broker interface {
	Connect(ctx context.Context) (Conn, error)
}

// Described is a Broker that names, for the relay's spans, its messaging
// system ("rabbitmq", "nats") and where it publishes (the exchange, the
// stream).
type Described interface {
	Describe() (system, destination string)
}

// Conn is one connection to a broker.
type Conn interface {
	// Publish sends events in order and returns how many of them, from
	// the first, the broker confirmed. With an error, events[n:] were
	// not confirmed (some may still have arrived).
	Publish(ctx context.Context, events []usersvc.Event) (n int, err error)
	// Done is closed once the connection is lost or closed.
	Done() <-chan struct{}
	Close() error
}

// Observer receives the relay's figures; *metrics.Metrics fits it.
type Observer interface {
	// EventsPublished counts events the broker confirmed.
	EventsPublished(n int)
	// EventPublishFailed counts a failed publish attempt (a batch that
	// stopped at an unconfirmed event, or a failed connection).
	EventPublishFailed()
	// EventBacklog reports the unpublished events and the age of the
	// oldest of them (0 when there is none).
	EventBacklog(n int64, oldest time.Duration)
	// EventRelayLeading reports whether this replica holds the lease.
	EventRelayLeading(leading bool)
}

// Options tune a relay. Zero values take the defaults.
type Options struct {
	// Holder names this replica in the lease; unique per process.
	Holder string
	// Lease is the lease's time to live (default 10s); it is renewed
	// every third of it, and another replica takes over within about
	// 1.33 times it after this one dies.
	Lease time.Duration
	// BatchSize is the most events read and published at once (default 1000).
	BatchSize int
	// MaxBackoff bounds the wait between reconnection attempts (default 10s).
	MaxBackoff time.Duration
	// SampleInterval is how often the backlog is measured (default 5s).
	SampleInterval time.Duration
	Logger         *slog.Logger
	Observer       Observer
	// Now is the clock of the lease and of the marks of published events.
	Now func() time.Time
	// Tracer, when set, records a span of kind producer for each batch
	// published ("publish <destination>", with the OpenTelemetry
	// messaging attributes, the batch's first and last positions and how
	// many events the broker confirmed); the statements that mark the
	// batch published are its children, and each message carries its
	// context in a W3C traceparent header.
	Tracer trace.TracerProvider
}

const (
	defaultLease      = 10 * time.Second
	defaultBatchSize  = 1000
	defaultMaxBackoff = 10 * time.Second
	defaultSample     = 5 * time.Second
	minBackoff        = 100 * time.Millisecond
)

// Relay publishes the outbox to a broker. Run does the work; Status may
// be called from any goroutine.
type Relay struct {
	store  Store
	broker Broker
	opts   Options
	log    *slog.Logger
	obs    Observer

	tracer trace.Tracer
	traced bool // Options.Tracer was set
	// system and destination name the broker in spans.
	system, destination string

	mu   sync.Mutex
	conn Conn // nil while disconnected

	leading    bool
	leaseUntil time.Time
}

// New returns a relay of store's events to broker.
func New(store Store, broker Broker, opts Options) *Relay {
	if opts.Lease <= 0 {
		opts.Lease = defaultLease
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = defaultBatchSize
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = defaultMaxBackoff
	}
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = defaultSample
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Holder == "" {
		opts.Holder = "relay"
	}
	traced := opts.Tracer != nil
	if !traced {
		opts.Tracer = noop.NewTracerProvider()
	}
	r := &Relay{traced: traced, store: store, broker: broker, opts: opts, log: opts.Logger, obs: opts.Observer,
		tracer: opts.Tracer.Tracer("github.com/usersvc/usersvc/internal/relay"), system: "unknown", destination: "events"}
	if d, ok := broker.(Described); ok {
		r.system, r.destination = d.Describe()
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	return r
}

// Status is the broker's state for the health report: "connected" or
// "disconnected".
func (r *Relay) Status(context.Context) string {
	r.mu.Lock()
	c := r.conn
	r.mu.Unlock()
	if c == nil {
		return "disconnected"
	}
	select {
	case <-c.Done():
		return "disconnected"
	default:
		return "connected"
	}
}

// Run relays until ctx ends, then releases the lease and closes the
// connection. It returns nil: every failure on the way is retried.
func (r *Relay) Run(ctx context.Context) error {
	defer r.stop()
	sampled := make(chan struct{})
	go func() { defer close(sampled); r.sample(ctx) }()
	defer func() { <-sampled }()

	var (
		nextRenew   time.Time // when the lease is next acquired or renewed
		nextConnect time.Time // when the next connection attempt may start
		connFails   int       // connection failures in a row
	)
	for ctx.Err() == nil {
		now := r.opts.Now()
		if !now.Before(nextRenew) {
			r.renew(ctx, now)
			nextRenew = now.Add(r.opts.Lease / 3)
		}
		conn := r.current()
		if conn == nil && !now.Before(nextConnect) {
			var err error
			if conn, err = r.connect(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				connFails++
				wait := backoff(connFails, r.opts.MaxBackoff)
				nextConnect = r.opts.Now().Add(wait)
				if connFails == 1 || connFails%10 == 0 {
					r.log.Warn("events relay: broker unreachable; events wait in the outbox",
						slog.Any("error", err), slog.Int("attempts", connFails), slog.Duration("retry_in", wait))
				}
				r.obs.EventPublishFailed()
			} else {
				if connFails > 0 {
					r.log.Info("events relay: broker reachable again", slog.Int("attempts", connFails))
				}
				connFails = 0
			}
		}
		if conn == nil || !r.holds(now) {
			var done <-chan struct{}
			until := nextRenew
			if conn == nil && nextConnect.Before(until) {
				until = nextConnect
			} else if conn != nil {
				done = conn.Done()
			}
			sleep(ctx, until.Sub(r.opts.Now()), done, nil)
			continue
		}
		if failed := r.relayBatch(ctx, conn, nextRenew); failed {
			connFails++
			nextConnect = r.opts.Now().Add(backoff(connFails, r.opts.MaxBackoff))
		}
	}
	return nil
}

// relayBatch publishes the next batch of events, or waits for events
// until the lease is due for renewal. It reports whether the connection
// failed (and was dropped).
func (r *Relay) relayBatch(ctx context.Context, conn Conn, nextRenew time.Time) (failed bool) {
	changed := r.store.EventsChanged()
	events, err := r.store.UnpublishedEvents(ctx, r.opts.BatchSize)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("events relay: reading the outbox failed", slog.Any("error", err))
			sleep(ctx, time.Second, nil, nil)
		}
		return false
	}
	if len(events) == 0 {
		sleep(ctx, nextRenew.Sub(r.opts.Now()), conn.Done(), changed)
		return false
	}
	ctx, span := r.tracer.Start(ctx, "publish "+r.destination, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(r.origins(events)...),
		trace.WithAttributes(attribute.String(string(semconv.MessagingSystemKey), r.system),
			semconv.MessagingDestinationName(r.destination), semconv.MessagingOperationName("publish"),
			semconv.MessagingOperationTypeSend, semconv.MessagingBatchMessageCount(len(events)),
			attribute.Int64("usersvc.events.first_position", events[0].Position),
			attribute.Int64("usersvc.events.last_position", events[len(events)-1].Position)))
	defer span.End()
	// Publish only while the lease is surely ours: stop a fifth of it
	// before it expires, so that no other replica publishes meanwhile.
	deadline := r.leaseUntil.Add(-r.opts.Lease / 5)
	pctx, cancel := context.WithDeadline(ctx, deadline)
	n, perr := conn.Publish(pctx, events)
	cancel()
	span.SetAttributes(attribute.Int("usersvc.events.confirmed", n))
	if perr != nil {
		span.RecordError(perr)
		span.SetStatus(codes.Error, "publishing failed")
	}
	if n > 0 {
		positions := make([]int64, n)
		for i, ev := range events[:n] {
			positions[i] = ev.Position
		}
		// Marked even when ctx has ended: they were confirmed.
		mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := r.store.MarkEventsPublished(mctx, positions, r.opts.Now().UTC())
		mcancel()
		if err != nil {
			// They will be published again: at least once.
			r.log.Warn("events relay: marking events published failed", slog.Any("error", err), slog.Int("events", n))
		} else {
			r.obs.EventsPublished(n)
		}
	}
	if perr == nil || ctx.Err() != nil {
		return false
	}
	r.obs.EventPublishFailed()
	r.log.Warn("events relay: publishing failed; reconnecting", slog.Any("error", perr),
		slog.Int64("position", events[n].Position), slog.Int("confirmed", n))
	r.drop()
	return true
}

// renew acquires or renews the lease and keeps leading and leaseUntil.
func (r *Relay) renew(ctx context.Context, now time.Time) {
	ok, err := r.store.AcquireLease(ctx, LeaseName, r.opts.Holder, r.opts.Lease, now)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("events relay: renewing the lease failed", slog.Any("error", err))
		}
		// Keep what we had until it expires: leaseUntil bounds it.
		return
	}
	if ok {
		r.leaseUntil = now.Add(r.opts.Lease)
	} else {
		r.leaseUntil = time.Time{}
	}
	if ok != r.leading {
		r.leading = ok
		r.obs.EventRelayLeading(ok)
		if ok {
			r.log.Info("events relay: this replica relays", slog.String("holder", r.opts.Holder))
		} else {
			r.log.Info("events relay: another replica relays", slog.String("holder", r.opts.Holder))
		}
	}
}

// holds reports whether the lease is ours with time to spare.
func (r *Relay) holds(now time.Time) bool {
	return r.leading && now.Before(r.leaseUntil.Add(-r.opts.Lease/5))
}

func (r *Relay) current() Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		select {
		case <-r.conn.Done():
			r.conn.Close()
			r.conn = nil
		default:
		}
	}
	return r.conn
}

func (r *Relay) connect(ctx context.Context) (Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := r.broker.Connect(cctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.conn = c
	r.mu.Unlock()
	return c, nil
}

func (r *Relay) drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

// stop closes the connection and frees the lease for another replica.
func (r *Relay) stop() {
	r.drop()
	if r.leading {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.store.ReleaseLease(ctx, LeaseName, r.opts.Holder); err != nil {
			r.log.Warn("events relay: releasing the lease failed", slog.Any("error", err))
		}
		r.leading = false
		r.obs.EventRelayLeading(false)
	}
}

// sample measures the backlog every SampleInterval until ctx ends.
func (r *Relay) sample(ctx context.Context) {
	t := time.NewTicker(r.opts.SampleInterval)
	defer t.Stop()
	for {
		if n, age, err := Backlog(ctx, r.store, r.opts.Now()); err == nil {
			r.obs.EventBacklog(n, age)
		} else if ctx.Err() == nil {
			r.log.Warn("events relay: measuring the backlog failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Backlog returns the number of unpublished events and the age of the
// oldest one. The number is counted by positions, from the oldest
// unpublished event to the newest event: exact when positions leave no
// gap, an upper bound otherwise (the relay publishes in position order,
// so every event after the oldest unpublished one is unpublished too).
func Backlog(ctx context.Context, st Store, now time.Time) (int64, time.Duration, error) {
	first, err := st.UnpublishedEvents(ctx, 1)
	if err != nil || len(first) == 0 {
		return 0, 0, err
	}
	_, newest, err := st.EventBounds(ctx)
	if err != nil {
		return 0, 0, err
	}
	n := max(newest-first[0].Position+1, 1)
	return n, max(now.Sub(first[0].Time), 0), nil
}

// backoff is the wait after the attempt-th failure in a row: doubling
// from 100ms up to limit, with a fifth of jitter either way.
func backoff(attempt int, limit time.Duration) time.Duration {
	d := minBackoff
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return max(d+jitter, minBackoff/2)
}

// sleep waits d, or until ctx ends, a or b closes (nil never does).
func sleep(ctx context.Context, d time.Duration, a, b <-chan struct{}) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-a:
	case <-b:
	}
}

type nopObserver struct{}

func (nopObserver) EventsPublished(int)               {}
func (nopObserver) EventPublishFailed()               {}
func (nopObserver) EventBacklog(int64, time.Duration) {}
func (nopObserver) EventRelayLeading(bool)            {}
