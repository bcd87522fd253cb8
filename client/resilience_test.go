package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
	"github.com/usersvc/usersvc/client/clienttest"
)

const prefsJSON = `{"success":true,"data":{"email":true,"push":false},"error":null,"message":"Notification preferences retrieved successfully","meta":null}`

const someID = "0190b7a4-5a4f-7c2e-9d3b-2f1e4a5b6c7d"

// flaky is a fake user service that answers from a script: the nth request
// gets script[n-1], and every request after the script gets the last entry.
type flaky struct {
	t        *testing.T
	srv      *httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	script   []func(w http.ResponseWriter, r *http.Request)
	seen     []*http.Request
}

func newFlaky(t *testing.T, script ...func(w http.ResponseWriter, r *http.Request)) *flaky {
	t.Helper()
	f := &flaky{t: t, script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.requests.Add(1))
		f.mu.Lock()
		f.seen = append(f.seen, r.Clone(context.Background()))
		s := f.script
		f.mu.Unlock()
		s[min(n, len(s))-1](w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// then replaces the script.
func (f *flaky) then(script ...func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	f.script = script
	f.mu.Unlock()
}

func (f *flaky) client(opts ...client.Option) *client.Client {
	f.t.Helper()
	c, err := client.New(f.srv.URL, opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func status(code int, body string, headers ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func fail(code int, msg string, headers ...string) func(w http.ResponseWriter, r *http.Request) {
	return status(code, `{"success":false,"data":null,"error":"`+msg+`","message":"`+msg+`","meta":null}`, headers...)
}

var (
	okPrefs     = status(http.StatusOK, prefsJSON)
	unavailable = fail(http.StatusServiceUnavailable, "Service temporarily unavailable")
	// hangUp closes the connection without an answer.
	hangUp = func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}
)

// fast retries quickly.
var fast = client.WithRetry(client.RetryPolicy{Attempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 2 * time.Second})

func TestGetIsRetriedOn503ThenSucceeds(t *testing.T) {
	f := newFlaky(t, unavailable, unavailable, okPrefs)
	prefs, err := f.client(fast).Preferences(t.Context(), someID)
	if err != nil {
		t.Fatal(err)
	}
	if !prefs.Equal(usersvc.Preferences{Email: true, Push: false}) {
		t.Errorf("preferences = %+v", prefs)
	}
	if n := f.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestGetGivesUpAfterTheAttempts(t *testing.T) {
	f := newFlaky(t, unavailable)
	_, err := f.client(fast).User(t.Context(), someID)
	clienttest.WantError(t, err, client.ErrUnavailable, http.StatusServiceUnavailable)
	if n := f.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestConnectionFailuresAreRetried(t *testing.T) {
	f := newFlaky(t, hangUp, okPrefs)
	if _, err := f.client(fast).Preferences(t.Context(), someID); err != nil {
		t.Fatal(err)
	}
	if n := f.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}

	f = newFlaky(t, hangUp)
	_, err := f.client(fast).Devices(t.Context(), someID)
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("error = %v, want ErrUnavailable", err)
	}
	var e *client.Error
	if errors.As(err, &e) {
		t.Errorf("a failure to connect is an *Error: %v", e)
	}
	if n := f.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestAttemptsTimeOut(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	f := newFlaky(t, slow, okPrefs)
	start := time.Now()
	if _, err := f.client(fast, client.WithTimeout(50*time.Millisecond)).Preferences(t.Context(), someID); err != nil {
		t.Fatal(err)
	}
	if n := f.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}

	f = newFlaky(t, slow)
	_, err := f.client(fast, client.WithTimeout(20*time.Millisecond)).Preferences(t.Context(), someID)
	if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v", err)
	}
}

func TestPostAndPatchAreNotRetried(t *testing.T) {
	ctx := t.Context()
	calls := map[string]func(c *client.Client) error{
		"register": func(c *client.Client) error {
			_, err := c.Register(ctx, usersvc.Registration{Email: "a@example.com", Password: "Str0ng!Passw0rd", Name: "A"})
			return err
		},
		"login": func(c *client.Client) error {
			_, err := c.Login(ctx, usersvc.Credentials{Email: "a@example.com", Password: "Str0ng!Passw0rd"})
			return err
		},
		"refresh": func(c *client.Client) error { _, err := c.Refresh(ctx, "r"); return err },
		"logout":  func(c *client.Client) error { return c.Logout(ctx, "r") },
		"batch":   func(c *client.Client) error { _, err := c.BatchUsers(ctx, []string{someID}); return err },
		"invalidate": func(c *client.Client) error {
			_, err := c.InvalidatePushTokens(ctx, []string{"fcm:x"}, "unregistered")
			return err
		},
		"preferences": func(c *client.Client) error {
			_, err := c.UpdatePreferences(ctx, someID, usersvc.PreferencesPatch{Push: ptr(true)})
			return err
		},
		"push token": func(c *client.Client) error {
			_, err := c.UpdatePushToken(ctx, someID, usersvc.PushTokenUpdate{Token: ptr("fcm:x")})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			for _, answer := range []func(http.ResponseWriter, *http.Request){unavailable, hangUp} {
				f := newFlaky(t, answer, okPrefs)
				err := call(f.client(fast))
				if !errors.Is(err, client.ErrUnavailable) {
					t.Errorf("error = %v, want ErrUnavailable", err)
				}
				if n := f.requests.Load(); n != 1 {
					t.Errorf("%d requests, want 1", n)
				}
			}
		})
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	f := newFlaky(t, fail(http.StatusTooManyRequests, "Too many requests", "Retry-After", "1"), okPrefs)
	start := time.Now()
	if _, err := f.client(fast).Preferences(t.Context(), someID); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, before the Retry-After of 1s", d)
	}
	if n := f.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}

	// A wait longer than the longest the policy allows is left to the caller.
	f = newFlaky(t, fail(http.StatusTooManyRequests, "Too many requests", "Retry-After", "30"), okPrefs)
	_, err := f.client(fast).Preferences(t.Context(), someID)
	e := clienttest.WantError(t, err, client.ErrRateLimited, http.StatusTooManyRequests)
	if e.RetryAfter != 30*time.Second || e.Message != "Too many requests" {
		t.Errorf("error = %+v", e)
	}
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}

	// A POST is not retried, even on a 429.
	f = newFlaky(t, fail(http.StatusTooManyRequests, "Too many login attempts", "Retry-After", "1"), okPrefs)
	_, err = f.client(fast).Login(t.Context(), usersvc.Credentials{Email: "a@example.com", Password: "x"})
	clienttest.WantError(t, err, client.ErrRateLimited, http.StatusTooManyRequests)
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestRetriesStopWithTheCallersContext(t *testing.T) {
	f := newFlaky(t, unavailable)
	c := f.client(client.WithRetry(client.RetryPolicy{Attempts: 10, BaseDelay: time.Second, MaxDelay: time.Second}))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Preferences(ctx, someID)
	clienttest.WantError(t, err, client.ErrUnavailable, http.StatusServiceUnavailable)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("took %v with a 200ms deadline", d)
	}
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1 (a wait past the deadline is not started)", n)
	}
}

