package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/usersvc/usersvc/internal/metrics"
)

// adminHandler serves what operators need and clients must not see: the
// metrics and the Go profiler.
func adminHandler(metricsHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found: the admin port serves /metrics and /debug/pprof/", http.StatusNotFound)
	})
	return mux
}

// startAdmin starts the admin listener when ADMIN_PORT is set. It returns
// the handler of GET /metrics for the API port (nil when the admin
// listener serves it instead) and a function that stops the listener.
func (a *app) startAdmin() (apiMetrics http.Handler, stop func(), err error) {
	h := metrics.Handler(a.registry)
	if a.cfg.AdminPort < 0 {
		return h, func() {}, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.cfg.Host, strconv.Itoa(a.cfg.AdminPort)))
	if err != nil {
		return nil, nil, fmt.Errorf("admin listen: %w", err)
	}
	srv := &http.Server{
		Handler:           adminHandler(h),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// No WriteTimeout: a CPU profile or an execution trace streams for
		// as long as its ?seconds= asks.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	a.logger.Info("admin listening", slog.String("addr", ln.Addr().String()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("admin listener stopped", slog.Any("error", err))
		}
	}()
	return nil, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	}, nil
}
