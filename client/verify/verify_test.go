package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client/verify"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/token"
)

const secret = "test-secret-key-that-is-long-enough-0123456789"

// clock is a settable clock, safe for concurrent use.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
func (c *clock) option() verify.Option   { return verify.WithClock(c.Now) }
func newTokens(t *testing.T, ks *token.KeySet) *token.Service {
	t.Helper()
	s, err := token.New(token.Config{Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testUser = usersvc.User{ID: "0190b7a4-5a4f-7c2e-9d3b-2f1e4a5b6c7d", Email: "ada@example.com", Name: "Ada Lovelace", IsAdmin: true}

// access issues an access token for testUser at now.
func access(t *testing.T, s *token.Service, now time.Time) string {
	t.Helper()
	tok, err := s.IssueAccess(&testUser, uuid.NewString(), "", now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func refresh(t *testing.T, s *token.Service) string {
	t.Helper()
	now := time.Now()
	tok, err := s.IssueRefresh(account.RefreshToken{JTI: uuid.NewString(), FamilyID: uuid.NewString(), UserID: testUser.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// forge signs claims with key under method, with extra header fields.
func forge(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goodClaims are the claims of a valid access token of testUser.
func goodClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"token_type": "access", "user_id": testUser.ID, "sub": testUser.ID, "email": testUser.Email,
		"name": testUser.Name, "is_admin": false, "jti": uuid.NewString(), "iss": "usersvc",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func TestHS256(t *testing.T) {
	ks, err := token.NewHMACKeySet(token.Secret(secret))
	if err != nil {
		t.Fatal(err)
	}
	svc := newTokens(t, ks)
	v, err := verify.NewHS256([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	c, err := v.Verify(ctx, access(t, svc, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != testUser.ID || c.Email != testUser.Email || c.Name != testUser.Name || !c.IsAdmin || c.TokenID == "" ||
		c.ExpiresAt.Sub(c.IssuedAt) != token.DefaultAccessLifetime {
		t.Errorf("claims = %+v", c)
	}

	kid := ks.KIDs()[0]
	other := []byte(strings.Repeat("x", 40))
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	good := access(t, svc, time.Now())
	for name, tok := range map[string]string{
		"LF in the signature": good[:len(good)-8] + "\n" + good[len(good)-8:],
		"CR LF after a dot":   strings.Replace(good, ".", ".\r\n", 1),
		"padded signature":    good + "=",
		"expired":             access(t, svc, time.Now().Add(-time.Hour)),
		"issued ahead":        forge(t, jwt.SigningMethodHS256, []byte(secret), with(goodClaims(), "iat", time.Now().Add(time.Hour).Unix(), "exp", time.Now().Add(2*time.Hour).Unix()), nil),
		"refresh token":       refresh(t, svc),
		"other secret":        forge(t, jwt.SigningMethodHS256, other, goodClaims(), map[string]any{"kid": kid}),
		"alg none":            forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims(), map[string]any{"kid": kid}),
		"EdDSA":               forge(t, jwt.SigningMethodEdDSA, edKey, goodClaims(), map[string]any{"kid": kid}),
		"HS512":               forge(t, jwt.SigningMethodHS512, []byte(secret), goodClaims(), nil),
		"jku header":          forge(t, jwt.SigningMethodHS256, []byte(secret), goodClaims(), map[string]any{"jku": "https://evil.example/jwks.json"}),
		"jwk header":          forge(t, jwt.SigningMethodHS256, []byte(secret), goodClaims(), map[string]any{"jwk": map[string]any{"kty": "oct"}}),
		"x5u header":          forge(t, jwt.SigningMethodHS256, []byte(secret), goodClaims(), map[string]any{"x5u": "https://evil.example/cert"}),
		"wrong issuer":        forge(t, jwt.SigningMethodHS256, []byte(secret), with(goodClaims(), "iss", "someone"), nil),
		"no issuer":           forge(t, jwt.SigningMethodHS256, []byte(secret), with(goodClaims(), "iss", nil), nil),
		"no exp":              forge(t, jwt.SigningMethodHS256, []byte(secret), with(goodClaims(), "exp", nil), nil),
		"not valid yet":       forge(t, jwt.SigningMethodHS256, []byte(secret), with(goodClaims(), "nbf", time.Now().Add(time.Hour).Unix()), nil),
		"no token type":       forge(t, jwt.SigningMethodHS256, []byte(secret), with(goodClaims(), "token_type", nil), nil),
		"sub is not user_id":  forge(t, jwt.SigningMethodHS256, []byte(secret), with(goodClaims(), "sub", uuid.NewString()), nil),
		"no jti":              forge(t, jwt.SigningMethodHS256, []byte(secret), with(goodClaims(), "jti", nil), nil),
		"garbage":             "not.a.token",
		"empty":               "",
	} {
		if c, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrInvalidToken) {
			t.Errorf("%s: claims %+v, error %v", name, c, err)
		}
	}
	// The forgeries above fail for what they forge: the same claims
	// signed properly pass.
	if _, err := v.Verify(ctx, forge(t, jwt.SigningMethodHS256, []byte(secret), goodClaims(), map[string]any{"kid": kid})); err != nil {
		t.Errorf("a proper token: %v", err)
	}

	if _, err := verify.NewHS256([]byte("short")); err == nil {
		t.Error("a short secret was accepted")
	}
	if _, err := verify.NewHS256([]byte(secret), verify.WithAlgorithms("RS256")); err == nil {
		t.Error("RS256 with a shared secret was accepted")
	}
}

func TestLeeway(t *testing.T) {
	v, err := verify.NewHS256([]byte(secret), verify.WithLeeway(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	tok := forge(t, jwt.SigningMethodHS256, []byte(secret), with(goodClaims(), "exp", time.Now().Add(-30*time.Second).Unix()), nil)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Errorf("expired 30s ago with a leeway of 1m: %v", err)
	}
}

// jwksServer serves a key set that the test can change, and counts fetches.
type jwksServer struct {
	srv     *httptest.Server
	fetches atomic.Int64
	doc     atomic.Pointer[[]byte]
	status  atomic.Int64
}

func newJWKSServer(t *testing.T, ks *token.KeySet) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(ks)
	s.status.Store(http.StatusOK)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(s.status.Load()))
		_, _ = w.Write(*s.doc.Load())
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) set(ks *token.KeySet) {
	doc := ks.JWKS()
	s.doc.Store(&doc)
}

func newSigner(t *testing.T, alg string) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case token.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case token.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case token.RS256:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keySet(t *testing.T, alg string, keys ...crypto.Signer) *token.KeySet {
	t.Helper()
	ks, err := token.NewKeySet(alg, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestJWKSRotation(t *testing.T) {
	for _, alg := range []string{token.EdDSA, token.ES256, token.RS256} {
		t.Run(alg, func(t *testing.T) {
			ctx := t.Context()
			a, b := newSigner(t, alg), newSigner(t, alg)
			before := keySet(t, alg, a)
			during := keySet(t, alg, b, a)
			after := keySet(t, alg, b)
			signA, signB := newTokens(t, before), newTokens(t, during)

			js := newJWKSServer(t, before)
			clk := &clock{}
			v, err := verify.NewJWKS(js.srv.URL, clk.option(), verify.WithMinRefreshInterval(5*time.Second), verify.WithMaxKeyAge(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			pass := func(name, tok string) {
				t.Helper()
				if _, err := v.Verify(ctx, tok); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			refuse := func(name, tok string) {
				t.Helper()
				if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrInvalidToken) {
					t.Fatalf("%s: error %v, want ErrInvalidToken", name, err)
				}
			}
			fetches := func(want int64) {
				t.Helper()
				if n := js.fetches.Load(); n != want {
					t.Fatalf("%d fetches of the key set, want %d", n, want)
				}
			}
			if n := js.fetches.Load(); n != 0 {
				t.Fatalf("%d fetches before any token", n)
			}

			tokA := access(t, signA, time.Now())
			pass("key A", tokA)
			pass("key A again", tokA)
			fetches(1)

			// The service rotates: B signs, A still verifies.
			js.set(during)
			tokB := access(t, signB, time.Now())
			// Within the refresh interval of the last fetch, B is unknown and
			// no fetch is made for it.
			clk.Advance(time.Second)
			refuse("key B before a refresh is allowed", tokB)
			fetches(1)
			clk.Advance(5 * time.Second)
			pass("key B", tokB)
			fetches(2)
			pass("key A after the rotation", tokA)
			pass("key B again", tokB)
			fetches(2)

			// A flood of tokens naming unknown keys fetches at most once per interval.
			unknown := forge(t, jwt.GetSigningMethod(alg), a, goodClaims(), map[string]any{"kid": "no-such-key"})
			flood := func() {
				var wg sync.WaitGroup
				for range 20 {
					wg.Go(func() {
						if _, err := v.Verify(ctx, unknown); !errors.Is(err, verify.ErrInvalidToken) {
							t.Errorf("unknown kid: %v", err)
						}
					})
				}
				wg.Wait()
			}
			flood()
			fetches(2)
			clk.Advance(6 * time.Second)
			flood()
			fetches(3)

			// A is retired: once the set is older than its maximum age it is
			// fetched again, and A's tokens stop passing.
			js.set(after)
			clk.Advance(2 * time.Minute)
			refuse("key A after it was retired", tokA)
			fetches(4)
			pass("key B after A was retired", tokB)
			fetches(4)
		})
	}
}

func TestJWKSRefusesWhatTheKeysDoNotAllow(t *testing.T) {
	ctx := t.Context()
	edKey := newSigner(t, token.EdDSA)
	ecKey := newSigner(t, token.ES256)
	ed := keySet(t, token.EdDSA, edKey)
	js := newJWKSServer(t, ed)
	edKID := ed.KIDs()[0]
	v, err := verify.NewJWKS(js.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []struct {
			X string `json:"x"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(ed.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		// The public key used as an HMAC secret.
		"HS256 with the public key": forge(t, jwt.SigningMethodHS256, []byte(doc.Keys[0].X), goodClaims(), map[string]any{"kid": edKID}),
		"ES256 under an EdDSA kid":  forge(t, jwt.SigningMethodES256, ecKey, goodClaims(), map[string]any{"kid": edKID}),
		"no kid":                    forge(t, jwt.SigningMethodEdDSA, edKey, goodClaims(), nil),
		"jwk header":                forge(t, jwt.SigningMethodEdDSA, edKey, goodClaims(), map[string]any{"kid": edKID, "jwk": map[string]any{"kty": "OKP"}}),
		"alg none":                  forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims(), map[string]any{"kid": edKID}),
	} {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrInvalidToken) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := v.Verify(ctx, forge(t, jwt.SigningMethodEdDSA, edKey, goodClaims(), map[string]any{"kid": edKID})); err != nil {
		t.Errorf("a proper token: %v", err)
	}

	// Narrowed to ES256, an EdDSA token does not pass.
	v, err = verify.NewJWKS(js.srv.URL, verify.WithAlgorithms("ES256"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, forge(t, jwt.SigningMethodEdDSA, edKey, goodClaims(), map[string]any{"kid": edKID})); !errors.Is(err, verify.ErrInvalidToken) {
		t.Errorf("EdDSA with only ES256 allowed: %v", err)
	}
	if _, err := verify.NewJWKS(js.srv.URL, verify.WithAlgorithms("HS256")); err == nil {
		t.Error("HS256 with a key set was accepted")
	}
	if _, err := verify.NewJWKS("usersvc:8000"); err == nil {
		t.Error("a URL without a scheme was accepted")
	}
}

func TestKeysUnavailable(t *testing.T) {
	edKey := newSigner(t, token.EdDSA)
	ed := keySet(t, token.EdDSA, edKey)
	js := newJWKSServer(t, ed)
	js.status.Store(http.StatusServiceUnavailable)
	clk := &clock{}
	v, err := verify.NewJWKS(js.srv.URL, clk.option(), verify.WithMaxKeyAge(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	tok := access(t, newTokens(t, ed), time.Now())
	_, err = v.Verify(t.Context(), tok)
	if !errors.Is(err, verify.ErrKeysUnavailable) || errors.Is(err, verify.ErrInvalidToken) {
		t.Fatalf("error = %v, want ErrKeysUnavailable", err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	v.Middleware(http.NotFoundHandler()).ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("middleware answered %d, want 503", rec.Code)
	}
	if n := js.fetches.Load(); n != 1 {
		t.Errorf("%d fetches within the refresh interval, want 1", n)
	}
	// Once the service answers, and the interval has passed, tokens pass.
	js.status.Store(http.StatusOK)
	clk.Advance(verify.DefaultMinRefreshInterval)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	// A set once fetched stays in use when later fetches fail.
	js.status.Store(http.StatusServiceUnavailable)
	clk.Advance(2 * time.Minute)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("with an old set and the service down: %v", err)
	}
	if n := js.fetches.Load(); n != 3 {
		t.Errorf("%d fetches, want 3 (the old set was due for a refresh)", n)
	}
}

func TestMiddleware(t *testing.T) {
	ks, err := token.NewHMACKeySet(token.Secret(secret))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.NewHS256([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verify.ClaimsFrom(r.Context())
		if !ok {
			t.Error("no claims in the context")
			return
		}
		_, _ = io.WriteString(w, c.UserID+" "+c.Email)
	}))
	good := access(t, newTokens(t, ks), time.Now())
	for _, tc := range []struct {
		auth   string
		status int
		msg    string
	}{
		{"Bearer " + good, http.StatusOK, ""},
		{"bearer " + good, http.StatusOK, ""},
		{"", http.StatusUnauthorized, "Authentication credentials were not provided"},
		{"Basic dXNlcjpwYXNz", http.StatusUnauthorized, "Authorization header must be: Bearer <token>"},
		{"Bearer ", http.StatusUnauthorized, "Authorization header must be: Bearer <token>"},
		{"Bearer " + good + "x", http.StatusUnauthorized, "Token is invalid or expired"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%q: status %d, want %d", tc.auth, rec.Code, tc.status)
			continue
		}
		if tc.status == http.StatusOK {
			if rec.Body.String() != testUser.ID+" "+testUser.Email {
				t.Errorf("body = %q", rec.Body)
			}
			continue
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
		}
		var env map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"success": false, "data": nil, "error": tc.msg, "message": tc.msg, "meta": nil}
		if len(env) != len(want) {
			t.Errorf("envelope = %v", env)
		}
		for k, w := range want {
			if env[k] != w {
				t.Errorf("%q: %s = %v, want %v", tc.auth, k, env[k], w)
			}
		}
	}
	if _, ok := verify.ClaimsFrom(context.Background()); ok {
		t.Error("claims in an empty context")
	}
}

// A verifier given the previous secrets accepts what they signed, as the
// service does while it moves to a new SECRET_KEY.
func TestHS256PreviousSecrets(t *testing.T) {
	ctx := t.Context()
	const (
		oldSecret   = "old-secret-key-that-is-long-enough-0123456789"
		otherSecret = "other-secret-key-that-is-long-enough-012345678"
	)
	sign := func(secrets ...string) string {
		var ss []token.Secret
		for _, s := range secrets {
			ss = append(ss, token.Secret(s))
		}
		ks, err := token.NewHMACKeySet(ss...)
		if err != nil {
			t.Fatal(err)
		}
		return access(t, newTokens(t, ks), time.Now())
	}
	byOld, byNew, byOther := sign(oldSecret), sign(secret, oldSecret), sign(otherSecret)

	only, err := verify.NewHS256([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := only.Verify(ctx, byOld); !errors.Is(err, verify.ErrInvalidToken) {
		t.Errorf("a token of the old secret without WithPreviousSecrets: %v", err)
	}
	v, err := verify.NewHS256([]byte(secret), verify.WithPreviousSecrets([]byte(oldSecret)))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"old": byOld, "new": byNew} {
		if c, err := v.Verify(ctx, tok); err != nil || c.UserID != testUser.ID {
			t.Errorf("token of the %s secret: %+v, %v", name, c, err)
		}
	}
	if _, err := v.Verify(ctx, byOther); !errors.Is(err, verify.ErrInvalidToken) {
		t.Errorf("a token of an unlisted secret: %v", err)
	}

	if _, err := verify.NewHS256([]byte(secret), verify.WithPreviousSecrets([]byte("short"))); err == nil {
		t.Error("a short previous secret was accepted")
	}
	if _, err := verify.NewJWKS("http://usersvc:8000", verify.WithPreviousSecrets([]byte(oldSecret))); err == nil {
		t.Error("NewJWKS accepted previous secrets")
	}
}
