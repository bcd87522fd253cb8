// Package verify checks the user service's access tokens inside another
// service, without a call to the user service per request.
//
// A Verifier knows the service's keys in one of two ways: the HS256 secret
// it shares with the service (NewHS256, the service's SECRET_KEY), or the
// public keys the service publishes at /.well-known/jwks.json when it signs
// with EdDSA, ES256 or RS256 (NewJWKS). The key set is fetched when first
// needed, kept, and fetched again when a token names a key it does not hold
// (the service rotated its key) or when it is older than a maximum age;
// never more often than the minimum refresh interval, however many tokens
// with unknown keys arrive.
//
// A token passes when its signature is right under the allowed algorithm,
// its header names no key source other than a kid (jku, jwk, x5u, x5c, x5t,
// crit are refused), it has not expired, is valid already (nbf), was issued
// by "usersvc", was not issued in the future, and is an access token
// (token_type "access"; refresh tokens are refused).
//
// Middleware puts the claims of a token that passes in the request's
// context (ClaimsFrom) and answers anything else with 401 in the service's
// JSON envelope.
package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the iss claim of the service's tokens.
const Issuer = "usersvc"

// Defaults of the options.
const (
	DefaultMinRefreshInterval = 5 * time.Second
	DefaultMaxKeyAge          = 10 * time.Minute
	DefaultFetchTimeout       = 5 * time.Second
)

// maxTokenLen is the longest token parsed at all.
const maxTokenLen = 8 << 10

// minSecretLen is the shortest HS256 secret accepted, as the service does.
const minSecretLen = 32

var (
	// ErrInvalidToken: the token is malformed, expired, signed by an unknown
	// key or with a refused algorithm, or otherwise not an access token of
	// the service. The error's text tells which, for logs.
	ErrInvalidToken = errors.New("verify: token is invalid or expired")
	// ErrKeysUnavailable: no key set could be fetched from the service yet,
	// so no token can be checked.
	ErrKeysUnavailable = errors.New("verify: the service's keys are unavailable")
)

// forbiddenHeaders name a key, or change how a token is read, by means other
// than the kid of a key the verifier holds.
var forbiddenHeaders = []string{"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit"}

// Claims are what an access token says about its holder.
type Claims struct {
	UserID  string
	Email   string
	Name    string
	IsAdmin bool
	// TokenID is the token's jti.
	TokenID string
	// SessionID is the token's sid: the session it was issued in. A
	// service that verifies tokens itself does not learn that a session
	// has ended; ask the user service when that matters.
	SessionID string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

type ctxKey struct{}

// NewContext returns ctx carrying c, as Middleware does.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// ClaimsFrom returns the claims Middleware put in ctx.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok && c != nil
}

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	algs   []string
	leeway time.Duration
	now    func() time.Time

	secrets [][]byte // HS256: the service's secret, then its previous ones
	jwks    *jwksKeys
}

// An Option configures a Verifier.
type Option func(*settings) error

type settings struct {
	algs         []string
	leeway       time.Duration
	now          func() time.Time
	hc           *http.Client
	minRefresh   time.Duration
	maxAge       time.Duration
	fetchTimeout time.Duration
	previous     [][]byte
}

// WithAlgorithms narrows the algorithms accepted. NewJWKS accepts EdDSA,
// ES256 and RS256 unless told otherwise (HS256 never: its key is not
// public); NewHS256 accepts HS256 only.
func WithAlgorithms(algs ...string) Option {
	return func(s *settings) error {
		if len(algs) == 0 {
			return errors.New("no algorithm")
		}
		s.algs = append([]string(nil), algs...)
		return nil
	}
}

// WithLeeway allows for clock skew between this service and the user
// service when checking exp, nbf and iat (none by default).
func WithLeeway(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return errors.New("negative leeway")
		}
		s.leeway = d
		return nil
	}
}

