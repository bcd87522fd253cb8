package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/ratelimit"
)

func TestConfigRateLimits(t *testing.T) {
	d := ratelimit.DefaultLimits()
	c, err := loadConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	if c.RateLimits != d {
		t.Errorf("defaults: %+v, want %+v", c.RateLimits, d)
	}
	c, err = loadConfig(env("RATE_LIMIT_LOGIN_EMAIL=3/1m", "RATE_LIMIT_LOGIN_ADDRESS= 100 / 15m ",
		"RATE_LIMIT_REGISTER_EMAIL=off", "RATE_LIMIT_REGISTER_ADDRESS=OFF", "RATE_LIMIT_FORGOT_EMAIL=2/30m", "RATE_LIMIT_FORGOT_ADDRESS=off",
		"RATE_LIMIT_VERIFY_USER=off"))
	if err != nil {
		t.Fatal(err)
	}
	want := ratelimit.Limits{
		LoginEmail:    ratelimit.Rule{Name: "login_email", Max: 3, Window: time.Minute},
		LoginAddr:     ratelimit.Rule{Name: "login_addr", Max: 100, Window: 15 * time.Minute},
		RegisterEmail: ratelimit.Rule{Name: "register_email"},
		RegisterAddr:  ratelimit.Rule{Name: "register_addr"},
		ForgotEmail:   ratelimit.Rule{Name: "forgot_email", Max: 2, Window: 30 * time.Minute},
		ForgotAddr:    ratelimit.Rule{Name: "forgot_addr"},
		VerifyUser:    ratelimit.Rule{Name: "verify_user"},
	}
	if c.RateLimits != want {
		t.Errorf("got %+v, want %+v", c.RateLimits, want)
	}

	dir := t.TempDir()
	for _, name := range []string{"RATE_LIMIT_LOGIN_EMAIL", "RATE_LIMIT_LOGIN_ADDRESS", "RATE_LIMIT_REGISTER_EMAIL", "RATE_LIMIT_REGISTER_ADDRESS",
		"RATE_LIMIT_FORGOT_EMAIL", "RATE_LIMIT_FORGOT_ADDRESS", "RATE_LIMIT_VERIFY_USER"} {
		for _, v := range []string{"5", "5/", "/15m", "five/15m", "0/15m", "-1/15m", "10001/1h", "5/0s", "5/500ms", "5/25h", "5/15", "5/15m/x", "none", "5 per 15m"} {
			t.Run(name+"="+v, func(t *testing.T) {
				err := run(t.Context(), []string{"migrate"}, env("DATA_DIR="+dir, name+"="+v), nil, io.Discard, io.Discard)
				if err == nil || !strings.HasPrefix(err.Error(), "config: "+name+": must be off or COUNT/WINDOW") || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %v does not name %s on one line", err, name)
				}
			})
		}
	}
}

// retryAfter returns the Retry-After of a 429, failing the test unless the
// answer is one with a value from 1 to window seconds.
func retryAfter(t *testing.T, what string, resp *http.Response, window time.Duration) int {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s: %d, want 429", what, resp.StatusCode)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > int(window.Seconds()) {
		t.Fatalf("%s: Retry-After %q, want 1 to %v in seconds", what, resp.Header.Get("Retry-After"), window)
	}
	return ra
}

func postRaw(t *testing.T, url string, body any) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(jsonRequest(t, "POST", url, body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestConfiguredRateLimits checks that a request meets the configured
// rule, not the default one, and that "off" lets everything through.
func TestConfiguredRateLimits(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir(),
		"RATE_LIMIT_REGISTER_ADDRESS=2/90s", "RATE_LIMIT_LOGIN_EMAIL=2/45s", "RATE_LIMIT_LOGIN_ADDRESS=off")
	reg := func(i int) *http.Response {
		return postRaw(t, srv.base+"/api/v1/users/", map[string]any{"email": fmt.Sprintf("rl%d@example.com", i), "password": "Rate!limit1", "name": "Rate Limit"})
	}
	for i := range 2 {
		if resp := reg(i); resp.StatusCode != http.StatusCreated {
			t.Fatalf("registration %d: %d", i+1, resp.StatusCode)
		}
	}
	retryAfter(t, "third registration from one address (2/90s)", reg(2), 90*time.Second)

	login := func() *http.Response {
		return postRaw(t, srv.base+"/api/v1/users/login", map[string]any{"email": "rl0@example.com", "password": "Wrong!pass1"})
	}
	for i := range 2 {
		if resp := login(); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed login %d: %d", i+1, resp.StatusCode)
		}
	}
	retryAfter(t, "login after two failures (2/45s)", login(), 45*time.Second)
	srv.stop(t)

	// Off: more registrations from one address and more failed logins from
	// one address than the defaults allow (10 an hour, 20 in 15 minutes).
	srv = startServer(t, "DATA_DIR="+t.TempDir(), "RATE_LIMIT_REGISTER_ADDRESS=off", "RATE_LIMIT_LOGIN_ADDRESS=off", "RATE_LIMIT_LOGIN_EMAIL=off")
	for i := range 12 {
		if resp := reg(i); resp.StatusCode != http.StatusCreated {
			t.Fatalf("registration %d with the limit off: %d", i+1, resp.StatusCode)
		}
	}
	for i := range 22 {
		if resp := login(); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed login %d with the limits off: %d", i+1, resp.StatusCode)
		}
	}
}
