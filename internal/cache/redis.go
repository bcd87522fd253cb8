package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/breaker"
)

// Statuses reported by (*Redis).Status.
const (
	StatusConnected    = "connected"
	StatusDisconnected = "disconnected"
)

// Defaults of RedisOptions.
const (
	DefaultPrefix  = "usersvc:v2:"
	DefaultTimeout = 50 * time.Millisecond
)

// RedisOptions configure a Redis cache. Zero values mean defaults.
type RedisOptions struct {
	Options
	// Prefix starts every key; it carries the version of the encoding.
	Prefix string
	// Timeout bounds each call to Redis.
	Timeout time.Duration
	// Breaker stops calls while Redis fails; share one among the users of
	// one Redis. Nil means a breaker of this cache alone, with defaults,
	// that logs when it opens and closes.
	Breaker *breaker.Breaker
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
	// Announce publishes every Hold and Forget (the keys) and every change
	// of the generation on the channel Prefix+"near", in the same call, for
	// the near caches of the replicas (see Near).
	Announce bool
	// OnCall, when set, is told of each call made to Redis: the operation
	// ("read", "store", "forget", "hold", "ping", "repair"), how long it
	// took, and whether it failed (no answer in time, a broken connection
	// or an error reply; a missing key is no failure).
	OnCall func(op string, d time.Duration, failed bool)
}

// Redis is a cache in Redis shared by the replicas of the service. It is
// best effort: when Redis is slow or down each call gives up after Timeout,
// the breaker stops calls for a while, and reads miss, so that the service
// answers from its store.
//
// # Layout
//
// Under Prefix (default "usersvc:v2:"):
//
//	gen            the generation: "<run_id of the Redis server>.<random>"
//	user:<id>      "v:<gen>:<JSON of the user>", a tombstone "t:<random>"
//	               or a hold "p:<random>"
//	devices:<id>   the same, of the devices
//
// A read is one MGET of gen and the key: a value is a hit only when it
// carries the current generation. Changing gen therefore invalidates every
// value at once, on every replica, with no extra round trip per read.
//
// # Writes and loads
//
// Hold, before a write, replaces the key by a hold that lives LoadWindow
// and refuses every store; Forget, after the write, replaces it by a
// tombstone that lives twice LoadWindow.
//
// A miss records in the process the generation it saw and the state of the
// key (absent, which tombstone, or a value of which generation). StoreUser
// runs a script that sets the value only if the generation and the state
// of the key are still those the miss saw, and the key is not held. So a load that read the store
// before a write, on whatever replica, cannot store after that write's
// Forget.
//
// # Outages
//
// A Forget that cannot be delivered (Redis down or not answering in time,
// the breaker open) leaves in Redis a value that may be stale once Redis
// answers again. So does an outage in general: another replica may have
// lost invalidations in it and reach Redis later than this one. Therefore
// a replica that sees Redis fail to answer changes the generation before
// it reads or stores again: its own reads miss until then, and it retries
// in the background every 200 ms, regardless of the breaker, until it
// succeeds (or until every value that could be stale has expired). Other
// replicas read gen with every value, so none reads an old value once the
// generation has changed; loads that began before the change cannot store.
// The cost is that an outage, even a blip, empties the cache for all.
//
// A Redis that restarts comes back empty or with an old snapshot of its
// data, which may hold values whose tombstones it has lost. The replicas
// count the connections their client dials; what is read on a connection
// dialed since the last check is not trusted until the replica has
// compared the server's run_id with the one recorded in gen, changing the
// generation when they differ. Every connection to a restarted server is a
// new one, so no replica reads a restored snapshot unchecked, even one
// that saw no error.
//
// What this design cannot prevent: a value changed during an outage by a
// replica that could not reach Redis may be read stale by a replica that
// can, until the first one reaches Redis again (within 200 ms of it being
// able to) or the value's TTL ends. That happens when one replica alone is
// cut off from Redis, or when a replica sent nothing to Redis during the
// whole outage and reads in the moments after Redis answers again.
type Redis struct {
	rdb        redis.UniversalClient
	opts       Options
	prefix     string
	genKey     string
	channel    string // where Holds, Forgets and generation changes are announced; empty: nowhere
	timeout    time.Duration
	tombTTL    time.Duration
	dirtyTTL   time.Duration
	retryEvery time.Duration
	br         *breaker.Breaker
	log        *slog.Logger
	obs        *observations
	onCall     func(op string, d time.Duration, failed bool)

	dials     atomic.Uint64 // connections the client has dialed
	verified  atomic.Uint64 // dials covered by the last check of the server
	dirty     atomic.Uint64 // Forgets that could not be delivered
	repaired  atomic.Uint64 // of those, the ones covered by a generation change
	lastDirty atomic.Int64  // unix nanoseconds of the last undelivered Forget
	genLost   atomic.Bool   // a read found no generation

	repairMu sync.Mutex

	loopMu      sync.Mutex
	loopRunning bool
	closed      bool
	done        chan struct{}
	wg          sync.WaitGroup
}

