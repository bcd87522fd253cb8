package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
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
