// Package client is the Go client of the user service, for the services
// around it: a notification worker asking who of its recipients gets a
// message of a category now, on which channels and at which addresses
// (Resolve), a gateway logging users in, an admin tool.
//
// A Client is safe for concurrent use. It authenticates as a service
// (WithServiceKey) or as a user (WithBearerToken, WithTokenSource), retries
// the calls that are safe to repeat (GET, DELETE, Resolve and PutCategory)
// on timeouts, connection failures, 429 and 5xx with exponential backoff
// and jitter, stops calling a service that keeps failing (a circuit
// breaker), and can keep preferences in a local cache for a while
// (WithPreferencesCache).
//
// Errors are inspected with errors.Is against the sentinels (ErrNotFound,
// ErrForbidden, ErrUnavailable, ...) and with errors.As against *Error for
// the status, the message and the per-field validation messages.
package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of the options.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultAttempts         = 3
	DefaultBaseDelay        = 100 * time.Millisecond
	DefaultMaxDelay         = 2 * time.Second
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 10 * time.Second
)

// Client calls one user service.
type Client struct {
	base       *url.URL
	hc         *http.Client
	timeout    time.Duration
	serviceKey string
	token      func(ctx context.Context) (string, error)
	userAgent  string
	retry      RetryPolicy
	breaker    *breaker
	prefs      *prefsCache
	tracer     trace.TracerProvider // nil: no spans
}

// An Option configures a Client.
type Option func(*Client) error

// RetryPolicy says how calls that are safe to repeat (GET, DELETE) are
// retried. Attempts counts the first try: 1 disables retries. The wait
// before retry n is a random duration between half and all of
// min(MaxDelay, BaseDelay·2ⁿ⁻¹), or the service's Retry-After when that is
// longer. A 429 whose Retry-After exceeds MaxDelay is not retried: its
// *Error carries RetryAfter for the caller to schedule.
type RetryPolicy struct {
	Attempts  int
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// New returns a client of the user service at baseURL (for example
// "http://usersvc:8000"; a path prefix is kept).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("usersvc client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("usersvc client: base URL %q must be http:// or https:// with a host", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	c := &Client{
		base:      u,
		hc:        &http.Client{},
		timeout:   DefaultTimeout,
		userAgent: "usersvc-go-client",
		retry:     RetryPolicy{Attempts: DefaultAttempts, BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay},
		breaker:   newBreaker(DefaultBreakerThreshold, DefaultBreakerCooldown),
	}
	var setAuth int
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("usersvc client: %w", err)
		}
	}
	if c.serviceKey != "" {
		setAuth++
	}
	if c.token != nil {
		setAuth++
	}
	if setAuth > 1 {
		return nil, errors.New("usersvc client: use a service key or a bearer token, not both")
	}
	if c.tracer != nil {
		hc := *c.hc // the caller's client stays as it was
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		hc.Transport = otelhttp.NewTransport(base,
			otelhttp.WithTracerProvider(c.tracer),
			otelhttp.WithPropagators(propagation.TraceContext{}),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()))
		c.hc = &hc
	}
	if c.breaker != nil {
		// A probe holds its place while its attempt may still be running.
		c.breaker.probeTTL = c.breaker.cooldown + c.timeout
	}
	return c, nil
}

// WithHTTPClient makes the client send its requests with hc (for its
// transport, proxy or TLS settings). Timeouts are better left to
// WithTimeout, which bounds each attempt.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("nil *http.Client")
		}
		c.hc = hc
		return nil
	}
}

// WithTracing records every request the client sends (each attempt of a
// call) as a client span of tp, and sends the trace of the caller's context
// in the W3C traceparent header, so that the service's own spans join the
// caller's trace. Pass otel.GetTracerProvider() to use the process's global
// provider. It applies to the transport of WithHTTPClient's client too
// (without changing that client).
func WithTracing(tp trace.TracerProvider) Option {
	return func(c *Client) error {
		if tp == nil {
			return errors.New("nil TracerProvider")
		}
		c.tracer = tp
		return nil
	}
}

