package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
	"github.com/usersvc/usersvc/internal/storetest"
)

var _ account.Store = (*sqlstore.Store)(nil)

// openStore opens and migrates a new database file in a directory that does
// not exist yet, and closes it when the test ends.
func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "usersvc.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *sqlstore.Store { return openStore(t) })
}

func TestMigrations(t *testing.T) {
	storetest.RunMigrations(t, sqlite.Dialect{}, func(t *testing.T) *sqlstore.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "usersvc.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// Two stores on one file stand for two processes sharing the database:
// their writes wait for each other instead of failing with SQLITE_BUSY, and
// the conditional writes still have exactly one winner.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usersvc.db")
	stores := make([]*sqlstore.Store, 2)
	for i := range stores {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		stores[i] = s
	}
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	const n = 20
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			u := &usersvc.User{ID: uuid.NewString(), Email: "shared@example.com", Name: "Shared", IsActive: true, CreatedAt: now, UpdatedAt: now}
			_, errs[i] = stores[i%2].CreateUser(context.Background(), u, "h")
		}()
	}
	close(start)
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch usersvc.ErrorCode(err) {
		case "":
			ok++
		case usersvc.EConflict:
		default:
			t.Errorf("CreateUser: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d registrations of one email succeeded, want 1", ok)
	}
	owner, _, err := stores[0].UserByEmail(ctx, "shared@example.com")
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}

	fam := account.RefreshFamily{ID: uuid.NewString(), UserID: owner.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	first := account.RefreshToken{JTI: uuid.NewString(), FamilyID: fam.ID, UserID: owner.ID, IssuedAt: now, ExpiresAt: fam.ExpiresAt}
	if err := stores[1].CreateRefreshFamily(ctx, fam, first, 0); err != nil {
		t.Fatalf("CreateRefreshFamily: %v", err)
	}
	start = make(chan struct{})
	fresh := make([]bool, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s := stores[i%2]
			// A read-then-write transaction and a conditional update, from
			// both "processes" at once.
			if err := s.ClearPushToken(context.Background(), owner.ID, nil, now); err != nil {
				errs[i] = err
				return
			}
			var st account.RefreshState
			_, err := s.RotateRefreshToken(context.Background(), "", first.JTI, now, func(got account.RefreshState) account.Rotation {
				st = got
				return account.Rotation{}
			})
			errs[i], fresh[i] = err, err == nil && !st.AlreadySpent
		}()
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("spend %d: %v", i, errs[i])
		}
		if fresh[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d spends saw an unspent token, want exactly 1", winners)
	}
}
