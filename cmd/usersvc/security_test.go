package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/usersvc/usersvc/internal/tokentest"
)

// These tests start the real server in process and attack it over HTTP,
// the way a hostile client would. Every attack is a subtest whose failure
// means a defence regressed.

const (
	secSecret   = "sec-test-signing-secret-0123456789abcdefghijklmnop"
	secPassword = "Sec!ur3Passw0rd"
)

// secServer is one running instance of the service.
type secServer struct {
	*server
	dir string
	// secrets must never appear in the log: the signing secret, passwords,
	// issued tokens.
	mu      sync.Mutex
	secrets []string
}

func (s *secServer) keepSecret(v ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets, v...)
}

// secStart runs the service with the data directory, the loopback address,
// a free port, and extra NAME=value settings. It stops at the end of the
// test, and then checks that no secret reached the log.
func secStart(t *testing.T, extra ...string) *secServer {
	t.Helper()
	s := &secServer{dir: t.TempDir()}
	for _, kv := range extra {
		if k, v, _ := strings.Cut(kv, "="); k == "SECRET_KEY" {
			s.keepSecret(v)
		}
	}
	// Registered first, so it runs after the server has stopped.
	t.Cleanup(func() {
		if s.server == nil {
			return // it did not start
		}
		logs := s.logs.String()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, secret := range s.secrets {
			if secret != "" && strings.Contains(logs, secret) {
				t.Errorf("the log holds a secret (%d characters starting %.6q)", len(secret), secret)
			}
		}
		for _, leak := range []string{"goroutine ", "panic", "runtime error"} {
			if strings.Contains(logs, leak) {
				t.Errorf("the log shows %q:\n%s", leak, logs)
			}
		}
	})
	s.server = startServer(t, append([]string{"DATA_DIR=" + s.dir, "SHUTDOWN_TIMEOUT=5s"}, extra...)...)
	return s
}

// secUser is a registered, logged-in user.
type secUser struct {
	id, email, access, refresh string
}

func (s *secServer) register(t *testing.T, email string) secUser {
	t.Helper()
	st, body := post(t, s.base+"/api/v1/users/", map[string]any{"email": email, "password": secPassword, "name": "Sec Tester"})
	if st != http.StatusCreated {
		t.Fatalf("register %s: %d %v", email, st, body)
	}
	return s.login(t, email)
}

func (s *secServer) login(t *testing.T, email string) secUser {
	t.Helper()
	st, body := post(t, s.base+"/api/v1/users/login", map[string]any{"email": email, "password": secPassword})
	if st != http.StatusOK {
		t.Fatalf("login %s: %d %v", email, st, body)
	}
	data := body["data"].(map[string]any)
	u := secUser{
		id:      data["user"].(map[string]any)["id"].(string),
		email:   data["user"].(map[string]any)["email"].(string),
		access:  data["access"].(string),
		refresh: data["refresh"].(string),
	}
	s.keepSecret(secPassword, u.access, u.refresh)
	return u
}

// getUser reads the user id with the Authorization header auth ("" for none)
// and returns the status and the body.
func (s *secServer) getUser(t *testing.T, id, auth string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+"/api/v1/users/"+id+"/", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return send(t, req)
}

