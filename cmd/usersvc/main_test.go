package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// env builds a getenv from name=value pairs.
func env(pairs ...string) func(string) string {
	m := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		env  []string
		name string
	}{
		{[]string{"PORT=eighty"}, "PORT"},
		{[]string{"PORT=70000"}, "PORT"},
		{[]string{"DATABASE_URL=mysql://x"}, "DATABASE_URL"},
		{[]string{"DATABASE_URL=sqlite:"}, "DATABASE_URL"},
		{[]string{"DB_NAME=app", "DB_PORT=x"}, "DB_PORT"},
		{[]string{"DB_NAME=app", "DB_SSLMODE=maybe"}, "DB_SSLMODE"},
		{[]string{"REDIS_URL=http://x"}, "REDIS_URL"},
		{[]string{"REDIS_HOST=r", "REDIS_PORT=-1"}, "REDIS_PORT"},
		{[]string{"REDIS_TIMEOUT=0s"}, "REDIS_TIMEOUT"},
		{[]string{"REDIS_TIMEOUT=1m"}, "REDIS_TIMEOUT"},
		{[]string{"REDIS_TIMEOUT=fast"}, "REDIS_TIMEOUT"},
		{[]string{"LOG_FLUSH_INTERVAL=11s"}, "LOG_FLUSH_INTERVAL"},
		{[]string{"LOG_FLUSH_INTERVAL=-1ms"}, "LOG_FLUSH_INTERVAL"},
		{[]string{"NEAR_CACHE=yes", "REDIS_URL=redis://r:6379/0"}, "NEAR_CACHE"},
		{[]string{"NEAR_CACHE=on"}, "NEAR_CACHE"},
		{[]string{"NEAR_CACHE_SIZE=0"}, "NEAR_CACHE_SIZE"},
		{[]string{"NEAR_CACHE_BOUND=5ms"}, "NEAR_CACHE_BOUND"},
		{[]string{"NEAR_CACHE_BOUND=soon"}, "NEAR_CACHE_BOUND"},
		{[]string{"NEAR_CACHE_TTL=1h"}, "NEAR_CACHE_TTL"},
		{[]string{"SECRET_KEY=short"}, "SECRET_KEY"},
		{[]string{"JWT_ALGORITHM=HS512"}, "JWT_ALGORITHM"},
		{[]string{"ACCESS_TOKEN_LIFETIME=15"}, "ACCESS_TOKEN_LIFETIME"},
		{[]string{"REFRESH_TOKEN_LIFETIME=-1h"}, "REFRESH_TOKEN_LIFETIME"},
		{[]string{"SERVICE_API_KEYS=nokey"}, "SERVICE_API_KEYS"},
		{[]string{"SERVICE_API_KEYS=a:short"}, "SERVICE_API_KEYS"},
		{[]string{"TRUSTED_PROXIES=10.0.0.0/99"}, "TRUSTED_PROXIES"},
		{[]string{"CORS_ALLOWED_ORIGINS=not a url"}, "CORS_ALLOWED_ORIGINS"},
		{[]string{"LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{[]string{"PASSWORD_RESET_TTL=30s"}, "PASSWORD_RESET_TTL"},
		{[]string{"PASSWORD_RESET_TTL=2d"}, "PASSWORD_RESET_TTL"},
		{[]string{"PASSWORD_RESET_URL=app.example.com/reset"}, "PASSWORD_RESET_URL"},
		{[]string{"PASSWORD_RESET_URL=https://u:p@app.example.com/reset"}, "PASSWORD_RESET_URL"},
		{[]string{"RATE_LIMIT_FORGOT_EMAIL=lots"}, "RATE_LIMIT_FORGOT_EMAIL"},
		{[]string{"REQUIRE_VERIFIED=push"}, "REQUIRE_VERIFIED"},
		{[]string{"EMAIL_CHANGE_URL=/confirm"}, "EMAIL_CHANGE_URL"},
		{[]string{"VERIFICATION_URL=ftp://app.example.com/verify"}, "VERIFICATION_URL"},
		{[]string{"RATE_LIMIT_FORGOT_ADDRESS=0/1h"}, "RATE_LIMIT_FORGOT_ADDRESS"},
		{[]string{"LOG_FORMAT=xml"}, "LOG_FORMAT"},
		{[]string{"DATABASE_URL=postgres://u@h/db"}, "SECRET_KEY"},
		{[]string{"DB_NAME=app"}, "SECRET_KEY"},
		{[]string{"DATABASE_URL=postgres://u@h/db", "JWT_ALGORITHM=EdDSA"}, "JWT_PRIVATE_KEY_FILE"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.env, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(t.Context(), []string{"migrate"}, env(append(c.env, "DATA_DIR="+dir)...), nil, io.Discard, &stderr)
			if err == nil {
				t.Fatal("started with a bad variable")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: "+c.name+": ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q does not name %s on one line", msg, c.name)
			}
		})
	}
}

