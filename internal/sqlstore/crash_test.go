package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

const (
	envWriterChild = "USERSVC_OUTBOX_WRITER"
	envWriterDB    = "USERSVC_OUTBOX_DB"
)

// open opens the store a crash test names: "sqlite:PATH" or a PostgreSQL URL.
func open(ctx context.Context, name string) (*sqlstore.Store, error) {
	if p, ok := strings.CutPrefix(name, "sqlite:"); ok {
		return sqlite.Open(ctx, p)
	}
	return postgres.Open(ctx, name)
}

// TestOutboxWriterChild is the process that is killed: it registers users
// and changes their preferences as fast as it can, until it dies.
func TestOutboxWriterChild(t *testing.T) {
	if os.Getenv(envWriterChild) == "" {
		t.Skip("the child of TestOutboxSurvivesKill")
	}
	ctx := context.Background()
	s, err := open(ctx, os.Getenv(envWriterDB))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		now := time.Now().UTC()
		u := &usersvc.User{ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: "Crash",
			Preferences: usersvc.DefaultPreferences(), IsActive: true, CreatedAt: now, UpdatedAt: now}
		if _, err := s.CreateUser(ctx, u, "h"); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			v := j%2 == 0
			if _, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{Email: &v}, now); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestOutboxSurvivesKill kills (SIGKILL) a process in the middle of its
// writes, on both databases, and finds the outbox and the data agree: a
// user.registered event for every user and none for a user that is not
// there, and for every user the last preferences.updated event says what
// the user's preferences are.
func TestOutboxSurvivesKill(t *testing.T) {
	dbs := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "crash.db")}
	if os.Getenv("USERSVC_TEST_POSTGRES_URL") != "" || os.Getenv("USERSVC_REQUIRE_INTEGRATION") != "" {
		dbs["postgres"] = pgtest.NewDatabase(t)
	}
	for name, db := range dbs {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s, err := open(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxWriterChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), envWriterChild+"=1", envWriterDB+"="+db)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(300+200*round) * time.Millisecond)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				err := cmd.Wait()
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("round %d: the writer was not killed: %v", round, err)
				}
			}
			checkOutboxAgrees(t, s)
		})
	}
}

func checkOutboxAgrees(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	registered := map[string]bool{}
	lastPrefs := map[string]usersvc.Preferences{}
	var after int64
	for {
		evs, err := s.Events(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			switch e.Type {
			case usersvc.EventUserRegistered:
				registered[e.Subject] = true
			case usersvc.EventPreferencesUpdated:
				var d usersvc.PreferencesEventData
				if err := json.Unmarshal(e.Data, &d); err != nil {
					t.Fatal(err)
				}
				lastPrefs[e.Subject] = d.Preferences
			}
			after = e.Position
		}
	}
	var users []usersvc.User
	for page := 0; ; page++ {
		us, total, err := s.ListUsers(ctx, 1000, page*1000)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, us...)
		if len(users) >= total {
			break
		}
	}
	if len(users) == 0 {
		t.Fatal("the writer wrote nothing before it was killed")
	}
	for _, u := range users {
		if !registered[u.ID] {
			t.Errorf("user %s has no user.registered event", u.ID)
		}
		if p, ok := lastPrefs[u.ID]; ok && !p.Equal(u.Preferences) {
			t.Errorf("user %s: preferences %+v, the last event says %+v", u.ID, u.Preferences, p)
		} else if !ok && !u.Preferences.Equal(usersvc.DefaultPreferences()) {
			t.Errorf("user %s changed its preferences without an event", u.ID)
		}
		delete(registered, u.ID)
	}
	if len(registered) > 0 {
		t.Errorf("%d user.registered events of users that are not there", len(registered))
	}
	t.Logf("%d users, %d events, all in agreement after 3 kills", len(users), after)
}
