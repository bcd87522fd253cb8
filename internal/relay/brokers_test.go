package relay_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/relay"
)

// brokerURL is the URL of a test broker from the environment variable
// name; without it the test skips, or fails when USERSVC_REQUIRE_INTEGRATION
// is set (as in CI).
func brokerURL(t testing.TB, name string) string {
	t.Helper()
	u := os.Getenv(name)
	if u == "" {
		if os.Getenv("USERSVC_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("%s is not set, and USERSVC_REQUIRE_INTEGRATION is", name)
		}
		t.Skipf("%s is not set", name)
	}
	return u
}

// testBroker is a broker of the machine reached under private names,
// with a consumer that records what arrives.
type testBroker struct {
	name string
	addr string // host:port of the broker
	// at returns the relay's broker reached at addr (the broker's own,
	// or a proxy in front of it).
	at  func(addr string) relay.Broker
	mu  sync.Mutex
	got []usersvc.Event // in arrival order
	// traceparents are the messages' traceparent headers, in the same
	// order ("" for none).
	traceparents []string
}

func (b *testBroker) received() []usersvc.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]usersvc.Event(nil), b.got...)
}

func (b *testBroker) record(t testing.TB, body []byte, traceparent string) usersvc.Event {
	var ev usersvc.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Errorf("a message is not an event: %v: %q", err, body)
		return ev
	}
	b.mu.Lock()
	b.got = append(b.got, ev)
	b.traceparents = append(b.traceparents, traceparent)
	b.mu.Unlock()
	return ev
}

// parents returns the traceparent headers of the messages received.
func (b *testBroker) parents() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.traceparents...)
}

// distinct counts the distinct event ids received.
func (b *testBroker) distinct() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := make(map[string]bool, len(b.got))
	for _, ev := range b.got {
		seen[ev.ID] = true
	}
	return len(seen)
}

func withHost(t testing.TB, raw, addr string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("broker URL: %v", err)
	}
	u.Host = addr
	return u.String()
}

func hostOf(t testing.TB, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("broker URL: %v", err)
	}
	return u.Host
}

func private() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:12] }

// amqpExchange connects to the test RabbitMQ and returns its URL, a private
// exchange name and a channel; the exchange (and, with queue, the queue of
// the same name) is deleted and the connection closed at the end.
func amqpExchange(t testing.TB, queue bool) (raw, exchange string, ch *amqp.Channel) {
	raw = brokerURL(t, "USERSVC_TEST_AMQP_URL")
	exchange = "usersvc.test." + private()
	conn, err := amqp.Dial(raw)
	if err != nil {
		t.Fatalf("rabbitmq: %v", err)
	}
	ch, err = conn.Channel()
	if err != nil {
		t.Fatalf("rabbitmq: %v", err)
	}
	t.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			if queue {
				ch.QueueDelete(exchange, false, false, false)
			}
			ch.ExchangeDelete(exchange, false, false)
		}
		conn.Close()
	})
	return raw, exchange, ch
}

// rabbitMQ gives a private exchange on the test RabbitMQ (deleted at the
// end) and a consumer of everything published to it.
func rabbitMQ(t testing.TB) *testBroker {
	raw, exchange, ch := amqpExchange(t, false)
	if err := ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatalf("rabbitmq: %v", err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil) // private, gone with the connection
	if err == nil {
		err = ch.QueueBind(q.Name, "#", exchange, false, nil)
	}
	if err != nil {
		t.Fatalf("rabbitmq: %v", err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatalf("rabbitmq: %v", err)
	}
	b := &testBroker{name: "RabbitMQ", addr: hostOf(t, raw), at: func(addr string) relay.Broker {
		return &relay.AMQP{URL: withHost(t, raw, addr), Exchange: exchange}
	}}
	go func() {
		for d := range deliveries {
			if d.ContentType != relay.ContentType || d.MessageId == "" || d.RoutingKey == "" || d.DeliveryMode != amqp.Persistent {
				t.Errorf("rabbitmq: message %q, routing key %q, content type %q, delivery mode %d",
					d.MessageId, d.RoutingKey, d.ContentType, d.DeliveryMode)
			}
			tp, _ := d.Headers["traceparent"].(string)
			if ev := b.record(t, d.Body, tp); ev.ID != d.MessageId || ev.Type != d.RoutingKey {
				t.Errorf("rabbitmq: message id %q, routing key %q for event %s of type %s", d.MessageId, d.RoutingKey, ev.ID, ev.Type)
			}
		}
	}()
	return b
}

// natsJetStream gives a private stream and subject prefix on the test
// NATS (deleted at the end) and an ordered consumer of the stream.
func natsJetStream(t testing.TB) *testBroker {
	raw := brokerURL(t, "USERSVC_TEST_NATS_URL")
	id := private()
	stream, prefix := "USERSVC_TEST_"+strings.ToUpper(id), "usersvc.test."+id
	nc, err := nats.Connect(raw)
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	ctx := context.Background()
	// The relay creates the stream when it is missing; the test creates
	// it first so that its consumer sees everything.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("nats: %v", err)
	}
	b := &testBroker{name: "NATS", addr: hostOf(t, raw), at: func(addr string) relay.Broker {
		return &relay.NATS{URL: withHost(t, raw, addr), Stream: stream, Prefix: prefix}
	}}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if m.Headers().Get("Nats-Msg-Id") == "" || m.Headers().Get("Content-Type") != relay.ContentType {
			t.Errorf("nats: message on %s with headers %v", m.Subject(), m.Headers())
		}
		b.record(t, m.Data(), m.Headers().Get("traceparent"))
	})
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(func() {
		cc.Stop()
		js.DeleteStream(context.Background(), stream)
		nc.Close()
	})
	return b
}

func bothBrokers(t *testing.T, test func(t *testing.T, b *testBroker)) {
	t.Run("RabbitMQ", func(t *testing.T) { test(t, rabbitMQ(t)) })
	t.Run("NATS", func(t *testing.T) { test(t, natsJetStream(t)) })
}

// proxy forwards TCP connections to a broker until it is cut.
type proxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
}

func newProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go p.serve()
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy and refuses new ones.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore lets connections through again.
func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(in)
	}
}

func (p *proxy) forward(in net.Conn) {
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		in.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	p.conns[in], p.conns[out] = true, true
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	go pipe(out, in)
	pipe(in, out)
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

// rabbitMQDurable gives a private exchange bound to a private durable
// queue and no consumer, so that the broker writes every persistent
// message to disk; both are deleted at the end.
func rabbitMQDurable(t testing.TB) *testBroker {
	raw, exchange, ch := amqpExchange(t, true)
	err := ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil)
	if err == nil {
		_, err = ch.QueueDeclare(exchange, true, false, false, false, nil)
	}
	if err == nil {
		err = ch.QueueBind(exchange, "#", exchange, false, nil)
	}
	if err != nil {
		t.Fatalf("rabbitmq: %v", err)
	}
	return &testBroker{name: "RabbitMQ", addr: hostOf(t, raw), at: func(addr string) relay.Broker {
		return &relay.AMQP{URL: withHost(t, raw, addr), Exchange: exchange}
	}}
}
