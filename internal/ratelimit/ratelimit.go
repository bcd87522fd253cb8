// Package ratelimit limits how often something happens per key (a client
// address, an email) within a sliding window: login failures, registration
// attempts.
//
// Counts are kept in Redis when a client is given, so that every replica
// of the service sees the same counts, and always also in the process. A
// decision takes the stricter of the two. While Redis is down, slow or
// behind an open breaker, the process's own counts decide: the limit is
// then per process, never absent.
//
// Each event is recorded with its time (a sorted set in Redis, a slice in
// the process), at most Max per key, so a key is blocked exactly while Max
// events lie within the last Window, and Retry-After is the time until the
// oldest of them leaves it. Keys are hashed before they are stored, so
// emails and addresses do not appear in Redis.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usersvc/usersvc/internal/breaker"
)

// Rule is one limit: at most Max events per key within any Window.
type Rule struct {
	// Name tells the rule's keys apart from other rules' in Redis.
	Name   string
	Max    int
	Window time.Duration
}

// Limits are the rules of the service.
type Limits struct {
	// LoginEmail and LoginAddr count failed logins per email and per
	// client address.
	LoginEmail Rule
	LoginAddr  Rule
	// RegisterEmail and RegisterAddr count registration attempts per email
	// and per client address.
	RegisterEmail Rule
	RegisterAddr  Rule
	// ForgotEmail and ForgotAddr count forgotten-password requests per
	// email and per client address.
	ForgotEmail Rule
	ForgotAddr  Rule
	// VerifyUser counts verification requests (each sends a message) per
	// user.
	VerifyUser Rule
}

// DefaultLimits returns the service's default rules: 5 failed logins per
// email and 20 per client address in 15 minutes; 5 registrations per email
// and 10 per client address in an hour; 3 forgotten-password requests per
// email and 10 per client address in an hour; 5 verification requests per
// user in an hour.
func DefaultLimits() Limits {
	return Limits{
		LoginEmail:    Rule{Name: "login_email", Max: 5, Window: 15 * time.Minute},
		LoginAddr:     Rule{Name: "login_addr", Max: 20, Window: 15 * time.Minute},
		RegisterEmail: Rule{Name: "register_email", Max: 5, Window: time.Hour},
		RegisterAddr:  Rule{Name: "register_addr", Max: 10, Window: time.Hour},
		ForgotEmail:   Rule{Name: "forgot_email", Max: 3, Window: time.Hour},
		ForgotAddr:    Rule{Name: "forgot_addr", Max: 10, Window: time.Hour},
		VerifyUser:    Rule{Name: "verify_user", Max: 5, Window: time.Hour},
	}
}

// Defaults of Options.
const (
	DefaultPrefix       = "usersvc:v1:rl:"
	DefaultTimeout      = 50 * time.Millisecond
	DefaultMaxLocalKeys = 100_000
)

// Options configure a Limiter. Zero values mean defaults.
type Options struct {
	// Prefix starts every Redis key.
	Prefix string
	// Timeout bounds each call to Redis.
	Timeout time.Duration
	// Breaker stops calls to Redis while it fails; share one among the
	// users of one Redis. Nil means a breaker of this limiter alone.
	Breaker *breaker.Breaker
	// MaxLocalKeys bounds the keys counted in the process; the least
	// recently used are dropped first.
	MaxLocalKeys int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
	// OnCall, when set, is told of each call made to Redis: the operation
	// ("allow", "hit", "check", "reset"), how long it took, and whether it
	// failed (no answer in time, a broken connection or an error reply).
	OnCall func(op string, d time.Duration, failed bool)
}

// Limiter applies one Rule. It is safe for concurrent use.
type Limiter struct {
	rule    Rule
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	br      *breaker.Breaker
	now     func() time.Time
	local   *local
	onCall  func(op string, d time.Duration, failed bool)
}

// New returns a Limiter of rule that counts in the Redis that rdb reaches,
// or only in the process when rdb is nil. A rule with Max below 1 is taken
// as 1, a Window below a millisecond as a millisecond.
func New(rdb redis.UniversalClient, rule Rule, opts Options) *Limiter {
	if c, ok := rdb.(*redis.Client); ok && c == nil {
		rdb = nil
	}
	rule.Max = max(rule.Max, 1)
	rule.Window = max(rule.Window, time.Millisecond)
	l := &Limiter{
		rule:    rule,
		rdb:     rdb,
		prefix:  opts.Prefix,
		timeout: opts.Timeout,
		br:      opts.Breaker,
		now:     opts.Now,
		onCall:  opts.OnCall,
	}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	if l.timeout <= 0 {
		l.timeout = DefaultTimeout
	}
	if l.now == nil {
		l.now = time.Now
	}
	maxKeys := opts.MaxLocalKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxLocalKeys
	}
	l.local = newLocal(rule, maxKeys)
	if l.br == nil {
		log := opts.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		l.br = breaker.New(breaker.Options{Now: opts.Now, OnChange: func(open bool) {
			if open {
				log.Warn("redis unreachable: rate limits counted per process", slog.String("rule", rule.Name))
			} else {
				log.Info("redis reachable again: rate limits shared", slog.String("rule", rule.Name))
			}
		}})
	}
	return l
}