// secB64 is the base64url encoding of v's JSON.
func secB64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// secHS256 assembles a token by hand and signs it with HMAC-SHA256 over key,
// whatever its header says.
func secHS256(header, claims map[string]any, key []byte) string {
	in := secB64(header) + "." + secB64(claims)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// secSign signs header and claims with an asymmetric key through the JWT
// library, keeping the header exactly as given.
func secSign(t *testing.T, method jwt.SigningMethod, header, claims map[string]any, key crypto.Signer) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	tok.Header = header
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// secUnsigned is a token with an empty signature.
func secUnsigned(header, claims map[string]any) string {
	return secB64(header) + "." + secB64(claims) + "."
}

func secExpect401(t *testing.T, s *secServer, id, tok string) {
	t.Helper()
	st, body := s.getUser(t, id, "Bearer "+tok)
	if st != http.StatusUnauthorized {
		t.Errorf("status %d, want 401: %v", st, body)
	}
	if body != nil {
		if b, _ := json.Marshal(body); strings.Contains(string(b), tok) && tok != "" {
			t.Error("the answer repeats the token")
		}
	}
}

func secExpect200(t *testing.T, s *secServer, id, tok string) {
	t.Helper()
	if st, body := s.getUser(t, id, "Bearer "+tok); st != http.StatusOK {
		t.Fatalf("a well-formed token was refused (%d %v): the attacks below would prove nothing", st, body)
	}
}

// TestSecurityTokensHS256 checks, through the real server in its default
// HS256 configuration, that a forged or altered token is refused where it
// is presented and that a token is read from the Authorization header alone.
// The full attack tables (alg none, algorithm switching, header key sources,
// kid tricks, claims, spellings) run against the token package itself, in
// internal/token/attack_test.go.
func TestSecurityTokensHS256(t *testing.T) {
	t.Parallel()
	s := secStart(t, "SECRET_KEY="+secSecret)
	u := s.register(t, "hs256@example.com")
	header, claims := tokentest.Decode(t, u.access)
	key := []byte(secSecret)

	t.Run("baseline: a re-signed untampered token is accepted", func(t *testing.T) {
		secExpect200(t, s, u.id, secHS256(header, claims, key))
		if header["alg"] != "HS256" || header["kid"] == nil {
			t.Errorf("issued header %v", header)
		}
	})
	t.Run("alg none", func(t *testing.T) {
		secExpect401(t, s, u.id, secUnsigned(tokentest.With(header, map[string]any{"alg": "none"}), claims))
	})
	t.Run("a claim changed under the issued signature", func(t *testing.T) {
		parts := strings.Split(u.access, ".")
		secExpect401(t, s, u.id, parts[0]+"."+secB64(tokentest.With(claims, map[string]any{"is_admin": true}))+"."+parts[2])
	})
	t.Run("a valid token of another user", func(t *testing.T) {
		// Signed with the real secret: the token is good, the user in it is
		// not this one (and does not exist).
		other := "00000000-0000-4000-8000-000000000000"
		tok := secHS256(header, tokentest.With(claims, map[string]any{"user_id": other, "sub": other}), key)
		if st, _ := s.getUser(t, u.id, "Bearer "+tok); st != http.StatusForbidden && st != http.StatusUnauthorized {
			t.Errorf("another user's token read this user: %d", st)
		}
	})
	t.Run("refresh token as access", func(t *testing.T) {
		secExpect401(t, s, u.id, u.refresh)
	})
	t.Run("access token as refresh", func(t *testing.T) {
		st, _ := post(t, s.base+"/api/v1/users/refresh", map[string]any{"refresh": u.access})
		if st != http.StatusUnauthorized {
			t.Errorf("refresh with an access token: %d", st)
		}
	})
	t.Run("Authorization other than Bearer", func(t *testing.T) {
		for _, auth := range []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), "Token " + u.access, u.access, "Bearer", "Bearer  "} {
			if st, _ := s.getUser(t, u.id, auth); st != http.StatusUnauthorized {
				t.Errorf("Authorization %.30q: %d", auth, st)
			}
		}
	})
	t.Run("token never read from the query string", func(t *testing.T) {
		for _, name := range []string{"access_token", "token", "jwt", "access", "authorization", "bearer"} {
			for _, v := range []string{u.access, "Bearer " + u.access} {
				req, _ := http.NewRequest(http.MethodGet, s.base+"/api/v1/users/"+u.id+"/?"+name+"="+strings.ReplaceAll(v, " ", "%20"), nil)
				if st, _ := send(t, req); st != http.StatusUnauthorized {
					t.Errorf("?%s=: %d, want 401", name, st)
				}
			}
		}
		// Nor from a form body or a cookie.
		req, _ := http.NewRequest(http.MethodGet, s.base+"/api/v1/users/"+u.id+"/", strings.NewReader("access_token="+u.access))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "access_token", Value: u.access})
		req.AddCookie(&http.Cookie{Name: "token", Value: u.access})
		if st, _ := send(t, req); st != http.StatusUnauthorized {
			t.Errorf("form body and cookie: %d, want 401", st)
		}
	})
	t.Run("oversized Authorization header", func(t *testing.T) {
		for _, n := range []int{1 << 20, 100_000} {
			start := time.Now()
			status, err := secRawStatus(s.addr, "GET /api/v1/users/"+u.id+"/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+strings.Repeat("a", n)+"\r\n\r\n")
			took := time.Since(start)
			switch {
			case err != nil:
				t.Logf("%d bytes: connection ended without an answer after %v (%v)", n, took, err)
			case status != http.StatusRequestHeaderFieldsTooLarge && status != http.StatusBadRequest && status != http.StatusUnauthorized:
				t.Errorf("%d bytes: status %d", n, status)
			default:
				t.Logf("%d bytes: %d in %v", n, status, took)
			}
			if took > 2*time.Second {
				t.Errorf("%d bytes took %v to refuse", n, took)
			}
		}
		secAlive(t, s)
	})
	t.Run("token of dots", func(t *testing.T) {
		for _, n := range []int{100_000, 60_000, 8_000} {
			start := time.Now()
			status, err := secRawStatus(s.addr, "GET /api/v1/users/"+u.id+"/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+strings.Repeat(".", n)+"\r\nConnection: close\r\n\r\n")
			took := time.Since(start)
			if err != nil {
				t.Fatalf("%d dots: %v", n, err)
			}
			want := http.StatusUnauthorized
			if n > 64<<10 {
				want = http.StatusRequestHeaderFieldsTooLarge
			}
			if status != want {
				t.Errorf("%d dots: %d, want %d", n, status, want)
			}
			if took > time.Second {
				t.Errorf("%d dots took %v", n, took)
			}
			t.Logf("%d dots: %d in %v", n, status, took)
		}
		secAlive(t, s)
	})
}

// secAlive checks that the server still answers.
func secAlive(t *testing.T, s *secServer) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+"/health/liveness", nil)
	if st, _ := send(t, req); st != http.StatusOK {
		t.Fatalf("the server no longer answers: %d", st)
	}
}

