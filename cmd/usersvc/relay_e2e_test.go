package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc"
)

func TestConfigEvents(t *testing.T) {
	c, err := loadConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	want := eventsConfig{Exchange: "usersvc.events", Stream: "USERSVC_EVENTS", Retention: 7 * 24 * time.Hour,
		Lease: 10 * time.Second, Batch: 1000, MaxBackoff: 10 * time.Second}
	if c.Events != want || c.Events.broker() != "" {
		t.Errorf("defaults = %+v, want %+v", c.Events, want)
	}
	c, err = loadConfig(env("EVENTS_BROKER_URL=nats://a:4222,nats://b:4222", "EVENTS_RETENTION=36h", "EVENTS_RELAY_LEASE=3s",
		"EVENTS_RELAY_BATCH=50", "EVENTS_RELAY_MAX_BACKOFF=1m", "EVENTS_EXCHANGE=acme.users", "EVENTS_NATS_STREAM=ACME"))
	if err != nil {
		t.Fatal(err)
	}
	want = eventsConfig{BrokerURL: "nats://a:4222,nats://b:4222", Exchange: "acme.users", Stream: "ACME", Retention: 36 * time.Hour,
		Lease: 3 * time.Second, Batch: 50, MaxBackoff: time.Minute}
	if c.Events != want || c.Events.broker() != "nats" {
		t.Errorf("settings = %+v, want %+v", c.Events, want)
	}
	if c, err := loadConfig(env("EVENTS_BROKER_URL=amqps://u:p@rabbit:5671/vh", "EVENTS_RETENTION=30d")); err != nil ||
		c.Events.broker() != "amqp" || c.Events.Retention != 30*24*time.Hour {
		t.Errorf("amqps and 30d: %+v, %v", c, err)
	}
	for _, bad := range []string{
		"EVENTS_BROKER_URL=kafka://k:9092", "EVENTS_BROKER_URL=amqp://", "EVENTS_BROKER_URL=amqp://a,amqp://b",
		"EVENTS_BROKER_URL=nats://a:4222,http://b", "EVENTS_EXCHANGE=with space", "EVENTS_EXCHANGE=usersvc.>",
		"EVENTS_EXCHANGE=a..b", "EVENTS_NATS_STREAM=A.B", "EVENTS_RETENTION=0s", "EVENTS_RETENTION=week",
		"EVENTS_RETENTION=5000d", "EVENTS_RELAY_LEASE=100ms", "EVENTS_RELAY_LEASE=1h", "EVENTS_RELAY_BATCH=0",
		"EVENTS_RELAY_BATCH=20000", "EVENTS_RELAY_MAX_BACKOFF=10ms",
	} {
		name, _, _ := strings.Cut(bad, "=")
		_, err := loadConfig(env(bad))
		if err == nil || !strings.HasPrefix(err.Error(), "config: "+name+": ") {
			t.Errorf("%s: error %v, want one naming %s", bad, err, name)
		}
	}
}

func health(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, req)
}

// A broker that cannot be reached degrades the service; it still serves
// and stays ready, and the changes wait in the outbox.
func TestServeWithTheBrokerDown(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "EVENTS_BROKER_URL=amqp://guest:guest@127.0.0.1:1/")
	if code, body := health(t, srv.base); code != 200 || body["status"] != "degraded" || body["broker"] != "disconnected" {
		t.Errorf("/health = %d %v, want 200, degraded, broker disconnected", code, body)
	}
	req, _ := http.NewRequest("GET", srv.base+"/health/readiness", nil)
	if code, _ := send(t, req); code != 200 {
		t.Errorf("readiness = %d, want 200", code)
	}
	if code, _ := post(t, srv.base+"/api/v1/users/", map[string]any{"email": "ada@example.com", "password": "Analytical#1843", "name": "Ada Lovelace"}); code != 201 {
		t.Errorf("register with the broker down = %d, want 201", code)
	}
}

// rabbitQueue declares a private exchange on the test RabbitMQ (deleted
// when the test ends) and a queue bound to it with binding, and returns
// the broker's URL, the exchange and the queue's deliveries.
func rabbitQueue(t *testing.T, binding string) (raw, exchange string, deliveries <-chan amqp.Delivery) {
	t.Helper()
	raw = os.Getenv("USERSVC_TEST_AMQP_URL")
	if raw == "" {
		if os.Getenv("USERSVC_REQUIRE_INTEGRATION") != "" {
			t.Fatal("USERSVC_TEST_AMQP_URL is not set, and USERSVC_REQUIRE_INTEGRATION is")
		}
		t.Skip("USERSVC_TEST_AMQP_URL is not set")
	}
	exchange = "usersvc.test." + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	conn, err := amqp.Dial(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			ch.ExchangeDelete(exchange, false, false)
		}
		conn.Close()
	})
	ch, err := conn.Channel()
	if err == nil {
		err = ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil)
	}
	var q amqp.Queue
	if err == nil {
		q, err = ch.QueueDeclare("", false, true, true, false, nil)
	}
	if err == nil {
		err = ch.QueueBind(q.Name, binding, exchange, false, nil)
	}
	if err == nil {
		deliveries, err = ch.Consume(q.Name, "", true, true, false, false, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return raw, exchange, deliveries
}

// The service relays its changes to RabbitMQ: a registration arrives at a
// queue bound to the exchange, and /health and /metrics show it.
func TestServeRelaysToRabbitMQ(t *testing.T) {
	raw, exchange, deliveries := rabbitQueue(t, "usersvc.user.*")
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "EVENTS_BROKER_URL="+raw, "EVENTS_EXCHANGE="+exchange, "EVENTS_RELAY_LEASE=2s")
	code, body := post(t, srv.base+"/api/v1/users/", map[string]any{"email": "ada@example.com", "password": "Analytical#1843", "name": "Ada Lovelace"})
	if code != 201 {
		t.Fatalf("register = %d %v", code, body)
	}
	id := body["data"].(map[string]any)["id"].(string)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case d := <-deliveries:
		var ev usersvc.Event
		if err := json.Unmarshal(d.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != usersvc.EventUserRegistered || ev.Subject != id || d.RoutingKey != ev.Type || d.MessageId != ev.ID ||
			d.ContentType != "application/cloudevents+json" || d.DeliveryMode != amqp.Persistent {
			t.Errorf("message %+v carries %+v", d, ev)
		}
	case <-ctx.Done():
		t.Fatal("the registration did not arrive at RabbitMQ within 10s")
	}
	if code, body := health(t, srv.base); code != 200 || body["status"] != "healthy" || body["broker"] != "connected" {
		t.Errorf("/health = %d %v, want healthy, broker connected", code, body)
	}
	req, _ := http.NewRequest("GET", srv.base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	for _, want := range []string{"usersvc_events_published_total 1", "usersvc_events_relay_leader 1", "usersvc_events_publish_failures_total 0"} {
		if !strings.Contains(sb.String(), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
