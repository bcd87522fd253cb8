// Package token signs and verifies the service's JWTs.
//
// Access and refresh tokens carry the claims Django Simple JWT uses
// (token_type, user_id, jti), so a Python service that shares the HS256
// secret, or reads the published JWKS, can verify them with stock Simple JWT.
// Verification accepts only the configured algorithm and the keys of the
// configured KeySet, picked by the kid header; a token that names a key by
// any other means (jku, jwk, x5u, x5c) is refused.
package token

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// Issuer is the iss claim of every token the service signs and accepts.
const Issuer = "usersvc"

// MaxTokenLen is the longest token that is parsed at all.
const MaxTokenLen = 8 << 10

// Token types, the token_type claim.
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"
)

// Defaults of Config.
const (
	DefaultAccessLifetime  = 15 * time.Minute
	DefaultRefreshLifetime = 24 * time.Hour
	DefaultLeeway          = 30 * time.Second
)

// invalidMessage is the client-safe message of every verification failure.
// It never includes any part of the token.
const invalidMessage = "Token is invalid or expired"

// ErrExpired is the cause (inside the *usersvc.Error) of a failure that is
// due to the token's exp alone.
var ErrExpired = errors.New("token expired")

// Causes of other failures, for logs. None repeats any part of the token.
var (
	errMalformed   = errors.New("token malformed")
	errHeader      = errors.New("token header names a key source")
	errUnknownKey  = errors.New("token signed by an unknown key")
	errAlgorithm   = errors.New("token algorithm not allowed")
	errSignature   = errors.New("token signature invalid")
	errNotYetValid = errors.New("token not valid yet")
	errIssuedAhead = errors.New("token issued in the future")
	errIssuer      = errors.New("token issuer wrong")
	errType        = errors.New("token type wrong")
	errClaims      = errors.New("token claims invalid")
)

// forbiddenHeaders are header parameters that name a key, or change how the
// token is read, by some means other than a kid of this service's key set.
var forbiddenHeaders = []string{"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit"}

// Config configures a Service. Zero durations take their defaults.
type Config struct {
	Keys            *KeySet
	AccessLifetime  time.Duration // how long an access token lives
	RefreshLifetime time.Duration // how long a refresh family lives
	// Leeway is how far in the future a token's iat may be, to allow for
	// clock skew between replicas. exp and nbf (when present) are exact.
	Leeway time.Duration
}

// Service signs and verifies access and refresh tokens. It implements
// account.Tokens and is safe for concurrent use.
type Service struct {
	keys     *KeySet
	access   time.Duration
	refresh  time.Duration
	leeway   time.Duration
	verified *verified // access tokens already verified
}

var _ account.Tokens = (*Service)(nil)

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Keys == nil || len(cfg.Keys.keys) == 0 {
		return nil, errors.New("token: no keys")
	}
	s := &Service{keys: cfg.Keys, access: cfg.AccessLifetime, refresh: cfg.RefreshLifetime, leeway: cfg.Leeway,
		verified: newVerified(verifiedGeneration)}
	if s.access == 0 {
		s.access = DefaultAccessLifetime
	}
	if s.refresh == 0 {
		s.refresh = DefaultRefreshLifetime
	}
	if s.leeway == 0 {
		s.leeway = DefaultLeeway
	}
	if s.access < 0 || s.refresh < 0 || s.leeway < 0 {
		return nil, errors.New("token: negative lifetime or leeway")
	}
	return s, nil
}

// AccessLifetime is how long an access token lives.
func (s *Service) AccessLifetime() time.Duration { return s.access }

// RefreshLifetime is how long a refresh family lives.
func (s *Service) RefreshLifetime() time.Duration { return s.refresh }

// Keys returns the key set the service signs and verifies with.
func (s *Service) Keys() *KeySet { return s.keys }

// JWKS returns the public keys as a JSON Web Key Set (see KeySet.JWKS).
func (s *Service) JWKS() []byte { return s.keys.JWKS() }

