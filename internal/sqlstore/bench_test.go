package sqlstore_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// BenchmarkOutboxCost measures a change of preferences with its event and
// the same change with the outbox turned off, alternating them in rounds so
// that the noise of a shared machine falls on both, and reports the ratio
// as event-cost-ratio. PostgreSQL runs with USERSVC_TEST_POSTGRES_URL.
//
//	go test -run '^$' -bench OutboxCost -benchtime 3000x ./internal/sqlstore/
func BenchmarkOutboxCost(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		benchOutbox(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		if os.Getenv("USERSVC_TEST_POSTGRES_URL") == "" {
			b.Skip("USERSVC_TEST_POSTGRES_URL is not set")
		}
		s, err := postgres.Open(b.Context(), pgtest.NewDatabase(b))
		if err != nil {
			b.Fatal(err)
		}
		benchOutbox(b, s)
	})
}

func benchOutbox(b *testing.B, s *sqlstore.Store) {
	b.Cleanup(func() { _ = s.Close() })
	ctx := b.Context()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	u := &usersvc.User{ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: "Bench",
		Preferences: usersvc.DefaultPreferences(), IsActive: true, CreatedAt: now, UpdatedAt: now}
	if _, err := s.CreateUser(ctx, u, "h"); err != nil {
		b.Fatal(err)
	}
	const rounds = 6
	n := max(b.N/rounds, 1)
	var spent [2]time.Duration // without, with
	b.ResetTimer()
	for r := range 2 * rounds {
		with := r%2 == 1
		sqlstore.DiscardEvents(s, !with)
		start := time.Now()
		for i := range n {
			v := i%2 == 0
			if _, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{Email: &v}, now); err != nil {
				b.Fatal(err)
			}
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