func TestCircuitBreaker(t *testing.T) {
	f := newFlaky(t, unavailable)
	const cooldown = 200 * time.Millisecond
	c := f.client(client.WithRetry(client.RetryPolicy{Attempts: 1}), client.WithCircuitBreaker(3, cooldown))
	ctx := t.Context()

	for range 3 {
		_, err := c.User(ctx, someID)
		clienttest.WantError(t, err, client.ErrUnavailable, http.StatusServiceUnavailable)
	}
	// Open: calls fail fast, without a request.
	for range 5 {
		_, err := c.User(ctx, someID)
		if !errors.Is(err, client.ErrCircuitOpen) || !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("error = %v, want ErrCircuitOpen and ErrUnavailable", err)
		}
	}
	if n := f.requests.Load(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}

	// Half-open: one probe; it fails, so the circuit opens again.
	time.Sleep(cooldown + 20*time.Millisecond)
	_, err := c.User(ctx, someID)
	clienttest.WantError(t, err, client.ErrUnavailable, http.StatusServiceUnavailable)
	_, err = c.User(ctx, someID)
	if !errors.Is(err, client.ErrCircuitOpen) {
		t.Fatalf("after a failed probe: %v", err)
	}
	if n := f.requests.Load(); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}

	// The service recovers: the next probe closes the circuit.
	f.then(okPrefs)
	time.Sleep(cooldown + 20*time.Millisecond)
	for range 3 {
		if _, err := c.Preferences(ctx, someID); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.requests.Load(); n != 7 {
		t.Fatalf("%d requests, want 7", n)
	}
}

func TestCircuitBreakerHalfOpenLetsOneProbeThrough(t *testing.T) {
	release := make(chan struct{})
	f := newFlaky(t, unavailable)
	c := f.client(client.WithRetry(client.RetryPolicy{Attempts: 1}), client.WithCircuitBreaker(1, 50*time.Millisecond))
	ctx := t.Context()
	_, _ = c.User(ctx, someID)
	f.then(func(w http.ResponseWriter, r *http.Request) { <-release; okPrefs(w, r) })
	time.Sleep(70 * time.Millisecond)

	probe := make(chan error)
	go func() { _, err := c.Preferences(ctx, someID); probe <- err }()
	for f.requests.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	// While the probe is out, other calls fail fast.
	if _, err := c.Preferences(ctx, someID); !errors.Is(err, client.ErrCircuitOpen) {
		t.Errorf("during the probe: %v", err)
	}
	close(release)
	if err := <-probe; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Preferences(ctx, someID); err != nil {
		t.Fatalf("after the probe: %v", err)
	}
}

