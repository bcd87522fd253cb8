package ratelimit_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/breaker"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/redistest"
)

func TestOnCall(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	var (
		mu   sync.Mutex
		seen []string
	)
	record := func(op string, d time.Duration, failed bool) {
		mu.Lock()
		defer mu.Unlock()
		r := op + " ok"
		if failed {
			r = op + " failed"
		}
		seen = append(seen, r)
	}
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		s := seen
		seen = nil
		return s
	}
	br := breaker.New(breaker.Options{Threshold: 2, Cooldown: time.Minute})
	l := ratelimit.New(srv.Client(t), rule, ratelimit.Options{OnCall: record, Breaker: br, Timeout: 100 * time.Millisecond})
	l.Allow(ctx, "k")
	l.Hit(ctx, "k")
	l.Blocked(ctx, "k")
	l.Reset(ctx, "k")
	if got, want := take(), []string{"allow ok", "hit ok", "check ok", "reset ok"}; !slices.Equal(got, want) {
		t.Errorf("OnCall was told %v, want %v", got, want)
	}

	// Redis stops answering: two calls fail, then the breaker is open and
	// no call is made.
	srv.Pause()
	defer srv.Resume()
	for range 4 {
		l.Hit(ctx, "k")
	}
	if got, want := take(), []string{"hit failed", "hit failed"}; !slices.Equal(got, want) {
		t.Errorf("with Redis paused OnCall was told %v, want %v", got, want)
	}
}
