package cache_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/cache"
)

var (
	_ cache.Cache = (*cache.Memory)(nil)
	_ cache.Cache = (*cache.Redis)(nil)
)

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

func testUser(id string) *usersvc.User {
	tok := "tok-" + id
	now := time.Date(2025, 1, 1, 0, 0, 0, 123000, time.UTC)
	return &usersvc.User{
		ID: id, Email: id + "@example.com", Name: "User " + id, PushToken: &tok,
		Preferences: usersvc.Preferences{Email: true, Push: false},
		IsActive:    true, CreatedAt: now, UpdatedAt: now,
	}
}

func testDevices(userID string, n int) []usersvc.Device {
	ds := make([]usersvc.Device, n)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range ds {
		did := fmt.Sprintf("dev-%d", i)
		ds[i] = usersvc.Device{ID: fmt.Sprintf("%s-%d", userID, i), UserID: userID, DeviceID: &did,
			Token: fmt.Sprintf("token-%d", i), DeviceType: usersvc.DeviceIOS, CreatedAt: now, UpdatedAt: now, LastSeenAt: now}
	}
	return ds
}

// load is what the account use cases do on a read: the cache, then on a
// miss the store and StoreUser.
func load(ctx context.Context, c cache.Cache, u *usersvc.User) (*usersvc.User, bool) {
	if got, ok := c.User(ctx, u.ID); ok {
		return got, true
	}
	c.StoreUser(ctx, u)
	return u, false
}

func TestMemoryReadThrough(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	c := cache.NewMemory(100, cache.Options{Now: clk.Now})
	u := testUser("a")
	if _, hit := load(ctx, c, u); hit {
		t.Fatal("hit on an empty cache")
	}
	got, ok := c.User(ctx, "a")
	if !ok {
		t.Fatal("miss after StoreUser")
	}
	if *got.PushToken != *u.PushToken || got.Email != u.Email || !got.Preferences.Equal(u.Preferences) {
		t.Fatalf("got %+v, want %+v", got, u)
	}
	c.ForgetUser(ctx, "a")
	if _, ok := c.User(ctx, "a"); ok {
		t.Fatal("hit after ForgetUser")
	}
}

func TestMemoryTTL(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	c := cache.NewMemory(100, cache.Options{Now: clk.Now})
	load(ctx, c, testUser("a"))
	c.Devices(ctx, "a")
	c.StoreDevices(ctx, "a", testDevices("a", 2))

	clk.Add(5*time.Minute - time.Second)
	if _, ok := c.Devices(ctx, "a"); !ok {
		t.Fatal("devices gone before their TTL (5 min)")
	}
	clk.Add(time.Second)
	if _, ok := c.Devices(ctx, "a"); ok {
		t.Fatal("devices kept past their TTL (5 min)")
	}
	if _, ok := c.User(ctx, "a"); !ok {
		t.Fatal("user gone before its TTL (10 min)")
	}
	clk.Add(5 * time.Minute)
	if _, ok := c.User(ctx, "a"); ok {
		t.Fatal("user kept past its TTL (10 min)")
	}
}

func TestMemoryBound(t *testing.T) {
	ctx := t.Context()
	c := cache.NewMemory(3, cache.Options{})
	for _, id := range []string{"a", "b", "c"} {
		load(ctx, c, testUser(id))
	}
	c.User(ctx, "a") // a is now the most recently used
	load(ctx, c, testUser("d"))
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	if _, ok := c.User(ctx, "b"); ok {
		t.Fatal("least recently used entry b not evicted")
	}
	for _, id := range []string{"a", "c", "d"} {
		if _, ok := c.User(ctx, id); !ok {
			t.Fatalf("entry %s evicted", id)
		}
	}
	// A device list weighs its length: two devices push out two users.
	c.Devices(ctx, "x")
	c.StoreDevices(ctx, "x", testDevices("x", 2))
	if c.Len() != 2 {
		t.Fatalf("Len = %d after storing two devices, want 2", c.Len())
	}
	// A list larger than the whole cache is not kept.
	c.Devices(ctx, "y")
	c.StoreDevices(ctx, "y", testDevices("y", 4))
	if _, ok := c.Devices(ctx, "y"); ok {
		t.Fatal("device list larger than the bound kept")
	}
}

