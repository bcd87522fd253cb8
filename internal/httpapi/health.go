package httpapi

import (
	"context"
	"net/http"
	"time"
)

// healthTimeout bounds each dependency check of the health routes.
const healthTimeout = 2 * time.Second

func handleHealth(h Health, version string) http.Handler {
	type report struct {
		Status    string `json:"status"`
		Database  string `json:"database"`
		Redis     string `json:"redis"`
		Broker    string `json:"broker"`
		Version   string `json:"version"`
		Timestamp string `json:"timestamp"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		rep := report{Status: "healthy", Database: "connected", Redis: "not_configured", Broker: "not_configured", Version: version, Timestamp: timestamp(time.Now())}
		if h.Redis != nil {
			rep.Redis = h.Redis(ctx)
		}
		if h.Broker != nil {
			rep.Broker = h.Broker(ctx)
		}
		// Without Redis or the broker the service still serves: the cache
		// and the limits fall back to the process, events wait in the outbox.
		if rep.Redis == "disconnected" || rep.Broker == "disconnected" {
			rep.Status = "degraded"
		}
		status := http.StatusOK
		if err := h.Database(ctx); err != nil {
			rep.Status, rep.Database, status = "unhealthy", "disconnected", http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, status, rep)
	})
}

func handleLiveness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
}

func handleReadiness(h Health) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		if h.Draining.Load() || h.Database(ctx) != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