// WithTimeout bounds each attempt of a call (DefaultTimeout, 5 s, unless
// set); 0 leaves attempts bounded only by the caller's context. The
// caller's context bounds the whole call, retries and waits included.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 {
			return errors.New("negative timeout")
		}
		c.timeout = d
		return nil
	}
}

// WithServiceKey authenticates every call as a service account, with the
// X-Service-API-Key header. A service key may read any user and, with the
// push_tokens.invalidate scope, invalidate push tokens; it may not change a
// user.
func WithServiceKey(key string) Option {
	return func(c *Client) error {
		if key == "" {
			return errors.New("empty service key")
		}
		c.serviceKey = key
		return nil
	}
}

// WithBearerToken authenticates every call with a fixed access token.
func WithBearerToken(token string) Option {
	return func(c *Client) error {
		if token == "" {
			return errors.New("empty bearer token")
		}
		c.token = func(context.Context) (string, error) { return token, nil }
		return nil
	}
}

// WithTokenSource authenticates every call with the access token that fn
// returns at that moment (for example one it refreshes, or the one of the
// user a request is made for, taken from ctx). An error from fn fails the
// call before any request is made.
func WithTokenSource(fn func(ctx context.Context) (string, error)) Option {
	return func(c *Client) error {
		if fn == nil {
			return errors.New("nil token source")
		}
		c.token = fn
		return nil
	}
}

// WithRetry sets how GET and DELETE calls, Resolve and PutCategory are
// retried (by default 3 attempts, 100 ms base delay, 2 s longest wait).
// Other POST and PATCH calls are never retried: they might have taken
// effect.
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) error {
		if p.Attempts < 1 {
			return errors.New("retry policy: Attempts must be at least 1")
		}
		if p.BaseDelay < 0 || p.MaxDelay < 0 {
			return errors.New("retry policy: negative delay")
		}
		if p.MaxDelay < p.BaseDelay {
			p.MaxDelay = p.BaseDelay
		}
		c.retry = p
		return nil
	}
}

// WithCircuitBreaker sets the circuit breaker: after threshold consecutive
// failed attempts (5xx, timeouts, connection failures) every call fails at
// once with ErrCircuitOpen for cooldown; then one call is let through as a
// probe, whose success closes the circuit and whose failure opens it again.
// By default threshold is 5 and cooldown 10 s; threshold 0 disables it.
func WithCircuitBreaker(threshold int, cooldown time.Duration) Option {
	return func(c *Client) error {
		if threshold < 0 || cooldown < 0 {
			return errors.New("circuit breaker: negative threshold or cooldown")
		}
		if threshold == 0 {
			c.breaker = nil
			return nil
		}
		if cooldown == 0 {
			return errors.New("circuit breaker: a cooldown is needed")
		}
		c.breaker = newBreaker(threshold, cooldown)
		return nil
	}
}

// WithPreferencesCache keeps the answers of Preferences for ttl, so that
// reading them again within ttl makes no request. The client's own
// UpdatePreferences replaces the cached value; changes made by anyone else
// are seen once the entry expires. It suits a notification worker that
// reads the same users' preferences often; keep ttl short.
func WithPreferencesCache(ttl time.Duration) Option {
	return func(c *Client) error {
		if ttl <= 0 {
			return errors.New("preferences cache: ttl must be positive")
		}
		c.prefs = newPrefsCache(ttl)
		return nil
	}
}

// WithUserAgent sets the User-Agent of the requests, to tell callers apart
// in the service's logs.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

type ctxKey struct{}

// WithRequestID returns a context whose calls carry id as X-Request-ID, so
// that one request can be followed across services. The service accepts
// ids of 1 to 64 letters, digits, '-', '_' and '.', and makes up its own for
// anything else.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the id set by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}