func TestMemoryCopies(t *testing.T) {
	ctx := t.Context()
	c := cache.NewMemory(10, cache.Options{})
	u := testUser("a")
	load(ctx, c, u)
	*u.PushToken = "changed by the caller after storing"
	u.Name = "changed"

	got, _ := c.User(ctx, "a")
	if *got.PushToken != "tok-a" || got.Name != "User a" {
		t.Fatalf("cache shares memory with the stored value: %+v", got)
	}
	*got.PushToken = "changed by a reader"
	again, _ := c.User(ctx, "a")
	if *again.PushToken != "tok-a" {
		t.Fatal("cache shares memory with a reader")
	}

	ds := testDevices("a", 2)
	c.Devices(ctx, "a")
	c.StoreDevices(ctx, "a", ds)
	*ds[0].DeviceID = "changed"
	ds[1].Token = "changed"
	gotDs, _ := c.Devices(ctx, "a")
	if *gotDs[0].DeviceID != "dev-0" || gotDs[1].Token != "token-1" {
		t.Fatalf("cache shares device memory with the caller: %+v", gotDs)
	}
	*gotDs[0].DeviceID = "changed"
	gotDs, _ = c.Devices(ctx, "a")
	if *gotDs[0].DeviceID != "dev-0" {
		t.Fatal("cache shares device memory with a reader")
	}
}

func TestMemoryEmptyDevicesAreCached(t *testing.T) {
	ctx := t.Context()
	c := cache.NewMemory(10, cache.Options{})
	c.Devices(ctx, "a")
	c.StoreDevices(ctx, "a", nil)
	ds, ok := c.Devices(ctx, "a")
	if !ok || ds == nil || len(ds) != 0 {
		t.Fatalf("Devices = %v, %v; want an empty list, true", ds, ok)
	}
}

// TestLoadRacingAWrite: a reader misses and reads the old row; a writer
// changes the row and forgets the key; the reader's store must not land.
func TestMemoryLoadRacingAWrite(t *testing.T) {
	ctx := t.Context()
	c := cache.NewMemory(10, cache.Options{})
	old := testUser("a")
	if _, ok := c.User(ctx, "a"); ok {
		t.Fatal("hit on an empty cache")
	}
	c.ForgetUser(ctx, "a") // the writer, between the reader's load and store
	c.StoreUser(ctx, old)
	if _, ok := c.User(ctx, "a"); ok {
		t.Fatal("a value loaded before a write was stored after it")
	}
	// The next load, after the write, is stored.
	c.StoreUser(ctx, testUser("a"))
	if _, ok := c.User(ctx, "a"); !ok {
		t.Fatal("a value loaded after the write was not stored")
	}
}

func TestMemoryStoreWithoutMissIsIgnored(t *testing.T) {
	ctx := t.Context()
	c := cache.NewMemory(10, cache.Options{})
	c.StoreUser(ctx, testUser("a"))
	c.StoreDevices(ctx, "a", testDevices("a", 1))
	if c.Len() != 0 {
		t.Fatal("a store that followed no miss was kept")
	}
}

func TestMemoryLoadOutlivingItsWindowIsDropped(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	c := cache.NewMemory(10, cache.Options{Now: clk.Now, LoadWindow: time.Second})
	c.User(ctx, "a")
	clk.Add(2 * time.Second)
	c.StoreUser(ctx, testUser("a"))
	if _, ok := c.User(ctx, "a"); ok {
		t.Fatal("a load older than the window was stored")
	}
}

func TestMemoryHitMissCallbacks(t *testing.T) {
	ctx := t.Context()
	var mu sync.Mutex
	counts := map[string]int{}
	count := func(what string) func(string) {
		return func(kind string) { mu.Lock(); counts[what+" "+kind]++; mu.Unlock() }
	}
	c := cache.NewMemory(10, cache.Options{OnHit: count("hit"), OnMiss: count("miss")})
	load(ctx, c, testUser("a"))
	load(ctx, c, testUser("a"))
	c.Devices(ctx, "a")
	want := map[string]int{"miss user": 1, "hit user": 1, "miss devices": 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("counts = %v, want %v", counts, want)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	ctx := t.Context()
	c := cache.NewMemory(50, cache.Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				id := fmt.Sprint((g + i) % 80)
				switch i % 5 {
				case 0:
					c.ForgetUser(ctx, id)
				case 1:
					if _, ok := c.Devices(ctx, id); !ok {
						c.StoreDevices(ctx, id, testDevices(id, 2))
					}
				default:
					load(ctx, c, testUser(id))
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 50 {
		t.Fatalf("Len = %d, above the bound 50", c.Len())
	}
}
