// Package cache keeps users and their devices close to the service, in
// front of the store: in process (Memory) for a single replica, or in Redis
// (Redis) shared by every replica, with or without a near cache in process
// in front of it (Near). Store is the decorator that puts either
// in front of the account store, so that the use cases never see it.
//
// # What is cached
//
// Only usersvc.User (a user's data and preferences, TTL 10 minutes), the
// user's []usersvc.Device (push tokens, TTL 5 minutes) and the ids of the
// user's live sessions (TTL 10 minutes). Password hashes
// and refresh-token state are not part of these types and are never
// cached. The Redis cache encodes values through its own JSON types that
// list every field it keeps, so a field added to the domain types is not
// cached until it is added here.
//
// # Reads, loads and writes
//
// Store reads through the cache: User (or Devices) first; on a miss it
// loads from the store and hands the result to StoreUser (or
// StoreDevices). Every write through Store is bracketed by Hold before it
// and Forget after it, of every user it may change.
//
// A load races with writes: a reader can miss, read the old row, and store
// it after a writer has changed the row and forgotten the key. To keep that
// old row out, a miss leaves an observation of the key's state in the
// process, a Forget poisons the observations of its keys, and StoreUser
// stores only when an unpoisoned observation of at most LoadWindow ago is
// there, taking it. Concurrent loads of one key in one process share the
// oldest observation, so a store is refused when anything may have
// changed since the first of them began; the service runs one load per key
// at a time (singleflight) anyway. A StoreUser that follows no miss is
// ignored: writes forget, they do not store.
//
// The Redis cache extends this across replicas; see Redis.
//
// # The near cache
//
// With Redis every read is a round trip (50-75 µs on a local Redis, against
// 0.2-0.5 µs from process memory). Near puts a Memory in front of a Redis
// cache and keeps it within a stated staleness bound (Bound, 100 ms by
// default) of every replica's writes:
//
//   - A write drops its entries in process before its Hold and after its
//     Forget, so the writing replica reads it at once.
//   - The Redis cache publishes the keys of every Hold and Forget on one
//     channel, in the same script that sets the marker, and "*" when it
//     changes the generation. Every replica subscribes and drops them.
//   - Each replica publishes a heartbeat with its own (monotonic) send
//     time every Bound/5 on a channel of its own, on the same subscription.
//     Redis delivers one connection's messages in the order it ran the
//     commands, so when a heartbeat sent at s comes back, every
//     invalidation Redis ran before s has been applied.
//   - An entry is served only while the newest heartbeat that came back
//     was sent at most Bound ago, and after the last flush. So a read that
//     starts Bound or more after a write's Forget ran in Redis (which is
//     before the write answers) sees that write, or a newer state: the
//     bound holds by construction, not on average.
//
// It fails closed: when Redis stalls, or the subscription stalls or
// breaks, no heartbeat comes back and within Bound the near cache stops
// serving, flushes, and reads go to Redis (or, if Redis is out too, to the
// database); a subscription that fails or stays silent for Bound is made
// again, and each (re)subscription flushes, as what was published while
// unsubscribed is lost. It serves again once a heartbeat sent after the
// flush comes back. A Redis hit is kept in process only if no invalidation
// or flush of its key came between the miss and the keep (the
// observations Memory keeps for loads); what a load read from the store
// is kept in process only once a later read finds it in Redis, where a
// hold refuses it. Entries live at most NearOptions.TTL, in a bounded LRU.
//
// Why a channel of our own rather than Redis's client-side caching
// (CLIENT TRACKING, go-redis's ClientSideCacheConfig): tracking sends an
// invalidation to the connection that read the key, which go-redis reads
// only when that connection is next used; measured, a read on one client
// right after a write on another was stale 1992 times in 2000 with go-redis
// (337 with rueidis), and an idle pooled connection can hold an
// invalidation for as long as it idles, so no bound can be stated. One
// ordered subscription carrying both the invalidations and our own
// heartbeats gives a bound that can be checked on every read with one
// clock reading, and tells when it cannot be kept. It also carries the
// holds (tracking would only see them as writes of keys) and costs one
// PUBLISH inside scripts that run anyway.
//
// What it cannot do better than the Redis cache under it: a write whose
// Forget cannot reach Redis (the writer cut off from it) is not announced;
// the other replicas learn of it when the writer changes the generation
// on reaching Redis again (see Redis).
package cache

import (
	"time"

	"github.com/usersvc/usersvc"
)

// Defaults of Options.
const (
	DefaultUserTTL    = 10 * time.Minute
	DefaultDevicesTTL = 5 * time.Minute
	// DefaultLoadWindow bounds the time between a miss and the store of
	// what was loaded after it. A load that takes longer is not stored.
	DefaultLoadWindow = 30 * time.Second
)

// Kinds of cached values, as passed to OnHit and OnMiss.
const (
	KindUser    = "user"
	KindDevices = "devices"
	// KindSessions is the ids of a user's live sessions, read by every
	// authenticated request.
	KindSessions = "sessions"
)

// Options are the settings both caches share. Zero values mean defaults.
type Options struct {
	// UserTTL is how long a user is kept.
	UserTTL time.Duration
	// DevicesTTL is how long a user's devices are kept.
	DevicesTTL time.Duration
	// LoadWindow is the longest time from a miss to the store of the value
	// loaded after it; later stores are dropped.
	LoadWindow time.Duration
	// OnHit and OnMiss, when set, are told of each hit and miss by kind
	// (KindUser, KindDevices), for example to count them.
	OnHit  func(kind string)
	OnMiss func(kind string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.UserTTL <= 0 {
		o.UserTTL = DefaultUserTTL
	}
	if o.DevicesTTL <= 0 {
		o.DevicesTTL = DefaultDevicesTTL
	}
	if o.LoadWindow <= 0 {
		o.LoadWindow = DefaultLoadWindow
	}
	if o.OnHit == nil {
		o.OnHit = func(string) {}
	}
	if o.OnMiss == nil {
		o.OnMiss = func(string) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func (o Options) maxTTL() time.Duration { return max(o.UserTTL, o.DevicesTTL) }

func userKey(id string) string    { return KindUser + ":" + id }
func devicesKey(id string) string { return KindDevices + ":" + id }

func sessionsKey(id string) string { return KindSessions + ":" + id }

// cloneUser returns a deep copy of u, so that neither the cache nor its
// callers can change what the other holds.
func cloneUser(u *usersvc.User) *usersvc.User {
	if u == nil {
		return nil
	}
	c := *u
	if u.PushToken != nil {
		t := *u.PushToken
		c.PushToken = &t
	}
	return &c
}

func cloneDevices(ds []usersvc.Device) []usersvc.Device {
	if ds == nil {
		return nil
	}
	c := make([]usersvc.Device, len(ds))
	copy(c, ds)
	for i := range c {
		if c[i].DeviceID != nil {
			d := *c[i].DeviceID
			c[i].DeviceID = &d
		}
	}
	return c
}

// AllKinds are every kind of entry a user has.
var AllKinds = []string{KindUser, KindDevices, KindSessions}

// keysOf returns the keys of the entries of kinds of each of ids.
func keysOf(kinds, ids []string) []string {
	keys := make([]string, 0, len(kinds)*len(ids))
	for _, id := range ids {
		for _, k := range kinds {
			keys = append(keys, k+":"+id)
		}
	}
	return keys
}