// secRawStatus writes raw to a new connection and returns the status of the
// answer. The write runs aside, so a server that answers and closes before
// reading everything is seen answering.
func secRawStatus(addr, raw string) (int, error) {
	resp, err := secRaw(addr, raw, 10*time.Second)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// secRaw writes raw bytes to a new connection and reads one answer.
func secRaw(addr, raw string, timeout time.Duration) (*http.Response, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	go func() { _, _ = io.WriteString(c, raw) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// secRawHead writes raw bytes to a new connection and returns everything up
// to the end of the answer's header, unparsed.
func secRawHead(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var head strings.Builder
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		head.WriteString(line)
		if err != nil || line == "\r\n" || line == "\n" {
			return head.String()
		}
	}
}

// secKeyFile writes priv as a PKCS#8 PEM file and returns its path.
func secKeyFile(t *testing.T, priv crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// secJWKS returns the published keys.
func secJWKS(t *testing.T, s *secServer) []map[string]any {
	t.Helper()
	resp, err := http.Get(s.base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ Keys []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Keys
}

// TestSecurityTokensAsymmetric checks, through servers that sign with RS256
// and EdDSA from a key file, that the published key matches the tokens and
// that it does not work as an HS256 secret. The full attack tables run
// against the token package itself, in internal/token/attack_test.go.
func TestSecurityTokensAsymmetric(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		alg    string
		method jwt.SigningMethod
		priv   crypto.Signer
	}{
		{"RS256", jwt.SigningMethodRS256, rsaKey},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey},
	} {
		t.Run(c.alg, func(t *testing.T) {
			t.Parallel()
			s := secStart(t, "JWT_ALGORITHM="+c.alg, "JWT_PRIVATE_KEY_FILE="+secKeyFile(t, c.priv))
			u := s.register(t, strings.ToLower(c.alg)+"@example.com")
			header, claims := tokentest.Decode(t, u.access)
			keys := secJWKS(t, s)
			if len(keys) != 1 || keys[0]["kid"] != header["kid"] || header["alg"] != c.alg {
				t.Fatalf("JWKS %v does not match the token header %v", keys, header)
			}
			t.Run("baseline: a token signed with the real key is accepted", func(t *testing.T) {
				secExpect200(t, s, u.id, secSign(t, c.method, header, claims, c.priv))
			})
			t.Run("HS256 signed with the public key", func(t *testing.T) {
				member, _ := json.Marshal(keys[0])
				pkix, err := x509.MarshalPKIXPublicKey(c.priv.Public())
				if err != nil {
					t.Fatal(err)
				}
				h := tokentest.With(header, map[string]any{"alg": "HS256"})
				for name, pub := range map[string][]byte{
					"JWKS member": member,
					"PKIX PEM":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}),
				} {
					t.Run(name, func(t *testing.T) {
						secExpect401(t, s, u.id, secHS256(h, claims, pub))
					})
				}
			})
			t.Run("alg none", func(t *testing.T) {
				secExpect401(t, s, u.id, secUnsigned(tokentest.With(header, map[string]any{"alg": "none"}), claims))
			})
		})
	}
}

