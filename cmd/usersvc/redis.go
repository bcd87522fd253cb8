package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/breaker"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/ratelimit"
)

// memoryCacheEntries bounds the in-process cache: a user counts one entry,
// a device list one per device.
const memoryCacheEntries = 50_000

// redisClient connects to the configured Redis with short timeouts: a slow
// or absent Redis costs a request milliseconds, never seconds. Each call
// is bounded by callTimeout (REDIS_TIMEOUT) in the cache and the limiter;
// the client's own socket timeouts are looser backstops.
func redisClient(rawURL string, callTimeout time.Duration) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		// The parse error may quote the password: name the variable only.
		return nil, &configError{"REDIS_URL", "is not a valid redis:// or rediss:// URL"}
	}
	socket := max(100*time.Millisecond, 2*callTimeout)
	opt.DialTimeout = max(200*time.Millisecond, 4*callTimeout)
	opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = socket, socket, socket
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return redis.NewClient(opt), nil
}

// redisLog sends go-redis's own messages to the debug level, so an outage
// does not flood the log (the breaker logs the outage once).
type redisLog struct{ logger *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, fmt.Sprintf(format, v...))
}

// cacheAndLimits builds the cache, the rate limits and the Redis health
// check: shared through Redis when it is configured, in process otherwise.
func (a *app) cacheAndLimits() (cache.Cache, account.Limits, func(context.Context) string, error) {
	hooks := cache.Options{OnHit: a.metrics.CacheHit, OnMiss: a.metrics.CacheMiss}
	var (
		shared  redis.UniversalClient
		limOpts = ratelimit.Options{Logger: a.logger, Timeout: a.cfg.RedisTimeout}
		c       cache.Cache
		status  func(context.Context) string
	)
	if a.cfg.RedisURL == "" {
		c = cache.NewMemory(memoryCacheEntries, hooks)
	} else {
		rdb, err := redisClient(a.cfg.RedisURL, a.cfg.RedisTimeout)
		if err != nil {
			return nil, account.Limits{}, nil, err
		}
		if err := traceRedis(a.tracing, rdb); err != nil {
			rdb.Close()
			return nil, account.Limits{}, nil, err
		}
		redis.SetLogger(redisLog{a.logger})
		br := breaker.New(breaker.Options{OnChange: func(open bool) {
			a.metrics.RedisBreaker(open)
			if open {
				a.logger.Warn("redis unreachable: serving from the database, rate limits per process")
			} else {
				a.logger.Info("redis reachable again")
			}
		}, OnRefuse: a.metrics.RedisBreakerRefused})
		near := a.cfg.Near
		rc := cache.NewRedis(rdb, cache.RedisOptions{Options: hooks, Breaker: br, Logger: a.logger, Timeout: a.cfg.RedisTimeout,
			OnCall: a.metrics.RedisCalls("cache"), Announce: near.On})
		a.closers = append(a.closers, func() { rc.Close(); rdb.Close() })
		c, shared, status = rc, rdb, rc.Status
		if near.On {
			// A client of its own, untraced: it carries a heartbeat every
			// NEAR_CACHE_BOUND/5 and a long-lived subscription.
			nrdb, err := redisClient(a.cfg.RedisURL, a.cfg.RedisTimeout)
			if err != nil {
				return nil, account.Limits{}, nil, err
			}
			n := cache.NewNear(rc, nrdb, cache.NearOptions{Size: near.Size, TTL: near.TTL, Bound: near.Bound, Logger: a.logger,
				OnHit: a.metrics.NearHit, OnMiss: a.metrics.NearMiss, OnInvalidate: a.metrics.NearInvalidated,
				OnFlush: a.metrics.NearFlushed, OnBypass: a.metrics.NearBypassed, OnHeartbeat: a.metrics.NearHeartbeat})
			a.closers = append(a.closers, func() { n.Close(); nrdb.Close() })
			c = n
		}
		limOpts.Breaker = br
		limOpts.OnCall = a.metrics.RedisCalls("ratelimit")
	}
	rules := a.cfg.RateLimits
	limiter := func(r ratelimit.Rule) account.Limiter {
		if r.Max == 0 { // RATE_LIMIT_…=off
			return nil
		}
		return ratelimit.New(shared, r, limOpts)
	}
	limits := account.Limits{
		LoginEmail:    limiter(rules.LoginEmail),
		LoginAddr:     limiter(rules.LoginAddr),
		RegisterEmail: limiter(rules.RegisterEmail),
		RegisterAddr:  limiter(rules.RegisterAddr),
		ForgotEmail:   limiter(rules.ForgotEmail),
		ForgotAddr:    limiter(rules.ForgotAddr),
		VerifyUser:    limiter(rules.VerifyUser),
	}
	return c, limits, status, nil
}
