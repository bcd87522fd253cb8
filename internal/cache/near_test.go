package cache_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/redistest"
)

const testBound = 100 * time.Millisecond

// nearReplica is the near cache of one service process.
type nearReplica struct {
	*cache.Near
	calls    *calls
	nearHits atomic.Int64

	mu      sync.Mutex
	flushes []string
}

func (r *nearReplica) flushed(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.flushes {
		if f == reason {
			n++
		}
	}
	return n
}

// newNearReplica makes a near cache whose Redis cache reaches Redis at
// redisAddr and whose subscription and heartbeats go to nearAddr (the same
// server, maybe through a proxy).
func newNearReplica(t *testing.T, redisAddr, nearAddr string) *nearReplica {
	t.Helper()
	r := &nearReplica{calls: &calls{}}
	rdb := redis.NewClient(redistest.ClientOptions(redisAddr))
	nrdb := redis.NewClient(redistest.ClientOptions(nearAddr))
	rc := cache.NewRedis(rdb, cache.RedisOptions{Prefix: "test:v1:", Announce: true, OnCall: r.calls.record})
	r.Near = cache.NewNear(rc, nrdb, cache.NearOptions{
		Bound: testBound,
		OnHit: func(string) { r.nearHits.Add(1) },
		OnFlush: func(reason string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.flushes = append(r.flushes, reason)
		},
	})
	t.Cleanup(func() {
		_ = r.Close()
		_ = rc.Close()
		_ = nrdb.Close()
		_ = rdb.Close()
	})
	waitServing(t, r, true, 5*time.Second)
	return r
}

// waitServing polls Serving until it answers want, for at most limit.
func waitServing(t *testing.T, n *nearReplica, want bool, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for n.Serving() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Serving did not become %v within %v", want, limit)
		}
		time.Sleep(time.Millisecond)
	}
}

// prime reads u through r until r answers it from process memory, storing
// it (as the store decorator does) after each miss. After an outage that
// takes as long as Redis's circuit breaker stays open.
func prime(t *testing.T, r *nearReplica, u *usersvc.User) {
	t.Helper()
	ctx := t.Context()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		before := r.nearHits.Load()
		got, ok := r.User(ctx, u.ID)
		if !ok {
			r.StoreUser(ctx, u)
			continue
		}
		if got.Name != u.Name {
			t.Fatalf("priming %s: cached name %q, want %q", u.ID, got.Name, u.Name)
		}
		if r.nearHits.Load() > before {
			return
		}
	}
	t.Fatalf("user %s never became a near hit; calls to Redis: %v", u.ID, r.calls.take())
}

// nearWrite is a write of a user's name through w, as the store decorator
// brackets it; it returns the user as written.
func nearWrite(ctx context.Context, w *nearReplica, id, name string) *usersvc.User {
	w.Hold(ctx, cache.AllKinds, id)
	u := testUser(id)
	u.Name = name
	w.Forget(ctx, cache.AllKinds, id)
	return u
}

func TestNearHitCostsNoRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := newNearReplica(t, srv.Addr(), srv.Addr())

	u := testUser("a")
	prime(t, a, u)
	a.calls.take()
	for range 10 {
		got, ok := a.User(ctx, "a")
		if !ok || got.Name != u.Name || *got.PushToken != *u.PushToken {
			t.Fatalf("User = %+v, %v; want %+v", got, ok, u)
		}
		got.Name = "changed by the caller"
	}
	if seen := a.calls.take(); len(seen) != 0 {
		t.Fatalf("near hits made calls to Redis: %v", seen)
	}
	if got, _ := a.User(ctx, "a"); got.Name != u.Name {
		t.Fatalf("a caller's change reached the cache: %q", got.Name)
	}

	// Devices and sessions go the same way.
	ds := testDevices("a", 2)
	a.Devices(ctx, "a")
	a.StoreDevices(ctx, "a", ds)
	a.Sessions(ctx, "a")
	a.StoreSessions(ctx, "a", []string{"s1"})
	for range 2 { // a Redis hit, then a near hit
		if got, ok := a.Devices(ctx, "a"); !ok || len(got) != 2 || got[1].Token != ds[1].Token {
			t.Fatalf("Devices = %v, %v", got, ok)
		}
		if got, ok := a.Sessions(ctx, "a"); !ok || !slices.Equal(got, []string{"s1"}) {
			t.Fatalf("Sessions = %v, %v", got, ok)
		}
	}
	a.calls.take()
	a.Devices(ctx, "a")
	a.Sessions(ctx, "a")
	if seen := a.calls.take(); len(seen) != 0 {
		t.Fatalf("near hits of devices and sessions made calls to Redis: %v", seen)
	}
}

