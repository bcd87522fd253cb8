package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/token"
)

// testSecret signs the tokens of the test servers.
const testSecret = "test-secret-key-that-is-long-enough-0123456789"

// serviceKey is the key of the "notifier" service account of the test
// servers (it may read); invalidatorKey may only invalidate push tokens.
const (
	serviceKey     = "notifier-key-0123456789abcdef"
	invalidatorKey = "pusher-key-0123456789abcdef"
	feedKey        = "feed-reader-key-0123456789abcdef"
)

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a server on real adapters (SQLite in a temp dir, argon2id with
// cheap parameters, HS256 tokens) behind httptest.
type harness struct {
	t        testing.TB
	srv      *httptest.Server
	store    testStore
	accounts *account.Service
	clock    *clock
	draining *atomic.Bool
	tokens   *token.Service
}

// testStore is a store the harness can run on.
type testStore interface {
	cache.Inner
	Migrate(ctx context.Context) error
	Ping(ctx context.Context) error
	Close() error
}

// cached is st behind cache c, or st alone when c is nil.
func cached(st testStore, c cache.Cache) account.Store {
	if c == nil {
		return st
	}
	return cache.Wrap(st, c)
}

// cheapHashing makes test logins fast; realHashing is the production cost.
var (
	cheapHashing = password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	realHashing  = password.DefaultParams()
)

func newSQLite(t testing.TB) testStore {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "usersvc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newPostgres(t testing.TB) testStore {
	t.Helper()
	st, err := postgres.Open(t.Context(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newHarness(t *testing.T) *harness { return newHarnessOn(t, newSQLite(t), cheapHashing) }

func newHarnessOn(t testing.TB, st testStore, params password.Params) *harness {
	t.Helper()
	return newHarnessWith(t, st, params, account.Options{})
}

// newHarnessWith is newHarnessOn with account options (limits) and, when
// c is given, a cache in front of the store; the service keys and the
// clock are the harness's own.
func newHarnessWith(t testing.TB, st testStore, params password.Params, opts account.Options, c ...cache.Cache) *harness {
	t.Helper()
	ctx := t.Context()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	hasher, err := password.New(password.WithParams(params))
	if err != nil {
		t.Fatal(err)
	}
	tokens := newTestTokens(t, testSecret)
	keys, err := account.ParseServiceKeys("notifier:" + serviceKey + ",pusher:" + invalidatorKey + ":push_tokens.invalidate,feed:" + feedKey + ":events.read")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now().UTC()}
	opts.ServiceKeys, opts.Now = keys, clk.Now
	var front cache.Cache
	if len(c) > 0 {
		front = c[0]
	}
	accounts := account.New(cached(st, front), hasher, tokens, opts)
	draining := new(atomic.Bool)
	logger := slog.New(slog.DiscardHandler)
	handler := httpapi.NewServer(logger, httpapi.Config{Version: "test", JWKS: tokens.JWKS}, accounts, httpapi.Health{Database: st.Ping, Draining: draining})
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	srv.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &harness{t: t, srv: srv, store: st, accounts: accounts, clock: clk, draining: draining, tokens: tokens}
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (r response) data() map[string]any {
	d, _ := r.Body["data"].(map[string]any)
	return d
}

func (r response) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// do sends body (a string is sent as is, anything else as JSON) with
// headers given as name, value pairs.
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
	return h.send(h.request(method, path, body, headers...))
}

// request builds what do sends: body as do takes it, headers as name, value
// pairs (an empty value removes the header).
func (h *harness) request(method, path string, body any, headers ...string) *http.Request {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// send sends req and decodes the answer, which must be empty or one JSON
// object. Redirects are not followed: the API never answers with one.
func (h *harness) send(req *http.Request) response {
	h.t.Helper()
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			h.t.Fatalf("%s %s: %d, body is not a JSON object: %q", req.Method, req.URL.RequestURI(), resp.StatusCode, raw)
		}
	}
	return r
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// user is a registered and logged-in test user.
type user struct {
	ID, Email, Password, Access, Refresh string
}

var userSeq atomic.Int64

// register makes a user and logs it in.
func (h *harness) register(name string) user {
	h.t.Helper()
	n := userSeq.Add(1)
	u := user{Email: strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "." + itoa(n) + "@example.com", Password: "Str0ng!Passw0rd"}
	r := h.do("POST", "/api/v1/users/", map[string]any{"email": u.Email, "password": u.Password, "name": name})
	if r.Status != http.StatusCreated {
		h.t.Fatalf("register %s: %d %s", name, r.Status, r.Raw)
	}
	u.ID = r.data()["id"].(string)
	r = h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": u.Password})
	if r.Status != http.StatusOK {
		h.t.Fatalf("login %s: %d %s", name, r.Status, r.Raw)
	}
	u.Access = r.data()["access"].(string)
	u.Refresh = r.data()["refresh"].(string)
	return u
}

// admin makes an admin user and logs it in.
func (h *harness) admin() user {
	h.t.Helper()
	n := userSeq.Add(1)
	u := user{Email: "admin." + itoa(n) + "@example.com", Password: "Adm1n!Passw0rd"}
	a, err := h.accounts.CreateAdmin(h.t.Context(), usersvc.Registration{Email: u.Email, Name: "Admin", Password: usersvc.Password(u.Password)})
	if err != nil {
		h.t.Fatal(err)
	}
	u.ID = a.ID
	r := h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": u.Password})
	if r.Status != http.StatusOK {
		h.t.Fatalf("login admin: %d %s", r.Status, r.Raw)
	}
	u.Access = r.data()["access"].(string)
	u.Refresh = r.data()["refresh"].(string)
	return u
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// checkEnvelope asserts the five keys of the envelope and the JSON content type.
func checkEnvelope(t *testing.T, r response) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if len(r.Body) != 5 {
		t.Errorf("envelope has %d keys: %s", len(r.Body), r.Raw)
	}
	for _, k := range []string{"success", "data", "error", "message", "meta"} {
		if _, ok := r.Body[k]; !ok {
			t.Errorf("envelope lacks %q: %s", k, r.Raw)
		}
	}
}

// expect asserts a status and, for failures, the error text.
func expect(t *testing.T, r response, status int, errText string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d: %s", r.Status, status, r.Raw)
	}
	checkEnvelope(t, r)
	if status >= 400 {
		if r.Body["success"] != false {
			t.Errorf("success = %v on a failure", r.Body["success"])
		}
		if errText != "" && r.str("error") != errText {
			t.Errorf("error = %q, want %q", r.str("error"), errText)
		}
	} else if r.Body["success"] != true || r.Body["error"] != nil {
		t.Errorf("success/error wrong on a success: %s", r.Raw)
	}
}

// fieldErrors returns the per-field messages of a validation failure.
func fieldErrors(r response) map[string][]string {
	out := map[string][]string{}
	for k, v := range r.data() {
		for _, m := range v.([]any) {
			out[k] = append(out[k], m.(string))
		}
	}
	return out
}
