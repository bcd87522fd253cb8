package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// statementLog records the SQL of every statement it is told of.
type statementLog struct {
	mu  sync.Mutex
	sql []string
}

func (l *statementLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	l.sql = append(l.sql, d.SQL)
	l.mu.Unlock()
	return ctx
}

func (l *statementLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *statementLog) statements() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.sql...)
}

// openTraced opens a migrated store on a fresh database whose statements
// tr is told of, and closes it when the test ends.
func openTraced(t *testing.T, tr pgx.QueryTracer) *sqlstore.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), pgtest.NewDatabase(t), postgres.WithTracer(tr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// WithTracer reports the store's statements; a lookup by an id that is not
// a UUID makes none.
func TestOpenWithTracer(t *testing.T) {
	var log statementLog
	s := openTraced(t, &log)
	before := len(log.statements())
	if _, err := s.UserByID(t.Context(), "not-a-uuid"); usersvc.ErrorCode(err) != usersvc.ENotFound {
		t.Fatalf("UserByID(not-a-uuid) = %v", err)
	}
	if n := len(log.statements()) - before; n != 0 {
		t.Errorf("a lookup by a malformed id ran %d statements", n)
	}
	if _, err := s.UserByID(t.Context(), uuid.NewString()); usersvc.ErrorCode(err) != usersvc.ENotFound {
		t.Fatalf("UserByID(unknown) = %v", err)
	}
	got := log.statements()[before:]
	if len(got) != 1 || !strings.Contains(got[0], "FROM users WHERE id = $1") {
		t.Errorf("statements of one lookup = %q", got)
	}
}