// NewRedis returns a cache in the Redis that client reaches. It adds a
// hook to client to count the connections it dials. Close stops its
// background work; the client stays the caller's to close.
//
// The client should have short dial, read and write timeouts and no
// retries, so that a Redis that is down costs little.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	o := opts.Options.withDefaults()
	c := &Redis{
		rdb:        client,
		opts:       o,
		prefix:     opts.Prefix,
		timeout:    opts.Timeout,
		tombTTL:    2 * o.LoadWindow,
		dirtyTTL:   o.maxTTL() + o.LoadWindow,
		retryEvery: 200 * time.Millisecond,
		br:         opts.Breaker,
		log:        opts.Logger,
		obs:        newObservations(o.LoadWindow, 100_000),
		onCall:     opts.OnCall,
		done:       make(chan struct{}),
	}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	c.genKey = c.prefix + "gen"
	if opts.Announce {
		c.channel = nearChannel(c.prefix)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.br == nil {
		c.br = breaker.New(breaker.Options{Now: o.Now, OnChange: func(open bool) {
			if open {
				c.log.Warn("redis unreachable: cache bypassed, reads go to the database")
			} else {
				c.log.Info("redis reachable again: cache in use")
			}
		}})
	}
	client.AddHook(dialCounter{&c.dials})
	return c
}

// dialCounter is a client hook that counts dialed connections.
type dialCounter struct{ n *atomic.Uint64 }

func (h dialCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.n.Add(1)
		return next(ctx, network, addr)
	}
}

func (dialCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (dialCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Close stops the background repair of the generation. It does not close
// the client.
func (c *Redis) Close() error {
	c.loopMu.Lock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	c.loopMu.Unlock()
	c.wg.Wait()
	return nil
}

// Status reports whether Redis answers: StatusConnected or
// StatusDisconnected. While the breaker is open it answers without asking
// Redis.
func (c *Redis) Status(ctx context.Context) string {
	if c.needsRepair() && !c.repair(ctx, repairStatus) {
		return StatusDisconnected
	}
	if !c.br.Allow() {
		return StatusDisconnected
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	err := c.rdb.Ping(ctx).Err()
	c.observe("ping", start, err)
	if err != nil {
		c.failed(ctx, err)
		return StatusDisconnected
	}
	c.br.Success()
	return StatusConnected
}

// User returns the cached user with id.
func (c *Redis) User(ctx context.Context, id string) (*usersvc.User, bool) {
	raw, ok := c.read(ctx, KindUser, id)
	if !ok {
		return nil, false
	}
	var v userJSON
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return nil, false
	}
	return v.user(), true
}

// StoreUser stores u, loaded after a miss of User, unless the user was
// forgotten since.
func (c *Redis) StoreUser(ctx context.Context, u *usersvc.User) {
	if u == nil {
		return
	}
	b, err := json.Marshal(newUserJSON(u))
	if err != nil {
		return
	}
	c.store(ctx, KindUser, u.ID, b, c.opts.UserTTL)
}

// ForgetUser drops the users with ids, on every replica.
func (c *Redis) ForgetUser(ctx context.Context, ids ...string) { c.forget(ctx, KindUser, ids) }

// Forget drops the users with ids and their devices, on every replica,
// leaving a tombstone for twice LoadWindow.
func (c *Redis) Forget(ctx context.Context, kinds []string, ids ...string) {
	c.forgetKeys(ctx, keysOf(kinds, ids), "t:", c.tombTTL)
}

// Hold drops the users with ids and their devices before a write, on every
// replica, leaving a hold marker that refuses every store of them until
// the Forget that follows the write replaces it, or until LoadWindow
// passes. A process that dies between its commit and that Forget thus
// leaves no old value behind: loads during the hold read the database and
// store nothing, and loads after it read what was committed.
func (c *Redis) Hold(ctx context.Context, kinds []string, ids ...string) {
	c.forgetKeys(ctx, keysOf(kinds, ids), "p:", c.opts.LoadWindow)
}

// Devices returns the cached devices of the user with userID.
func (c *Redis) Devices(ctx context.Context, userID string) ([]usersvc.Device, bool) {
	raw, ok := c.read(ctx, KindDevices, userID)
	if !ok {
		return nil, false
	}
	var v []deviceJSON
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return nil, false
	}
	ds := make([]usersvc.Device, len(v))
	for i := range v {
		ds[i] = v[i].device()
	}
	return ds, true
}

// StoreDevices stores d as the devices of the user with userID, loaded
// after a miss of Devices, unless they were forgotten since.
func (c *Redis) StoreDevices(ctx context.Context, userID string, d []usersvc.Device) {
	v := make([]deviceJSON, len(d))
	for i := range d {
		v[i] = newDeviceJSON(&d[i])
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	c.store(ctx, KindDevices, userID, b, c.opts.DevicesTTL)
}

// Sessions returns the cached session ids of the user.
func (c *Redis) Sessions(ctx context.Context, userID string) ([]string, bool) {
	raw, ok := c.read(ctx, KindSessions, userID)
	if !ok {
		return nil, false
	}
	var ids []string
	if err := json.Unmarshal([]byte(raw), &ids); err != nil {
		return nil, false
	}
	return ids, true
}

// StoreSessions stores ids as the live sessions of the user, loaded after
// a miss of Sessions, unless they were forgotten since.
func (c *Redis) StoreSessions(ctx context.Context, userID string, ids []string) {
	if ids == nil {
		ids = []string{}
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return
	}
	c.store(ctx, KindSessions, userID, b, c.opts.UserTTL)
}

// ForgetDevices drops the devices of the users with userIDs, on every
// replica.
func (c *Redis) ForgetDevices(ctx context.Context, userIDs ...string) {
	c.forget(ctx, KindDevices, userIDs)
}

// read returns the JSON cached under kind and id.
func (c *Redis) read(ctx context.Context, kind, id string) (string, bool) {
	okey := kind + ":" + id
	vals, ok := c.mget(ctx, c.prefix+okey)
	if !ok {
		c.opts.OnMiss(kind)
		return "", false
	}
	gen, _ := vals[0].(string)
	if gen == "" {
		c.genLost.Store(true)
		c.opts.OnMiss(kind)
		return "", false
	}
	raw, _ := vals[1].(string)
	if p := "v:" + gen + ":"; strings.HasPrefix(raw, p) {
		c.opts.OnHit(kind)
		return raw[len(p):], true
	}
	c.obs.miss(okey, observation{at: c.opts.Now(), gen: gen, token: stateToken(raw)})
	c.opts.OnMiss(kind)
	return "", false
}

// mget reads the generation and key in one round trip, on a server checked
// since the connection was dialed.
func (c *Redis) mget(ctx context.Context, key string) ([]any, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*c.timeout)
	defer cancel()
	for attempt := 0; attempt < 2; attempt++ {
		if !c.ready(ctx) || !c.br.Allow() {
			return nil, false
		}
		checked := c.verified.Load()
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		start := time.Now()
		vals, err := c.rdb.MGet(cctx, c.genKey, key).Result()
		c.observe("read", start, err)
		cancel()
		if err != nil {
			c.failed(ctx, err)
			return nil, false
		}
		c.br.Success()
		if c.dials.Load() <= checked {
			return vals, true
		}
		// A connection dialed since the last check may reach a server that
		// restarted: check it, then read again.
	}
	return nil, false
}

// storeScript sets a value if the generation and the state of the key are
// those a miss saw. Its token function matches stateToken.
var storeScript = redis.NewScript(`
local function token(raw)
  if not raw then return '' end
  local p = string.sub(raw, 1, 2)
  if p == 't:' then return raw end
  if p == 'v:' then
    local g = string.match(raw, '^v:([^:]*):')
    if g then return 'v:' .. g end
  end
  return '?'
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local cur = redis.call('GET', KEYS[2])
if cur and string.sub(cur, 1, 2) == 'p:' then return 0 end
if token(cur) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
`)

// stateToken names the state of a key as read: "" for absent, the
// tombstone itself, "v:<gen>" for a value, "?" for anything else.
func stateToken(raw string) string {
	switch {
	case raw == "":
		return ""
	case strings.HasPrefix(raw, "t:"):
		return raw
	case strings.HasPrefix(raw, "v:"):
		if i := strings.IndexByte(raw[2:], ':'); i >= 0 {
			return raw[:2+i]
		}
	}
	return "?"
}

func (c *Redis) store(ctx context.Context, kind, id string, payload []byte, ttl time.Duration) {
	okey := kind + ":" + id
	ob, ok := c.obs.take(okey, c.opts.Now())
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*c.timeout)
	defer cancel()
	if !c.ready(ctx) || !c.br.Allow() {
		return
	}
	val := "v:" + ob.gen + ":" + string(payload)
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	err := storeScript.Run(cctx, c.rdb, []string{c.genKey, c.prefix + okey}, ob.gen, ob.token, val, ttl.Milliseconds()).Err()
	c.observe("store", start, err)
	if err != nil {
		c.failed(ctx, err)
		return
	}
	c.br.Success()
}

