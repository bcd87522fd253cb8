package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/usersvc/usersvc"
)

// amqpURL is the RabbitMQ of USERSVC_TEST_AMQP_URL; without it the test
// skips, or fails when USERSVC_REQUIRE_INTEGRATION is set (as in CI).
func amqpURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("USERSVC_TEST_AMQP_URL")
	if u == "" {
		if os.Getenv("USERSVC_REQUIRE_INTEGRATION") != "" {
			t.Fatal("USERSVC_TEST_AMQP_URL is not set, and USERSVC_REQUIRE_INTEGRATION is")
		}
		t.Skip("USERSVC_TEST_AMQP_URL is not set")
	}
	return u
}

// The worker follows the events that the relay publishes to RabbitMQ: each
// applied once however often it is delivered, and a message that is no
// event dropped.
func TestFollowRabbitMQ(t *testing.T) {
	url := amqpURL(t)
	s := newUserService(t)
	grace := s.add(t, "grace@example.com", "Grace Hopper", usersvc.Preferences{Email: true, Push: false}, "fcm:grace-phone")

	// An exchange and a queue of this test's own, gone after it.
	id := uuid.NewString()[:8]
	exchange, queue := "usersvc.test."+id+".events", "usersvc-test-"+id+"-notifier"
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ch.QueueDelete(queue, false, false, false)
		ch.ExchangeDelete(exchange, false, false)
	})
	w := start(t, s, "-follow", url, "-exchange", exchange, "-queue", queue, grace)
	// Once it answers, the replica is filled and the queue bound.
	if got := w.send(t, grace, "hi"); !strings.Contains(got, "email to Grace Hopper <grace@example.com>: hi") {
		t.Fatalf("first notification: %q", got)
	}

	publish := func(routingKey string, body []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		err := ch.PublishWithContext(ctx, exchange, routingKey, false, false, amqp.Publishing{
			ContentType: "application/cloudevents+json", DeliveryMode: amqp.Persistent, MessageId: uuid.NewString(), Body: body})
		if err != nil {
			t.Fatal(err)
		}
	}
	send := func(ev usersvc.Event) {
		t.Helper()
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		publish(ev.Type, b)
	}
	prefs := event(t, 101, usersvc.EventPreferencesUpdated, grace, usersvc.PreferencesEventData{UserID: grace, Preferences: usersvc.Preferences{Email: false, Push: true}})
	dev := event(t, 102, usersvc.EventDeviceRegistered, grace, usersvc.DeviceEventData{UserID: grace, ID: uuid.NewString(), PushToken: "apns:grace-ipad", DeviceType: usersvc.DeviceIOS})
	bad := event(t, 103, usersvc.EventPreferencesUpdated, grace, usersvc.PreferencesEventData{UserID: grace})
	bad.SpecVersion = "2.0"
	send(prefs)
	send(prefs) // delivered again: at least once
	send(bad)
	send(dev)
	waitFor(t, w.stderr, "position 102)")
	got := w.send(t, grace, "Dinner is ready")
	// The events are told; the decision stays the service's.
	want := "user " + grace + "\n  email to Grace Hopper <grace@example.com>: Dinner is ready\n  push: not sent (channel_off)\n"
	if got != want {
		t.Errorf("after the events:\n%s\nwant:\n%s", got, want)
	}
	log := w.stderr.String()
	if !strings.Contains(log, "device apns:grace-ipad (ios) registered (device.registered, position 102)") {
		t.Errorf("the device was not told:\n%s", log)
	}
	if n := strings.Count(log, "position 101)"); n != 1 {
		t.Errorf("the preferences were applied %d times:\n%s", n, log)
	}
	if !strings.Contains(log, "rabbitmq: dropping message") || !strings.Contains(log, `specversion "2.0"`) {
		t.Errorf("the invalid message was not told:\n%s", log)
	}
	w.stop(t)
	// Everything was acknowledged or dropped: the queue is empty.
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 0 {
		t.Errorf("%d messages left in the queue", q.Messages)
	}
}