func TestConfigSeedVariables(t *testing.T) {
	c, err := loadConfig(env("DB_NAME=users", "DB_HOST=db", "DB_USER=app", "DB_PASSWORD=p@ss", "DB_SSLMODE=disable", "SECRET_KEY="+strings.Repeat("k", 40),
		"REDIS_HOST=cache", "REDIS_PASSWORD=pw"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://app:p%40ss@db:5432/users?sslmode=disable" || !c.postgres() {
		t.Errorf("DatabaseURL = %q", c.DatabaseURL)
	}
	if c.RedisURL != "redis://:pw@cache:6379/0" {
		t.Errorf("RedisURL = %q", c.RedisURL)
	}
	c, err = loadConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "sqlite:"+filepath.Join("data", "usersvc.db") || c.Port != 8000 || c.AccessTokenLifetime != 15*time.Minute || c.RefreshTokenLifetime != 24*time.Hour {
		t.Errorf("defaults = %+v", c)
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"version"}, env(), nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "usersvc ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	err := run(t.Context(), []string{"frobnicate"}, env("DATA_DIR="+t.TempDir()), nil, io.Discard, io.Discard)
	var u usageError
	if !errors.As(err, &u) {
		t.Errorf("unknown command: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listenAddr waits for the "listening" log line and returns its address.
func listenAddr(t *testing.T, logs func() string, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				return line.Addr
			}
		}
		select {
		case err := <-done:
			t.Fatalf("server stopped: %v\n%s", err, logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("server did not start:\n%s", logs())
	return ""
}

func post(t *testing.T, url string, body any, headers ...string) (int, map[string]any) {
	t.Helper()
	return send(t, jsonRequest(t, "POST", url, body, headers...))
}

// jsonRequest makes a request with body as JSON (none when body is nil)
// and headers given as name, value pairs.
func jsonRequest(t *testing.T, method, url string, body any, headers ...string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// makeAdmin makes an admin in the store of dataDir with the create-admin
// command, the password on standard input.
func makeAdmin(t *testing.T, dataDir, email, name, password string) {
	t.Helper()
	err := run(t.Context(), []string{"create-admin", "--email", email, "--name", name}, env("DATA_DIR="+dataDir),
		strings.NewReader(password+"\n"), io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("create-admin: %v", err)
	}
}

// server is the service started by run() in this process.
type server struct {
	base    string // http://host:port
	addr    string // host:port
	port    string
	logs    *syncBuffer
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// startServer runs the service in process on 127.0.0.1 and a free port
// with the given NAME=value settings (which may override those two) until
// the test ends or stop is called.
func startServer(t *testing.T, settings ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	// Log lines are written at once, so that a test reads every line
	// logged before it looks (settings may ask for the batching default).
	getenv := env(append([]string{"PORT=0", "HOST=127.0.0.1", "LOG_FLUSH_INTERVAL=0"}, settings...)...)
	go func() { s.done <- run(ctx, nil, getenv, nil, io.Discard, s.logs) }()
	t.Cleanup(func() { s.stop(t) })
	s.addr = listenAddr(t, s.logs.String, s.done)
	s.port = s.addr[strings.LastIndex(s.addr, ":")+1:]
	s.base = "http://" + s.addr
	return s
}

// stop ends the server as SIGTERM would, and checks that it exits cleanly.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if s.stopped {
		return
	}
	s.stopped = true
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the server did not stop")
	}
}

func send(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestServeInProcess drives run() on port 0 with nothing configured but
// the data directory: the embedded defaults.
func TestServeInProcess(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "DATA_DIR="+dir)
	base, logs := srv.base, srv.logs

	status, body := post(t, base+"/api/v1/users/", map[string]any{"email": "e2e@example.com", "password": "E2e!password", "name": "End To End"})
	if status != 201 {
		t.Fatalf("register: %d %v", status, body)
	}
	status, body = post(t, base+"/api/v1/users/login", map[string]any{"email": "e2e@example.com", "password": "E2e!password"})
	if status != 200 {
		t.Fatalf("login: %d %v", status, body)
	}
	if fi, err := os.Stat(filepath.Join(dir, "secret_key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("generated secret: %v %v", fi, err)
	}
	if !strings.Contains(logs.String(), "SECRET_KEY is not set") {
		t.Error("no warning about the generated secret")
	}
	if strings.Contains(logs.String(), "E2e!password") {
		t.Error("the password is in the log")
	}
	// A read through the cache, failed logins up to the limit, a reused
	// refresh token, then the metrics.
	data := body["data"].(map[string]any)
	for range 2 {
		req, _ := http.NewRequest("GET", base+"/api/v1/users/"+data["user"].(map[string]any)["id"].(string), nil)
		req.Header.Set("Authorization", "Bearer "+data["access"].(string))
		if st, _ := send(t, req); st != 200 {
			t.Fatalf("get user: %d", st)
		}
	}
	for range 5 {
		post(t, base+"/api/v1/users/login", map[string]any{"email": "e2e@example.com", "password": "Wr0ng!password"})
	}
	b, _ := json.Marshal(map[string]any{"email": "E2E@example.com", "password": "E2e!password"})
	resp, err := http.Post(base+"/api/v1/users/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("sixth login after five failures: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Rotate, retry within the reuse interval (the same successor), rotate
	// the successor, then replay the first token: reuse.
	refresh := data["refresh"]
	_, first := post(t, base+"/api/v1/users/refresh", map[string]any{"refresh": refresh})
	if status, retry := post(t, base+"/api/v1/users/refresh", map[string]any{"refresh": refresh}); status != 200 ||
		retry["data"].(map[string]any)["refresh"] != first["data"].(map[string]any)["refresh"] {
		t.Fatalf("retry of a spent refresh token: %d %v", status, retry)
	}
	post(t, base+"/api/v1/users/refresh", map[string]any{"refresh": first["data"].(map[string]any)["refresh"]})
	if status, _ := post(t, base+"/api/v1/users/refresh", map[string]any{"refresh": refresh}); status != 401 {
		t.Errorf("replay after the successor was spent: %d, want 401", status)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := noFollow.Get(base + "/"); err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, family := range []string{
		`usersvc_http_requests_total{method="POST",route="POST /api/v1/users/login",status="401"} 5`,
		`usersvc_http_request_duration_seconds_bucket{`,
		`usersvc_http_requests_total{method="GET",route="GET /",status="302"} 1`,
		`usersvc_http_requests_in_flight `,
		`usersvc_password_hash_duration_seconds_count `,
		`usersvc_refresh_reuse_total 1`,
		`usersvc_security_events_total{event="login_failed"} 5`,
		`usersvc_cache_misses_total{kind="user"} 1`, // the first read: a login or a refresh leaves the user cached
		`usersvc_sessions_total{event="created"} 1`,
		`usersvc_sessions_total{event="retried"} 1`,
		`usersvc_sessions_total{event="refreshed"} 2`,
		`usersvc_sessions_total{event="reuse_revoked"} 1`,
		`usersvc_cache_hits_total{kind="user"} 5`, // the second read, and the four refreshes' checks of the user
		`usersvc_rate_limit_rejections_total{limit="login_email"} 1`,
		`usersvc_db_pool_open_connections `,
		`usersvc_build_info{`,
	} {
		if !strings.Contains(string(scrape), family) {
			t.Errorf("/metrics lacks %s", family)
		}
	}
	if strings.Contains(string(scrape), "e2e@example.com") {
		t.Error("/metrics holds an email")
	}
	port := srv.port
	if err := run(t.Context(), []string{"healthcheck"}, env("PORT="+port, "DATA_DIR="+dir), nil, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck on a running server: %v", err)
	}
	srv.stop(t)
	if err := run(t.Context(), []string{"healthcheck"}, env("PORT="+port, "DATA_DIR="+dir), nil, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck passed with no server")
	}
}

// TestCreateAdmin makes an admin from the command line.
func TestCreateAdmin(t *testing.T) {
	dir := t.TempDir()
	e := env("DATA_DIR=" + dir)
	var out bytes.Buffer
	err := run(t.Context(), []string{"create-admin", "--email", "Root@Example.com", "--name", "Root Admin"}, e, strings.NewReader("Adm1n!Passw0rd\n"), &out, io.Discard)
	if err != nil || !strings.Contains(out.String(), "root@example.com") {
		t.Fatalf("create-admin: %v %q", err, out.String())
	}
	err = run(t.Context(), []string{"create-admin", "--email", "root@example.com", "--name", "Again"}, e, strings.NewReader("Adm1n!Passw0rd\n"), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("taken email: %v", err)
	}
	err = run(t.Context(), []string{"create-admin", "--email", "weak@example.com", "--name", "Weak"}, e, strings.NewReader("weak\n"), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("weak password: %v", err)
	}
	if err := run(t.Context(), []string{"create-admin", "--email", "x@example.com"}, e, strings.NewReader("Adm1n!Passw0rd\n"), io.Discard, io.Discard); err == nil {
		t.Error("missing --name accepted")
	}
}

// buildBinary compiles the command once for the process tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "usersvc")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// process is the service running as its own process.
type process struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	base string
	done chan error
}

func startProcess(t *testing.T, bin string, environ ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin), logs: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), append([]string{"PORT=0", "HOST=127.0.0.1", "LOG_FLUSH_INTERVAL=0"}, environ...)...)
	p.cmd.Stderr = p.logs
	p.cmd.Stdout = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	p.base = "http://" + listenAddr(t, p.logs.String, p.done)
	return p
}

// TestSIGTERM checks the drain: readiness fails, a request in flight
// completes, the process exits 0, and what it wrote survives a restart.
func TestSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	p := startProcess(t, bin, "DATA_DIR="+dir, "DRAIN_DELAY=1s", "LOG_FORMAT=json")
	status, body := post(t, p.base+"/api/v1/users/", map[string]any{"email": "durable@example.com", "password": "Dur4ble!pass", "name": "Durable"})
	if status != 201 {
		t.Fatalf("register: %d %v", status, body)
	}
	// A login is in flight when the signal arrives.
	inflight := make(chan int, 1)
	go func() {
		st, _ := post(t, p.base+"/api/v1/users/login", map[string]any{"email": "durable@example.com", "password": "Dur4ble!pass"})
		inflight <- st
	}()
	time.Sleep(5 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// While draining, readiness fails and liveness holds.
	time.Sleep(300 * time.Millisecond)
	req, _ := http.NewRequest("GET", p.base+"/health/readiness", nil)
	if st, _ := send(t, req); st != http.StatusServiceUnavailable {
		t.Errorf("readiness while draining = %d", st)
	}
	req, _ = http.NewRequest("GET", p.base+"/health/liveness", nil)
	if st, _ := send(t, req); st != http.StatusOK {
		t.Errorf("liveness while draining = %d", st)
	}
	if st := <-inflight; st != http.StatusOK {
		t.Errorf("request in flight got %d", st)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not exit")
	}
	// The data survives a restart.
	p2 := startProcess(t, bin, "DATA_DIR="+dir)
	if st, body := post(t, p2.base+"/api/v1/users/login", map[string]any{"email": "durable@example.com", "password": "Dur4ble!pass"}); st != 200 {
		t.Fatalf("login after restart: %d %v", st, body)
	}
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p2.done; err != nil {
		t.Fatalf("second exit: %v", err)
	}
}

func TestConfigRedisTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 50 * time.Millisecond, "250ms": 250 * time.Millisecond, "5s": 5 * time.Second} {
		c, err := loadConfig(env("DATA_DIR="+t.TempDir(), "REDIS_TIMEOUT="+in))
		if err != nil {
			t.Fatalf("REDIS_TIMEOUT=%q: %v", in, err)
		}
		if c.RedisTimeout != want {
			t.Errorf("REDIS_TIMEOUT=%q gives %v, want %v", in, c.RedisTimeout, want)
		}
	}
}
