package sqlstore_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
	"github.com/usersvc/usersvc/internal/token"
)

// BenchmarkOutboxCost measures a change of preferences with its event and
// the same change with the outbox turned off, alternating them in rounds so
// that the noise of a shared machine falls on both, and reports the ratio
// as event-cost-ratio. PostgreSQL runs with USERSVC_TEST_POSTGRES_URL.
//
//	go test -run '^$' -bench OutboxCost -benchtime 3000x ./internal/sqlstore/
func BenchmarkOutboxCost(b *testing.B) { onEachStore(b, benchOutbox) }

// onEachStore runs fn, a test or a benchmark, on a new SQLite store and on
// a new PostgreSQL database (skipped without USERSVC_TEST_POSTGRES_URL,
// unless the integration tests are required). fn migrates and closes it.
func onEachStore[T interface {
	testing.TB
	Run(name string, f func(T)) bool
}](tb T, fn func(T, *sqlstore.Store)) {
	tb.Run("sqlite", func(tb T) {
		s, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "usersvc.db"))
		if err != nil {
			tb.Fatal(err)
		}
		fn(tb, s)
	})
	tb.Run("postgres", func(tb T) {
		if os.Getenv(pgtest.EnvURL) == "" && os.Getenv(pgtest.EnvRequire) == "" {
			tb.Skip(pgtest.EnvURL + " is not set")
		}
		s, err := postgres.Open(tb.Context(), pgtest.NewDatabase(tb))
		if err != nil {
			tb.Fatal(err)
		}
		fn(tb, s)
	})
}

// BenchmarkOutboxCostHTTP measures the same as BenchmarkOutboxCost, but a
// write as the service answers it: PATCH /api/v1/users/{id}/preferences
// with a bearer token, through the HTTP API, the use case and the cache.
//
//	go test -run '^$' -bench OutboxCostHTTP -benchtime 3000x ./internal/sqlstore/
func BenchmarkOutboxCostHTTP(b *testing.B) { onEachStore(b, benchOutboxHTTP) }

