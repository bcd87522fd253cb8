package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersvc/usersvc/internal/metrics"
)

// gathered returns the value of every series of reg by name and labels
// ("name{k=v,...}"); for a histogram, its sample count.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName() + "{"
			for i, l := range m.GetLabel() {
				if i > 0 {
					key += ","
				}
				key += l.GetName() + "=" + l.GetValue()
			}
			key += "}"
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestRedisMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "test")
	if got := gathered(t, reg)["usersvc_redis_breaker_open{}"]; got != 0 {
		t.Errorf("breaker_open starts at %v, want 0", got)
	}
	cacheCalls, limitCalls := m.RedisCalls("cache"), m.RedisCalls("ratelimit")
	cacheCalls("read", 2*time.Millisecond, false)
	cacheCalls("read", 60*time.Millisecond, true)
	cacheCalls("read", 3*time.Millisecond, false)
	limitCalls("hit", time.Millisecond, false)
	m.RedisBreaker(true)
	m.RedisBreakerRefused()
	m.RedisBreakerRefused()

	got := gathered(t, reg)
	for key, want := range map[string]float64{
		"usersvc_redis_call_duration_seconds{component=cache,op=read,result=ok}":    2,
		"usersvc_redis_call_duration_seconds{component=cache,op=read,result=error}": 1,
		"usersvc_redis_call_duration_seconds{component=ratelimit,op=hit,result=ok}": 1,
		"usersvc_redis_breaker_open{}":                                              1,
		"usersvc_redis_breaker_transitions_total{state=open}":                       1,
		"usersvc_redis_breaker_refused_total{}":                                     2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	m.RedisBreaker(false)
	got = gathered(t, reg)
	if got["usersvc_redis_breaker_open{}"] != 0 || got["usersvc_redis_breaker_transitions_total{state=closed}"] != 1 {
		t.Errorf("after closing: breaker_open %v, transitions to closed %v", got["usersvc_redis_breaker_open{}"], got["usersvc_redis_breaker_transitions_total{state=closed}"])
	}
}
