package cache_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/redistest"
	"github.com/usersvc/usersvc/internal/sqlite"
)

// The crash test's child process is this test binary, run with these
// variables set, in TestCrashChild.
const (
	envCrashChild = "USERSVC_CRASH_CHILD"
	envCrashDB    = "USERSVC_CRASH_DB"
	envCrashRedis = "USERSVC_CRASH_REDIS"
	envCrashUser  = "USERSVC_CRASH_USER"
	envCrashMode  = "USERSVC_CRASH_MODE" // "hold", or "forget-after" for the design without a hold
)

// crashLoadWindow is the load window of both processes, short so that the
// test sees the hold expire.
const crashLoadWindow = time.Second

// noHold is a cache that forgets only after the write, as the service did
// before writes held their entries.
type noHold struct{ *cache.Redis }

func (noHold) Hold(context.Context, []string, ...string) {}

// TestCrashChild is the process that dies: it renames a user through the
// cached store and is killed (SIGKILL) right after the store committed,
// before the cache hears of the write.
func TestCrashChild(t *testing.T) {
	mode := os.Getenv(envCrashChild)
	if mode == "" {
		t.Skip("the child of TestCrashBetweenCommitAndInvalidation")
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, os.Getenv(envCrashDB))
	if err != nil {
		t.Fatal(err)
	}
	rc := cache.NewRedis(redis.NewClient(redistest.ClientOptions(os.Getenv(envCrashRedis))),
		cache.RedisOptions{Options: cache.Options{LoadWindow: crashLoadWindow}})
	var c cache.Cache = rc
	if os.Getenv(envCrashMode) == "forget-after" {
		c = noHold{rc}
	}
	s := cache.Wrap(st, c)
	s.AfterCommit = func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	if _, err := s.UpdateProfile(ctx, os.Getenv(envCrashUser), usersvc.ProfilePatch{Name: new("Renamed Before Dying")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Fatal("the child outlived its commit")
}

// TestCrashBetweenCommitAndInvalidation kills a process between the commit
// of a rename and the invalidation of the cache, and reads the user through
// another process's cache at once and until the hold has expired: no read
// may return the old name. The same crash without the hold (the cache told
// only after the write) leaves the old name in the cache, which the test
// also checks, so that it is known to detect staleness.
func TestCrashBetweenCommitAndInvalidation(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "usersvc.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	reader := cache.Wrap(st, replica(t, srv, cache.RedisOptions{Prefix: cache.DefaultPrefix,
		Options: cache.Options{LoadWindow: crashLoadWindow, OnHit: func(string) { hits.Add(1) }}}))

	for round, mode := range []string{"hold", "hold", "hold", "forget-after"} {
		now := time.Now().UTC().Truncate(time.Microsecond)
		u := &usersvc.User{ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: "Old Name",
			Preferences: usersvc.DefaultPreferences(), IsActive: true, CreatedAt: now, UpdatedAt: now}
		if _, err := st.CreateUser(ctx, u, "hash"); err != nil {
			t.Fatal(err)
		}
		// Warm the reader's cache: a miss stores, the next read hits.
		for range 2 {
			if _, err := reader.UserByID(ctx, u.ID); err != nil {
				t.Fatal(err)
			}
		}
		before := hits.Load()
		if got, _ := reader.UserByID(ctx, u.ID); got.Name != "Old Name" || hits.Load() == before {
			t.Fatalf("round %d: the old name is not cached", round)
		}

		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashDB+"="+path, envCrashRedis+"="+srv.Addr(),
			envCrashUser+"="+u.ID, envCrashMode+"="+mode)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: the child was not killed after its commit: %v\n%s", round, err, out)
		}
		if got, err := st.UserByID(ctx, u.ID); err != nil || got.Name != "Renamed Before Dying" {
			t.Fatalf("round %d: the rename did not commit: %v %v", round, got, err)
		}

		// Read through the other process's cache until the hold has
		// expired, and a while after.
		var reads, stale int
		for deadline := time.Now().Add(crashLoadWindow + 500*time.Millisecond); time.Now().Before(deadline); {
			got, err := reader.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			reads++
			if got.Name != "Renamed Before Dying" {
				stale++
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("round %d (%s): %d reads in %v after the crash, %d stale", round, mode, reads, crashLoadWindow+500*time.Millisecond, stale)
		switch mode {
		case "hold":
			if stale != 0 {
				t.Errorf("round %d: %d of %d reads after the crash returned the old name", round, stale, reads)
			}
			before := hits.Load()
			if _, err := reader.UserByID(ctx, u.ID); err != nil || hits.Load() == before {
				t.Errorf("round %d: the user is not cached again once the hold expired", round)
			}
		case "forget-after":
			// A read whose Redis call times out on a loaded machine goes to
			// the database: most, not all, reads find the old name.
			if stale*2 < reads {
				t.Errorf("round %d: without the hold, %d of %d reads were stale; the crash should have left the old name cached", round, stale, reads)
			}
		}
	}
}
