package relay_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/relay"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// The SQL store is the relay's store.
var _ relay.Store = (*sqlstore.Store)(nil)

// sqlOutbox is the real store: each change renames a user (the first
// registers it), which writes its event in the same transaction.
type sqlOutbox struct {
	*sqlstore.Store
	open func(t testing.TB) *sqlstore.Store // another replica's store on the same database

	mu    sync.Mutex
	users map[string]string // test name → user id
	n     int
}

func newSQLOutbox(t testing.TB, open func(t testing.TB) *sqlstore.Store) *sqlOutbox {
	return &sqlOutbox{Store: open(t), open: open, users: map[string]string{}}
}

// sqliteOutbox is a SQLite database in a temporary directory.
func sqliteOutbox(t testing.TB) outbox {
	path := filepath.Join(t.TempDir(), "usersvc.db")
	return newSQLOutbox(t, func(t testing.TB) *sqlstore.Store {
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return migrated(t, s)
	})
}

// postgresOutbox is a fresh PostgreSQL database (USERSVC_TEST_POSTGRES_URL).
func postgresOutbox(t testing.TB) outbox {
	url := pgtest.NewDatabase(t)
	return newSQLOutbox(t, func(t testing.TB) *sqlstore.Store {
		s, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		return migrated(t, s)
	})
}

func migrated(t testing.TB, s *sqlstore.Store) *sqlstore.Store {
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func (o *sqlOutbox) replica(t testing.TB) relay.Store { return o.open(t) }

func (o *sqlOutbox) write(t testing.TB, user string) {
	ctx := context.Background()
	o.mu.Lock()
	id, ok := o.users[user]
	o.n++
	name := fmt.Sprintf("Name %c", 'A'+o.n%2)
	if !ok {
		id = uuid.Must(uuid.NewV7()).String()
		o.users[user] = id
	}
	o.mu.Unlock()
	now := time.Now().UTC()
	if !ok {
		u := &usersvc.User{ID: id, Email: id + "@example.com", Name: user, Preferences: usersvc.DefaultPreferences(),
			IsActive: true, CreatedAt: now, UpdatedAt: now}
		if _, err := o.CreateUser(ctx, u, "hash"); err != nil {
			t.Errorf("register %s: %v", user, err)
		}
		return
	}
	if _, err := o.UpdateProfile(ctx, id, usersvc.ProfilePatch{Name: &name}, now); err != nil {
		t.Errorf("rename %s: %v", user, err)
	}
}

func (o *sqlOutbox) all(t testing.TB) []usersvc.Event {
	var out []usersvc.Event
	for {
		var after int64
		if len(out) > 0 {
			after = out[len(out)-1].Position
		}
		evs, err := o.Events(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
	}
}

func (o *sqlOutbox) pending(t testing.TB) int {
	n, _, err := relay.Backlog(context.Background(), o.Store, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}
