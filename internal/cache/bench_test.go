package cache_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/redistest"
)

// BenchmarkUserHit measures a cache hit of User: the in-process cache, and
// the Redis cache over a local redis-server (one round trip, an MGET of the
// generation and the value).
func BenchmarkUserHit(b *testing.B) {
	caches := map[string]func(b *testing.B) cache.Cache{
		"memory": func(b *testing.B) cache.Cache { return cache.NewMemory(10_000, cache.Options{}) },
		"redis": func(b *testing.B) cache.Cache {
			srv := redistest.Start(b)
			c := cache.NewRedis(srv.Client(b), cache.RedisOptions{Timeout: time.Second})
			b.Cleanup(func() { _ = c.Close() })
			return c
		},
	}
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			c := caches[name](b)
			ctx := b.Context()
			u := testUser("bench")
			for range 3 {
				load(ctx, c, u)
			}
			if _, ok := c.User(ctx, u.ID); !ok {
				b.Fatal("no hit")
			}
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					if _, ok := c.User(ctx, u.ID); !ok {
						b.Fatal("miss")
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				// A connection the pool dials is checked before it is
				// trusted; reads meanwhile miss. Count them.
				var misses atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, ok := c.User(ctx, u.ID); !ok {
							misses.Add(1)
						}
					}
				})
				b.ReportMetric(float64(misses.Load())/float64(b.N), "misses/op")
			})
		})
	}
}