// TestNearStalenessBound writes through one replica, round after round,
// while another holds the old value in process, and checks the bound
// exactly: the writer never reads the old value after its write, and no
// read on the other replica that started more than the bound after the
// write returned gives the old value.
func TestNearStalenessBound(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := newNearReplica(t, srv.Addr(), srv.Addr())
	b := newNearReplica(t, srv.Addr(), srv.Addr())

	const rounds = 200
	lags := make([]time.Duration, 0, rounds)
	cur := testUser("u")
	for round := range rounds {
		prime(t, b, cur)
		prime(t, a, cur)
		old := cur
		cur = nearWrite(ctx, a, "u", "round "+strconv.Itoa(round))
		done := time.Now()
		if got, ok := a.User(ctx, "u"); ok && got.Name == old.Name {
			t.Fatalf("round %d: the writer read its old value after the write", round)
		}
		lag := time.Duration(0) // start of the last read that gave the old value
		for {
			start := time.Now()
			got, ok := b.User(ctx, "u")
			if !ok || got.Name != old.Name {
				lags = append(lags, lag)
				break
			}
			lag = start.Sub(done)
			if late := start.Sub(done); late > testBound {
				t.Fatalf("round %d: a read that started %v after the write gave the old value (bound %v)", round, late, testBound)
			}
		}
		a.StoreUser(ctx, cur) // the writer's own load after its miss
	}
	slices.Sort(lags)
	p99 := lags[len(lags)*99/100]
	t.Logf("the last read on the other replica that gave the old value started, over %d writes: p50 %v, p99 %v, max %v after the write (bound %v)",
		rounds, lags[len(lags)/2], p99, lags[len(lags)-1], testBound)
	if p99 > testBound {
		t.Errorf("p99 of staleness %v exceeds the bound %v", p99, testBound)
	}
}

// TestNearFailsClosed stalls one replica's way to Redis and checks that it
// stops serving from process memory within the bound, serves no value
// older than the bound meanwhile, and serves again once Redis answers.
func TestNearFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readsToo bool // the Redis cache's reads go through the stalled proxy too
	}{
		{"channel stalled", false},
		{"redis stalled", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			ctx := t.Context()
			proxy := redistest.NewProxy(t, srv.Addr())
			a := newNearReplica(t, srv.Addr(), srv.Addr())
			readAddr := srv.Addr()
			if tc.readsToo {
				readAddr = proxy.Addr()
			}
			b := newNearReplica(t, readAddr, proxy.Addr())
			old := testUser("u")
			prime(t, b, old)

			proxy.Stall()
			stalled := time.Now()
			cur := nearWrite(ctx, a, "u", "written while b is stalled")
			done := time.Now()
			for time.Since(stalled) < 4*testBound {
				start := time.Now()
				got, ok := b.User(ctx, "u")
				if ok && got.Name == old.Name && start.Sub(done) > testBound {
					t.Fatalf("a read %v after the write gave the old value (bound %v)", start.Sub(done), testBound)
				}
				if start.Sub(stalled) > testBound {
					if b.Serving() {
						t.Fatalf("still serving from process memory %v into the stall (bound %v)", time.Since(stalled), testBound)
					}
					if ok && got.Name != cur.Name {
						t.Fatalf("%v into the stall: User = %q, want a miss or %q", time.Since(stalled), got.Name, cur.Name)
					}
				}
				time.Sleep(time.Millisecond)
			}

			proxy.Resume()
			waitServing(t, b, true, 5*time.Second)
			if b.flushed(cache.FlushLost) == 0 {
				t.Errorf("no flush for the lost subscription; flushes: %v", b.flushes)
			}
			got, ok := b.User(ctx, "u")
			if ok && got.Name != cur.Name {
				t.Fatalf("after the stall: %q, want %q", got.Name, cur.Name)
			}
			prime(t, b, cur)
		})
	}
}

// TestNearSubscriptionCut: a subscription that breaks and comes back
// drops every near entry, as what was published meanwhile is lost.
func TestNearSubscriptionCut(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	proxy := redistest.NewProxy(t, srv.Addr())
	b := newNearReplica(t, srv.Addr(), proxy.Addr())
	u := testUser("u")
	prime(t, b, u)
	subscribed := b.flushed(cache.FlushSubscribed)

	proxy.Cut()
	deadline := time.Now().Add(5 * time.Second)
	for b.flushed(cache.FlushSubscribed) == subscribed {
		if time.Now().After(deadline) {
			t.Fatal("the subscription did not come back")
		}
		time.Sleep(time.Millisecond)
	}
	waitServing(t, b, true, 5*time.Second)
	before := b.nearHits.Load()
	if _, ok := b.User(ctx, "u"); !ok {
		t.Fatal("miss in Redis")
	}
	if b.nearHits.Load() != before {
		t.Fatal("a near entry outlived the loss of the subscription")
	}
}

// TestNearGenerationChange: a change of the Redis cache's generation, by
// any replica, drops the near entries of every replica.
func TestNearGenerationChange(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := newNearReplica(t, srv.Addr(), srv.Addr())
	b := newNearReplica(t, srv.Addr(), srv.Addr())
	prime(t, b, testUser("u"))
	flushes := b.flushed(cache.FlushGeneration)

	if _, err := srv.Do(t, "DEL", "test:v1:gen"); err != nil {
		t.Fatal(err)
	}
	a.User(ctx, "x") // finds no generation
	a.User(ctx, "x") // makes a new one
	deadline := time.Now().Add(testBound)
	for b.flushed(cache.FlushGeneration) == flushes {
		if time.Now().After(deadline) {
			t.Fatalf("b was not told of the new generation within %v", testBound)
		}
		time.Sleep(time.Millisecond)
	}
	before := b.nearHits.Load()
	b.User(ctx, "u")
	if b.nearHits.Load() != before {
		t.Fatal("a near entry of the old generation was served")
	}
}