func benchOutboxHTTP(b *testing.B, s *sqlstore.Store) {
	b.Cleanup(func() { _ = s.Close() })
	ctx := b.Context()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	hasher, err := password.New(password.WithParams(password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}))
	if err != nil {
		b.Fatal(err)
	}
	keys, err := token.NewHMACKeySet(token.Secret("outbox-bench-secret-0123456789abcdefghij"))
	if err != nil {
		b.Fatal(err)
	}
	tokens, err := token.New(token.Config{Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	accounts := account.New(cache.Wrap(s, cache.NewMemory(1000, cache.Options{})), hasher, tokens, account.Options{})
	srv := httptest.NewServer(httpapi.NewServer(slog.New(slog.DiscardHandler), httpapi.Config{Version: "bench", JWKS: tokens.JWKS},
		accounts, httpapi.Health{Database: s.Ping, Draining: new(atomic.Bool)}))
	b.Cleanup(srv.Close)
	u, err := accounts.Register(ctx, usersvc.Registration{Email: uuid.NewString() + "@example.com", Password: "Bench!Passw0rd", Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	sess, err := accounts.Login(ctx, usersvc.Credentials{Email: u.Email, Password: "Bench!Passw0rd"})
	if err != nil {
		b.Fatal(err)
	}
	client := srv.Client()
	patch := func(v bool) {
		body := `{"push": false}`
		if v {
			body = `{"push": true}`
		}
		req, _ := http.NewRequestWithContext(ctx, "PATCH", srv.URL+"/api/v1/users/"+u.ID+"/preferences", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sess.Access)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("PATCH: %d", resp.StatusCode)
		}
	}
	alternate(b, s, patch)
}

// alternate times write with and without events in alternating rounds
// and reports both and their ratio. The rounds are many and short, and
// each pair runs in the other order than the one before (without, with;
// with, without; …), so that a burst of load on a shared machine, or a
// drift, falls on both sides alike.
func alternate(b *testing.B, s *sqlstore.Store, write func(v bool)) {
	const rounds = 30
	n := max(b.N/rounds, 1)
	var spent [2]time.Duration // without, with
	b.ResetTimer()
	for r := range 2 * rounds {
		with := r%2 == 1
		if (r/2)%2 == 1 {
			with = !with
		}
		sqlstore.DiscardEvents(s, !with)
		start := time.Now()
		for i := range n {
			write(i%2 == 0)
		}
		if with {
			spent[1] += time.Since(start)
		} else {
			spent[0] += time.Since(start)
		}
	}
	b.StopTimer()
	sqlstore.DiscardEvents(s, false)
	total := float64(rounds * n)
	b.ReportMetric(float64(spent[1].Nanoseconds())/total, "with-event-ns/write")
	b.ReportMetric(float64(spent[0].Nanoseconds())/total, "without-event-ns/write")
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "event-cost-ratio")
}

// newUser creates a user of these tests and benchmarks, named name, at
// now; the store writes its one event.
func newUser(tb testing.TB, s *sqlstore.Store, name string, now time.Time) *usersvc.User {
	u := &usersvc.User{ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: name,
		Preferences: usersvc.DefaultPreferences(), IsActive: true, CreatedAt: now, UpdatedAt: now}
	if _, err := s.CreateUser(tb.Context(), u, "h"); err != nil {
		tb.Fatal(err)
	}
	return u
}

func benchOutbox(b *testing.B, s *sqlstore.Store) {
	b.Cleanup(func() { _ = s.Close() })
	ctx := b.Context()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	u := newUser(b, s, "Bench", now)
	alternate(b, s, func(v bool) {
		if _, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{Email: &v}, now); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkPruneWhileWriting prunes 200,000 old events from SQLite, whose
// one writer every change waits for, while one goroutine changes
// preferences without pause, and reports the longest such write, with
// the default batches (max-write-ms-batched) and with the whole pruning in
// one transaction (max-write-ms-one-tx), and how long each pruning took.
//
//	go test -run '^$' -bench PruneWhileWriting -benchtime 1x -count 3 ./internal/sqlstore/
func BenchmarkPruneWhileWriting(b *testing.B) {
	ctx := b.Context()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	u := newUser(b, s, "Bench", now)
	const events = 200_000
	old := now.Add(-30 * 24 * time.Hour).UnixMicro()
	prune := func(batch int) (maxWrite, took time.Duration) {
		// Old events only, and then the writes' new ones after them.
		if _, err := s.DB().ExecContext(ctx, `DELETE FROM events`); err != nil {
			b.Fatal(err)
		}
		if _, err := s.DB().ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO events (id, type, subject, time, data) SELECT 'old-' || i || '-' || ?, 'user.updated', ?, ?,
			'{"user_id":"' || ? || '","name":"An old name of some length"}' FROM n`, events, batch, u.ID, old, u.ID); err != nil {
			b.Fatal(err)
		}
		s.PruneBatch = batch
		stop := make(chan struct{})
		done := make(chan time.Duration)
		go func() {
			var longest time.Duration
			for v := false; ; v = !v {
				select {
				case <-stop:
					done <- longest
					return
				default:
				}
				start := time.Now()
				if _, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{Email: &v}, time.Now().UTC()); err != nil {
					b.Error(err)
				}
				longest = max(longest, time.Since(start))
			}
		}()
		start := time.Now()
		n, err := s.PruneEvents(ctx, now.Add(-time.Hour), false)
		took = time.Since(start)
		close(stop)
		maxWrite = <-done
		if err != nil || n < events-1 { // the newest stays when no write came before the pruning
			b.Fatalf("PruneEvents = %d, %v; want %d or one less", n, err, events)
		}
		return maxWrite, took
	}
	var batched, oneTx, batchedTook, oneTxTook time.Duration
	for b.Loop() {
		w, d := prune(0)
		batched, batchedTook = batched+w, batchedTook+d
		w, d = prune(1 << 30)
		oneTx, oneTxTook = oneTx+w, oneTxTook+d
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(batched), "max-write-ms-batched")
	b.ReportMetric(ms(oneTx), "max-write-ms-one-tx")
	b.ReportMetric(ms(batchedTook), "prune-ms-batched")
	b.ReportMetric(ms(oneTxTook), "prune-ms-one-tx")
}
