// Package httpapi is the HTTP face of the user service: routes, request
// decoding, the response envelope, and the one table from error codes to
// statuses.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/usersvc/usersvc/internal/account"
)

// Health reports on the service's dependencies.
type Health struct {
	// Database checks that the database answers.
	Database func(ctx context.Context) error
	// Redis returns "connected", "disconnected" or "not_configured"; nil
	// means "not_configured".
	Redis func(ctx context.Context) string
	// Broker returns the events broker's state, "connected" or
	// "disconnected"; nil means "not_configured".
	Broker func(ctx context.Context) string
	// Draining is set once the process is stopping: readiness fails from then on.
	Draining *atomic.Bool
}

// Config is what the server needs beyond its dependencies.
type Config struct {
	Version string
	// CORSAllowedOrigins are the origins allowed cross-origin access; "*" allows any (without credentials).
	CORSAllowedOrigins []string
	// TrustedProxies decides whether X-Forwarded-For is believed.
	TrustedProxies ClientIPResolver
	// RequestTimeout bounds each API request's work (default 10s).
	RequestTimeout time.Duration
	// JWKS returns the public signing keys as a JSON Web Key Set.
	JWKS func() []byte
	// Metrics serves GET /metrics; nil leaves the route out.
	Metrics http.Handler
	// Instrument wraps the routes to measure each request once its route
	// is known (r.Pattern set); nil means none.
	Instrument func(next http.Handler, route func(*http.Request) string) http.Handler
	// PublicURL is the base address one-click unsubscribe links point at
	// (no trailing slash); default http://localhost:8000.
	PublicURL string
}

// ClientIPResolver returns the client address of a request.
type ClientIPResolver func(r *http.Request) string

// Server is the service's http.Handler.
type Server struct {
	logger   *slog.Logger
	accounts *account.Service
	health   Health
	cfg      Config
	mux      *http.ServeMux
	handler  http.Handler
}

// NewServer returns the HTTP handler of the service.
func NewServer(logger *slog.Logger, cfg Config, accounts *account.Service, health Health) *Server {
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://localhost:8000"
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	if cfg.TrustedProxies == nil {
		cfg.TrustedProxies = RemoteAddr
	}
	if cfg.JWKS == nil {
		cfg.JWKS = func() []byte { return []byte(`{"keys":[]}`) }
	}
	if health.Draining == nil {
		health.Draining = new(atomic.Bool)
	}
	s := &Server{logger: logger, accounts: accounts, health: health, cfg: cfg, mux: http.NewServeMux()}
	s.routes()
	inner := s.checkTarget(s.mux)
	if cfg.Instrument != nil {
		inner = cfg.Instrument(inner, routeOf)
	}
	s.handler = s.middleware(inner)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }
