package client

import (
	"sync"
	"time"

	"github.com/usersvc/usersvc"
)

// prefsCacheMax bounds the entries of the preferences cache; beyond it,
// expired entries are dropped, then arbitrary ones.
const prefsCacheMax = 10000

// prefsCache keeps preferences per user id for a ttl.
type prefsCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]prefsEntry
	// version counts the changes made through this client, so that a read
	// that started before a change does not store what it read after it.
	version uint64
}

type prefsEntry struct {
	prefs   usersvc.Preferences
	expires time.Time
}

func newPrefsCache(ttl time.Duration) *prefsCache {
	return &prefsCache{ttl: ttl, now: time.Now, entries: map[string]prefsEntry{}}
}

// get returns the cached preferences of id, and the version to hand to put
// on a miss.
func (c *prefsCache) get(id string) (usersvc.Preferences, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if ok && c.now().Before(e.expires) {
		return e.prefs, c.version, true
	}
	if ok {
		delete(c.entries, id)
	}
	return usersvc.Preferences{}, c.version, false
}

// put stores what a read that began at version got, unless a change was
// made through this client since.
func (c *prefsCache) put(id string, p usersvc.Preferences, version uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version {
		return
	}
	c.store(id, p)
}

// set stores the value a change returned.
func (c *prefsCache) set(id string, p usersvc.Preferences) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	c.store(id, p)
}

// forget drops id, after a change whose outcome is unknown.
func (c *prefsCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	delete(c.entries, id)
}

func (c *prefsCache) store(id string, p usersvc.Preferences) {
	now := c.now()
	if _, ok := c.entries[id]; !ok && len(c.entries) >= prefsCacheMax {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < prefsCacheMax {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[id] = prefsEntry{prefs: p, expires: now.Add(c.ttl)}
}
