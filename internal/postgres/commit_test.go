package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// roundTrips records what each connection sends: a statement on its own,
// or a batch of statements pipelined together.
type roundTrips struct {
	mu    sync.Mutex
	sends [][]string
	batch []string
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sends = append(r.sends, []string{d.SQL})
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batch = []string{}
	return ctx
}

func (r *roundTrips) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batch = append(r.batch, d.SQL)
}

func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sends = append(r.sends, r.batch)
}

func (r *roundTrips) since(n int) [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.sends[n:]...)
}

func (r *roundTrips) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sends)
}

func newUser(t *testing.T, s *sqlstore.Store) string {
	t.Helper()
	now := time.Now().UTC()
	u := &usersvc.User{ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: "Pipelined",
		Preferences: usersvc.DefaultPreferences(), IsActive: true, CreatedAt: now, UpdatedAt: now}
	if _, err := s.CreateUser(t.Context(), u, "h"); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// A change with its event costs the round trips of the change alone: BEGIN,
// the change, then the insert of the event and the COMMIT in one pipeline.
func TestCommitPipelinesTheEventsInsert(t *testing.T) {
	var log roundTrips
	s := openTraced(t, &log)
	id := newUser(t, s)
	for i := range 3 {
		before := log.count()
		name := fmt.Sprintf("Name %d", i)
		if _, err := s.UpdateProfile(t.Context(), id, usersvc.ProfilePatch{Name: &name}, time.Now()); err != nil {
			t.Fatal(err)
		}
		sends := log.since(before)
		if len(sends) != 3 || sends[0][0] != "BEGIN" || !strings.Contains(sends[1][0], "UPDATE users") ||
			len(sends[2]) != 2 || !strings.Contains(sends[2][0], "INSERT INTO events") || sends[2][1] != "COMMIT" {
			t.Fatalf("write %d sent %q; want BEGIN, the change, then [insert of the event, COMMIT]", i, sends)
		}
	}
	evs, err := s.Events(t.Context(), 0, 100)
	if err != nil || len(evs) != 4 {
		t.Fatalf("events = %d, %v; want 4 (registered, three updates)", len(evs), err)
	}
}

// An insert of events that the database refuses inside the pipeline: the
// COMMIT after it does not run, the change is rolled back, and no
// connection goes back to the pool inside a transaction (every later
// write, on every connection of the pool, succeeds).
func TestCommitWithARefusedInsertRollsBack(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openStore(t, url, true)
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	id := newUser(t, s)
	if _, err := admin.Exec(t.Context(), `CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'events refused'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_event()`); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		name := fmt.Sprintf("Refused %d", i)
		_, err := s.UpdateProfile(t.Context(), id, usersvc.ProfilePatch{Name: &name}, time.Now())
		if err == nil {
			t.Fatalf("write %d succeeded without its event", i)
		}
		if strings.Contains(usersvc.ErrorMessage(err), "refused") {
			t.Fatalf("the database's error reached the client's message: %v", err)
		}
	}
	// Rolled back at once, not left for the pool to find (pgx's driver
	// would discard such a connection when it is next taken).
	idleInTx := func() int {
		var n int
		if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := idleInTx(); n != 0 {
		t.Errorf("after the refusals, %d connections idle in a transaction", n)
	}
	if u, err := s.UserByID(t.Context(), id); err != nil || u.Name != "Pipelined" {
		t.Fatalf("after refused writes the user is %+v, %v; want the name unchanged", u, err)
	}
	if _, err := admin.Exec(t.Context(), `DROP TRIGGER refuse ON events`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 3 {
				name := fmt.Sprintf("Accepted %d.%d", g, i)
				if _, err := s.UpdateProfile(t.Context(), id, usersvc.ProfilePatch{Name: &name}, time.Now()); err != nil {
					t.Errorf("write %d.%d after the refusals: %v", g, i, err)
				}
			}
		})
	}
	wg.Wait()
	if n := idleInTx(); n != 0 {
		t.Errorf("after the accepted writes, %d connections idle in a transaction", n)
	}
	evs, err := s.Events(t.Context(), 0, 100)
	if err != nil || len(evs) != 1+24 {
		t.Errorf("events = %d, %v; want 25 (registered, 24 accepted updates, none refused)", len(evs), err)
	}
}
