package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/redistest"
	"github.com/usersvc/usersvc/internal/token"
)

// Shape of the read-heavy mix of BenchmarkReadMix.
const (
	mixUsers      = 1000 // users in the population, picked uniformly
	mixWritePct   = 5    // PATCH preferences; the rest are reads
	mixWorkers    = 8    // clients per GOMAXPROCS
	mixRounds     = 5    // the three caches are measured in turn, this many times
	mixMemoryCap  = 50_000
	envRedisBench = "USERSVC_TEST_REDIS_URL"
)

// mixReadKey marks the context of read requests (GET): the mix counts
// the store reads made on their behalf; a load shared by concurrent
// requests counts once, for the request that started it.
type mixReadKey struct{}

// mixCountReads marks the context of GET requests.
func mixCountReads(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			r = r.WithContext(context.WithValue(r.Context(), mixReadKey{}, true))
		}
		h.ServeHTTP(w, r)
	})
}

// mixIsRead reports whether ctx is a read request's.
func mixIsRead(ctx context.Context) bool { return ctx.Value(mixReadKey{}) != nil }

// BenchmarkReadMix drives a read-heavy mix through the HTTP handler with
// the cache off, in process, and in Redis, over one store and one
// population, so that the three are compared in one run:
//
//   - 1000 users, each request for one picked uniformly;
//   - 95% reads, half GET /api/v1/users/{id} and half GET …/preferences,
//     sent with a service key;
//   - 5% writes, PATCH …/preferences with the user's own access token,
//     which forget the user in the cache before they answer;
//   - mixWorkers clients per GOMAXPROCS on keep-alive connections to an
//     httptest server in the same process.
//
// The store is PostgreSQL when USERSVC_TEST_POSTGRES_URL is set, else
// SQLite. Redis is USERSVC_TEST_REDIS_URL when set, else a redis-server of
// the benchmark's own; cache=redis is skipped when there is neither. The
// client settings and timeouts are the service's. The three caches are
// measured in turn, mixRounds times (cache=off, cache=memory, cache=redis,
// cache=off#01, …), so that a load that comes and goes on the machine
// weighs on all three alike. Each run starts with an empty cache that one
// read of every user warms, outside the timing.
//
// Reported per run: req/s and reads/s; db-reads/read, the store reads made
// for read requests over the read requests answered (a load shared by
// concurrent requests counts once); %served-from-cache, 1 - db-reads/read
// in percent; and for Redis gen-changes, how often the cache's generation
// changed (each change empties it for every replica: a call to Redis that
// timed out is taken for an outage). At the end a summary is logged: per
// cache, the totals over the rounds and the median over the rounds of its
// req/s against the cache=off run of the same round, the figure to quote on
// a machine whose load varies.
//
//	USERSVC_TEST_POSTGRES_URL=… go test -run '^$' -bench BenchmarkReadMix -benchtime 3s ./internal/httpapi/
func BenchmarkReadMix(b *testing.B) {
	var st testStore
	if os.Getenv(pgtest.EnvURL) != "" {
		st = newPostgres(b)
	} else {
		st = newSQLite(b)
	}
	if err := st.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	counted := &readCounter{testStore: st, only: mixIsRead}
	hasher, err := password.New(password.WithParams(cheapHashing))
	if err != nil {
		b.Fatal(err)
	}
	tokens := newTestTokens(b, testSecret)
	keys, err := account.ParseServiceKeys("notifier:" + serviceKey)
	if err != nil {
		b.Fatal(err)
	}
	env := &mixEnv{store: counted, hasher: hasher, tokens: tokens, keys: keys, redisOpts: mixRedisOptions(b)}
	env.users = mixPopulation(b, account.New(st, hasher, tokens, account.Options{}), tokens)

	caches := []struct {
		name string
		make func(b *testing.B) (cache.Cache, *atomic.Int64)
	}{
		{"off", func(*testing.B) (cache.Cache, *atomic.Int64) { return nil, nil }},
		{"memory", func(*testing.B) (cache.Cache, *atomic.Int64) {
			return cache.NewMemory(mixMemoryCap, cache.Options{}), nil
		}},
		{"redis", env.redis},
	}
	// The last (longest) run of each sub-benchmark, by round and cache.
	results := make([]map[string]mixResult, mixRounds)
	for round := range mixRounds {
		results[round] = map[string]mixResult{}
		for _, c := range caches {
			if b.Run("cache="+c.name, func(b *testing.B) { env.last = env.run(b, c.make) }) {
				results[round][c.name] = env.last
			}
		}
	}
	mixSummary(b, results, []string{"off", "memory", "redis"})
}

