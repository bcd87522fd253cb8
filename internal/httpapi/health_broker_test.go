package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/usersvc/usersvc/internal/httpapi"
)

// The events broker shows in /health; a broker that is down degrades the
// service without making it unhealthy or unready.
func TestHealthBroker(t *testing.T) {
	up := func(context.Context) error { return nil }
	broker := func(s string) func(context.Context) string { return func(context.Context) string { return s } }
	for _, c := range []struct {
		name     string
		health   httpapi.Health
		code     int
		status   string
		database string
		broker   string
	}{
		{"not configured", httpapi.Health{Database: up}, 200, "healthy", "connected", "not_configured"},
		{"connected", httpapi.Health{Database: up, Broker: broker("connected")}, 200, "healthy", "connected", "connected"},
		{"disconnected", httpapi.Health{Database: up, Broker: broker("disconnected")}, 200, "degraded", "connected", "disconnected"},
		{"database down", httpapi.Health{Database: func(context.Context) error { return errors.New("down") }, Broker: broker("disconnected")},
			503, "unhealthy", "disconnected", "disconnected"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(httpapi.NewServer(slog.New(slog.DiscardHandler), httpapi.Config{Version: "test"}, nil, c.health))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/health")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.code || body["status"] != c.status || body["database"] != c.database || body["broker"] != c.broker {
				t.Errorf("/health = %d %v; want %d, status %s, database %s, broker %s", resp.StatusCode, body, c.code, c.status, c.database, c.broker)
			}
			if c.code == 200 {
				r, err := http.Get(srv.URL + "/health/readiness")
				if err != nil {
					t.Fatal(err)
				}
				r.Body.Close()
				if r.StatusCode != 200 {
					t.Errorf("readiness = %d with the broker %s, want 200", r.StatusCode, c.broker)
				}
			}
		})
	}
}
