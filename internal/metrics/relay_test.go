package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersvc/usersvc/internal/metrics"
	"github.com/usersvc/usersvc/internal/relay"
)

var _ relay.Observer = (*metrics.Metrics)(nil)

func TestRelayMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "test")
	m.EventsPublished(1000)
	m.EventsPublished(24)
	m.EventPublishFailed()
	m.EventBacklog(42, 90*time.Second)
	m.EventRelayLeading(true)
	got := gathered(t, reg)
	for name, want := range map[string]float64{
		"usersvc_events_published_total{}":                1024,
		"usersvc_events_publish_failures_total{}":         1,
		"usersvc_events_unpublished{}":                    42,
		"usersvc_events_oldest_unpublished_age_seconds{}": 90,
		"usersvc_events_relay_leader{}":                   1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	m.EventRelayLeading(false)
	m.EventBacklog(0, 0)
	got = gathered(t, reg)
	if got["usersvc_events_relay_leader{}"] != 0 || got["usersvc_events_unpublished{}"] != 0 {
		t.Errorf("after losing the lease and publishing everything: %v", got)
	}
}