// mixResult is what one run of the mix counted.
type mixResult struct {
	secs, reads, writes, dbReads, genChanges float64
}

func (r mixResult) reqPerSec() float64 { return (r.reads + r.writes) / r.secs }

// mixSummary logs, for each cache, the request rate and the share of reads
// served from the cache over all rounds, and the median over the rounds of
// its request rate against the cache=off run of the same round.
func mixSummary(b *testing.B, results []map[string]mixResult, names []string) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "over %d rounds (cache=off, cache=memory, cache=redis in turn):\n", len(results))
	for _, name := range names {
		var total mixResult
		var ratios []float64
		for _, round := range results {
			r, ok := round[name]
			if !ok {
				continue
			}
			total.secs += r.secs
			total.reads += r.reads
			total.writes += r.writes
			total.dbReads += r.dbReads
			total.genChanges += r.genChanges
			if off, ok := round["off"]; ok {
				ratios = append(ratios, r.reqPerSec()/off.reqPerSec())
			}
		}
		if total.secs == 0 || total.reads == 0 {
			continue
		}
		slices.Sort(ratios)
		median := 0.0
		if n := len(ratios); n > 0 {
			median = (ratios[(n-1)/2] + ratios[n/2]) / 2
		}
		fmt.Fprintf(&sb, "  cache=%-6s %8.0f req/s  %5.1f%% of reads served from the cache  median req/s against cache=off in the same round %.2fx  (generation changes: %.0f)\n",
			name, total.reqPerSec(), 100*(1-total.dbReads/total.reads), median, total.genChanges)
	}
	b.Log(sb.String())
}

// mixEnv is what the runs of the mix share: one store and one population.
type mixEnv struct {
	store     *readCounter
	hasher    *password.Hasher
	tokens    *token.Service
	keys      account.ServiceKeys
	users     []mixUser
	redisOpts *redis.Options // nil: no Redis to measure
	last      mixResult      // of the latest run
}

// run measures the mix once over a fresh cache of newCache.
func (e *mixEnv) run(b *testing.B, newCache func(*testing.B) (cache.Cache, *atomic.Int64)) mixResult {
	counted, tokens, users := e.store, e.tokens, e.users
	ch, genChanges := newCache(b)
	accounts := account.New(cached(counted, ch), e.hasher, tokens, account.Options{ServiceKeys: e.keys})
	handler := httpapi.NewServer(slog.New(slog.DiscardHandler), httpapi.Config{Version: "bench", JWKS: tokens.JWKS}, accounts,
		httpapi.Health{Database: counted.Ping, Draining: new(atomic.Bool)})
	srv := httptest.NewServer(mixCountReads(handler))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}}
	defer client.CloseIdleConnections()

	// Warm the cache with one read of every user, from as many
	// clients as the timed part has (so that the connection pools
	// are grown too).
	var wg sync.WaitGroup
	clients := mixWorkers * runtime.GOMAXPROCS(0)
	for w := range clients {
		wg.Go(func() {
			for i := w; i < len(users); i += clients {
				mixSend(b, client, "GET", srv.URL+"/api/v1/users/"+users[i].id, nil, "X-Service-API-Key", serviceKey)
			}
		})
	}
	wg.Wait()
	counted.n.Store(0)
	var gen0 int64
	if genChanges != nil {
		gen0 = genChanges.Load()
	}
	var reads, writes atomic.Int64
	var seed atomic.Uint64
	b.SetParallelism(mixWorkers)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := mrand.New(mrand.NewPCG(seed.Add(1), 42))
		var r, w int64
		for pb.Next() {
			u := users[rng.IntN(len(users))]
			id := u.id
			switch n := rng.IntN(100); {
			case n < mixWritePct:
				body := fmt.Appendf(nil, `{"email": %t}`, rng.IntN(2) == 0)
				mixSend(b, client, "PATCH", srv.URL+"/api/v1/users/"+id+"/preferences", body, "Authorization", "Bearer "+u.access)
				w++
			case n%2 == 0:
				mixSend(b, client, "GET", srv.URL+"/api/v1/users/"+id, nil, "X-Service-API-Key", serviceKey)
				r++
			default:
				mixSend(b, client, "GET", srv.URL+"/api/v1/users/"+id+"/preferences", nil, "X-Service-API-Key", serviceKey)
				r++
			}
		}
		reads.Add(r)
		writes.Add(w)
	})
	b.StopTimer()
	res := mixResult{secs: b.Elapsed().Seconds(), reads: float64(reads.Load()), writes: float64(writes.Load()), dbReads: float64(counted.n.Load())}
	b.ReportMetric(res.reqPerSec(), "req/s")
	b.ReportMetric(res.reads/res.secs, "reads/s")
	if res.reads > 0 {
		b.ReportMetric(res.dbReads/res.reads, "db-reads/read")
		b.ReportMetric(100*(1-res.dbReads/res.reads), "%served-from-cache")
	}
	if genChanges != nil {
		// Each change of the Redis cache's generation empties it
		// for every replica; see cache.Redis.
		res.genChanges = float64(genChanges.Load() - gen0)
		b.ReportMetric(res.genChanges, "gen-changes")
	}
	return res
}