// TestSecurityHeaders checks CORS, caching, content sniffing and header
// injection.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	const allowed, other = "https://app.example.com", "http://localhost:3000"
	s := secStart(t, "SECRET_KEY="+secSecret, "CORS_ALLOWED_ORIGINS="+allowed+", "+other)

	get := func(t *testing.T, method, path, origin string, extra ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.base+path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	t.Run("CORS allowlist", func(t *testing.T) {
		for _, origin := range []string{allowed, other} {
			resp := get(t, "GET", "/health", origin)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
				t.Errorf("allowed origin %s: Access-Control-Allow-Origin %q", origin, got)
			}
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("no Vary: Origin for %s", origin)
			}
		}
		for _, origin := range []string{
			"https://evil.example.com", "https://app.example.com.evil.example", "https://evilapp.example.com",
			"http://app.example.com", "https://app.example.com:8443", "null", "*", "https://app.example.com/",
			"HTTPS://APP.EXAMPLE.COM.evil.example",
		} {
			resp := get(t, "GET", "/api/v1/users/00000000-0000-4000-8000-000000000000/", origin)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("origin %q got Access-Control-Allow-Origin %q", origin, got)
			}
			if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("origin %q got Access-Control-Allow-Credentials %q", origin, got)
			}
		}
	})
	t.Run("CORS preflight", func(t *testing.T) {
		resp := get(t, "OPTIONS", "/api/v1/users/login", allowed, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "content-type, authorization")
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			t.Errorf("preflight status %d", resp.StatusCode)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != allowed ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Errorf("preflight headers %v", resp.Header)
		}
		resp = get(t, "OPTIONS", "/api/v1/users/login", "https://evil.example.com", "Access-Control-Request-Method", "POST")
		for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Allow-Credentials"} {
			if v := resp.Header.Get(h); v != "" {
				t.Errorf("preflight from another origin got %s: %q", h, v)
			}
		}
	})
	t.Run("CORS wildcard never with credentials", func(t *testing.T) {
		for _, setting := range []string{"*", "*," + allowed} {
			w := secStart(t, "SECRET_KEY="+secSecret, "CORS_ALLOWED_ORIGINS="+setting)
			for _, origin := range []string{"https://anyone.example", allowed} {
				req, _ := http.NewRequest("OPTIONS", w.base+"/api/v1/users/login", nil)
				req.Header.Set("Origin", origin)
				req.Header.Set("Access-Control-Request-Method", "POST")
				for _, r := range []*http.Request{req, secGetReq(w.base+"/health", origin)} {
					resp, err := http.DefaultClient.Do(r)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					acao, acac := resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Credentials")
					if acao == "" {
						t.Errorf("%s, origin %s: no Access-Control-Allow-Origin", setting, origin)
					}
					if acao == "*" && acac != "" {
						t.Errorf("%s, origin %s: * with credentials %q", setting, origin, acac)
					}
					if acao != "*" && acao != origin {
						t.Errorf("%s, origin %s: Access-Control-Allow-Origin %q", setting, origin, acao)
					}
				}
			}
		}
	})
	t.Run("no CORS unless configured", func(t *testing.T) {
		n := secStart(t, "SECRET_KEY="+secSecret)
		resp, err := http.DefaultClient.Do(secGetReq(n.base+"/health", allowed))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("Access-Control-Allow-Origin %q with no allowlist", v)
		}
	})
	t.Run("Cache-Control no-store on token and account answers", func(t *testing.T) {
		u := s.register(t, "nostore@example.com")
		for _, c := range []struct {
			path string
			body any
		}{
			{"/api/v1/users/", map[string]any{"email": "nostore2@example.com", "password": secPassword, "name": "No Store"}},
			{"/api/v1/users/", map[string]any{"email": "nostore@example.com", "password": secPassword, "name": "No Store"}},
			{"/api/v1/users/", map[string]any{"email": "bad"}},
			{"/api/v1/users/login", map[string]any{"email": "nostore@example.com", "password": secPassword}},
			{"/api/v1/users/login", map[string]any{"email": "nostore@example.com", "password": "Wrong!pass1"}},
			{"/api/v1/users/login", "not an object"},
			{"/api/v1/users/refresh", map[string]any{"refresh": u.refresh}},
			{"/api/v1/users/refresh", map[string]any{"refresh": "x.y.z"}},
			{"/api/v1/users/logout", map[string]any{"refresh": "x.y.z"}},
		} {
			b, _ := json.Marshal(c.body)
			resp, err := http.Post(s.base+c.path, "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("POST %s (%d): Cache-Control %q", c.path, resp.StatusCode, cc)
			}
			var m map[string]any
			if json.Unmarshal(body, &m) == nil {
				if d, ok := m["data"].(map[string]any); ok {
					for _, k := range []string{"access", "refresh"} {
						if v, ok := d[k].(string); ok {
							s.keepSecret(v)
						}
					}
				}
			}
		}
	})
	t.Run("nosniff on every answer", func(t *testing.T) {
		for _, r := range []struct{ method, path string }{
			{"GET", "/health"}, {"GET", "/health/liveness"}, {"GET", "/metrics"}, {"GET", "/.well-known/jwks.json"},
			{"GET", "/api/v1/openapi.json"}, {"GET", "/docs"}, {"GET", "/nope"}, {"GET", "/api/v1/nope"},
			{"PUT", "/api/v1/users/login"}, {"GET", "/api/v1/users/not-a-uuid/"},
			{"GET", "/api/v1/users/00000000-0000-4000-8000-000000000000/"}, {"POST", "/api/v1/users/login"},
		} {
			resp := get(t, r.method, r.path, "")
			if v := resp.Header.Get("X-Content-Type-Options"); v != "nosniff" {
				t.Errorf("%s %s (%d): X-Content-Type-Options %q", r.method, r.path, resp.StatusCode, v)
			}
		}
	})
	t.Run("no header injection", func(t *testing.T) {
		idRE := regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
		for _, c := range []struct{ name, headers string }{
			{"request id percent-encoded CRLF", "X-Request-ID: abc%0d%0aSet-Cookie:%20injected=1\r\n"},
			{"request id encoded CRLF", "X-Request-ID: abc\\r\\nSet-Cookie: injected=1\r\n"},
			{"request id bare CR", "X-Request-ID: abc\rSet-Cookie: injected=1\r\n"},
			{"request id bare LF", "X-Request-ID: abc\nSet-Cookie: injected=1\r\n"},
			{"request id folded", "X-Request-ID: abc\r\n Set-Cookie: injected=1\r\n"},
			{"request id NUL", "X-Request-ID: abc\x00Set-Cookie: injected=1\r\n"},
			{"request id UTF-8 newline", "X-Request-ID: abc\u2028Set-Cookie: injected=1\r\n"},
			{"origin percent-encoded CRLF", "Origin: " + allowed + "%0d%0aSet-Cookie:%20injected=1\r\n"},
			{"origin bare CR", "Origin: " + allowed + "\rSet-Cookie: injected=1\r\n"},
			{"origin bare LF", "Origin: " + allowed + "\nSet-Cookie: injected=1\r\n"},
			{"origin folded", "Origin: " + allowed + "\r\n Set-Cookie: injected=1\r\n"},
		} {
			t.Run(c.name, func(t *testing.T) {
				for _, path := range []string{"/health", "/api/v1/users/login"} {
					head := secRawHead(t, s.addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n"+c.headers+"Connection: close\r\n\r\n")
					if head == "" {
						continue // closed without answering
					}
					for line := range strings.SplitSeq(head, "\n") {
						line = strings.TrimRight(line, "\r")
						name, value, _ := strings.Cut(line, ":")
						if strings.EqualFold(strings.TrimSpace(name), "Set-Cookie") || strings.Contains(strings.ToLower(name), "injected") {
							t.Errorf("injected header line %q in:\n%s", line, head)
						}
						if strings.EqualFold(name, "X-Request-ID") && !idRE.MatchString(strings.TrimSpace(value)) {
							t.Errorf("X-Request-ID echoed as %q", value)
						}
						if strings.EqualFold(name, "Access-Control-Allow-Origin") && strings.TrimSpace(value) != allowed {
							t.Errorf("Access-Control-Allow-Origin echoed as %q", value)
						}
					}
					if strings.Contains(head, "injected") {
						t.Errorf("the answer's header repeats the injected text:\n%s", head)
					}
				}
			})
		}
		// A safe id is echoed as sent.
		resp := get(t, "GET", "/health", "", "X-Request-ID", "trace-123_ab.C")
		if got := resp.Header.Get("X-Request-ID"); got != "trace-123_ab.C" {
			t.Errorf("safe X-Request-ID echoed as %q", got)
		}
		if strings.Contains(s.logs.String(), "injected") {
			t.Error("the injected text reached the log")
		}
	})
}