// WithClock sets the clock tokens are checked against, and that the key
// set's age and refresh interval are measured with.
func WithClock(now func() time.Time) Option {
	return func(s *settings) error {
		if now == nil {
			return errors.New("nil clock")
		}
		s.now = now
		return nil
	}
}

// WithHTTPClient sets the client the key set is fetched with.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error {
		if hc == nil {
			return errors.New("nil *http.Client")
		}
		s.hc = hc
		return nil
	}
}

// WithMinRefreshInterval sets the shortest time between two fetches of the
// key set (DefaultMinRefreshInterval unless set). Tokens naming an unknown
// key in between are refused without a fetch.
func WithMinRefreshInterval(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return errors.New("negative refresh interval")
		}
		s.minRefresh = d
		return nil
	}
}

// WithMaxKeyAge sets how long a fetched key set is used before it is
// fetched again (DefaultMaxKeyAge unless set), so that a key the service
// stopped publishing stops being accepted. When the fetch fails the old set
// stays in use.
func WithMaxKeyAge(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return errors.New("the maximum key age must be positive")
		}
		s.maxAge = d
		return nil
	}
}

// WithPreviousSecrets makes a NewHS256 verifier also accept tokens signed
// with these secrets: the ones the service lists in SECRET_KEY_PREVIOUS
// while it moves to a new SECRET_KEY. Each must be at least 32 bytes.
func WithPreviousSecrets(secrets ...[]byte) Option {
	return func(s *settings) error {
		for _, p := range secrets {
			if len(p) < minSecretLen {
				return fmt.Errorf("a previous HS256 secret must be at least %d bytes", minSecretLen)
			}
			s.previous = append(s.previous, append([]byte(nil), p...))
		}
		return nil
	}
}

