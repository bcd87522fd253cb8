package cache

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usersvc/usersvc"
)

// Defaults of NearOptions.
const (
	DefaultNearSize  = 10_000
	DefaultNearTTL   = time.Minute
	DefaultNearBound = 100 * time.Millisecond
)

// Reasons of a flush of the near cache, as passed to NearOptions.OnFlush.
const (
	// FlushSubscribed: the invalidation channel was (re)subscribed, and
	// what was published while it was not is lost.
	FlushSubscribed = "subscribed"
	// FlushSilence: no heartbeat came back within the bound.
	FlushSilence = "silence"
	// FlushLost: the subscription failed or stayed silent for the bound.
	FlushLost = "lost"
	// FlushGeneration: a replica changed the generation of the Redis cache.
	FlushGeneration = "generation"
)

// nearFlushAll is the message that drops every near entry.
const nearFlushAll = "*"

// nearChannel is the channel on which a Redis cache with Announce set
// publishes the keys it holds and forgets.
func nearChannel(prefix string) string { return prefix + "near" }

// NearOptions configure a near cache. Zero values mean defaults.
type NearOptions struct {
	// Size bounds the entries kept, counted as Memory counts them.
	Size int
	// TTL is how long an entry is kept at most.
	TTL time.Duration
	// Bound is the staleness bound: no entry is served once an
	// invalidation published this long ago may not have been applied.
	Bound time.Duration
	// Logger receives the changes of state; nil discards them.
	Logger *slog.Logger
	// OnHit and OnMiss, when set, are told of each lookup of the near
	// cache while it serves, by kind. A miss goes on to Redis.
	OnHit  func(kind string)
	OnMiss func(kind string)
	// OnInvalidate, when set, is told how many keys a message of another
	// process's write dropped (present or not).
	OnInvalidate func(keys int)
	// OnFlush, when set, is told of each flush, by reason (FlushSubscribed,
	// FlushSilence, FlushLost, FlushGeneration).
	OnFlush func(reason string)
	// OnBypass, when set, is told whenever the near cache stops (true) or
	// starts again (false) serving; it starts stopped.
	OnBypass func(bypassed bool)
	// OnHeartbeat, when set, is told of each heartbeat that came back: the
	// time from its publication to its arrival.
	OnHeartbeat func(d time.Duration)
}