func secGetReq(url, origin string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Origin", origin)
	return req
}

// TestSecuritySlowClients checks that connections that trickle their
// request are cut off by the server's read timeouts.
func TestSecuritySlowClients(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for the server's read timeouts")
	}
	s := secStart(t, "SECRET_KEY="+secSecret)

	// trickle opens a connection, writes head at once, then trickle one
	// byte every interval, and returns how long the server kept it open.
	trickle := func(t *testing.T, head, trickle string, interval, giveUp time.Duration) (time.Duration, string) {
		t.Helper()
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		closed := make(chan string, 1)
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(giveUp))
			b, _ := io.ReadAll(c)
			closed <- string(b)
		}()
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case got := <-closed:
				return time.Since(start), got
			case <-tick.C:
				if i < len(trickle) {
					_, _ = c.Write([]byte{trickle[i]})
				}
			}
		}
	}

	t.Run("slowloris headers", func(t *testing.T) {
		t.Parallel()
		took, got := trickle(t, "GET /health HTTP/1.1\r\nHost: x\r\n", "X-Slow: "+strings.Repeat("a", 200)+"\r\n\r\n", 250*time.Millisecond, 40*time.Second)
		t.Logf("headers trickled: closed after %v (%q)", took, got)
		if took >= 40*time.Second {
			t.Fatal("the connection stayed open")
		}
		if took > 10*time.Second {
			t.Errorf("closed only after %v; the header read timeout is 5s", took)
		}
		if strings.Contains(got, "200 OK") {
			t.Errorf("the trickled request was served: %q", got)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		t.Parallel()
		body := `{"email":"slow@example.com","password":"` + strings.Repeat("x", 400) + `"}`
		head := "POST /api/v1/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
		took, got := trickle(t, head, body, 250*time.Millisecond, 60*time.Second)
		t.Logf("body trickled: cut off after %v (%.80q)", took, got)
		if took >= 60*time.Second {
			t.Fatal("the connection stayed open")
		}
		if took > 25*time.Second {
			t.Errorf("cut off only after %v; the read timeout is 15s", took)
		}
		if strings.Contains(got, "200 OK") {
			t.Errorf("the trickled request was served: %q", got)
		}
	})
	t.Run("idle keep-alive before the first byte", func(t *testing.T) {
		t.Parallel()
		took, _ := trickle(t, "", "", time.Hour, 40*time.Second)
		t.Logf("silent connection: closed after %v", took)
		if took >= 40*time.Second {
			t.Fatal("a connection that sends nothing stayed open")
		}
	})
	secAlive(t, s)
}

