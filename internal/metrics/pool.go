package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PoolStats is a snapshot of a database connection pool, in terms both
// database/sql and pgxpool can give:
//
//	// database/sql (SQLite)
//	s := db.Stats()
//	metrics.PoolStats{MaxOpen: s.MaxOpenConnections, Open: s.OpenConnections, InUse: s.InUse,
//		Idle: s.Idle, WaitCount: s.WaitCount, WaitDuration: s.WaitDuration}
//
//	// pgxpool (PostgreSQL)
//	s := pool.Stat()
//	metrics.PoolStats{MaxOpen: int(s.MaxConns()), Open: int(s.TotalConns()), InUse: int(s.AcquiredConns()),
//		Idle: int(s.IdleConns()), WaitCount: s.EmptyAcquireCount(), WaitDuration: s.EmptyAcquireWaitTime()}
type PoolStats struct {
	MaxOpen      int           // most connections the pool will open; 0 means no limit
	Open         int           // connections open, in use or idle
	InUse        int           // connections lent out
	Idle         int           // connections open and unused
	WaitCount    int64         // acquisitions that had to wait, since the pool opened
	WaitDuration time.Duration // total time spent waiting, since the pool opened
}

// WatchPool registers a collector that calls stats at each scrape and
// reports the pool as usersvc_db_pool_* metrics.
func (m *Metrics) WatchPool(stats func() PoolStats) error {
	return m.reg.Register(newPoolCollector(stats))
}

type poolCollector struct {
	stats                          func() PoolStats
	maxOpen, open, inUse, idle     *prometheus.Desc
	waitCount, waitDurationSeconds *prometheus.Desc
}

func newPoolCollector(stats func() PoolStats) *poolCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "db_pool", name), help, nil, nil)
	}
	return &poolCollector{
		stats:               stats,
		maxOpen:             desc("max_open_connections", "Most connections the pool will open (0: no limit)."),
		open:                desc("open_connections", "Connections open, in use or idle."),
		inUse:               desc("in_use_connections", "Connections in use."),
		idle:                desc("idle_connections", "Idle connections."),
		waitCount:           desc("wait_count_total", "Connection acquisitions that had to wait."),
		waitDurationSeconds: desc("wait_duration_seconds_total", "Time spent waiting for a connection."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.maxOpen, c.open, c.inUse, c.idle, c.waitCount, c.waitDurationSeconds} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.maxOpen, prometheus.GaugeValue, float64(s.MaxOpen))
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(s.Open))
	ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(c.waitCount, prometheus.CounterValue, float64(s.WaitCount))
	ch <- prometheus.MustNewConstMetric(c.waitDurationSeconds, prometheus.CounterValue, s.WaitDuration.Seconds())
}
