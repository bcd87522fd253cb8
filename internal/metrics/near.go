package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// nearMetrics are the metrics of the near cache in front of Redis
// (cache.Near).
type nearMetrics struct {
	hits          *prometheus.CounterVec
	misses        *prometheus.CounterVec
	invalidations prometheus.Counter
	flushes       *prometheus.CounterVec
	bypassed      prometheus.Gauge
	heartbeat     prometheus.Histogram
}

func newNearMetrics() *nearMetrics {
	return &nearMetrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "near_cache", Name: "hits_total",
			Help: "Cache lookups answered from process memory in front of Redis (also counted in usersvc_cache_hits_total), by kind of entry.",
		}, []string{"kind"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "near_cache", Name: "misses_total",
			Help: "Lookups of the near cache, while it serves, that went on to Redis, by kind of entry.",
		}, []string{"kind"}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "near_cache", Name: "invalidations_total",
			Help: "Keys named by the invalidation channel (the writes of every replica), present in process or not.",
		}),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "near_cache", Name: "flushes_total",
			Help: "Times the near cache dropped every entry, by reason: subscribed (the channel was subscribed again), silence (no heartbeat within NEAR_CACHE_BOUND), lost (the subscription failed), generation (the Redis cache's generation changed).",
		}, []string{"reason"}),
		bypassed: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "near_cache", Name: "bypassed",
			Help: "1 while the near cache is on but serves nothing (no heartbeat came back from Redis within NEAR_CACHE_BOUND: reads go to Redis or the database), else 0.",
		}),
		heartbeat: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "near_cache", Name: "heartbeat_delay_seconds",
			Help:    "Time from the publication of a heartbeat to its arrival through the invalidation subscription: how far behind the writes of other replicas the near cache is.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
	}
}

func (n *nearMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{n.hits, n.misses, n.invalidations, n.flushes, n.bypassed, n.heartbeat}
}

// NearHit counts a lookup the near cache answered, as a near hit and as a
// cache hit. With the other Near* methods it fits cache.NearOptions.
func (m *Metrics) NearHit(kind string) {
	m.near.hits.WithLabelValues(kind).Inc()
	m.CacheHit(kind)
}

// NearMiss counts a lookup the near cache passed on to Redis.
func (m *Metrics) NearMiss(kind string) { m.near.misses.WithLabelValues(kind).Inc() }

// NearInvalidated counts keys named by the invalidation channel.
func (m *Metrics) NearInvalidated(keys int) { m.near.invalidations.Add(float64(keys)) }

// NearFlushed counts a flush of the near cache.
func (m *Metrics) NearFlushed(reason string) { m.near.flushes.WithLabelValues(reason).Inc() }

// NearBypassed sets whether the near cache serves nothing.
func (m *Metrics) NearBypassed(bypassed bool) {
	v := 0.0
	if bypassed {
		v = 1
	}
	m.near.bypassed.Set(v)
}

// NearHeartbeat observes the delay of one heartbeat.
func (m *Metrics) NearHeartbeat(d time.Duration) { m.near.heartbeat.Observe(d.Seconds()) }