// secHashCount reads how many password hashes the server has computed.
func secHashCount(t *testing.T, s *secServer) int {
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "usersvc_password_hash_duration_seconds_count "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no usersvc_password_hash_duration_seconds_count in /metrics")
	return 0
}

// TestSecurityPasswordLength checks that an over-long password is refused
// before any hashing, at registration and at login.
func TestSecurityPasswordLength(t *testing.T) {
	t.Parallel()
	s := secStart(t, "SECRET_KEY="+secSecret)
	s.register(t, "long@example.com")
	long := "Aa1!" + strings.Repeat("x", 125) // 129 characters
	huge := "Aa1!" + strings.Repeat("x", 1<<19)
	s.keepSecret(long[:40])

	for _, c := range []struct {
		name, path string
		body       map[string]any
	}{
		{"register 129", "/api/v1/users/", map[string]any{"email": "long2@example.com", "password": long, "name": "Long"}},
		{"register 512 KiB", "/api/v1/users/", map[string]any{"email": "long3@example.com", "password": huge, "name": "Long"}},
		{"register 129 multibyte", "/api/v1/users/", map[string]any{"email": "long4@example.com", "password": "Aa1!" + strings.Repeat("é", 125), "name": "Long"}},
		{"login 129", "/api/v1/users/login", map[string]any{"email": "long@example.com", "password": long}},
		{"login 512 KiB", "/api/v1/users/login", map[string]any{"email": "long@example.com", "password": huge}},
		{"login 512 KiB unknown email", "/api/v1/users/login", map[string]any{"email": "nobody@example.com", "password": huge}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := secHashCount(t, s)
			start := time.Now()
			st, body := post(t, s.base+c.path, c.body)
			took := time.Since(start)
			after := secHashCount(t, s)
			if st != http.StatusBadRequest {
				t.Errorf("status %d, want 400: %v", st, body)
			}
			if after != before {
				t.Errorf("%d password hashes computed for an over-long password", after-before)
			}
			if b, _ := json.Marshal(body); strings.Contains(string(b), "xxxxxxxx") {
				t.Error("the answer repeats the password")
			}
			t.Logf("%d in %v", st, took)
		})
	}
	// 128 characters is still a password: it is hashed.
	t.Run("128 is allowed", func(t *testing.T) {
		before := secHashCount(t, s)
		st, body := post(t, s.base+"/api/v1/users/login", map[string]any{"email": "long@example.com", "password": "Aa1!" + strings.Repeat("x", 124)})
		if st != http.StatusUnauthorized {
			t.Errorf("128-character wrong password: %d %v", st, body)
		}
		if secHashCount(t, s) == before {
			t.Error("a 128-character password was not checked")
		}
	})
}

