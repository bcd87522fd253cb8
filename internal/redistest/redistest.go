// Package redistest starts throwaway redis-server processes for tests, so
// that tests can stop, pause and restart Redis in the middle of traffic.
//
// A test that needs Redis calls Start. When the redis-server binary is not
// installed the test is skipped, unless USERSVC_REQUIRE_INTEGRATION is set,
// in which case it fails.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Server is one redis-server process on a fixed local port. Stop and
// Restart keep the port and the data directory, so clients that hold the
// URL reach the restarted server.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// Start starts a redis-server on a free local port in a temporary
// directory and stops it when the test ends. The server saves no snapshots
// on its own; a test that wants one calls SAVE, and a Restart loads it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("USERSVC_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("redistest: redis-server not found and USERSVC_REQUIRE_INTEGRATION is set: %v", err)
		}
		t.Skipf("redistest: redis-server not found: %v", err)
	}
	// The client library logs every failed dial; the tests that stop Redis
	// check those failures themselves.
	logging.Disable()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: freePort(t)}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's redis:// URL, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		cmd := exec.Command(s.bin,
			"--port", strconv.Itoa(s.port),
			"--bind", "127.0.0.1",
			"--dir", s.dir,
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
			"--protected-mode", "no",
			"--loglevel", "warning",
			"--logfile", filepath.Join(s.dir, "redis.log"),
		)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			s.t.Fatalf("redistest: start redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if lastErr = waitReady(s.Addr(), exited); lastErr == nil {
			s.cmd, s.exited = cmd, exited
			return
		}
		_ = cmd.Process.Kill()
		<-exited
		// The port may still be held by the previous process's sockets.
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	s.t.Fatalf("redistest: redis-server on port %d did not come up: %v\n%s", s.port, lastErr, log)
}

func waitReady(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
			_, err = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n := 0
			if err == nil {
				n, err = c.Read(buf)
			}
			c.Close()
			if err == nil && string(buf[:n]) == "+PONG\r\n" {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no PONG from %s", addr)
}

// Stop kills the server at once, as a crash would: it saves nothing.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.cmd, s.exited, s.paused = nil, nil, false
}

// Restart stops the server if it runs and starts it again on the same port
// with the same data directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Pause freezes the server process (SIGSTOP): connections are accepted by
// the kernel but nothing answers, as when the network drops packets.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && !s.paused {
		_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGSTOP)
		s.paused = true
	}
}

// Resume undoes Pause.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.paused {
		_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGCONT)
		s.paused = false
	}
}

// ClientOptions are the client settings the service uses for Redis: short
// timeouts, no retries, so that a Redis that is down costs a request little.
func ClientOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           100 * time.Millisecond,
		WriteTimeout:          100 * time.Millisecond,
		PoolTimeout:           100 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
}

// Client returns a client of the server, with ClientOptions, closed when
// the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(ClientOptions(s.Addr()))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Do runs a command on a fresh connection with a generous timeout, for test
// setup and inspection that must not depend on the client under test.
func (s *Server) Do(t testing.TB, args ...any) (any, error) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DisableIdentity: true, Protocol: 2,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Result()
}
