package cache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/redistest"
)

// replica is the cache of one service process: its own client, breaker
// and cache over the shared Redis.
func replica(t *testing.T, srv *redistest.Server, opts cache.RedisOptions) *cache.Redis {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = "test:v1:"
	}
	c := cache.NewRedis(srv.Client(t), opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// connectedPair makes two replicas on srv with the default options and
// waits until both are connected.
func connectedPair(t *testing.T, srv *redistest.Server) (a, b *cache.Redis) {
	t.Helper()
	a = replica(t, srv, cache.RedisOptions{})
	b = replica(t, srv, cache.RedisOptions{})
	waitStatus(t, a, cache.StatusConnected, 5*time.Second)
	waitStatus(t, b, cache.StatusConnected, 5*time.Second)
	return a, b
}

// waitStatus polls Status until it answers want, for at most limit.
func waitStatus(t *testing.T, c *cache.Redis, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if c.Status(t.Context()) == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("Status did not become %q within %v", want, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisReadThrough(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	c := replica(t, srv, cache.RedisOptions{})
	waitStatus(t, c, cache.StatusConnected, 5*time.Second)

	u := testUser("a")
	u.IsAdmin = true
	if _, hit := load(ctx, c, u); hit {
		t.Fatal("hit on an empty cache")
	}
	got, ok := c.User(ctx, "a")
	if !ok {
		t.Fatal("miss after StoreUser")
	}
	if got.ID != u.ID || got.Email != u.Email || got.Name != u.Name || *got.PushToken != *u.PushToken ||
		!got.Preferences.Equal(u.Preferences) || got.IsAdmin != u.IsAdmin || got.IsActive != u.IsActive ||
		!got.CreatedAt.Equal(u.CreatedAt) || !got.UpdatedAt.Equal(u.UpdatedAt) {
		t.Fatalf("got %+v, want %+v", got, u)
	}
	c.ForgetUser(ctx, "a")
	if _, ok := c.User(ctx, "a"); ok {
		t.Fatal("hit after ForgetUser")
	}

	ds := testDevices("a", 3)
	ds[2].DeviceID = nil
	if _, ok := c.Devices(ctx, "a"); ok {
		t.Fatal("devices hit on an empty cache")
	}
	c.StoreDevices(ctx, "a", ds)
	gotDs, ok := c.Devices(ctx, "a")
	if !ok || len(gotDs) != 3 {
		t.Fatalf("Devices = %v, %v", gotDs, ok)
	}
	for i := range ds {
		g, w := gotDs[i], ds[i]
		if g.ID != w.ID || g.UserID != w.UserID || g.Token != w.Token || g.DeviceType != w.DeviceType ||
			(g.DeviceID == nil) != (w.DeviceID == nil) || (w.DeviceID != nil && *g.DeviceID != *w.DeviceID) ||
			!g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) || !g.LastSeenAt.Equal(w.LastSeenAt) {
			t.Fatalf("device %d = %+v, want %+v", i, g, w)
		}
	}
	c.ForgetDevices(ctx, "a")
	if _, ok := c.Devices(ctx, "a"); ok {
		t.Fatal("devices hit after ForgetDevices")
	}
	c.StoreDevices(ctx, "a", nil)
	if gotDs, ok := c.Devices(ctx, "a"); !ok || len(gotDs) != 0 {
		t.Fatalf("empty device list: Devices = %v, %v", gotDs, ok)
	}
}

func TestRedisTTLs(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	c := replica(t, srv, cache.RedisOptions{})
	waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	load(ctx, c, testUser("a"))
	c.Devices(ctx, "a")
	c.StoreDevices(ctx, "a", testDevices("a", 1))
	for key, want := range map[string]time.Duration{"test:v1:user:a": 10 * time.Minute, "test:v1:devices:a": 5 * time.Minute} {
		ms, err := srv.Do(t, "PTTL", key)
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Duration(ms.(int64)) * time.Millisecond; got > want || got < want-time.Minute {
			t.Errorf("TTL of %s = %v, want about %v", key, got, want)
		}
	}
}

// TestRedisEncoding checks what a cached user holds: the listed fields,
// nothing of passwords or tokens.
func TestRedisEncoding(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	c := replica(t, srv, cache.RedisOptions{})
	waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	load(ctx, c, testUser("a"))
	raw, err := srv.Do(t, "GET", "test:v1:user:a")
	if err != nil {
		t.Fatal(err)
	}
	s := raw.(string)
	if !strings.HasPrefix(s, "v:") {
		t.Fatalf("value %q lacks its generation", s)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(s[strings.Index(s[2:], ":")+3:]), &fields); err != nil {
		t.Fatalf("value %q: %v", s, err)
	}
	want := []string{"created_at", "email", "id", "is_active", "is_admin", "name", "pref_email", "pref_in_app", "pref_push", "pref_sms", "push_token", "updated_at"}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
		t.Fatalf("cached fields = %v, want %v", got, want)
	}
}

func TestRedisWriteSeenByOtherReplica(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a, b := connectedPair(t, srv)

	load(ctx, a, testUser("u"))
	if _, ok := b.User(ctx, "u"); !ok {
		t.Fatal("replica b misses what replica a stored")
	}
	b.ForgetUser(ctx, "u")
	if _, ok := a.User(ctx, "u"); ok {
		t.Fatal("replica a hits right after replica b forgot")
	}
}

// TestRedisLoadRacingAWrite: a load that read the store before a write on
// another replica must not be stored after that write's Forget.
func TestRedisLoadRacingAWrite(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a, b := connectedPair(t, srv)

	t.Run("forget between miss and store", func(t *testing.T) {
		a.User(ctx, "u") // miss; a reads old from the store
		b.ForgetUser(ctx, "u")
		a.StoreUser(ctx, testUser("u"))
		if got, ok := b.User(ctx, "u"); ok {
			t.Fatalf("stale load stored: %q", got.Name)
		}
	})
	t.Run("another replica stored the new value first", func(t *testing.T) {
		old, fresh := testUser("w"), testUser("w")
		fresh.Name = "fresh"
		b.ForgetUser(ctx, "w")
		a.User(ctx, "w") // miss, sees the tombstone; a reads old
		b.ForgetUser(ctx, "w")
		b.User(ctx, "w") // miss after the write
		b.StoreUser(ctx, fresh)
		a.StoreUser(ctx, old)
		got, ok := a.User(ctx, "w")
		if !ok || got.Name != "fresh" {
			t.Fatalf("User = %v, %v; want the fresh value", got, ok)
		}
	})
	t.Run("store without a miss", func(t *testing.T) {
		a.ForgetUser(ctx, "v")
		a.StoreUser(ctx, testUser("v"))
		if _, ok := b.User(ctx, "v"); ok {
			t.Fatal("a store that followed no miss was kept")
		}
	})
}

// TestRedisGenerationLost: values of a generation that is gone are not
// served.
func TestRedisGenerationLost(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := replica(t, srv, cache.RedisOptions{})
	waitStatus(t, a, cache.StatusConnected, 5*time.Second)
	load(ctx, a, testUser("u"))
	if _, ok := a.User(ctx, "u"); !ok {
		t.Fatal("miss after StoreUser")
	}
	if _, err := srv.Do(t, "DEL", "test:v1:gen"); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.User(ctx, "u"); ok {
		t.Fatal("value served without its generation")
	}
	waitStatus(t, a, cache.StatusConnected, 5*time.Second)
	if _, ok := a.User(ctx, "u"); ok {
		t.Fatal("value of the old generation served after a new one was made")
	}
	load(ctx, a, testUser("u"))
	if _, ok := a.User(ctx, "u"); !ok {
		t.Fatal("cache not used again after a new generation was made")
	}
}

// TestRedisIdleReplicaAfterBlackhole: Redis stops answering (packets are
// dropped, its data stays), a write on replica a cannot deliver its
// invalidation, Redis answers again. Replica b, which sent nothing to Redis
// in the meantime and saw no error, must not read the old value once a is
// connected again.
func TestRedisIdleReplicaAfterBlackhole(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a, b := connectedPair(t, srv)
	load(ctx, a, testUser("u"))
	if _, ok := b.User(ctx, "u"); !ok {
		t.Fatal("b misses what a stored")
	}

	srv.Pause()
	start := time.Now()
	a.ForgetUser(ctx, "u") // the write's invalidation is lost
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("ForgetUser took %v with Redis blackholed", d)
	}
	waitStatus(t, a, cache.StatusDisconnected, 2*time.Second)
	srv.Resume()
	took := waitStatus(t, a, cache.StatusConnected, 5*time.Second)
	t.Logf("a connected again %v after Redis answered", took)

	if got, ok := b.User(ctx, "u"); ok {
		t.Fatalf("b served the value a changed during the outage: %+v", got)
	}
	if got, ok := a.User(ctx, "u"); ok {
		t.Fatalf("a served the value it changed during the outage: %+v", got)
	}
	load(ctx, b, testUser("u"))
	if _, ok := a.User(ctx, "u"); !ok {
		t.Fatal("cache not used again after the outage")
	}
}