// TestSecurityEmailCanonical checks that the forms of one address are one
// account: registering another form is a conflict, and any form logs in.
func TestSecurityEmailCanonical(t *testing.T) {
	t.Parallel()
	s := secStart(t, "SECRET_KEY="+secSecret)
	for _, c := range []struct {
		first string
		forms []string
	}{
		{"jos\u00e9.alice@example.com", []string{
			"jose\u0301.alice@example.com",     // NFD
			"JOS\u00c9.ALICE@EXAMPLE.COM",      // upper case
			"  Jos\u00e9.Alice@Example.com \t", // surrounding space
			"\uff2aos\u00e9.alice@example.com", // full-width J
		}},
		{"\uff21lice@Example.com", []string{"alice@example.com", "ALICE@EXAMPLE.COM", "alice\uff20example.com"}},
	} {
		t.Run(c.first, func(t *testing.T) {
			first := s.register(t, c.first)
			for _, form := range c.forms {
				st, body := post(t, s.base+"/api/v1/users/", map[string]any{"email": form, "password": secPassword, "name": "Twin"})
				if st != http.StatusConflict || body["error"] != "A user with this email already exists" {
					t.Errorf("register %q after %q: %d %v", form, c.first, st, body)
				}
				if got := s.login(t, form); got.id != first.id || got.email != first.email {
					t.Errorf("login as %q: user %s %q, want %s %q", form, got.id, got.email, first.id, first.email)
				}
			}
		})
	}
}
