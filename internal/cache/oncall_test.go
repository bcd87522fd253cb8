package cache_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/redistest"
)

// calls records what OnCall is told.
type calls struct {
	mu   sync.Mutex
	seen []string // "op ok" or "op failed"
}

func (c *calls) record(op string, d time.Duration, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := op + " ok"
	if failed {
		r = op + " failed"
	}
	if d < 0 {
		r += " negative"
	}
	c.seen = append(c.seen, r)
}

func (c *calls) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.seen
	c.seen = nil
	return s
}

func TestRedisOnCall(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	var obs calls
	c := replica(t, srv, cache.RedisOptions{OnCall: obs.record, Timeout: 100 * time.Millisecond})
	waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	obs.take()

	u := testUser("a")
	load(ctx, c, u) // a read that misses, then a store
	c.User(ctx, "a")
	c.Hold(ctx, cache.AllKinds, "a")
	c.Forget(ctx, cache.AllKinds, "a")
	c.Status(ctx)
	got := obs.take()
	for _, want := range []string{"read ok", "store ok", "hold ok", "forget ok", "ping ok"} {
		if !slices.Contains(got, want) {
			t.Errorf("OnCall was told %v; no %q", got, want)
		}
	}
	for _, g := range got {
		if g != "read ok" && g != "store ok" && g != "hold ok" && g != "forget ok" && g != "ping ok" && g != "repair ok" {
			t.Errorf("unexpected call %q", g)
		}
	}

	// Redis stops answering: the calls made until the breaker opens fail.
	srv.Pause()
	defer srv.Resume()
	for range 5 {
		c.User(ctx, "a")
	}
	if got := obs.take(); !slices.ContainsFunc(got, func(s string) bool { return s == "read failed" || s == "repair failed" }) {
		t.Errorf("with Redis paused OnCall was told %v; want a failed call", got)
	}
}
