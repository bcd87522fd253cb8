package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersvc/usersvc/internal/metrics"
)

func TestNearMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "test")
	m.NearHit("user")
	m.NearHit("user")
	m.NearMiss("sessions")
	m.NearInvalidated(3)
	m.NearFlushed("silence")
	m.NearBypassed(true)
	m.NearHeartbeat(300 * time.Microsecond)
	got := gathered(t, reg)
	for name, want := range map[string]float64{
		"usersvc_near_cache_hits_total{kind=user}":         2,
		"usersvc_cache_hits_total{kind=user}":              2, // a near hit is a cache hit
		"usersvc_near_cache_misses_total{kind=sessions}":   1,
		"usersvc_cache_misses_total{kind=sessions}":        0, // Redis counts it, hit or miss
		"usersvc_near_cache_invalidations_total{}":         3,
		"usersvc_near_cache_flushes_total{reason=silence}": 1,
		"usersvc_near_cache_bypassed{}":                    1,
		"usersvc_near_cache_heartbeat_delay_seconds{}":     1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	m.NearBypassed(false)
	if got := gathered(t, reg); got["usersvc_near_cache_bypassed{}"] != 0 {
		t.Errorf("bypassed after serving again: %v", got["usersvc_near_cache_bypassed{}"])
	}
}