// accessClaims are the claims of an access token, exactly.
type accessClaims struct {
	TokenType string `json:"token_type"`
	UserID    string `json:"user_id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	IsAdmin   bool   `json:"is_admin"`
	SessionID string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

// refreshClaims are the claims of a refresh token, exactly.
type refreshClaims struct {
	TokenType string `json:"token_type"`
	UserID    string `json:"user_id"`
	jwt.RegisteredClaims
}

// IssueAccess returns a signed access token for u in the session sid (a
// refresh family id; empty for none), issued at now.
func (s *Service) IssueAccess(u *usersvc.User, jti, sid string, now time.Time) (string, error) {
	if u == nil || !canonicalUUID(u.ID) || jti == "" {
		return "", errors.New("token: an access token needs a user id and a jti")
	}
	return s.sign(&accessClaims{
		TokenType:        TypeAccess,
		UserID:           u.ID,
		Email:            u.Email,
		Name:             u.Name,
		IsAdmin:          u.IsAdmin,
		SessionID:        sid,
		RegisteredClaims: registered(u.ID, jti, now, now.Add(s.access)),
	})
}

// IssueRefresh returns a signed refresh token for t, valid from t.IssuedAt
// to t.ExpiresAt.
func (s *Service) IssueRefresh(t account.RefreshToken) (string, error) {
	if !canonicalUUID(t.UserID) || t.JTI == "" || !t.ExpiresAt.After(t.IssuedAt) {
		return "", errors.New("token: a refresh token needs a user id, a jti and an expiry after its issue")
	}
	return s.sign(&refreshClaims{
		TokenType:        TypeRefresh,
		UserID:           t.UserID,
		RegisteredClaims: registered(t.UserID, t.JTI, t.IssuedAt, t.ExpiresAt),
	})
}

func registered(userID, jti string, iat, exp time.Time) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   userID,
		ID:        jti,
		IssuedAt:  jwt.NewNumericDate(iat),
		ExpiresAt: jwt.NewNumericDate(exp),
	}
}

func (s *Service) sign(c jwt.Claims) (string, error) {
	k := s.keys.keys[0]
	t := jwt.NewWithClaims(jwt.GetSigningMethod(s.keys.alg), c)
	t.Header["kid"] = k.kid
	signed, err := t.SignedString(k.sign)
	if err != nil {
		return "", fmt.Errorf("token: signing: %w", err)
	}
	return signed, nil
}

// ParseAccess verifies an access token at now and returns its claims. Any
// failure is an *usersvc.Error with code EUnauthorized. A token verified
// before is not parsed again: only its times are checked again (see
// verified).
func (s *Service) ParseAccess(token string, now time.Time) (account.AccessClaims, error) {
	if len(token) > MaxTokenLen {
		return account.AccessClaims{}, invalid(errMalformed)
	}
	key := sha256.Sum256([]byte(token))
	if t, ok := s.verified.get(key); ok {
		if err := s.recheck(t, now); err != nil {
			return account.AccessClaims{}, err
		}
		return t.claims, nil
	}
	var c accessClaims
	if err := s.parse(token, now, TypeAccess, &c); err != nil {
		return account.AccessClaims{}, err
	}
	t := verifiedToken{claims: account.AccessClaims{
		UserID:    c.UserID,
		Email:     c.Email,
		Name:      c.Name,
		IsAdmin:   c.IsAdmin,
		JTI:       c.ID,
		SessionID: c.SessionID,
		IssuedAt:  c.IssuedAt.UTC(),
		ExpiresAt: c.ExpiresAt.UTC(),
	}}
	if c.NotBefore != nil {
		t.notBefore = c.NotBefore.Time
	}
	s.verified.put(key, t)
	return t.claims, nil
}

// ParseRefresh verifies a refresh token at now and returns its claims. Any
// failure is an *usersvc.Error with code EUnauthorized. Whether the token is
// spent or revoked is for the store to say.
func (s *Service) ParseRefresh(token string, now time.Time) (account.RefreshClaims, error) {
	var c refreshClaims
	if err := s.parse(token, now, TypeRefresh, &c); err != nil {
		return account.RefreshClaims{}, err
	}
	return account.RefreshClaims{
		UserID:    c.UserID,
		JTI:       c.ID,
		IssuedAt:  c.IssuedAt.UTC(),
		ExpiresAt: c.ExpiresAt.UTC(),
	}, nil
}

// claims is what parse needs of accessClaims and refreshClaims.
type claims interface {
	jwt.Claims
	common() (tokenType, userID string, reg *jwt.RegisteredClaims)
}

func (c *accessClaims) common() (string, string, *jwt.RegisteredClaims) {
	return c.TokenType, c.UserID, &c.RegisteredClaims
}

func (c *refreshClaims) common() (string, string, *jwt.RegisteredClaims) {
	return c.TokenType, c.UserID, &c.RegisteredClaims
}

// parse verifies token at now into c, and checks that it is a wantType token.
func (s *Service) parse(token string, now time.Time, wantType string, c claims) error {
	if len(token) > MaxTokenLen || strings.Count(token, ".") != 2 || !compactChars(token) {
		return invalid(errMalformed)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{s.keys.alg}),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(Issuer),
		jwt.WithStrictDecoding(),
	)
	// The parser checks the signature, exp, nbf and iss.
	if _, err := p.ParseWithClaims(token, c, s.key); err != nil {
		return invalid(cause(err))
	}
	tokenType, userID, reg := c.common()
	switch {
	case !numericDates(token):
		return invalid(errClaims)
	case tokenType != wantType:
		return invalid(errType)
	case reg.IssuedAt == nil || reg.IssuedAt.After(now.Add(s.leeway)):
		return invalid(errIssuedAhead)
	case !canonicalUUID(userID) || reg.Subject != userID || reg.ID == "":
		return invalid(errClaims)
	}
	return nil
}

// compactChars reports whether token holds only the characters of the
// compact serialisation: base64url and the dots. The base64 decoder skips
// CR and LF, so without this check one token would be accepted in many
// spellings.
func compactChars(token string) bool {
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// numericDates reports whether the exp, nbf and iat claims of a token whose
// signature has been checked are JSON numbers, as RFC 7519 wants: the parser
// also reads a number inside a string ("exp": "1790000000"), which no token
// of this service has.
func numericDates(token string) bool {
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return false
	}
	var dates struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if json.Unmarshal(b, &dates) != nil {
		return false
	}
	for _, d := range []json.RawMessage{dates.Exp, dates.Nbf, dates.Iat} {
		if len(d) > 0 && d[0] != '-' && (d[0] < '0' || d[0] > '9') {
			return false
		}
	}
	return true
}

// key picks the verification key of a token by its kid, after checking that
// its header names no other key source.
func (s *Service) key(t *jwt.Token) (any, error) {
	for _, h := range forbiddenHeaders {
		if _, ok := t.Header[h]; ok {
			return nil, errHeader
		}
	}
	if t.Method == nil || t.Method.Alg() != s.keys.alg {
		return nil, errAlgorithm
	}
	kid, _ := t.Header["kid"].(string)
	k, ok := s.keys.byKID[kid]
	if !ok {
		return nil, errUnknownKey
	}
	return k.verify, nil
}

// cause maps a parser error to one of this package's causes.
func cause(err error) error {
	for _, known := range []error{errHeader, errAlgorithm, errUnknownKey} {
		if errors.Is(err, known) {
			return known
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errIssuer
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return errAlgorithm // alg missing or unknown, "None" among them
	}
	return errClaims
}

func invalid(cause error) error {
	return &usersvc.Error{Code: usersvc.EUnauthorized, Message: invalidMessage, Err: cause}
}

// canonicalUUID reports whether s is a UUID in canonical lowercase form.
func canonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}
