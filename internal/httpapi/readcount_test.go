package httpapi_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// readCounter counts the calls of the store's read methods that reach the
// store underneath, those whose context only accepts (all when only is
// nil).
type readCounter struct {
	testStore
	only func(context.Context) bool
	n    atomic.Int64
}

func (s *readCounter) count(ctx context.Context) {
	if s.only == nil || s.only(ctx) {
		s.n.Add(1)
	}
}

func (s *readCounter) UserByID(ctx context.Context, id string) (*usersvc.User, error) {
	s.count(ctx)
	return s.testStore.UserByID(ctx, id)
}

func (s *readCounter) UserByEmail(ctx context.Context, email string) (*usersvc.User, account.Credential, error) {
	s.count(ctx)
	return s.testStore.UserByEmail(ctx, email)
}

func (s *readCounter) UsersByIDs(ctx context.Context, ids []string) ([]usersvc.User, error) {
	s.count(ctx)
	return s.testStore.UsersByIDs(ctx, ids)
}

func (s *readCounter) DevicesOfUsers(ctx context.Context, ids []string) (map[string][]usersvc.Device, error) {
	s.count(ctx)
	return s.testStore.DevicesOfUsers(ctx, ids)
}

func (s *readCounter) Devices(ctx context.Context, userID string) ([]usersvc.Device, error) {
	s.count(ctx)
	return s.testStore.Devices(ctx, userID)
}

func (s *readCounter) ListUsers(ctx context.Context, limit, offset int) ([]usersvc.User, int, error) {
	s.count(ctx)
	return s.testStore.ListUsers(ctx, limit, offset)
}

// seedEach calls seed for 0 … n-1 from four goroutines, and fails tb with
// the first error.
func seedEach(tb testing.TB, n int, seed func(i int) error) {
	tb.Helper()
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := seed(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}
