package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// logLines returns the JSON log lines with message msg.
func logLines(t *testing.T, logs, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// TestAccessLogDurationMS checks that the request log gives a request's
// duration in milliseconds as a number, not as Go's nanoseconds.
func TestAccessLogDurationMS(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "LOG_FORMAT=json")
	req, _ := http.NewRequest("GET", srv.base+"/health/liveness", nil)
	if st, _ := send(t, req); st != http.StatusOK {
		t.Fatalf("liveness: %d", st)
	}
	srv.stop(t)
	lines := logLines(t, srv.logs.String(), "request")
	if len(lines) == 0 {
		t.Fatalf("no request log line:\n%s", srv.logs.String())
	}
	for _, l := range lines {
		ms, ok := l["duration_ms"].(float64)
		if !ok || ms < 0 || ms > 30_000 {
			t.Errorf("duration_ms = %#v in %v", l["duration_ms"], l)
		}
		if _, ok := l["duration"]; ok {
			t.Errorf("the request log still has duration: %v", l)
		}
	}
}

// TestAccessLogBatched checks the default LOG_FLUSH_INTERVAL end to end:
// request lines arrive within the interval (not one write(2) each), and
// every line logged is written by the time the server has stopped.
func TestAccessLogBatched(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "LOG_FLUSH_INTERVAL=100ms")
	const n = 20
	for range n {
		req, _ := http.NewRequest("GET", srv.base+"/health/liveness", nil)
		if st, _ := send(t, req); st != http.StatusOK {
			t.Fatalf("liveness: %d", st)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(logLines(t, srv.logs.String(), "request")) < n {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s, %d of %d request lines:\n%s", len(logLines(t, srv.logs.String(), "request")), n, srv.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", srv.base+"/health/liveness", nil)
	if st, _ := send(t, req); st != http.StatusOK {
		t.Fatalf("liveness: %d", st)
	}
	srv.stop(t)
	if got := len(logLines(t, srv.logs.String(), "request")); got != n+1 {
		t.Errorf("after stopping, %d request lines, want %d", got, n+1)
	}
	if !strings.Contains(srv.logs.String(), `"msg":"stopped"`) {
		t.Error("the last line of a stop is missing")
	}
}