// forgetScript replaces each key by the tombstone ARGV[1] for ARGV[2] ms
// and, when ARGV[3] names a channel, publishes ARGV[4] (the keys without
// prefix) on it. A reader of a key either reads it before the script, and
// is told of the change after, or reads the tombstone.
var forgetScript = redis.NewScript(`
for _, k in ipairs(KEYS) do redis.call('SET', k, ARGV[1], 'PX', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
`)

// genScript sets the generation to ARGV[1] and, when ARGV[2] names a
// channel, publishes that every key changed (nearFlushAll).
var genScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], '` + nearFlushAll + `') end
return 1
`)

// forget replaces the keys by a tombstone.
func (c *Redis) forget(ctx context.Context, kind string, ids []string) {
	okeys := make([]string, len(ids))
	for i, id := range ids {
		okeys[i] = kind + ":" + id
	}
	c.forgetKeys(ctx, okeys, "t:", c.tombTTL)
}

// forgetKeys replaces the keys (without prefix) by a marker that starts
// with kind ("t:" a tombstone, "p:" a hold) and lives ttl. It does so even
// when the caller's context is done: the write it goes with happens.
func (c *Redis) forgetKeys(ctx context.Context, okeys []string, kind string, ttl time.Duration) {
	if len(okeys) == 0 {
		return
	}
	c.obs.poison(okeys...)
	if !c.br.Allow() {
		c.markDirty()
		return
	}
	keys := make([]string, len(okeys))
	for i, k := range okeys {
		keys[i] = c.prefix + k
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	start := time.Now()
	err := forgetScript.Run(cctx, c.rdb, keys, kind+randomHex(), ttl.Milliseconds(), c.channel, strings.Join(okeys, " ")).Err()
	op := "forget"
	if kind == "p:" {
		op = "hold"
	}
	c.observe(op, start, err)
	if err != nil {
		c.failed(cctx, err)
		c.markDirty() // also when Redis answered with an error
		c.log.WarnContext(ctx, "cache invalidation not delivered; the cache generation will be changed", slog.String("key", okeys[0]), slog.Any("error", err))
		return
	}
	c.br.Success()
}

// observe tells OnCall of a call to Redis that began at start.
func (c *Redis) observe(op string, start time.Time, err error) {
	if c.onCall != nil {
		c.onCall(op, time.Since(start), err != nil && !errors.Is(err, redis.Nil))
	}
}

// failed reports err of a call to the breaker: a call that Redis did not
// answer counts as a failure, an error Redis answered as a success, and a
// call the caller gave up on as neither.
func (c *Redis) failed(ctx context.Context, err error) {
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		c.br.Success() // says nothing of Redis; releases a probe
	case isServerError(err):
		c.br.Success()
	default:
		c.br.Failure()
		// Redis did not answer: other replicas may have lost invalidations
		// too, and may reach Redis again after this one.
		c.markDirty()
	}
}

// isServerError reports whether err is an error reply of a Redis server
// that is up and serving.
func isServerError(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	return !strings.HasPrefix(msg, "LOADING") && !strings.HasPrefix(msg, "BUSY") && !strings.HasPrefix(msg, "MASTERDOWN")
}

func (c *Redis) markDirty() {
	c.lastDirty.Store(c.opts.Now().UnixNano())
	c.dirty.Add(1)
	c.startRepairLoop()
}

// dirtyPending reports whether an undelivered Forget still awaits a change
// of the generation. Once every value stored before it has expired, it no
// longer does.
func (c *Redis) dirtyPending() bool {
	d := c.dirty.Load()
	if d == c.repaired.Load() {
		return false
	}
	if c.opts.Now().Sub(time.Unix(0, c.lastDirty.Load())) > c.dirtyTTL {
		raise(&c.repaired, d)
		return false
	}
	return true
}

func (c *Redis) needsRepair() bool {
	return c.genLost.Load() || c.dials.Load() > c.verified.Load() || c.dirtyPending()
}

// ready reports whether the cache may be read and written: no Forget is
// undelivered and the server was checked since the last dial, or both are
// repaired now.
func (c *Redis) ready(ctx context.Context) bool {
	return !c.needsRepair() || c.repair(ctx, repairRequest)
}

// How repair is run.
const (
	repairRequest = iota // in a request: skip if another repair runs or the breaker is open
	repairStatus         // in Status: wait for another repair
	repairLoop           // in the background: regardless of the breaker
)

// repair checks the server and changes the generation when a Forget was
// not delivered, the generation is missing, or the server is not the one
// that made it.
func (c *Redis) repair(ctx context.Context, how int) bool {
	if how == repairStatus {
		c.repairMu.Lock()
	} else if !c.repairMu.TryLock() {
		return false
	}
	defer c.repairMu.Unlock()
	if !c.needsRepair() {
		return true
	}
	if how != repairLoop && !c.br.Allow() {
		return false
	}
	start := time.Now()
	fail := func(err error) bool {
		c.observe("repair", start, err)
		if how != repairLoop {
			c.failed(ctx, err)
		}
		return false
	}
	dials, dirty, lost := c.dials.Load(), c.dirty.Load(), c.genLost.Load()
	mustBump := c.dirtyPending() || lost

	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	info, err := c.rdb.Info(cctx, "server").Result()
	if err != nil && !isServerError(err) {
		return fail(err)
	}
	runID := infoField(info, "run_id")
	get := c.rdb.Get(cctx, c.genKey)
	gen := get.Val()
	if gerr := get.Err(); gerr != nil && !errors.Is(gerr, redis.Nil) {
		if !isServerError(gerr) {
			return fail(gerr)
		}
		c.observe("repair", start, gerr)
		c.br.Success()
		return false
	}
	if mustBump || gen == "" || runID == "" || genRunID(gen) != runID {
		if err := genScript.Run(cctx, c.rdb, []string{c.genKey}, runID+"."+randomHex(), c.channel).Err(); err != nil {
			return fail(err)
		}
		c.log.InfoContext(ctx, "cache generation changed", slog.Bool("undelivered_invalidations", mustBump && !lost), slog.Bool("server_changed", gen != "" && genRunID(gen) != runID))
	}
	c.observe("repair", start, nil)
	c.br.Success()
	raise(&c.verified, dials)
	raise(&c.repaired, dirty)
	if lost {
		c.genLost.CompareAndSwap(true, false)
	}
	return true
}

func (c *Redis) startRepairLoop() {
	c.loopMu.Lock()
	defer c.loopMu.Unlock()
	if c.loopRunning || c.closed {
		return
	}
	c.loopRunning = true
	c.wg.Add(1)
	go c.repairLoop()
}

// repairLoop retries the change of the generation until no undelivered
// Forget is left, so that other replicas stop reading values this one
// could not invalidate as soon as Redis answers it again.
func (c *Redis) repairLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.retryEvery)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			c.loopMu.Lock()
			c.loopRunning = false
			c.loopMu.Unlock()
			return
		case <-t.C:
		}
		if c.dirtyPending() {
			c.repair(context.Background(), repairLoop)
			continue
		}
		c.loopMu.Lock()
		if c.dirtyPending() {
			c.loopMu.Unlock()
			continue
		}
		c.loopRunning = false
		c.loopMu.Unlock()
		return
	}
}

// raise sets a to v if v is larger.
func raise(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

func genRunID(gen string) string {
	if i := strings.IndexByte(gen, '.'); i >= 0 {
		return gen[:i]
	}
	return ""
}

// infoField returns the value of name in the text of INFO.
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
