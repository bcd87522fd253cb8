// Package relay carries the events of the outbox to a message broker: it
// reads the events the store has not yet published, in position order,
// publishes them, and marks them published once the broker has confirmed
// them. An event is therefore delivered at least once, and in the order of
// its position (so in order per user); a consumer drops the repeats by the
// event's id or position.
//
// One replica relays at a time: the one that holds the store's lease
// named "relay", renewed every third of its time to live. A replica that
// dies stops renewing it; another takes it over once it has expired. A
// relay publishes only within the time its lease is known to be valid,
// so that two replicas publish together only when a broker stalls beyond
// that time (the consumer's de-duplication then absorbs the repeats).
//
// When the broker cannot be reached, the events stay in the outbox; the
// relay reconnects with a growing, jittered delay and publishes from the
// first unconfirmed event on, in order, without a restart. A batch stops
// at its first unconfirmed event: what follows it is published again.
//
// Brokers:
//
//   - amqp://… or amqps://…: RabbitMQ through github.com/rabbitmq/amqp091-go,
//     the client the RabbitMQ team maintains (the successor of
//     streadway/amqp), with no dependency beyond the standard library and
//     publisher confirms as deferred confirmations, which lets a batch be
//     written at once and its confirms awaited in order. Events go to a
//     durable topic exchange, persistent, with the event type as routing
//     key, the event id as message id and the content type
//     application/cloudevents+json (CloudEvents in the structured mode).
//   - nats://… or tls://…: NATS JetStream through github.com/nats-io/nats.go,
//     the client the NATS team maintains, with its jetstream package, whose
//     asynchronous publishes with acknowledgements play the part of
//     publisher confirms. Events go to the stream USERSVC_EVENTS (created
//     when missing, on the subjects PREFIX.>) on the subject
//     PREFIX.<event type>, with the header Nats-Msg-Id set to the event id
//     so that JetStream drops a repeat within its duplicate window.
//
// Both libraries connect without cgo and stay within the service's static
// binary. The relay does its own reconnecting (NATS's automatic reconnect
// is off) so that both brokers behave alike: a lost connection ends the
// batch, and the outbox, not a client-side buffer, holds what waits.
//
// With a tracer (Options.Tracer), each batch is a span of kind producer
// with OpenTelemetry's messaging attributes, and each message carries the
// span's W3C trace context in its headers (traceparent, tracestate).
//
// The package declares what it needs of the store (Store) and of the
// metrics (Observer); cmd/usersvc wires the SQL store and the Prometheus
// metrics in.
package relay
