// Package metrics holds the service's Prometheus metrics. Everything is
// registered on the registry passed to New, never on a global one.
//
// Label values are bounded sets chosen by the service (route patterns,
// methods, status codes, cache kinds, limit and event names); no user id,
// email or token is ever a label value.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "usersvc"

// eventRefreshReuse is the security event that also counts as a refresh
// token reuse (account.EventRefreshReuse).
const eventRefreshReuse = "refresh_reuse"

// Metrics are the service's own metrics. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg            prometheus.Registerer
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	inFlight       prometheus.Gauge
	cacheHits      *prometheus.CounterVec
	cacheMisses    *prometheus.CounterVec
	hashDuration   prometheus.Histogram
	rateLimited    *prometheus.CounterVec
	refreshReuse   prometheus.Counter
	securityEvents *prometheus.CounterVec
	sessions       *prometheus.CounterVec
	selfService    *prometheus.CounterVec
	redis          *redisMetrics
	relay          *relayMetrics
	near           *nearMetrics
	served         servedSeries
}

// servedKey names one series of the request metrics.
type servedKey struct {
	method, route string
	status        int
}

// served is the pair of series a request adds to.
type served struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// servedSeries keeps the series of the request metrics once looked up, so
// that a request neither builds a label map nor hashes its labels: a read
// of a map under a read lock. The keys are bounded as the labels are (a
// route pattern, a method of methodLabel, a status).
type servedSeries struct {
	mu sync.RWMutex
	m  map[servedKey]served
}

// series returns the series of k, looking them up the first time.
func (m *Metrics) series(k servedKey) served {
	m.served.mu.RLock()
	s, ok := m.served.m[k]
	m.served.mu.RUnlock()
	if ok {
		return s
	}
	labels := prometheus.Labels{"method": k.method, "route": k.route, "status": strconv.Itoa(k.status)}
	s = served{requests: m.requests.With(labels), duration: m.duration.With(labels)}
	m.served.mu.Lock()
	if m.served.m == nil {
		m.served.m = make(map[servedKey]served)
	}
	m.served.m[k] = s
	m.served.mu.Unlock()
	return s
}

// New creates the metrics and registers them on reg, together with the Go
// runtime and process collectors and a build-info gauge for version. It
// panics if reg already holds any of them: that is a wiring mistake.
func New(reg prometheus.Registerer, version string) *Metrics {
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method, route pattern and status code.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "cache", Name: "hits_total",
			Help: "Cache lookups answered from the cache, by kind of entry.",
		}, []string{"kind"}),
		cacheMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "cache", Name: "misses_total",
			Help: "Cache lookups that fell through to the database, by kind of entry.",
		}, []string{"kind"}),
		hashDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "password", Name: "hash_duration_seconds",
			Help:    "Time to compute one password hash, not counting the wait for a slot.",
			Buckets: []float64{.01, .025, .05, .1, .15, .2, .3, .5, .75, 1, 2, 5},
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "rate_limit", Name: "rejections_total",
			Help: "Requests refused by a rate limit, by limit.",
		}, []string{"limit"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "sessions_total",
			Help: "Session events: created (a login), refreshed, retried (a spent refresh token presented again within the reuse interval), reuse_revoked.",
		}, []string{"event"}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "refresh_reuse_total",
			Help: "Spent refresh tokens presented again (each revokes its family).",
		}),
		securityEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "security_events_total",
			Help: "Security events (failed logins, refresh reuse, forbidden access), by event.",
		}, []string{"event"}),
		selfService: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "self_service_total",
			Help: "Steps of the self-service flows (password_reset, verification, email_change), by flow and outcome: requested, confirmed (a token or code did its work), failed (a token or code refused).",
		}, []string{"flow", "outcome"}),
		redis: newRedisMetrics(),
		relay: newRelayMetrics(),
		near:  newNearMetrics(),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; the labels name the running build.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)

	reg.MustRegister(
		m.requests, m.duration, m.inFlight,
		m.cacheHits, m.cacheMisses,
		m.hashDuration, m.rateLimited, m.refreshReuse, m.securityEvents, m.sessions, m.selfService,
		buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(m.redis.collectors()...)
	reg.MustRegister(m.relay.collectors()...)
	reg.MustRegister(m.near.collectors()...)
	return m
}

// Handler serves the metrics gathered from g in the Prometheus exposition
// format, for GET /metrics.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Middleware counts and times the requests next serves. route names the
// route pattern of a request; it is called after next has served, so a
// ServeMux has set r.Pattern by then. It must therefore see the request
// value the mux saw: put Middleware inside any middleware that replaces
// the request (r.WithContext), that is, directly around the mux.
func (m *Metrics) Middleware(next http.Handler, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Inc()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			// Also runs while a panic unwinds: then an unanswered request
			// counts as the 500 the recovering middleware will send.
			m.inFlight.Dec()
			status := rec.status
			if status == 0 {
				status = http.StatusOK
				if !rec.done {
					status = http.StatusInternalServerError
				}
			}
			rt := route(r)
			if rt == "" {
				rt = "unmatched"
			}
			s := m.series(servedKey{method: methodLabel(r.Method), route: rt, status: status})
			s.requests.Inc()
			s.duration.Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
		rec.done = true
	})
}

// methodLabel keeps the method label to a bounded set: a client can send
// any token as a method.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// statusRecorder remembers the status code of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	done   bool // next returned normally
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ObserveHash records the time one password hash took. It fits
// password.WithObserver.
func (m *Metrics) ObserveHash(d time.Duration) { m.hashDuration.Observe(d.Seconds()) }

// SelfService counts a step of a self-service flow.
func (m *Metrics) SelfService(flow, outcome string) {
	m.selfService.WithLabelValues(flow, outcome).Inc()
}

// Session counts a session event by name. It fits account.Options.OnSession.
func (m *Metrics) Session(event string) { m.sessions.WithLabelValues(event).Inc() }

// SecurityEvent counts a security event by name, and a refresh token reuse
// also in usersvc_refresh_reuse_total. It fits account.Options.OnSecurityEvent.
func (m *Metrics) SecurityEvent(event string) {
	m.securityEvents.WithLabelValues(event).Inc()
	if event == eventRefreshReuse {
		m.refreshReuse.Inc()
	}
}

// CacheHit counts a cache lookup of kind ("user", "devices") that the cache answered.
func (m *Metrics) CacheHit(kind string) { m.cacheHits.WithLabelValues(kind).Inc() }

// CacheMiss counts a cache lookup of kind that fell through to the database.
func (m *Metrics) CacheMiss(kind string) { m.cacheMisses.WithLabelValues(kind).Inc() }

// RateLimited counts a request refused by the named limit ("login_ip",
// "login_email", …).
func (m *Metrics) RateLimited(limit string) { m.rateLimited.WithLabelValues(limit).Inc() }
