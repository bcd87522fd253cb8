package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a call to Redis, the result label of
// usersvc_redis_call_duration_seconds.
const (
	resultOK    = "ok"
	resultError = "error"
)

// redisMetrics are the metrics of Redis and its circuit breaker.
type redisMetrics struct {
	callDuration   *prometheus.HistogramVec
	breakerOpen    prometheus.Gauge
	breakerChanges *prometheus.CounterVec
	breakerRefused prometheus.Counter
}

func newRedisMetrics() *redisMetrics {
	return &redisMetrics{
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "redis", Name: "call_duration_seconds",
			Help: "Time of one call to Redis, by component (cache, ratelimit), operation and result " +
				"(ok, or error: no answer within REDIS_TIMEOUT, a broken connection or an error reply).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"component", "op", "result"}),
		breakerOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "redis", Name: "breaker_open",
			Help: "1 while the Redis circuit breaker is open (Redis is bypassed: reads go to the database, rate limits count per process), else 0.",
		}),
		breakerChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "redis", Name: "breaker_transitions_total",
			Help: "Changes of the Redis circuit breaker, by the state it entered (open, closed).",
		}, []string{"state"}),
		breakerRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "redis", Name: "breaker_refused_total",
			Help: "Calls to Redis not made because the circuit breaker was open.",
		}),
	}
}

func (r *redisMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.callDuration, r.breakerOpen, r.breakerChanges, r.breakerRefused}
}

// RedisBreaker records a change of the Redis circuit breaker. It fits
// breaker.Options.OnChange.
func (m *Metrics) RedisBreaker(open bool) {
	state := "closed"
	if open {
		state = "open"
		m.redis.breakerOpen.Set(1)
	} else {
		m.redis.breakerOpen.Set(0)
	}
	m.redis.breakerChanges.WithLabelValues(state).Inc()
}

// RedisBreakerRefused counts a call the Redis circuit breaker refused. It
// fits breaker.Options.OnRefuse.
func (m *Metrics) RedisBreakerRefused() { m.redis.breakerRefused.Inc() }

// RedisCalls returns an observer of the calls to Redis that component
// ("cache", "ratelimit") makes, for cache.RedisOptions.OnCall and
// ratelimit.Options.OnCall. op names the operation from a set the
// component fixes.
func (m *Metrics) RedisCalls(component string) func(op string, d time.Duration, failed bool) {
	return func(op string, d time.Duration, failed bool) {
		result := resultOK
		if failed {
			result = resultError
		}
		m.redis.callDuration.WithLabelValues(component, op, result).Observe(d.Seconds())
	}
}