func TestClientErrorsDoNotOpenTheCircuit(t *testing.T) {
	f := newFlaky(t, fail(http.StatusNotFound, "User not found"))
	c := f.client(client.WithCircuitBreaker(2, time.Hour))
	for range 5 {
		_, err := c.User(t.Context(), someID)
		clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	}
	if n := f.requests.Load(); n != 5 {
		t.Errorf("%d requests, want 5: 404s are not retried and do not open the circuit", n)
	}
}

func TestCanceledCallsDoNotOpenTheCircuit(t *testing.T) {
	f := newFlaky(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c := f.client(client.WithCircuitBreaker(1, time.Hour))
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for f.requests.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := c.User(ctx, someID)
	if !errors.Is(err, context.Canceled) || errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("error = %v, want context.Canceled only", err)
	}
	f.then(okPrefs)
	if _, err := c.Preferences(t.Context(), someID); err != nil {
		t.Fatalf("after a canceled call: %v", err)
	}
}

func TestDeleteAfterALostAnswerIsDone(t *testing.T) {
	f := newFlaky(t, hangUp, fail(http.StatusNotFound, "Device not found"))
	if err := f.client(fast).DeleteDevice(t.Context(), someID, "phone"); err != nil {
		t.Fatalf("error = %v: the first attempt may have deleted it", err)
	}
	if n := f.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	f = newFlaky(t, fail(http.StatusNotFound, "Device not found"))
	err := f.client(fast).DeleteDevice(t.Context(), someID, "phone")
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
}

func TestErrorKinds(t *testing.T) {
	sentinels := []error{client.ErrInvalid, client.ErrUnauthorized, client.ErrForbidden, client.ErrNotFound, client.ErrConflict, client.ErrRateLimited, client.ErrUnavailable}
	for _, tc := range []struct {
		status int
		want   error
	}{
		{400, client.ErrInvalid}, {413, client.ErrInvalid}, {415, client.ErrInvalid},
		{401, client.ErrUnauthorized}, {403, client.ErrForbidden}, {404, client.ErrNotFound},
		{409, client.ErrConflict}, {429, client.ErrRateLimited},
		{500, client.ErrUnavailable}, {502, client.ErrUnavailable}, {503, client.ErrUnavailable},
		{418, nil},
	} {
		e := &client.Error{Status: tc.status}
		for _, s := range sentinels {
			if got := errors.Is(e, s); got != (s == tc.want) {
				t.Errorf("status %d: errors.Is(%v) = %v", tc.status, s, got)
			}
		}
	}
}

func TestAnswersOutsideTheEnvelope(t *testing.T) {
	// A proxy's HTML page still gives an *Error with the status.
	f := newFlaky(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway</html>"))
	})
	_, err := f.client(client.WithRetry(client.RetryPolicy{Attempts: 1})).User(t.Context(), someID)
	e := clienttest.WantError(t, err, client.ErrUnavailable, http.StatusBadGateway)
	if e.Message != "Bad Gateway" {
		t.Errorf("message = %q", e.Message)
	}
	// A success that is not the envelope is an error, not a zero value.
	f = newFlaky(t, status(http.StatusOK, "not json"))
	if _, err := f.client().User(t.Context(), someID); err == nil {
		t.Error("no error for a body that is not JSON")
	}
}

