package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/metrics"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/relay"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/tracing"
)

// newLogger returns the service's logger, writing to w. When w is a
// logBuffer, warnings and errors write the lines waiting at once.
func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	if b, ok := w.(*logBuffer); ok {
		h = flushingHandler{Handler: h, buf: b, flushAt: slog.LevelWarn}
	}
	return slog.New(tracing.LogHandler(h))
}

// database is what the command needs of the store beside the use cases:
// schema, health, pool figures, cleanup and shutdown.
type database interface {
	account.Store
	Migrate(ctx context.Context) error
	Ping(ctx context.Context) error
	Stats() sql.DBStats
	DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int, error)
	Close() error
}

var _ database = (*sqlstore.Store)(nil)

// openStore opens the configured database and applies pending migrations.
// Its statements are traced when t is on (t may be nil).
func openStore(ctx context.Context, cfg *config, t *tracing.Tracing) (*sqlstore.Store, error) {
	var (
		s   *sqlstore.Store
		err error
	)
	pgOpts, liteOpts := storeTracing(t)
	if cfg.postgres() {
		s, err = postgres.Open(ctx, cfg.DatabaseURL, pgOpts...)
	} else {
		s, err = sqlite.Open(ctx, cfg.sqlitePath(), liteOpts...)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return s, nil
}

// poolStats reads the store's connection pool for the metrics.
func poolStats(st database) func() metrics.PoolStats {
	return func() metrics.PoolStats {
		s := st.Stats()
		return metrics.PoolStats{MaxOpen: s.MaxOpenConnections, Open: s.OpenConnections, InUse: s.InUse,
			Idle: s.Idle, WaitCount: s.WaitCount, WaitDuration: s.WaitDuration}
	}
}

// app is the service wired together.
type app struct {
	events   eventStore   // the outbox, for the relay and pruning
	relay    *relay.Relay // nil without EVENTS_BROKER_URL
	cfg      *config
	logger   *slog.Logger
	store    database
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	tokens   *token.Service
	accounts *account.Service
	health   httpapi.Health
	tracing  *tracing.Tracing
	hashes   hashCounter // password hashes computed
	closers  []func()
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// newApp opens the store, loads the keys and builds the use cases.
// Only a serving app signs unsubscribe links (on PostgreSQL their key must
// be set, which other commands do not need).
func newApp(ctx context.Context, cfg *config, logw io.Writer, serving bool) (*app, error) {
	return newAppTraced(ctx, cfg, logw, nil, serving)
}

// newAppTraced is newApp with tracing t, or with the configured tracing
// when t is nil.
func newAppTraced(ctx context.Context, cfg *config, logw io.Writer, t *tracing.Tracing, serving bool) (*app, error) {
	a := &app{cfg: cfg, logger: newLogger(cfg, logw), registry: prometheus.NewRegistry(), tracing: t}
	if t == nil {
		if err := a.startTracing(ctx); err != nil {
			return nil, err
		}
	}
	a.metrics = metrics.New(a.registry, version())
	st, err := openStore(ctx, cfg, a.tracing)
	if err != nil {
		a.close()
		return nil, err
	}
	a.store = st
	if err := a.metrics.WatchPool(poolStats(st)); err != nil {
		st.Close()
		a.close()
		return nil, err
	}
	a.closers = append(a.closers, func() { st.Close() })
	tokens, err := loadTokens(cfg, a.logger)
	if err != nil {
		a.close()
		return nil, err
	}
	a.tokens = tokens
	var unsub account.UnsubscribeTokens
	if serving {
		signer, err := loadUnsubscribe(cfg, a.logger)
		if err != nil {
			a.close()
			return nil, err
		}
		unsub = signer
	}
	hasherOpts := []password.Option{password.WithObserver(func(d time.Duration) {
		a.metrics.ObserveHash(d)
		a.hashes.observe(d)
	}), password.WithCollectAfterHash()}
	if cfg.HashConcurrency > 0 {
		hasherOpts = append(hasherOpts, password.WithMaxConcurrent(cfg.HashConcurrency))
	}
	hasher, err := password.New(append(hasherOpts, hasherTracing(a.tracing)...)...)
	if err != nil {
		a.close()
		return nil, err
	}
	c, limits, redisStatus, err := a.cacheAndLimits()
	if err != nil {
		a.close()
		return nil, err
	}
	a.accounts = account.New(cache.Wrap(st, c), hasher, tokens, account.Options{
		ServiceKeys:          cfg.ServiceKeys,
		Logger:               a.logger,
		OnSecurityEvent:      a.metrics.SecurityEvent,
		RefreshReuseInterval: cfg.RefreshReuseInterval,
		OnSession:            a.metrics.Session,
		Limits:               limits,
		OnRateLimited:        a.metrics.RateLimited,
		Unsubscribe:          unsub,
		PasswordResetTTL:     cfg.PasswordResetTTL,
		PasswordResetURL:     cfg.PasswordResetURL,
		ForgotPasswordFloor:  cfg.ForgotPasswordFloor,
		OnSelfService:        a.metrics.SelfService,
		VerificationURL:      cfg.VerificationURL,
		RequireVerified:      cfg.RequireVerified,
		EmailChangeURL:       cfg.EmailChangeURL,
	})
	a.health = httpapi.Health{Database: st.Ping, Redis: redisStatus, Draining: new(atomic.Bool)}
	a.events = st
	if a.relay = newRelay(cfg, st, a.metrics, a.logger, a.tracing); a.relay != nil {
		a.health.Broker = a.relay.Status
	}
	return a, nil
}

// serve runs the HTTP server until ctx ends, then drains and returns nil.
func serve(ctx context.Context, cfg *config, logw io.Writer) error {
	lb := newLogBuffer(logw, cfg.LogFlushInterval)
	defer lb.Close()
	a, err := newApp(ctx, cfg, lb, true)
	if err != nil {
		return err
	}
	defer a.close()
	// Starting computed a password hash (the one unknown emails are checked
	// against) and ran the migrations: give that memory back before serving.
	debug.FreeOSMemory()
	// With an admin listener, /metrics is served there and not on the API port.
	apiMetrics, stopAdmin, err := a.startAdmin()
	if err != nil {
		return err
	}
	defer stopAdmin()
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	publicURL := cfg.PublicURL
	if cfg.publicURLDefault {
		publicURL = "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	srv := &http.Server{
		Handler:           a.handler(apiMetrics, publicURL),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	a.logger.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("version", version()),
		slog.Bool("postgres", cfg.postgres()), slog.Bool("redis", cfg.RedisURL != ""),
		slog.Int64("memory_limit", debug.SetMemoryLimit(-1)))

	go purgeExpiredRefreshTokens(ctx, a.store, a.logger)
	go returnMemoryAfterHashing(ctx, &a.hashes, memoryReturnPeriod, debug.FreeOSMemory)
	stopEvents := a.startEvents(ctx, a.events)
	defer stopEvents()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Stop: readiness fails first, so load balancers stop sending; then the
	// requests in flight finish; then the stores close (deferred).
	a.health.Draining.Store(true)
	a.logger.Info("stopping: draining requests", slog.Duration("drain_delay", cfg.DrainDelay))
	time.Sleep(cfg.DrainDelay)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	a.logger.Info("stopped")
	return nil
}

// handler is the whole HTTP surface of the API port, as served: the routes
// with their middleware, metrics and tracing. apiMetrics serves /metrics
// there (nil: not on this port).
func (a *app) handler(apiMetrics http.Handler, publicURL string) http.Handler {
	clientIP := httpapi.RemoteAddr
	if len(a.cfg.TrustedProxies) > 0 {
		clientIP = httpapi.TrustProxies(a.cfg.TrustedProxies)
	}
	return a.tracing.Handler(httpapi.NewServer(a.logger, httpapi.Config{
		Version:            version(),
		CORSAllowedOrigins: a.cfg.CORSAllowedOrigins,
		TrustedProxies:     clientIP,
		JWKS:               a.tokens.JWKS,
		Metrics:            apiMetrics,
		Instrument:         a.instrument,
		PublicURL:          publicURL,
	}, a.accounts, a.health))
}

// purgeExpiredRefreshTokens removes expired refresh families hourly.
func purgeExpiredRefreshTokens(ctx context.Context, st database, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := st.DeleteExpiredRefreshTokens(ctx, time.Now().UTC()); err != nil {
				logger.Warn("purging expired refresh tokens failed", slog.Any("error", err))
			} else if n > 0 {
				logger.Info("purged expired refresh tokens", slog.Int("families", n))
			}
		}
	}
}

