// Package cache keeps users and their devices close to the service, in
// front of the store: in process (Memory) for a single replica, or in Redis
// (Redis) shared by every replica. Store is the decorator that puts either
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
// # Why no client-side caching
//
// Redis can track the keys a client has read and push invalidations, so
// that hot reads are served from process memory (go-redis's
// ClientSideCacheConfig, rueidis's DoCache). Measured on a local Redis, a
// hit costs about 0.2-0.5 µs that way against 50-75 µs for a round trip.
// But the invalidation reaches the other clients after the write has
// answered: when one client wrote a key and another read it at once, the
// read was stale 1992 times in 2000 with go-redis and 337 times in 2000
// with rueidis. A preference written through one replica must be read
// through another at once, so every read here is a round trip.
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