// TestRedisRestoredSnapshot: Redis crashes and comes back with a snapshot
// older than an invalidation it had received. No replica, not even one that
// saw no error, serves what the snapshot brings back.
func TestRedisRestoredSnapshot(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a, b := connectedPair(t, srv)
	load(ctx, a, testUser("u"))
	if _, err := srv.Do(t, "SAVE"); err != nil {
		t.Fatal(err)
	}
	a.ForgetUser(ctx, "u") // delivered, but not in the snapshot
	if _, ok := b.User(ctx, "u"); ok {
		t.Fatal("hit after ForgetUser")
	}

	srv.Restart() // a crash: the snapshot comes back, the tombstone does not
	if raw, err := srv.Do(t, "GET", "test:v1:user:u"); err != nil || !strings.HasPrefix(raw.(string), "v:") {
		t.Fatalf("the restarted server did not restore the old value: %v, %v", raw, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range []*cache.Redis{b, a} {
			if got, ok := c.User(ctx, "u"); ok {
				t.Fatalf("served a value restored from an old snapshot: %+v", got)
			}
		}
		if b.Status(ctx) == cache.StatusConnected {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitStatus(t, b, cache.StatusConnected, 5*time.Second)
	if got, ok := b.User(ctx, "u"); ok {
		t.Fatalf("served a value restored from an old snapshot: %+v", got)
	}
}

// store is the source of truth of TestRedisOutage: versions of users, and
// the newest version whose write has answered.
type store struct {
	mu       sync.Mutex
	version  map[string]int
	answered map[string]int
}

func (s *store) read(id string) *usersvc.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := testUser(id)
	u.Name = strconv.Itoa(s.version[id])
	return u
}

func (s *store) write(ctx context.Context, c *cache.Redis, id string) {
	s.mu.Lock()
	s.version[id]++
	v := s.version[id]
	s.mu.Unlock()
	c.ForgetUser(ctx, id)
	s.mu.Lock()
	s.answered[id] = max(s.answered[id], v)
	s.mu.Unlock()
}

func (s *store) minimum(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answered[id]
}

// TestRedisOutage drives reads and writes through two replicas while Redis
// is killed and restarted, then blackholed and let through again. Every
// call must return within a bound; no read may return a version older
// than a write that answered before the read began; Status must follow
// Redis; and the cache must be used again afterwards.
func TestRedisOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("drives traffic for several seconds")
	}
	srv := redistest.Start(t)
	ctx := t.Context()
	var hits atomic.Int64
	opts := cache.RedisOptions{Options: cache.Options{OnHit: func(string) { hits.Add(1) }}}
	replicas := []*cache.Redis{replica(t, srv, opts), replica(t, srv, opts)}
	for _, c := range replicas {
		waitStatus(t, c, cache.StatusConnected, 5*time.Second)
	}
	db := &store{version: map[string]int{}, answered: map[string]int{}}
	ids := []string{"u0", "u1", "u2", "u3"}

	const bound = 250 * time.Millisecond
	var (
		mu       sync.Mutex
		problems []string
		calls    atomic.Int64
		slowest  atomic.Int64
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	timed := func(what string, f func()) {
		start := time.Now()
		f()
		d := time.Since(start)
		calls.Add(1)
		for {
			cur := slowest.Load()
			if int64(d) <= cur || slowest.CompareAndSwap(cur, int64(d)) {
				break
			}
		}
		if d > bound {
			report("%s took %v", what, d)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		c := replicas[w%2]
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[(w+i)%len(ids)]
				if w < 2 && i%3 == 0 {
					timed("ForgetUser", func() { db.write(ctx, c, id) })
					continue
				}
				floor := db.minimum(id)
				timed("User", func() {
					if u, ok := c.User(ctx, id); ok {
						if v, _ := strconv.Atoi(u.Name); v < floor {
							report("replica %d read version %d of %s after version %d was written", w%2, v, id, floor)
						}
						return
					}
					u := db.read(id)
					c.StoreUser(ctx, u)
				})
				time.Sleep(time.Millisecond)
			}
		})
	}

	phase := func(name string, d time.Duration) {
		t.Logf("%s", name)
		time.Sleep(d)
	}
	phase("normal traffic", 300*time.Millisecond)

	srv.Stop()
	phase("redis killed", time.Second)
	for i, c := range replicas {
		timed("Status", func() {
			if s := c.Status(ctx); s != cache.StatusDisconnected {
				report("replica %d Status = %q with Redis killed", i, s)
			}
		})
	}
	srv.Restart()
	for _, c := range replicas {
		t.Logf("connected again after %v", waitStatus(t, c, cache.StatusConnected, 5*time.Second))
	}
	phase("redis restarted", 500*time.Millisecond)

	srv.Pause()
	phase("redis blackholed", time.Second)
	for i, c := range replicas {
		timed("Status", func() {
			if s := c.Status(ctx); s != cache.StatusDisconnected {
				report("replica %d Status = %q with Redis blackholed", i, s)
			}
		})
	}
	srv.Resume()
	for _, c := range replicas {
		t.Logf("connected again after %v", waitStatus(t, c, cache.StatusConnected, 5*time.Second))
	}
	before := hits.Load()
	phase("redis answering again", 700*time.Millisecond)
	close(stop)
	wg.Wait()

	t.Logf("%d calls, slowest %v", calls.Load(), time.Duration(slowest.Load()))
	for _, p := range problems {
		t.Error(p)
	}
	if hits.Load() == before {
		t.Error("no cache hit after Redis came back: the cache is not used again")
	}
}
