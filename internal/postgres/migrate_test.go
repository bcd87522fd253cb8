package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersvc/usersvc/internal/pgtest"
)

// migrationNumbers returns the numbers of the migration files in dir.
func migrationNumbers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var nums []string
	for _, e := range entries {
		if num, _, ok := strings.Cut(e.Name(), "_"); ok && strings.HasSuffix(e.Name(), ".sql") {
			nums = append(nums, num)
		}
	}
	return nums
}

// The two dialects share migration numbers, so one schema_migrations
// version means the same schema on either.
func TestMigrationNumbersMatchSQLite(t *testing.T) {
	pg := migrationNumbers(t, "migrations")
	lite := migrationNumbers(t, filepath.Join("..", "sqlite", "migrations"))
	if len(pg) == 0 || !slices.Equal(pg, lite) {
		t.Errorf("migration numbers differ: postgres %v, sqlite %v", pg, lite)
	}
}

// applied returns the recorded migrations: version to applied_at.
func applied(t *testing.T, url string) map[int32]time.Time {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	out := map[int32]time.Time{}
	var v int32
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&v, &at}, func() error { out[v] = at; return nil }); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return out
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openStore(t, url, true)
	first := applied(t, url)
	if want := len(migrationNumbers(t, "migrations")); len(first) != want {
		t.Fatalf("recorded %d migrations, want %d", len(first), want)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	second := applied(t, url)
	if len(second) != len(first) {
		t.Fatalf("second Migrate recorded %d migrations, want %d", len(second), len(first))
	}
	for v, at := range first {
		if !second[v].Equal(at) {
			t.Errorf("migration %d applied again", v)
		}
	}
}

func TestMigrateConcurrently(t *testing.T) {
	url := pgtest.NewDatabase(t)
	// Separate pools stand for processes starting at once.
	const n = 4
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		s := openStore(t, url, false)
		go func() {
			<-start
			errs <- s.Migrate(context.Background())
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Migrate: %v", err)
		}
	}
	if got, want := len(applied(t, url)), len(migrationNumbers(t, "migrations")); got != want {
		t.Errorf("recorded %d migrations, want %d", got, want)
	}
}

func TestStats(t *testing.T) {
	s := openStore(t, pgtest.NewDatabase(t), true)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	st := s.Stats()
	if st.MaxOpenConnections <= 0 || st.OpenConnections < 1 {
		t.Errorf("Stats: max %d, open %d connections", st.MaxOpenConnections, st.OpenConnections)
	}
}
