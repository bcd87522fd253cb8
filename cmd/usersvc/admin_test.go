package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/redistest"
)

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// adminBase waits for the "admin listening" log line of s and returns the
// admin listener's base URL.
func adminBase(t *testing.T, s *server) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if lines := logLines(t, s.logs.String(), "admin listening"); len(lines) > 0 {
			addr, _ := lines[0]["addr"].(string)
			return "http://" + addr
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no admin listening line:\n%s", s.logs.String())
	return ""
}

func TestConfigAdminPort(t *testing.T) {
	c, err := loadConfig(env())
	if err != nil || c.AdminPort != -1 {
		t.Fatalf("unset: AdminPort %d, %v; want -1 (off)", c.AdminPort, err)
	}
	for in, want := range map[string]int{"9090": 9090, "0": 0} {
		c, err := loadConfig(env("ADMIN_PORT=" + in))
		if err != nil || c.AdminPort != want {
			t.Errorf("ADMIN_PORT=%s: %d, %v", in, c.AdminPort, err)
		}
	}
	dir := t.TempDir()
	for _, bad := range [][]string{{"ADMIN_PORT=metrics"}, {"ADMIN_PORT=-1"}, {"ADMIN_PORT=65536"}, {"ADMIN_PORT=8000"}, {"PORT=9000", "ADMIN_PORT=9000"}} {
		err := run(t.Context(), []string{"migrate"}, env(append(bad, "DATA_DIR="+dir)...), nil, io.Discard, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), "config: ADMIN_PORT: ") {
			t.Errorf("%v: %v, want a config error naming ADMIN_PORT", bad, err)
		}
	}
}

// TestMetricsOnAPIPortByDefault: without ADMIN_PORT, /metrics is on the API
// port and there is no admin listener.
func TestMetricsOnAPIPortByDefault(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir())
	if st, body := get(t, srv.base+"/metrics"); st != http.StatusOK || !strings.Contains(body, "usersvc_build_info") {
		t.Errorf("GET /metrics on the API port: %d", st)
	}
	if st, _ := get(t, srv.base+"/debug/pprof/"); st != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the API port: %d, want 404", st)
	}
	if lines := logLines(t, srv.logs.String(), "admin listening"); len(lines) != 0 {
		t.Errorf("an admin listener without ADMIN_PORT: %v", lines)
	}
}

// TestAdminListener: with ADMIN_PORT, /metrics and the profiler are served
// there, and /metrics is gone from the API port.
func TestAdminListener(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "ADMIN_PORT=0")
	admin := adminBase(t, srv)
	if admin == srv.base {
		t.Fatalf("the admin listener is the API listener (%s)", admin)
	}
	st, body := get(t, admin+"/metrics")
	if st != http.StatusOK {
		t.Fatalf("GET /metrics on the admin port: %d", st)
	}
	for _, want := range []string{"usersvc_build_info{", "usersvc_redis_breaker_open 0", "go_goroutines", "usersvc_db_pool_open_connections"} {
		if !strings.Contains(body, want) {
			t.Errorf("admin /metrics has no %s", want)
		}
	}
	if st, body := get(t, admin+"/debug/pprof/"); st != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/ on the admin port: %d", st)
	}
	if st, _ := get(t, admin+"/debug/pprof/goroutine?debug=1"); st != http.StatusOK {
		t.Errorf("GET /debug/pprof/goroutine on the admin port: %d", st)
	}
	if st, _ := get(t, admin+"/debug/pprof/profile?seconds=1"); st != http.StatusOK {
		t.Errorf("GET /debug/pprof/profile on the admin port: %d", st)
	}
	if st, _ := get(t, admin+"/api/v1/users/"); st != http.StatusNotFound {
		t.Errorf("the API on the admin port: %d, want 404", st)
	}

	st, body = get(t, srv.base+"/metrics")
	if st != http.StatusNotFound || strings.Contains(body, "usersvc_") {
		t.Errorf("GET /metrics on the API port with ADMIN_PORT set: %d %.80s, want 404", st, body)
	}
	if st, _ := get(t, srv.base+"/debug/pprof/"); st != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the API port: %d, want 404", st)
	}

	// The admin listener stops with the service.
	srv.stop(t)
	if _, err := http.Get(admin + "/metrics"); err == nil {
		t.Error("the admin listener still answers after the service stopped")
	}
}

// TestRedisMetrics: with Redis, the calls of the cache and of the rate
// limits are timed, and the breaker's state is exported.
func TestRedisMetrics(t *testing.T) {
	rds := redistest.Start(t)
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "REDIS_URL="+rds.URL(), "ADMIN_PORT=0")
	admin := adminBase(t, srv)
	if st, body := post(t, srv.base+"/api/v1/users/", map[string]any{"email": "redis-metrics@example.com", "password": "Redis!metrics1", "name": "Redis Metrics"}); st != http.StatusCreated {
		t.Fatalf("register: %d %v", st, body)
	}
	if st, _ := post(t, srv.base+"/api/v1/users/login", map[string]any{"email": "redis-metrics@example.com", "password": "Wrong!password1"}); st != http.StatusUnauthorized {
		t.Fatalf("failed login: %d", st)
	}
	_, body := get(t, admin+"/metrics")
	for _, want := range []string{
		`usersvc_redis_call_duration_seconds_count{component="ratelimit",op="allow",result="ok"}`,
		`usersvc_redis_call_duration_seconds_count{component="ratelimit",op="hit",result="ok"}`,
		`usersvc_redis_call_duration_seconds_count{component="cache",op="forget",result="ok"}`,
		"usersvc_redis_breaker_open 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}

	// Redis stops answering: the breaker opens, and says so.
	rds.Pause()
	defer rds.Resume()
	deadline := time.Now().Add(10 * time.Second)
	for {
		post(t, srv.base+"/api/v1/users/login", map[string]any{"email": "redis-metrics@example.com", "password": "Wrong!password1"})
		_, body = get(t, admin+"/metrics")
		if strings.Contains(body, "usersvc_redis_breaker_open 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("usersvc_redis_breaker_open did not become 1 with Redis paused")
		}
	}
	for _, want := range []string{`result="error"`, `usersvc_redis_breaker_transitions_total{state="open"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("with Redis paused /metrics has no %s", want)
		}
	}
}
