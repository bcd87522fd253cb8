package cache

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/usersvc/usersvc"
)

// Memory is an in-process cache bounded in size, for a service that runs
// as a single replica. Values are copied in and out, so no caller can
// change what another one reads. Least recently used entries are evicted
// first. It is safe for concurrent use.
type Memory struct {
	opts Options
	max  int
	obs  *observations

	mu    sync.Mutex
	ll    *list.List // of *entry, most recently used at the front
	items map[string]*list.Element
	cost  int
}

type entry struct {
	key     string
	user    *usersvc.User
	devices []usersvc.Device
	ids     []string
	expires time.Time
	cost    int
}

// NewMemory returns an in-process cache holding at most maxEntries units:
// a user counts as one, a device list as its length (at least one).
// A maxEntries below 1 is taken as 1.
func NewMemory(maxEntries int, opts Options) *Memory {
	opts = opts.withDefaults()
	maxEntries = max(maxEntries, 1)
	return &Memory{
		opts:  opts,
		max:   maxEntries,
		obs:   newObservations(opts.LoadWindow, maxEntries),
		ll:    list.New(),
		items: make(map[string]*list.Element),
	}
}

// Len reports the number of entries held, expired ones included until
// they are looked up or evicted.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ll.Len()
}

func (m *Memory) get(key string) (*entry, bool) {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		m.removeLocked(el)
		return nil, false
	}
	m.ll.MoveToFront(el)
	return e, true
}

// put keeps e under key if the miss that led to it still stands. The
// observation is taken under the lock that forget holds, so a forget either
// poisons it first or removes e after.
func (m *Memory) put(key string, e *entry, now time.Time) {
	e.key = key
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.obs.take(key, now); !ok {
		return
	}
	if el, ok := m.items[key]; ok {
		m.removeLocked(el)
	}
	if e.cost > m.max {
		return
	}
	m.items[key] = m.ll.PushFront(e)
	m.cost += e.cost
	for m.cost > m.max {
		m.removeLocked(m.ll.Back())
	}
}

func (m *Memory) removeLocked(el *list.Element) {
	e := m.ll.Remove(el).(*entry)
	delete(m.items, e.key)
	m.cost -= e.cost
}

func (m *Memory) forget(keys []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.obs.poison(keys...)
	for _, k := range keys {
		if el, ok := m.items[k]; ok {
			m.removeLocked(el)
		}
	}
}

// clear drops every entry and every observation, so that no load that
// missed before it is stored after it.
func (m *Memory) clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.obs.clear()
	m.ll.Init()
	clear(m.items)
	m.cost = 0
}

func (m *Memory) miss(kind, key string) {
	m.obs.miss(key, observation{at: m.opts.Now()})
	m.opts.OnMiss(kind)
}

// User returns a copy of the cached user with id.
func (m *Memory) User(_ context.Context, id string) (*usersvc.User, bool) {
	key := userKey(id)
	if e, ok := m.get(key); ok {
		m.opts.OnHit(KindUser)
		return cloneUser(e.user), true
	}
	m.miss(KindUser, key)
	return nil, false
}

// StoreUser keeps a copy of u, loaded after a miss of User.
func (m *Memory) StoreUser(_ context.Context, u *usersvc.User) {
	if u == nil {
		return
	}
	key := userKey(u.ID)
	now := m.opts.Now()
	m.put(key, &entry{user: cloneUser(u), expires: now.Add(m.opts.UserTTL), cost: 1}, now)
}

// ForgetUser drops the users with ids.
func (m *Memory) ForgetUser(_ context.Context, ids ...string) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = userKey(id)
	}
	m.forget(keys)
}

// Devices returns a copy of the cached devices of the user with userID.
func (m *Memory) Devices(_ context.Context, userID string) ([]usersvc.Device, bool) {
	key := devicesKey(userID)
	if e, ok := m.get(key); ok {
		m.opts.OnHit(KindDevices)
		return cloneDevices(e.devices), true
	}
	m.miss(KindDevices, key)
	return nil, false
}

// StoreDevices keeps a copy of d as the devices of the user with userID,
// loaded after a miss of Devices.
func (m *Memory) StoreDevices(_ context.Context, userID string, d []usersvc.Device) {
	key := devicesKey(userID)
	now := m.opts.Now()
	if d == nil {
		d = []usersvc.Device{}
	}
	m.put(key, &entry{devices: cloneDevices(d), expires: now.Add(m.opts.DevicesTTL), cost: max(len(d), 1)}, now)
}

// ForgetDevices drops the devices of the users with userIDs.
func (m *Memory) ForgetDevices(_ context.Context, userIDs ...string) {
	keys := make([]string, len(userIDs))
	for i, id := range userIDs {
		keys[i] = devicesKey(id)
	}
	m.forget(keys)
}

// Forget drops the users with ids and their devices.
func (m *Memory) Forget(_ context.Context, kinds []string, ids ...string) {
	m.forget(keysOf(kinds, ids))
}

// Hold drops the users with ids and their devices before a write. In
// process, that is all a hold needs: a crash takes the cache with it, and
// the Forget after the write drops whatever was loaded meanwhile.
func (m *Memory) Hold(ctx context.Context, kinds []string, ids ...string) {
	m.Forget(ctx, kinds, ids...)
}

// Sessions returns a copy of the cached session ids of the user.
func (m *Memory) Sessions(_ context.Context, userID string) ([]string, bool) {
	key := sessionsKey(userID)
	if e, ok := m.get(key); ok {
		m.opts.OnHit(KindSessions)
		return append([]string{}, e.ids...), true
	}
	m.miss(KindSessions, key)
	return nil, false
}

// StoreSessions keeps a copy of ids as the live sessions of the user,
// loaded after a miss of Sessions.
func (m *Memory) StoreSessions(_ context.Context, userID string, ids []string) {
	key := sessionsKey(userID)
	now := m.opts.Now()
	m.put(key, &entry{ids: append([]string{}, ids...), expires: now.Add(m.opts.UserTTL), cost: 1}, now)
}
