package ratelimit_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/breaker"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/redistest"
)

var _ account.Limiter = (*ratelimit.Limiter)(nil)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var rule = ratelimit.Rule{Name: "test", Max: 3, Window: time.Minute}

// limiters returns a process-local limiter and, when Redis is available,
// one counting in Redis, both on clk.
func limiters(t *testing.T, clk *clock) map[string]*ratelimit.Limiter {
	t.Helper()
	srv := redistest.Start(t)
	return map[string]*ratelimit.Limiter{
		"local": ratelimit.New(nil, rule, ratelimit.Options{Now: clk.Now}),
		"redis": ratelimit.New(srv.Client(t), rule, ratelimit.Options{Now: clk.Now}),
	}
}

func TestAllowSlidingWindow(t *testing.T) {
	clk := newClock()
	for name, l := range limiters(t, clk) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			key := "allow-" + name
			for i := range 3 {
				if ok, _ := l.Allow(ctx, key); !ok {
					t.Fatalf("event %d refused within the limit", i+1)
				}
				clk.Add(10 * time.Second)
			}
			// Events at 0s, 10s, 20s; now 30s.
			ok, ra := l.Allow(ctx, key)
			if ok {
				t.Fatal("fourth event within a minute allowed")
			}
			if ra != 30*time.Second {
				t.Fatalf("retryAfter = %v, want 30s (until the first event leaves the window)", ra)
			}
			if ok, _ := l.Allow(ctx, "other-"+name); !ok {
				t.Fatal("another key is limited too")
			}
			clk.Add(30 * time.Second)
			if ok, _ := l.Allow(ctx, key); !ok {
				t.Fatal("refused after the first event left the window")
			}
			if ok, ra := l.Allow(ctx, key); ok || ra != 10*time.Second {
				t.Fatalf("Allow = %v, %v; want false, 10s", ok, ra)
			}
		})
	}
}

func TestFailureCounting(t *testing.T) {
	clk := newClock()
	for name, l := range limiters(t, clk) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			key := "user-" + name + "@example.com"
			for range 2 {
				l.Hit(ctx, key)
				if blocked, _ := l.Blocked(ctx, key); blocked {
					t.Fatal("blocked below the limit")
				}
			}
			clk.Add(time.Second)
			l.Hit(ctx, key)
			blocked, ra := l.Blocked(ctx, key)
			if !blocked || ra != 59*time.Second {
				t.Fatalf("Blocked = %v, %v; want true, 59s", blocked, ra)
			}
			// More failures do not grow what is kept, nor move the end of
			// the block earlier.
			for range 10 {
				l.Hit(ctx, key)
			}
			if blocked, ra := l.Blocked(ctx, key); !blocked || ra <= 0 || ra > time.Minute {
				t.Fatalf("Blocked = %v, %v after more failures", blocked, ra)
			}
			l.Reset(ctx, key)
			if blocked, _ := l.Blocked(ctx, key); blocked {
				t.Fatal("blocked after Reset")
			}
		})
	}
}

func TestLocalKeysBounded(t *testing.T) {
	ctx := t.Context()
	l := ratelimit.New(nil, ratelimit.Rule{Name: "t", Max: 1, Window: time.Hour}, ratelimit.Options{MaxLocalKeys: 2})
	l.Hit(ctx, "a")
	l.Hit(ctx, "b")
	l.Hit(ctx, "c") // drops a, the least recently used
	if blocked, _ := l.Blocked(ctx, "a"); blocked {
		t.Fatal("a kept beyond the bound of two keys")
	}
	for _, k := range []string{"b", "c"} {
		if blocked, _ := l.Blocked(ctx, k); !blocked {
			t.Fatalf("%s dropped", k)
		}
	}
}