// mixUser is a user of the mix with an access token of its own.
type mixUser struct{ id, access string }

// mixPopulation registers the users of the mix and issues each an access
// token.
func mixPopulation(b *testing.B, accounts *account.Service, tokens *token.Service) []mixUser {
	b.Helper()
	ctx := b.Context()
	run := mixRandomHex(b, 4)
	users := make([]mixUser, mixUsers)
	seedEach(b, mixUsers, func(i int) error {
		u, err := accounts.Register(ctx, usersvc.Registration{
			Email: fmt.Sprintf("mix.%s.%d@example.com", run, i), Name: "Mix User", Password: "Str0ng!Passw0rd",
		})
		if err != nil {
			return err
		}
		users[i].id = u.ID
		users[i].access, err = tokens.IssueAccess(u, uuid.NewString(), "", time.Now())
		return err
	})
	return users
}

// mixRedisOptions returns the client settings of the Redis the benchmark
// measures: USERSVC_TEST_REDIS_URL, else a redis-server of its own, else nil.
// The settings are the service's: short timeouts, no retries.
func mixRedisOptions(b *testing.B) *redis.Options {
	b.Helper()
	if u := os.Getenv(envRedisBench); u != "" {
		parsed, err := redis.ParseURL(u)
		if err != nil {
			b.Fatalf("%s: not a redis:// URL", envRedisBench)
		}
		opt := redistest.ClientOptions(parsed.Addr)
		opt.DB, opt.Username, opt.Password, opt.TLSConfig = parsed.DB, parsed.Username, parsed.Password, parsed.TLSConfig
		return opt
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil
	}
	return redistest.ClientOptions(redistest.Start(b).Addr())
}

// redis returns a Redis cache under a prefix of its own, on a client of its
// own, and the count of its changes of generation.
func (e *mixEnv) redis(b *testing.B) (cache.Cache, *atomic.Int64) {
	b.Helper()
	if e.redisOpts == nil {
		b.Skipf("no Redis: set %s or install redis-server", envRedisBench)
	}
	opt := *e.redisOpts
	rdb := redis.NewClient(&opt)
	h := &mixGenCounter{}
	c := cache.NewRedis(rdb, cache.RedisOptions{Prefix: "usersvc:bench:" + mixRandomHex(b, 6) + ":", Logger: slog.New(h)})
	b.Cleanup(func() { _ = c.Close(); _ = rdb.Close() })
	return c, &h.n
}

// mixGenCounter is a log handler that counts the Redis cache's changes of
// generation.
type mixGenCounter struct{ n atomic.Int64 }

func (h *mixGenCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h *mixGenCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "cache generation changed" {
		h.n.Add(1)
	}
	return nil
}

func (h *mixGenCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *mixGenCounter) WithGroup(string) slog.Handler      { return h }

func mixSend(b *testing.B, client *http.Client, method, url string, body []byte, header, value string) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		b.Error(err)
		return
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(header, value)
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("%s %s: %d", method, strings.TrimPrefix(url, "http://"), resp.StatusCode)
	}
}

func mixRandomHex(b *testing.B, n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(buf)
}
