package postgres_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/sqlstore"
	"github.com/usersvc/usersvc/internal/storetest"
)

var _ account.Store = (*sqlstore.Store)(nil)

// openStore opens a store on a fresh database, migrated unless told not to,
// and closes it when the test ends.
func openStore(t *testing.T, url string, migrate bool) *sqlstore.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if migrate {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *sqlstore.Store {
		return openStore(t, pgtest.NewDatabase(t), true)
	})
}

func TestMigrations(t *testing.T) {
	storetest.RunMigrations(t, postgres.Dialect{}, func(t *testing.T) *sqlstore.Store {
		return openStore(t, pgtest.NewDatabase(t), false)
	})
}

// A commit with events on one store wakes the waiters of another process's
// store at once, through LISTEN/NOTIFY, not through its poll.
func TestEventsNotifyAcrossStores(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := openStore(t, url, true), openStore(t, url, false)
	b.EventsPoll = time.Hour // only a notification can wake b
	b.EventsChanged()        // start listening
	time.Sleep(300 * time.Millisecond)
	for i := range 5 {
		ch := b.EventsChanged()
		u := &usersvc.User{ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: "Notified",
			Preferences: usersvc.DefaultPreferences(), IsActive: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if _, err := a.CreateUser(t.Context(), u, "h"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(2 * time.Second):
			t.Fatalf("round %d: a commit on another store did not wake this one", i)
		}
	}
}