func TestKeysAreHashedInRedis(t *testing.T) {
	srv := redistest.Start(t)
	l := ratelimit.New(srv.Client(t), rule, ratelimit.Options{})
	l.Hit(t.Context(), "someone@example.com")
	keys, err := srv.Do(t, "KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	ks := keys.([]any)
	if len(ks) != 1 {
		t.Fatalf("keys = %v, want one", ks)
	}
	k := ks[0].(string)
	if !strings.HasPrefix(k, ratelimit.DefaultPrefix+"test:") || strings.Contains(k, "example") {
		t.Fatalf("key %q", k)
	}
}

// TestSharedAcrossReplicas: limiters of two processes on one Redis count
// together.
func TestSharedAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	clk := newClock()
	a := ratelimit.New(srv.Client(t), rule, ratelimit.Options{Now: clk.Now})
	b := ratelimit.New(srv.Client(t), rule, ratelimit.Options{Now: clk.Now})

	for i, l := range []*ratelimit.Limiter{a, b, a} {
		if ok, _ := l.Allow(ctx, "10.0.0.1"); !ok {
			t.Fatalf("event %d refused within the limit", i+1)
		}
		clk.Add(10 * time.Second)
	}
	// b counted one event itself: the refusal and its delay come from Redis.
	if ok, ra := b.Allow(ctx, "10.0.0.1"); ok || ra != 30*time.Second {
		t.Fatalf("replica b: Allow = %v, %v after three events on two replicas; want false, 30s", ok, ra)
	}

	a.Hit(ctx, "x@example.com")
	b.Hit(ctx, "x@example.com")
	if blocked, _ := a.Blocked(ctx, "x@example.com"); blocked {
		t.Fatal("blocked below the limit")
	}
	b.Hit(ctx, "x@example.com")
	if blocked, ra := a.Blocked(ctx, "x@example.com"); !blocked || ra <= 0 {
		t.Fatalf("replica a: Blocked = %v, %v after failures counted on both", blocked, ra)
	}
	a.Reset(ctx, "x@example.com")
	if blocked, _ := b.Blocked(ctx, "x@example.com"); blocked {
		t.Fatal("replica b still blocked after a Reset on a")
	}
}

// TestRedisDown: with Redis killed, the limiter counts in the process and
// still blocks; every call returns quickly; once Redis is back the counts
// are shared again.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	br := breaker.New(breaker.Options{Cooldown: 200 * time.Millisecond})
	a := ratelimit.New(srv.Client(t), rule, ratelimit.Options{Breaker: br})
	b := ratelimit.New(srv.Client(t), rule, ratelimit.Options{})

	const bound = 250 * time.Millisecond
	timed := func(what string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		if d := time.Since(start); d > bound {
			t.Errorf("%s took %v with Redis down", what, d)
		}
	}

	a.Hit(ctx, "k") // counted in Redis and in a
	for _, stop := range []func(){srv.Stop, srv.Pause} {
		stop()
		for i := range 2 {
			timed("Hit", func() { a.Hit(ctx, "fallback") })
			timed("Blocked", func() {
				if blocked, _ := a.Blocked(ctx, "fallback"); blocked {
					t.Errorf("blocked after %d failures", i+1)
				}
			})
		}
		timed("Hit", func() { a.Hit(ctx, "fallback") })
		timed("Blocked", func() {
			if blocked, ra := a.Blocked(ctx, "fallback"); !blocked || ra <= 0 {
				t.Errorf("Blocked = %v, %v with Redis down: the limit must hold per process", blocked, ra)
			}
		})
		for i := range 3 {
			timed("Allow", func() {
				if ok, _ := a.Allow(ctx, "allow-fallback"); !ok {
					t.Errorf("event %d refused within the limit", i+1)
				}
			})
		}
		timed("Allow", func() {
			if ok, ra := a.Allow(ctx, "allow-fallback"); ok || ra <= 0 {
				t.Errorf("Allow = %v, %v with Redis down: the limit must hold per process", ok, ra)
			}
		})
		a.Reset(ctx, "fallback")
		a.Reset(ctx, "allow-fallback")
		srv.Resume()
		srv.Restart()
	}

	// Back: b's events count for a again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.Reset(ctx, "shared")
		a.Reset(ctx, "shared")
		for range 3 {
			b.Hit(ctx, "shared")
		}
		if blocked, _ := a.Blocked(ctx, "shared"); blocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("counts not shared again within 5s of Redis coming back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDefaultLimits(t *testing.T) {
	l := ratelimit.DefaultLimits()
	for _, r := range []ratelimit.Rule{l.LoginEmail, l.LoginAddr, l.RegisterEmail, l.RegisterAddr, l.ForgotEmail, l.ForgotAddr, l.VerifyUser} {
		if r.Name == "" || r.Max < 1 || r.Window <= 0 {
			t.Errorf("rule %+v", r)
		}
	}
}