func newSettings(defaultAlgs []string, opts []Option) (*settings, error) {
	s := &settings{
		algs:         defaultAlgs,
		now:          time.Now,
		hc:           &http.Client{},
		minRefresh:   DefaultMinRefreshInterval,
		maxAge:       DefaultMaxKeyAge,
		fetchTimeout: DefaultFetchTimeout,
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	return s, nil
}

// NewHS256 returns a verifier of tokens signed with the shared secret (the
// service's SECRET_KEY, at least 32 bytes).
func NewHS256(secret []byte, opts ...Option) (*Verifier, error) {
	if len(secret) < minSecretLen {
		return nil, fmt.Errorf("verify: the HS256 secret must be at least %d bytes", minSecretLen)
	}
	s, err := newSettings([]string{"HS256"}, opts)
	if err != nil {
		return nil, err
	}
	for _, a := range s.algs {
		if a != "HS256" {
			return nil, fmt.Errorf("verify: a shared secret verifies HS256 only, not %q", a)
		}
	}
	secrets := append([][]byte{append([]byte(nil), secret...)}, s.previous...)
	return &Verifier{algs: s.algs, leeway: s.leeway, now: s.now, secrets: secrets}, nil
}

// NewJWKS returns a verifier of tokens signed with the public keys the
// service at serviceURL (for example "http://usersvc:8000") publishes at
// /.well-known/jwks.json. Nothing is fetched until a token needs a key, or
// Refresh is called.
func NewJWKS(serviceURL string, opts ...Option) (*Verifier, error) {
	if !strings.HasPrefix(serviceURL, "http://") && !strings.HasPrefix(serviceURL, "https://") {
		return nil, fmt.Errorf("verify: service URL %q must be http:// or https://", serviceURL)
	}
	s, err := newSettings([]string{"EdDSA", "ES256", "RS256"}, opts)
	if err != nil {
		return nil, err
	}
	if len(s.previous) > 0 {
		return nil, errors.New("verify: previous secrets are for NewHS256; a key set lists its keys itself")
	}
	for _, a := range s.algs {
		if a != "EdDSA" && a != "ES256" && a != "RS256" {
			return nil, fmt.Errorf("verify: a key set verifies EdDSA, ES256 or RS256, not %q", a)
		}
	}
	keys := &jwksKeys{
		url:          strings.TrimSuffix(serviceURL, "/") + "/.well-known/jwks.json",
		hc:           s.hc,
		now:          s.now,
		minRefresh:   s.minRefresh,
		maxAge:       s.maxAge,
		fetchTimeout: s.fetchTimeout,
	}
	return &Verifier{algs: s.algs, leeway: s.leeway, now: s.now, jwks: keys}, nil
}

// Refresh fetches the key set now, whatever the refresh interval says (for
// example at start, to fail early). It does nothing for NewHS256.
func (v *Verifier) Refresh(ctx context.Context) error {
	if v.jwks == nil {
		return nil
	}
	return v.jwks.fetch(ctx)
}

// accessClaims are the claims of an access token.
type accessClaims struct {
	TokenType string `json:"token_type"`
	UserID    string `json:"user_id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	IsAdmin   bool   `json:"is_admin"`
	SessionID string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

// Verify checks an access token and returns its claims. Its errors match
// ErrInvalidToken, or ErrKeysUnavailable when no key set could be had.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if token == "" || len(token) > maxTokenLen || strings.Count(token, ".") != 2 || strings.ContainsFunc(token, notCompact) {
		return nil, invalid("malformed")
	}
	now := v.now()
	p := jwt.NewParser(
		jwt.WithValidMethods(v.algs),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(v.leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(Issuer),
		jwt.WithStrictDecoding(),
	)
	var c accessClaims
	var keyErr error
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		k, err := v.key(ctx, t)
		keyErr = err
		return k, err
	})
	switch {
	case keyErr != nil:
		return nil, keyErr
	case err != nil:
		return nil, invalid(reason(err))
	case c.TokenType != "access":
		return nil, invalid("not an access token")
	case c.UserID == "" || c.Subject != c.UserID || c.ID == "" || c.IssuedAt == nil:
		return nil, invalid("claims incomplete")
	}
	return &Claims{
		UserID:    c.UserID,
		Email:     c.Email,
		Name:      c.Name,
		IsAdmin:   c.IsAdmin,
		TokenID:   c.ID,
		SessionID: c.SessionID,
		IssuedAt:  c.IssuedAt.UTC(),
		ExpiresAt: c.ExpiresAt.UTC(),
	}, nil
}

// notCompact reports whether r is outside the compact serialisation
// (base64url and dots). The base64 decoder skips CR and LF, so without this
// check one token would pass in many spellings.
func notCompact(r rune) bool {
	return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' && r != '_' && r != '.'
}

// key picks the key that verifies t, after refusing headers that name a key
// source and algorithms not allowed.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	for _, h := range forbiddenHeaders {
		if _, ok := t.Header[h]; ok {
			return nil, invalid("header names a key source (" + h + ")")
		}
	}
	alg := ""
	if t.Method != nil {
		alg = t.Method.Alg()
	}
	allowed := false
	for _, a := range v.algs {
		allowed = allowed || a == alg
	}
	if !allowed {
		return nil, invalid("algorithm not allowed")
	}
	if v.jwks == nil {
		if len(v.secrets) == 1 {
			return v.secrets[0], nil
		}
		set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(v.secrets))}
		for i, s := range v.secrets {
			set.Keys[i] = s
		}
		return set, nil
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, invalid("no kid")
	}
	return v.jwks.key(ctx, kid, alg)
}

// reason names a parser error, for logs.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature invalid or algorithm not allowed"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "required claim missing"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "algorithm not allowed"
	}
	return "claims invalid"
}

type invalidError string

func (e invalidError) Error() string        { return "verify: token is invalid or expired: " + string(e) }
func (e invalidError) Is(target error) bool { return target == ErrInvalidToken }

func invalid(why string) error { return invalidError(why) }
