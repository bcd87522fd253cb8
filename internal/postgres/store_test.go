package postgres_test

import (
	"testing"

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
