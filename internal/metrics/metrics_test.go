package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/metrics"
)

// route names a request's route as the service does: the mux pattern, or
// "unmatched".
func route(r *http.Request) string {
	p := strings.TrimSuffix(r.Pattern, "/{$}")
	if p == "" || p == "/" {
		return "unmatched"
	}
	return p
}

// recoverer stands for the service's outer middleware, which answers 500
// when a handler panics.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

const (
	userID = "0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b"
	jwt    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
)

func newServer(t *testing.T, m *metrics.Metrics, release <-chan struct{}, entered chan<- struct{}) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/users/{user_id}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"success": true}`))
	})
	mux.HandleFunc("POST /api/v1/users/login", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	srv := httptest.NewServer(recoverer(m.Middleware(mux, route)))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url, body string, header ...string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// families gathers reg by family name.
func families(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// find returns the metric of mf whose labels include want, or nil.
func find(mf *dto.MetricFamily, want map[string]string) *dto.Metric {
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "v1.2.3")
	if err := m.WatchPool(func() metrics.PoolStats {
		return metrics.PoolStats{MaxOpen: 10, Open: 4, InUse: 3, Idle: 1, WaitCount: 7, WaitDuration: 1500 * time.Millisecond}
	}); err != nil {
		t.Fatal(err)
	}
	release, entered := make(chan struct{}), make(chan struct{})
	srv := newServer(t, m, release, entered)

	// Requests whose paths, queries, headers and bodies carry a user id,
	// an email and a token: none of them may become a label value.
	for range 2 {
		if got := do(t, "GET", srv.URL+"/api/v1/users/"+userID+"?email=grace@example.com", "", "Authorization", "Bearer "+jwt); got != 200 {
			t.Fatalf("GET user: %d", got)
		}
	}
	if got := do(t, "POST", srv.URL+"/api/v1/users/login", `{"email": "grace@example.com", "password": "x"}`); got != 401 {
		t.Fatalf("POST login: %d", got)
	}
	if got := do(t, "GET", srv.URL+"/nothing/grace@example.com/"+jwt, ""); got != 404 {
		t.Fatalf("GET unknown: %d", got)
	}
	if got := do(t, "BREW", srv.URL+"/coffee", ""); got != 404 {
		t.Fatalf("BREW: %d", got)
	}
	if got := do(t, "GET", srv.URL+"/panic", ""); got != 500 {
		t.Fatalf("GET panic: %d", got)
	}

	// A request in flight shows in the gauge.
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL+"/slow", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered
	if g := families(t, reg)["usersvc_http_requests_in_flight"].GetMetric()[0].GetGauge().GetValue(); g != 1 {
		t.Errorf("in flight during a request = %v, want 1", g)
	}
	close(release)
	if got := <-done; got != 200 {
		t.Fatalf("GET slow: %d", got)
	}

	m.CacheHit("user")
	m.CacheHit("user")
	m.CacheMiss("devices")
	m.ObserveHash(120 * time.Millisecond)
	m.RateLimited("login_email")
	m.SecurityEvent(account.EventRefreshReuse)
	m.SecurityEvent(account.EventLoginFailed)

	// The handler serves every family in the text format.
	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	text := rec.Body.String()
	for _, name := range []string{
		"usersvc_http_requests_total",
		"usersvc_http_request_duration_seconds_bucket",
		"usersvc_http_requests_in_flight",
		"usersvc_cache_hits_total",
		"usersvc_cache_misses_total",
		"usersvc_password_hash_duration_seconds_bucket",
		"usersvc_rate_limit_rejections_total",
		"usersvc_refresh_reuse_total",
		"usersvc_security_events_total",
		"usersvc_build_info",
		"usersvc_db_pool_max_open_connections",
		"usersvc_db_pool_open_connections",
		"usersvc_db_pool_in_use_connections",
		"usersvc_db_pool_idle_connections",
		"usersvc_db_pool_wait_count_total",
		"usersvc_db_pool_wait_duration_seconds_total",
		"go_goroutines",
		"process_start_time_seconds",
	} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("/metrics has no %s", name)
		}
	}

	fams := families(t, reg)
	counter := func(family string, labels map[string]string) float64 {
		t.Helper()
		m := find(fams[family], labels)
		if m == nil {
			t.Errorf("%s has no series %v", family, labels)
			return -1
		}
		return m.GetCounter().GetValue()
	}
	for _, c := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"usersvc_http_requests_total", map[string]string{"method": "GET", "route": "GET /api/v1/users/{user_id}", "status": "200"}, 2},
		{"usersvc_http_requests_total", map[string]string{"method": "POST", "route": "POST /api/v1/users/login", "status": "401"}, 1},
		{"usersvc_http_requests_total", map[string]string{"method": "GET", "route": "unmatched", "status": "404"}, 1},
		{"usersvc_http_requests_total", map[string]string{"method": "OTHER", "route": "unmatched", "status": "404"}, 1},
		{"usersvc_http_requests_total", map[string]string{"method": "GET", "route": "GET /panic", "status": "500"}, 1},
		{"usersvc_http_requests_total", map[string]string{"method": "GET", "route": "GET /slow", "status": "200"}, 1},
		{"usersvc_cache_hits_total", map[string]string{"kind": "user"}, 2},
		{"usersvc_cache_misses_total", map[string]string{"kind": "devices"}, 1},
		{"usersvc_rate_limit_rejections_total", map[string]string{"limit": "login_email"}, 1},
		{"usersvc_refresh_reuse_total", nil, 1},
		{"usersvc_security_events_total", map[string]string{"event": "refresh_reuse"}, 1},
		{"usersvc_security_events_total", map[string]string{"event": "login_failed"}, 1},
		{"usersvc_db_pool_wait_count_total", nil, 7},
		{"usersvc_db_pool_wait_duration_seconds_total", nil, 1.5},
	} {
		if got := counter(c.family, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.family, c.labels, got, c.want)
		}
	}
	if h := find(fams["usersvc_http_request_duration_seconds"], map[string]string{"method": "GET", "route": "GET /api/v1/users/{user_id}", "status": "200"}); h.GetHistogram().GetSampleCount() != 2 {
		t.Errorf("request duration samples = %d, want 2", h.GetHistogram().GetSampleCount())
	}
	if h := fams["usersvc_password_hash_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 0.12 {
		t.Errorf("hash duration: %d samples, sum %v; want 1, 0.12", h.GetSampleCount(), h.GetSampleSum())
	}
	if g := fams["usersvc_http_requests_in_flight"].GetMetric()[0].GetGauge().GetValue(); g != 0 {
		t.Errorf("in flight after all requests = %v, want 0", g)
	}
	if b := find(fams["usersvc_build_info"], map[string]string{"version": "v1.2.3", "goversion": runtime.Version()}); b.GetGauge().GetValue() != 1 {
		t.Errorf("build info = %v, want a gauge of 1 labelled with the versions", b)
	}
	for name, want := range map[string]float64{
		"usersvc_db_pool_max_open_connections": 10,
		"usersvc_db_pool_open_connections":     4,
		"usersvc_db_pool_in_use_connections":   3,
		"usersvc_db_pool_idle_connections":     1,
	} {
		if got := fams[name].GetMetric()[0].GetGauge().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	// No label value anywhere looks like a user id, an email or a token.
	secret := regexp.MustCompile(`(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|@|eyJ[A-Za-z0-9_-]*\.|Bearer`)
	for _, mf := range fams {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if secret.MatchString(l.GetValue()) {
					t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// The security event that counts as a refresh reuse is the one the account
// service sends.
func TestRefreshReuseEvent(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "dev")
	for _, e := range []string{account.EventLoginFailed, account.EventForbidden, account.EventLoginDisabled} {
		m.SecurityEvent(e)
	}
	fams := families(t, reg)
	if _, ok := fams["usersvc_refresh_reuse_total"]; ok {
		if v := fams["usersvc_refresh_reuse_total"].GetMetric()[0].GetCounter().GetValue(); v != 0 {
			t.Fatalf("refresh reuse counted %v for other events", v)
		}
	}
	m.SecurityEvent(account.EventRefreshReuse)
	if v := families(t, reg)["usersvc_refresh_reuse_total"].GetMetric()[0].GetCounter().GetValue(); v != 1 {
		t.Fatalf("refresh reuse = %v after %q, want 1", v, account.EventRefreshReuse)
	}
}

// Two sets of metrics on one registry are a wiring mistake, caught at start.
func TestNewTwicePanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg, "dev")
	defer func() {
		if recover() == nil {
			t.Fatal("second New on one registry did not panic")
		}
	}()
	metrics.New(reg, "dev")
}
