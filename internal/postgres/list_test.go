package postgres_test

import (
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
)

// A list parameter reaches PostgreSQL element for element, as text[] and
// as uuid[], whatever its strings hold.
func TestListParameter(t *testing.T) {
	conn, err := pgx.Connect(t.Context(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(t.Context()) })
	var d postgres.Dialect
	texts := []string{"plain", `with "quotes"`, `back\slash`, `\"`, "comma,and space", "{braces}", "NULL", "", "é ü", "tab\tnew\nline"}
	var got []string
	if err := conn.QueryRow(t.Context(), `SELECT array_agg(x ORDER BY n) FROM unnest($1::text[]) WITH ORDINALITY AS u (x, n)`,
		d.List(texts)).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, texts) {
		t.Errorf("text[] came back as %q, want %q", got, texts)
	}
	ids := []string{uuid.NewString(), uuid.NewString()}
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM unnest($1::uuid[]) AS u (id) WHERE id = ANY($2)`,
		d.List(ids), d.List(ids[:1])).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d ids matched, want 1", n)
	}
	if err := conn.QueryRow(t.Context(), `SELECT cardinality($1::text[])`, d.List([]string{})).Scan(&n); err != nil || n != 0 {
		t.Errorf("an empty list: %d elements, %v", n, err)
	}
}
