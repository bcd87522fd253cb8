package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc"
)

// ContentType is the content type of a published event: a CloudEvent in
// the structured JSON mode.
const ContentType = "application/cloudevents+json"

// AMQP publishes to a RabbitMQ topic exchange.
type AMQP struct {
	URL      string // amqp://user:password@host:port/vhost or amqps://…
	Exchange string // declared durable, of type topic
}

// Describe names RabbitMQ and the exchange in the relay's spans.
func (b *AMQP) Describe() (system, destination string) { return "rabbitmq", b.Exchange }

// Connect dials RabbitMQ, declares the exchange and puts a channel in
// confirm mode.
func (b *AMQP) Connect(ctx context.Context) (Conn, error) {
	cfg := amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: amqp.Table{"connection_name": "usersvc events relay"},
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bounds the handshake; amqp091 clears it once open.
			deadline, ok := ctx.Deadline()
			if !ok {
				deadline = time.Now().Add(10 * time.Second)
			}
			if err := c.SetDeadline(deadline); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
	conn, err := amqp.DialConfig(b.URL, cfg)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: dial: %w", err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.ExchangeDeclare(b.Exchange, amqp.ExchangeTopic, true, false, false, false, nil)
	}
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("rabbitmq: exchange %q: %w", b.Exchange, err)
	}
	c := &amqpConn{conn: conn, ch: ch, exchange: b.Exchange, done: make(chan struct{})}
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		select {
		case <-connClosed:
		case <-chClosed:
		}
		c.once.Do(func() { close(c.done) })
	}()
	return c, nil
}

type amqpConn struct {
	conn     *amqp.Connection
	ch       *amqp.Channel
	exchange string
	done     chan struct{}
	once     sync.Once
}

func (c *amqpConn) Done() <-chan struct{} { return c.done }

func (c *amqpConn) Close() error {
	err := c.conn.Close()
	c.once.Do(func() { close(c.done) })
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}

// Publish writes every event, then waits for their confirms in order.
func (c *amqpConn) Publish(ctx context.Context, events []usersvc.Event) (int, error) {
	confirms := make([]*amqp.DeferredConfirmation, 0, len(events))
	var headers amqp.Table // one table for the batch: the library only reads it
	if tc := traceContext(ctx); tc != nil {
		headers = make(amqp.Table, len(tc))
		for k, v := range tc {
			headers[k] = v
		}
	}
	var sendErr error
	for _, ev := range events {
		body, err := json.Marshal(ev)
		if err != nil {
			sendErr = fmt.Errorf("encode event %s: %w", ev.ID, err)
			break
		}
		dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, c.exchange, ev.Type, false, false, amqp.Publishing{
			ContentType:  ContentType,
			DeliveryMode: amqp.Persistent,
			MessageId:    ev.ID,
			Timestamp:    ev.Time,
			Type:         ev.Type,
			AppId:        "usersvc",
			Headers:      headers,
			Body:         body,
		})
		if err != nil {
			sendErr = fmt.Errorf("rabbitmq: publish: %w", err)
			break
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		ack, err := dc.WaitContext(ctx)
		switch {
		case err != nil:
			return i, fmt.Errorf("rabbitmq: waiting for the confirm of event %s: %w", events[i].ID, err)
		case !ack:
			// A nack, or the channel closed before the confirm.
			select {
			case <-c.done:
				return i, fmt.Errorf("rabbitmq: connection lost before the confirm of event %s", events[i].ID)
			default:
			}
			return i, fmt.Errorf("rabbitmq: event %s was not confirmed (nack)", events[i].ID)
		}
	}
	return len(confirms), sendErr
}
