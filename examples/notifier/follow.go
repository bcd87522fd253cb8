package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc/client"
)

// follower keeps a replica up to date from one source of change events. It
// calls ready once the replica is filled, and returns when ctx ends (nil)
// or when it cannot go on.
type follower func(ctx context.Context, ready func()) error

// worker is what the notifications and both followers share.
type worker struct {
	users *client.Client
	r     *replica
	state string    // the state file, or "" to keep the replica in memory only
	log   io.Writer // where changes and failures are told
	// category ("" for none) and channels are what the worker's
	// notifications are and may use.
	category string
	channels []string
}

// applied records ev in the replica (and the state file), telling what
// changed.
func (w *worker) record(line string) error {
	if w.state != "" {
		if err := w.r.save(w.state); err != nil {
			return fmt.Errorf("saving the state: %w", err)
		}
	}
	if line != "" {
		fmt.Fprintln(w.log, line)
	}
	return nil
}

// start loads the state file, if any, and fills the replica with the users
// it lacks from the batch endpoint, at position (what their state then
// reflects).
func (w *worker) start(ctx context.Context, position func() (int64, error)) error {
	loaded := false
	if w.state != "" {
		var err error
		if loaded, err = w.r.load(w.state); err != nil {
			return err
		}
	}
	if !loaded {
		p, err := position()
		if err != nil {
			return err
		}
		w.r.mu.Lock()
		w.r.state.Cursor = p
		w.r.mu.Unlock()
	}
	if err := w.r.fill(ctx, w.users, w.r.cursor()); err != nil {
		return err
	}
	return w.record("")
}

// feedHead reads the change feed from the cursor from to its end, without
// applying anything, and returns the last cursor: the replica filled
// after that reflects every event up to it.
func feedHead(ctx context.Context, users *client.Client, from int64) (int64, error) {
	cursor := from
	for {
		p, err := users.EventPage(ctx, cursor, 1000, 0)
		var gone *client.CursorTooOldError
		if errors.As(err, &gone) && gone.Newest > cursor {
			cursor = gone.Newest
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("reading the change feed: %w", err)
		}
		if len(p.Events) == 0 {
			return p.NextCursor, nil
		}
		cursor = p.NextCursor
	}
}

// followFeed follows the HTTP change feed (GET /api/v1/events).
func (w *worker) followFeed(wait time.Duration) follower {
	return func(ctx context.Context, ready func()) error {
		if err := w.start(ctx, func() (int64, error) { return feedHead(ctx, w.users, 0) }); err != nil {
			return err
		}
		ready()
		for {
			err := w.followFeedFrom(ctx, wait)
			var gone *client.CursorTooOldError
			if !errors.As(err, &gone) {
				return err
			}
			// Events were pruned before this worker saw them: fill the
			// replica again from the batch endpoint, and go on from there.
			fmt.Fprintf(w.log, "the change feed no longer holds cursor %d: refilling from the batch endpoint\n", gone.After)
			head, err := feedHead(ctx, w.users, gone.Newest)
			if err != nil {
				return err
			}
			// The refill is made aside and swapped in whole: notifications
			// meanwhile are answered from the old copy, never from a half one.
			fresh := &replica{served: w.r.served, state: replicaState{Cursor: head, Users: map[string]*localUser{}}}
			if err := fresh.fill(ctx, w.users, head); err != nil {
				return err
			}
			w.r.mu.Lock()
			w.r.state = fresh.state
			w.r.mu.Unlock()
			if err := w.record(""); err != nil {
				return err
			}
		}
	}
}

// followFeedFrom applies the events after the replica's cursor until ctx
// ends (nil) or the feed refuses to go on.
func (w *worker) followFeedFrom(ctx context.Context, wait time.Duration) error {
	for ev, err := range w.users.Events(ctx, w.r.cursor(), client.FeedWait(wait)) {
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrRateLimited):
			fmt.Fprintf(w.log, "change feed: %v (trying again)\n", err)
			continue
		case err != nil:
			return err
		}
		line, err := w.r.apply(ev)
		if err != nil {
			return fmt.Errorf("event %s at %d: %w", ev.ID, ev.Position, err)
		}
		if err := w.record(line); err != nil {
			return err
		}
	}
	return nil
}

// amqpBindings are the routing keys (event types) the worker's queue is
// bound with: the changes of users, preferences and devices.
var amqpBindings = []string{"usersvc.user.*", "usersvc.preferences.*", "usersvc.device.*", "usersvc.push_token.*"}

// followAMQP consumes the events the user service's relay publishes to
// the RabbitMQ topic exchange, from a durable queue of the worker's own.
func (w *worker) followAMQP(url, exchange, queue string) follower {
	return func(ctx context.Context, ready func()) error {
		conn, err := amqp.DialConfig(url, amqp.Config{Properties: amqp.Table{"connection_name": "usersvc example notifier"}})
		if err != nil {
			return fmt.Errorf("rabbitmq: %w", err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("rabbitmq: %w", err)
		}
		// The same declaration as the relay's, so that either may start
		// first; the queue is declared and bound before the replica is
		// filled, so that no change falls between the two.
		if err := ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return fmt.Errorf("rabbitmq: exchange %s: %w", exchange, err)
		}
		if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("rabbitmq: queue %s: %w", queue, err)
		}
		for _, key := range amqpBindings {
			if err := ch.QueueBind(queue, key, exchange, false, nil); err != nil {
				return fmt.Errorf("rabbitmq: binding %s: %w", key, err)
			}
		}
		if err := ch.Qos(100, 0, false); err != nil {
			return fmt.Errorf("rabbitmq: %w", err)
		}
		// The queue keeps its own place: the events it holds are newer
		// than the batch answer or repeats of what it shows, so the
		// replica is filled at position 0 and every event is applied.
		if err := w.start(ctx, func() (int64, error) { return 0, nil }); err != nil {
			return err
		}
		msgs, err := ch.ConsumeWithContext(ctx, queue, "", false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("rabbitmq: consuming %s: %w", queue, err)
		}
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		ready()
		for {
			select {
			case <-ctx.Done():
				return nil
			case e := <-closed:
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("rabbitmq: connection lost: %v (the queue %s keeps the events until the worker is back)", e, queue)
			case d, ok := <-msgs:
				if !ok {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("rabbitmq: the consumer of %s was cancelled", queue)
				}
				if err := w.delivery(d); err != nil {
					return err
				}
			}
		}
	}
}

// delivery applies one message and acknowledges it once the replica (and
// its state file) holds the change. A message that is no event of the
// user service is told and dropped, never retried forever.
func (w *worker) delivery(d amqp.Delivery) error {
	ev, err := client.DecodeEvent(d.Body)
	var line string
	if err == nil {
		line, err = w.r.apply(ev)
	}
	if err != nil {
		fmt.Fprintf(w.log, "rabbitmq: dropping message %s (%s): %v\n", d.MessageId, d.RoutingKey, err)
		return d.Reject(false)
	}
	if err := w.record(line); err != nil {
		return err
	}
	return d.Ack(false)
}
