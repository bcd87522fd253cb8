package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

func open(t *testing.T, path string) *sqlstore.Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// applied returns the recorded migrations: version to applied_at.
func applied(t *testing.T, s *sqlstore.Store) map[int]int64 {
	t.Helper()
	rows, err := s.ReadDB().QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var v int
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		out[v] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigrationsAreNumbered(t *testing.T) {
	ms, err := Dialect{}.Migrations()
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %d is %s (number %d); numbers must run 1, 2, 3, …", i, m.Name, m.Version)
		}
	}
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "usersvc.db"))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	first := applied(t, s)
	ms, _ := Dialect{}.Migrations()
	if len(first) != len(ms) {
		t.Fatalf("recorded %d migrations, want %d", len(first), len(ms))
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	second := applied(t, s)
	if len(second) != len(first) {
		t.Fatalf("second Migrate recorded %d migrations, want %d", len(second), len(first))
	}
	for v, at := range first {
		if second[v] != at {
			t.Errorf("migration %d applied again", v)
		}
	}
}

func TestMigrateConcurrently(t *testing.T) {
	// Separate stores on one file stand for processes starting at once.
	path := filepath.Join(t.TempDir(), "usersvc.db")
	const n = 4
	stores := make([]*sqlstore.Store, n)
	for i := range stores {
		stores[i] = open(t, path)
	}
	errs := make(chan error, n)
	start := make(chan struct{})
	for _, s := range stores {
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
	ms, _ := Dialect{}.Migrations()
	if got := applied(t, stores[0]); len(got) != len(ms) {
		t.Errorf("recorded %d migrations, want %d", len(got), len(ms))
	}
}

func TestOpenSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := open(t, filepath.Join(dir, "usersvc.db"))
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("parent directory not created: %v", err)
	}
	ctx := t.Context()
	for name, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000", "synchronous": "1"} {
		var wgot, rgot string
		if err := s.DB().QueryRowContext(ctx, "PRAGMA "+name).Scan(&wgot); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		if err := s.ReadDB().QueryRowContext(ctx, "PRAGMA "+name).Scan(&rgot); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		if wgot != want || rgot != want {
			t.Errorf("PRAGMA %s = %q (writer), %q (reader); want %q", name, wgot, rgot, want)
		}
	}
	// Readers cannot write.
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if _, err := s.ReadDB().ExecContext(ctx, `DELETE FROM users`); err == nil {
		t.Errorf("a reader connection could write")
	}
}

func TestOpenUnavailable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), filepath.Join(file, "usersvc.db"))
	if code := usersvc.ErrorCode(err); code != usersvc.EUnavailable {
		t.Errorf("Open under a regular file: code %q (%v), want %q", code, err, usersvc.EUnavailable)
	}
}

// The events table that migration 0009 rebuilt is still STRICT.
func TestEventsTableStrict(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "usersvc.db"))
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO events (id, type, subject, time, data) VALUES ('a', 't', 's', 'noon', '{}')`); err == nil {
		t.Error("a text time was stored in events: the table is not STRICT")
	}
	var strict int
	if err := s.DB().QueryRowContext(ctx, `SELECT strict FROM pragma_table_list WHERE name = 'events'`).Scan(&strict); err != nil || strict != 1 {
		t.Errorf("events strict = %d, %v; want 1", strict, err)
	}
}