// Near is a near cache: an in-process layer (a Memory) in front of a Redis
// cache, so that a hot read costs no round trip, kept within a stated
// staleness bound of the writes of every replica. See the package
// documentation.
type Near struct {
	r     *Redis
	mem   *Memory
	rdb   redis.UniversalClient
	inval string // the channel of invalidations (nearChannel)
	beat  string // this process's heartbeat channel
	bound time.Duration
	every time.Duration // heartbeat period
	log   *slog.Logger
	opts  NearOptions

	base    time.Time    // the origin of the monotonic times below
	heard   atomic.Int64 // send time of the newest own heartbeat received in order
	flushed atomic.Int64 // time of the last flush
	bypass  atomic.Bool  // the state last reported to OnBypass

	publishing atomic.Bool // a heartbeat is being published

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewNear returns a near cache in front of r, which must have been made
// with RedisOptions.Announce. client reaches the same Redis; the near
// cache subscribes and publishes its heartbeats through it (better a
// client of its own, without tracing: a heartbeat goes every Bound/5).
// It serves nothing until its first heartbeat came back. Close stops it;
// r and client stay the caller's to close.
func NewNear(r *Redis, client redis.UniversalClient, opts NearOptions) *Near {
	if opts.Size <= 0 {
		opts.Size = DefaultNearSize
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultNearTTL
	}
	if opts.Bound <= 0 {
		opts.Bound = DefaultNearBound
	}
	if opts.OnInvalidate == nil {
		opts.OnInvalidate = func(int) {}
	}
	if opts.OnFlush == nil {
		opts.OnFlush = func(string) {}
	}
	if opts.OnBypass == nil {
		opts.OnBypass = func(bool) {}
	}
	if opts.OnHeartbeat == nil {
		opts.OnHeartbeat = func(time.Duration) {}
	}
	n := &Near{
		r: r,
		mem: NewMemory(opts.Size, Options{
			UserTTL: opts.TTL, DevicesTTL: opts.TTL,
			LoadWindow: max(time.Second, 4*r.timeout),
			OnHit:      opts.OnHit, OnMiss: opts.OnMiss,
		}),
		rdb:   client,
		inval: nearChannel(r.prefix),
		beat:  nearChannel(r.prefix) + ":beat:" + randomHex(),
		bound: opts.Bound,
		every: opts.Bound / 5,
		log:   opts.Logger,
		opts:  opts,
		base:  time.Now(),
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.heard.Store(-1)
	n.bypass.Store(true)
	opts.OnBypass(true)
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(2)
	go n.listen(ctx)
	go n.heartbeats(ctx)
	return n
}

// Close stops the subscription and the heartbeats.
func (n *Near) Close() error {
	n.cancel()
	n.wg.Wait()
	return nil
}

// Status reports whether Redis answers, as Redis.Status does.
func (n *Near) Status(ctx context.Context) string { return n.r.Status(ctx) }

// Serving reports whether near entries are served now: the newest
// heartbeat received was sent, after the last flush, at most Bound ago.
func (n *Near) Serving() bool {
	heard := n.heard.Load()
	return heard >= n.flushed.Load() && n.now()-heard <= int64(n.bound)
}

// now is the time since base, on the monotonic clock.
func (n *Near) now() int64 { return int64(time.Since(n.base)) }

// nearRead looks key up in process while serving, else in Redis; a Redis
// hit is kept in process unless an invalidation or a flush of the key came
// since the miss (Memory's observations).
func nearRead[T any](ctx context.Context, n *Near, id string,
	near, far func(context.Context, string) (T, bool), keep func(context.Context, string, T)) (T, bool) {
	if !n.Serving() {
		return far(ctx, id)
	}
	if v, ok := near(ctx, id); ok {
		return v, true
	}
	v, ok := far(ctx, id)
	if ok && n.Serving() {
		keep(ctx, id, v)
	}
	return v, ok
}

// User returns the cached user with id.
func (n *Near) User(ctx context.Context, id string) (*usersvc.User, bool) {
	return nearRead(ctx, n, id, n.mem.User, n.r.User, func(ctx context.Context, _ string, u *usersvc.User) { n.mem.StoreUser(ctx, u) })
}

// Devices returns the cached devices of the user with userID.
func (n *Near) Devices(ctx context.Context, userID string) ([]usersvc.Device, bool) {
	return nearRead(ctx, n, userID, n.mem.Devices, n.r.Devices, n.mem.StoreDevices)
}

// Sessions returns the cached session ids of the user.
func (n *Near) Sessions(ctx context.Context, userID string) ([]string, bool) {
	return nearRead(ctx, n, userID, n.mem.Sessions, n.r.Sessions, n.mem.StoreSessions)
}

// StoreUser stores u in Redis. What a load read from the store is kept in
// process only once a read finds it in Redis, where a hold refuses it.
func (n *Near) StoreUser(ctx context.Context, u *usersvc.User) { n.r.StoreUser(ctx, u) }

// StoreDevices stores d in Redis (see StoreUser).
func (n *Near) StoreDevices(ctx context.Context, userID string, d []usersvc.Device) {
	n.r.StoreDevices(ctx, userID, d)
}

// StoreSessions stores ids in Redis (see StoreUser).
func (n *Near) StoreSessions(ctx context.Context, userID string, ids []string) {
	n.r.StoreSessions(ctx, userID, ids)
}

// Hold drops the entries in process, then holds them in Redis, which
// tells every replica.
func (n *Near) Hold(ctx context.Context, kinds []string, ids ...string) {
	n.mem.Forget(ctx, kinds, ids...)
	n.r.Hold(ctx, kinds, ids...)
}

// Forget drops the entries in process, then forgets them in Redis, which
// tells every replica.
func (n *Near) Forget(ctx context.Context, kinds []string, ids ...string) {
	n.mem.Forget(ctx, kinds, ids...)
	n.r.Forget(ctx, kinds, ids...)
}

// flush drops every entry and stops serving until a heartbeat sent after
// it comes back.
func (n *Near) flush(reason string) {
	n.flushed.Store(n.now())
	n.mem.clear()
	n.opts.OnFlush(reason)
}

// listen subscribes to the invalidations and the heartbeats and applies
// them in the order Redis published them, subscribing again whenever the
// subscription fails or stays silent for the bound.
func (n *Near) listen(ctx context.Context) {
	defer n.wg.Done()
	for ctx.Err() == nil {
		err := n.listenOnce(ctx)
		// Whatever was published from now until the next subscription is
		// lost.
		n.flush(FlushLost)
		if ctx.Err() == nil {
			n.log.DebugContext(ctx, "near cache: invalidation channel lost", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(n.every):
		}
	}
}

func (n *Near) listenOnce(ctx context.Context) error {
	ps := n.rdb.Subscribe(ctx, n.inval, n.beat)
	defer ps.Close()
	subscribed := 0
	for {
		msg, err := ps.ReceiveTimeout(ctx, n.bound)
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if subscribed++; subscribed == 2 {
					n.flush(FlushSubscribed)
				}
			}
		case *redis.Message:
			if subscribed < 2 {
				continue // the flush at the subscription drops it all
			}
			if m.Channel == n.beat {
				n.heartbeat(m.Payload)
			} else {
				n.invalidate(m.Payload)
			}
		}
	}
}

// heartbeat takes in one of this process's heartbeats: every message
// Redis published before it has been applied.
func (n *Near) heartbeat(payload string) {
	sent, err := strconv.ParseInt(payload, 10, 64)
	if err != nil {
		return
	}
	n.opts.OnHeartbeat(time.Duration(n.now() - sent))
	if sent > n.heard.Load() {
		n.heard.Store(sent)
	}
}

// invalidate applies a message of the invalidation channel: keys separated
// by spaces, or nearFlushAll.
func (n *Near) invalidate(payload string) {
	if payload == nearFlushAll {
		n.flush(FlushGeneration)
		return
	}
	keys := strings.Fields(payload)
	n.mem.forget(keys)
	n.opts.OnInvalidate(len(keys))
}

// heartbeats publishes a heartbeat every Bound/5 on this process's channel,
// and checks that one came back within the bound: when none did, the near
// cache flushes and bypasses until one does.
func (n *Near) heartbeats(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.check()
		// A publish that hangs (a stalled Redis, a dial) must not delay the
		// checks: it runs aside, one at a time.
		if n.publishing.CompareAndSwap(false, true) {
			n.wg.Go(func() {
				defer n.publishing.Store(false)
				pctx, cancel := context.WithTimeout(ctx, n.every)
				defer cancel()
				_ = n.rdb.Publish(pctx, n.beat, strconv.FormatInt(n.now(), 10)).Err()
			})
		}
	}
}

// check reports a change between serving and bypassing; on a stop it
// flushes, as invalidations may be lost.
func (n *Near) check() {
	serving := n.Serving()
	if n.bypass.Load() != serving {
		return
	}
	n.bypass.Store(!serving)
	if !serving {
		n.flush(FlushSilence)
		n.log.Warn("near cache bypassed: no heartbeat came back from Redis within the bound", slog.Duration("bound", n.bound))
	} else {
		n.log.Info("near cache serving")
	}
	n.opts.OnBypass(!serving)
}
