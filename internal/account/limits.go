package account

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/usersvc/usersvc"
)

// Limiter counts attempts per key within a window.
type Limiter interface {
	// Allow records an attempt for key unless the limit is reached, and
	// says how long to wait when it is.
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration)
	// Hit records an attempt for key (a failure, for login).
	Hit(ctx context.Context, key string)
	// Blocked reports whether key has reached the limit.
	Blocked(ctx context.Context, key string) (blocked bool, retryAfter time.Duration)
	// Reset forgets the attempts of key.
	Reset(ctx context.Context, key string)
}

// Limits are the rate limits of login, registration and forgotten
// passwords, per email and per
// client address. A nil Limiter does not limit.
type Limits struct {
	LoginEmail, LoginAddr       Limiter
	RegisterEmail, RegisterAddr Limiter
	// ForgotEmail and ForgotAddr count forgotten-password requests.
	ForgotEmail, ForgotAddr Limiter
	// VerifyUser counts verification requests per user (each sends a
	// message).
	VerifyUser Limiter
}

// Client is the client a request comes from.
type Client struct {
	Addr      string // its address, which the rate limits count by
	UserAgent string // its User-Agent, which a login records with its session
}

type clientKey struct{}

// WithClient returns ctx carrying c, the client of the request. c is not
// copied: it must not change while ctx is in use.
func WithClient(ctx context.Context, c *Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

func clientFrom(ctx context.Context) Client {
	if c, ok := ctx.Value(clientKey{}).(*Client); ok {
		return *c
	}
	return Client{}
}

// maxUserAgent is how much of a User-Agent a session keeps.
const maxUserAgent = 256

// clientOf returns the User-Agent (cut to maxUserAgent bytes of valid
// UTF-8) and the address of the client of ctx.
func clientOf(ctx context.Context) (ua, addr string) {
	ua = clientFrom(ctx).UserAgent
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	return strings.ToValidUTF8(strings.ReplaceAll(ua, "\x00", ""), ""), clientAddr(ctx)
}

func clientAddr(ctx context.Context) string {
	return clientFrom(ctx).Addr
}

const msgRateLimited = "Too many attempts; try again later"

// limited is the ERateLimited error with a Retry-After of at least a second.
func (s *Service) limited(ctx context.Context, rule string, wait time.Duration) error {
	s.security(ctx, EventRateLimited, slog.String("limit", rule))
	if s.onLimited != nil {
		s.onLimited(rule)
	}
	return &usersvc.Error{Code: usersvc.ERateLimited, Message: msgRateLimited, RetryAfter: int(math.Max(1, math.Ceil(wait.Seconds())))}
}

// loginBlocked reports a 429 when the email or the client address has failed too often.
func (s *Service) loginBlocked(ctx context.Context, email string) error {
	if l := s.limits.LoginEmail; l != nil && email != "" {
		if blocked, wait := l.Blocked(ctx, email); blocked {
			return s.limited(ctx, "login_email", wait)
		}
	}
	if l, addr := s.limits.LoginAddr, clientAddr(ctx); l != nil && addr != "" {
		if blocked, wait := l.Blocked(ctx, addr); blocked {
			return s.limited(ctx, "login_addr", wait)
		}
	}
	return nil
}

// loginFailed counts a failed login against the email and the address.
func (s *Service) loginFailed(ctx context.Context, email string) {
	if l := s.limits.LoginEmail; l != nil && email != "" {
		l.Hit(ctx, email)
	}
	if l, addr := s.limits.LoginAddr, clientAddr(ctx); l != nil && addr != "" {
		l.Hit(ctx, addr)
	}
}

// loginSucceeded forgets the email's failures.
func (s *Service) loginSucceeded(ctx context.Context, email string) {
	if l := s.limits.LoginEmail; l != nil {
		l.Reset(ctx, email)
	}
}

// registerAllowed counts a registration attempt against the address and the email.
func (s *Service) registerAllowed(ctx context.Context, email string) error {
	if err := s.allowed(ctx, s.limits.RegisterAddr, "register_addr", clientAddr(ctx)); err != nil {
		return err
	}
	return s.allowed(ctx, s.limits.RegisterEmail, "register_email", email)
}

// allowed counts an attempt against key under l (the rule named rule),
// and refuses it with a 429 when the limit is reached. A nil l or an empty
// key does not limit.
func (s *Service) allowed(ctx context.Context, l Limiter, rule, key string) error {
	if l == nil || key == "" {
		return nil
	}
	if ok, wait := l.Allow(ctx, key); !ok {
		return s.limited(ctx, rule, wait)
	}
	return nil
}