func TestHeaders(t *testing.T) {
	f := newFlaky(t, okPrefs)
	ctx := client.WithRequestID(t.Context(), "req-42")
	if _, err := f.client(client.WithServiceKey("svc-key")).Preferences(ctx, someID); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	tokenSource := client.WithTokenSource(func(ctx context.Context) (string, error) {
		calls.Add(1)
		return "tok-" + client.RequestID(ctx), nil
	})
	if _, err := f.client(tokenSource).Preferences(ctx, someID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(client.WithBearerToken("static")).Preferences(t.Context(), someID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(client.WithServiceKey("svc-key")).Login(ctx, usersvc.Credentials{Email: "a@example.com", Password: "x"}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	seen := f.seen
	f.mu.Unlock()
	if len(seen) != 4 {
		t.Fatalf("%d requests", len(seen))
	}
	for i, want := range []struct{ key, auth, reqID, path string }{
		{"svc-key", "", "req-42", "/api/v1/users/" + someID + "/preferences"},
		{"", "Bearer tok-req-42", "req-42", "/api/v1/users/" + someID + "/preferences"},
		{"", "Bearer static", "", "/api/v1/users/" + someID + "/preferences"},
		{"", "", "req-42", "/api/v1/users/login"}, // no credentials where none are needed
	} {
		r := seen[i]
		if r.Header.Get("X-Service-API-Key") != want.key || r.Header.Get("Authorization") != want.auth ||
			r.Header.Get("X-Request-ID") != want.reqID || r.URL.Path != want.path {
			t.Errorf("request %d: key %q, auth %q, request id %q, path %q; want %+v", i,
				r.Header.Get("X-Service-API-Key"), r.Header.Get("Authorization"), r.Header.Get("X-Request-ID"), r.URL.Path, want)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("token source called %d times", calls.Load())
	}

	// A token source's error stops the call before any request.
	failing := client.WithTokenSource(func(context.Context) (string, error) { return "", errors.New("no token") })
	before := f.requests.Load()
	if _, err := f.client(failing).User(t.Context(), someID); err == nil {
		t.Error("no error")
	}
	if f.requests.Load() != before {
		t.Error("a request was made without a token")
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		url  string
		opts []client.Option
	}{
		{"usersvc:8000", nil},
		{"ftp://usersvc", nil},
		{"http://usersvc", []client.Option{client.WithServiceKey("k"), client.WithBearerToken("t")}},
		{"http://usersvc", []client.Option{client.WithTimeout(-1)}},
		{"http://usersvc", []client.Option{client.WithRetry(client.RetryPolicy{})}},
		{"http://usersvc", []client.Option{client.WithPreferencesCache(0)}},
		{"http://usersvc", []client.Option{client.WithCircuitBreaker(3, 0)}},
	} {
		if _, err := client.New(tc.url, tc.opts...); err == nil {
			t.Errorf("New(%q, %d options) gave no error", tc.url, len(tc.opts))
		}
	}
	// A path prefix is kept.
	f := newFlaky(t, okPrefs)
	c, err := client.New(f.srv.URL+"/users-service/", client.WithCircuitBreaker(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Preferences(t.Context(), someID)
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.seen[0].URL.Path; p != "/users-service/api/v1/users/"+someID+"/preferences" {
		t.Errorf("path = %q", p)
	}
}

func TestDeadServiceFailsFast(t *testing.T) {
	// Nothing listens on the port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := client.New("http://"+addr, fast, client.WithCircuitBreaker(2, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.User(t.Context(), someID)
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("error = %v", err)
	}
	start := time.Now()
	_, err = c.User(t.Context(), someID)
	if !errors.Is(err, client.ErrCircuitOpen) {
		t.Fatalf("error = %v, want ErrCircuitOpen", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("failing fast took %v", d)
	}
}

func TestRateLimitsDoNotOpenTheCircuit(t *testing.T) {
	f := newFlaky(t, fail(http.StatusTooManyRequests, "Too many requests", "Retry-After", "30"))
	c := f.client(fast, client.WithCircuitBreaker(2, time.Hour))
	for range 4 {
		_, err := c.User(t.Context(), someID)
		clienttest.WantError(t, err, client.ErrRateLimited, http.StatusTooManyRequests)
	}
	if n := f.requests.Load(); n != 4 {
		t.Errorf("%d requests, want 4: a 429 is the caller's limit, not the service failing", n)
	}
}

func TestFailedPostsOpenTheCircuit(t *testing.T) {
	f := newFlaky(t, unavailable)
	c := f.client(fast, client.WithCircuitBreaker(2, time.Hour))
	for range 2 {
		_, err := c.BatchUsers(t.Context(), []string{someID})
		clienttest.WantError(t, err, client.ErrUnavailable, http.StatusServiceUnavailable)
	}
	// The next call, a GET, is refused without a request.
	if _, err := c.Preferences(t.Context(), someID); !errors.Is(err, client.ErrCircuitOpen) {
		t.Fatalf("error = %v, want ErrCircuitOpen", err)
	}
	if n := f.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestDeleteIsRetriedOn503(t *testing.T) {
	f := newFlaky(t, unavailable, status(http.StatusOK, `{"success":true,"data":null,"error":null,"message":"Device removed successfully","meta":null}`))
	if err := f.client(fast).DeleteDevice(t.Context(), someID, "phone"); err != nil {
		t.Fatal(err)
	}
	if n := f.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.seen {
		if r.Method != http.MethodDelete || r.URL.Path != "/api/v1/users/"+someID+"/push_tokens/phone" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
	}
}
