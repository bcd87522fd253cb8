package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/usersvc/usersvc"
)

// NATS publishes to a JetStream stream.
type NATS struct {
	URL    string // nats://host:port (or tls://…), user:password@ allowed
	Stream string // created when missing, on the subjects Prefix.>
	Prefix string // an event goes to the subject Prefix.<type>
	// Duplicates is the duplicate window of a stream the relay creates
	// (default 2m, JetStream's own).
	Duplicates time.Duration
}

// Describe names NATS and the stream in the relay's spans.
func (b *NATS) Describe() (system, destination string) { return "nats", b.Stream }

// Subject is the subject an event of type typ is published on.
func (b *NATS) Subject(typ string) string { return b.Prefix + "." + typ }

// Connect dials NATS and makes sure the stream exists.
func (b *NATS) Connect(ctx context.Context) (Conn, error) {
	c := &natsConn{done: make(chan struct{}), stream: b.Stream, subject: b.Subject}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	nc, err := nats.Connect(b.URL,
		nats.Name("usersvc events relay"),
		nats.NoReconnect(),
		nats.Timeout(timeout),
		nats.ClosedHandler(func(*nats.Conn) { c.once.Do(func() { close(c.done) }) }),
	)
	if err != nil {
		return nil, fmt.Errorf("nats: connect: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err == nil {
		_, err = js.Stream(ctx, b.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        b.Stream,
				Description: "usersvc change events",
				Subjects:    []string{b.Prefix + ".>"},
				Storage:     jetstream.FileStorage,
				Duplicates:  b.Duplicates,
			})
		}
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: stream %q: %w", b.Stream, err)
	}
	c.nc, c.js = nc, js
	return c, nil
}

type natsConn struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  string
	subject func(string) string
	done    chan struct{}
	once    sync.Once
}

func (c *natsConn) Done() <-chan struct{} { return c.done }

func (c *natsConn) Close() error {
	c.nc.Close()
	c.once.Do(func() { close(c.done) })
	return nil
}

// Publish sends every event asynchronously, then waits for their
// acknowledgements in order.
func (c *natsConn) Publish(ctx context.Context, events []usersvc.Event) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	tc := traceContext(ctx)
	var sendErr error
	for _, ev := range events {
		body, err := json.Marshal(ev)
		if err != nil {
			sendErr = fmt.Errorf("encode event %s: %w", ev.ID, err)
			break
		}
		msg := &nats.Msg{Subject: c.subject(ev.Type), Data: body, Header: nats.Header{}}
		msg.Header.Set("Content-Type", ContentType)
		for k, v := range tc {
			msg.Header.Set(k, v)
		}
		f, err := c.js.PublishMsgAsync(msg, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(c.stream))
		if err != nil {
			sendErr = fmt.Errorf("nats: publish: %w", err)
			break
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select { // an acknowledgement that has arrived counts, whatever else happened
		case <-f.Ok():
			continue
		default:
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return i, fmt.Errorf("nats: event %s was not acknowledged: %w", events[i].ID, err)
		case <-c.done:
			return i, fmt.Errorf("nats: connection lost before the acknowledgement of event %s", events[i].ID)
		case <-ctx.Done():
			return i, fmt.Errorf("nats: waiting for the acknowledgement of event %s: %w", events[i].ID, ctx.Err())
		}
	}
	return len(futures), sendErr
}