func migrate(ctx context.Context, cfg *config, stdout, logw io.Writer) error {
	st, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	st.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// createAdmin makes an admin user; the password is the first line of stdin.
func createAdmin(ctx context.Context, cfg *config, args []string, stdin io.Reader, stdout, logw io.Writer) error {
	fs := flag.NewFlagSet("create-admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	email := fs.String("email", "", "the admin's email")
	name := fs.String("name", "", "the admin's name")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *email == "" || *name == "" {
		return usageError("usage: usersvc create-admin --email E --name N (password on standard input)")
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	a, err := newApp(ctx, cfg, logw, false)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.accounts.CreateAdmin(ctx, usersvc.Registration{Email: *email, Name: *name, Password: usersvc.Password(pw)})
	if err != nil {
		return errors.New(usersvc.ErrorMessage(err))
	}
	fmt.Fprintf(stdout, "admin created: %s %s\n", u.ID, u.Email)
	return nil
}

// healthcheck asks the local server's readiness route, for a container
// HEALTHCHECK in an image with no shell.
func healthcheck(ctx context.Context, cfg *config) error {
	host := cfg.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, strconv.Itoa(cfg.Port))+"/health/readiness", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: readiness answered %d", resp.StatusCode)
	}
	return nil
}

// secretKeyFile keeps the generated HS256 secret of the embedded default.
func secretKeyFile(cfg *config) string { return filepath.Join(cfg.DataDir, "secret_key") }