// Rule returns the limiter's rule.
func (l *Limiter) Rule() Rule { return l.rule }

// Allow counts an event under key if it is within the limit and reports
// whether it was. When it was not, retryAfter is the time until it would
// be.
func (l *Limiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration) {
	k := hashKey(key)
	now := l.now()
	if blocked, ra := l.local.blocked(k, now); blocked {
		return false, ra
	}
	if ok, ra, answered := l.remote(ctx, modeAllow, k, now); answered {
		if ok {
			l.local.hit(k, now)
		}
		return ok, ra
	}
	return l.local.allow(k, now)
}

// Hit counts an event under key, whatever the limit: a failure that
// Blocked then weighs.
func (l *Limiter) Hit(ctx context.Context, key string) {
	k := hashKey(key)
	now := l.now()
	l.local.hit(k, now)
	l.remote(ctx, modeHit, k, now)
}

// Blocked reports whether key has reached the limit, and if so the time
// until it no longer will have. It counts nothing.
func (l *Limiter) Blocked(ctx context.Context, key string) (blocked bool, retryAfter time.Duration) {
	k := hashKey(key)
	now := l.now()
	if blocked, ra := l.local.blocked(k, now); blocked {
		return true, ra
	}
	if ok, ra, answered := l.remote(ctx, modeCheck, k, now); answered {
		return !ok, ra
	}
	return false, 0
}

// Reset forgets the events counted under key, for example the failed
// logins of an email once its owner has logged in.
func (l *Limiter) Reset(ctx context.Context, key string) {
	k := hashKey(key)
	l.local.reset(k)
	if l.rdb == nil || !l.br.Allow() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	start := time.Now()
	err := l.rdb.Del(cctx, l.prefix+l.rule.Name+":"+k).Err()
	l.observe("reset", start, err)
	l.report(ctx, err)
}

const (
	modeAllow = "allow"
	modeHit   = "hit"
	modeCheck = "check"
)

// windowScript keeps the events of a key in a sorted set scored by time in
// milliseconds, at most Max of them. It returns {1, 0} when the key is
// within the limit (after counting, in mode allow) and {0, retry_ms} when
// it is not.
var windowScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local mode = ARGV[5]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
local n = redis.call('ZCARD', KEYS[1])
if mode == 'hit' or (mode == 'allow' and n < max) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  n = n + 1
  if n > max then
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - max - 1)
    n = max
  end
  redis.call('PEXPIRE', KEYS[1], win)
  if mode == 'allow' then return {1, 0} end
end
if n >= max then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local ra = tonumber(first[2]) + win - now
  if ra < 1 then ra = 1 end
  return {0, ra}
end
return {1, 0}
`)

// remote runs the window script; answered is false when Redis could not
// be asked or did not answer.
func (l *Limiter) remote(ctx context.Context, mode, k string, now time.Time) (ok bool, retryAfter time.Duration, answered bool) {
	if l.rdb == nil || !l.br.Allow() {
		return false, 0, false
	}
	ms := now.UnixMilli()
	member := strconv.FormatInt(ms, 10) + ":" + strconv.FormatUint(rand.Uint64(), 36)
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	start := time.Now()
	res, err := windowScript.Run(cctx, l.rdb, []string{l.prefix + l.rule.Name + ":" + k},
		ms, l.rule.Window.Milliseconds(), l.rule.Max, member, mode).Int64Slice()
	l.observe(mode, start, err)
	l.report(ctx, err)
	if err != nil || len(res) != 2 {
		return false, 0, false
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, true
}

// observe tells OnCall of a call to Redis that began at start.
func (l *Limiter) observe(op string, start time.Time, err error) {
	if l.onCall != nil {
		l.onCall(op, time.Since(start), err != nil && !errors.Is(err, redis.Nil))
	}
}

// report tells the breaker how a call went: a call that Redis did not
// answer is a failure; an error reply or a call the caller gave up on says
// nothing against Redis.
func (l *Limiter) report(ctx context.Context, err error) {
	if err == nil || errors.Is(err, redis.Nil) || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		l.br.Success()
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		if !strings.HasPrefix(msg, "LOADING") && !strings.HasPrefix(msg, "BUSY") && !strings.HasPrefix(msg, "MASTERDOWN") {
			l.br.Success()
			return
		}
	}
	l.br.Failure()
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}
