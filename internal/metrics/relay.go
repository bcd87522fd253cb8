package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// relayMetrics are the metrics of the events relay (internal/relay).
type relayMetrics struct {
	backlog   prometheus.Gauge
	oldestAge prometheus.Gauge
	published prometheus.Counter
	failures  prometheus.Counter
	leader    prometheus.Gauge
}

func newRelayMetrics() *relayMetrics {
	return &relayMetrics{
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "events", Name: "unpublished",
			Help: "Events in the outbox that no broker has confirmed yet, measured every 5 s by every replica that relays or stands by (aggregate with max).",
		}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "events", Name: "oldest_unpublished_age_seconds",
			Help: "Age of the oldest event no broker has confirmed yet; 0 when every event is published.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "events", Name: "published_total",
			Help: "Events this replica published and the broker confirmed.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "events", Name: "publish_failures_total",
			Help: "Failed attempts to reach the broker or to have a batch confirmed; the events stay in the outbox and are published again.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "events", Name: "relay_leader",
			Help: "1 while this replica holds the relay lease (publishes), else 0.",
		}),
	}
}

func (r *relayMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.backlog, r.oldestAge, r.published, r.failures, r.leader}
}

// EventsPublished counts n events a broker confirmed. With the other
// Event* methods it fits relay.Observer.
func (m *Metrics) EventsPublished(n int) { m.relay.published.Add(float64(n)) }

// EventPublishFailed counts a failed attempt to publish events.
func (m *Metrics) EventPublishFailed() { m.relay.failures.Inc() }

// EventBacklog sets the unpublished events and the age of the oldest.
func (m *Metrics) EventBacklog(n int64, oldest time.Duration) {
	m.relay.backlog.Set(float64(n))
	m.relay.oldestAge.Set(oldest.Seconds())
}

// EventRelayLeading sets whether this replica relays.
func (m *Metrics) EventRelayLeading(leading bool) {
	v := 0.0
	if leading {
		v = 1
	}
	m.relay.leader.Set(v)
}
