package sqlstore_test

import (
	"path"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// The insert of events is prepared after the first write with as many
// events, where the dialect asks for it (SQLite), and the writes after it
// run it prepared; PostgreSQL leaves it to pgx's own cache.
func TestEventInsertPrepared(t *testing.T) { onEachStore(t, checkEventInsertPrepared) }

func checkEventInsertPrepared(t *testing.T, s *sqlstore.Store) {
	prepared := path.Base(t.Name()) == "sqlite" // PostgreSQL: pgx's cache
	ctx := t.Context()
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if sqlstore.EventStmtPrepared(s, 1) {
		t.Fatal("the insert of one event is prepared before any write")
	}
	now := time.Now().UTC()
	u := newUser(t, s, "Prepared", now) // one event
	if got := sqlstore.EventStmtPrepared(s, 1); got != prepared {
		t.Fatalf("after a write of one event, prepared = %v, want %v", got, prepared)
	}
	if sqlstore.EventStmtPrepared(s, 2) {
		t.Fatal("the insert of two events is prepared before any write of two")
	}
	for i := range 4 {
		v := i%2 == 0
		if _, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{Email: &v}, now); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.Events(ctx, 0, 100)
	if err != nil || len(evs) != 5 {
		t.Fatalf("Events = %d, %v; want 5", len(evs), err)
	}
	for i, e := range evs[1:] {
		if e.Type != usersvc.EventPreferencesUpdated || e.Subject != u.ID || e.Position <= evs[i].Position || e.ID == evs[i].ID {
			t.Errorf("event %d = %+v after %+v", i+1, e, evs[i])
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if sqlstore.EventStmtPrepared(s, 1) {
		t.Error("Close left the prepared insert open")
	}
}
