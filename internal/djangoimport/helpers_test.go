package djangoimport_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/djangoimport"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

var (
	_ djangoimport.Source      = (*pgx.Conn)(nil)
	_ djangoimport.Source      = (*pgxpool.Pool)(nil)
	_ djangoimport.Destination = (*sqlstore.Store)(nil)
)

// repoRoot walks up from the package directory to the directory of go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

// fixture is the path of the Django dump, in the shared directory beside
// the repository.
func fixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(repoRoot(t), "..", "shared", "fixtures", "django", "users_seed.sql")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Django fixture: %v", err)
	}
	return path
}

// djangoDB returns a connection to a fresh database loaded with the Django
// dump. The dump has psql meta-commands and COPY blocks, so psql loads it.
func djangoDB(t *testing.T) *pgx.Conn {
	t.Helper()
	url := pgtest.NewDatabase(t)
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql is needed to load the Django dump: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", fixture(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("psql -f users_seed.sql: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect to the Django database: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// target is a kind of store to import into.
type target struct {
	name string
	open func(t *testing.T) *sqlstore.Store
}

var targets = []target{
	{"sqlite", func(t *testing.T) *sqlstore.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "usersvc.db"))
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("sqlite Migrate: %v", err)
		}
		return s
	}},
	{"postgres", func(t *testing.T) *sqlstore.Store {
		s, err := postgres.Open(t.Context(), pgtest.NewDatabase(t))
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("postgres Migrate: %v", err)
		}
		return s
	}},
}

// forEachTarget runs f on a fresh store of each kind.
func forEachTarget(t *testing.T, f func(t *testing.T, st *sqlstore.Store)) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) { f(t, tg.open(t)) })
	}
}

func run(t *testing.T, src djangoimport.Source, st *sqlstore.Store, opts djangoimport.Options) *djangoimport.Report {
	t.Helper()
	r, err := djangoimport.Run(t.Context(), src, st, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

// counts are the numbers of a report, compared at once.
type counts struct {
	Seen, Imported, Present, Collapsed, Failed, Devices, Inactive, TokensSkipped, Problems int
}

func countsOf(r *djangoimport.Report) counts {
	return counts{r.UsersSeen, r.UsersImported, r.UsersPresent, r.UsersCollapsed, r.UsersFailed,
		r.DevicesImported, r.DevicesInactive, r.TokensSkipped, len(r.Problems)}
}

func wantCounts(t *testing.T, r *djangoimport.Report, want counts) {
	t.Helper()
	if got := countsOf(r); got != want {
		t.Errorf("report counts = %+v\nwant %+v\nproblems: %v", got, want, r.Problems)
	}
}

// problemKinds maps the row ids of the report's problems to their kinds.
func problemKinds(r *djangoimport.Report) map[string][]string {
	m := map[string][]string{}
	for _, p := range r.Problems {
		m[p.RowID] = append(m[p.RowID], p.Kind)
	}
	for _, k := range m {
		sort.Strings(k)
	}
	return m
}

// state is everything the store holds about its users.
type state struct {
	Users   []usersvc.User
	Hashes  map[string]string
	Devices map[string][]usersvc.Device
}

func snapshot(t *testing.T, st *sqlstore.Store) state {
	t.Helper()
	ctx := t.Context()
	users, total, err := st.ListUsers(ctx, 1000, 0)
	if err != nil || total != len(users) {
		t.Fatalf("ListUsers = %d of %d, %v", len(users), total, err)
	}
	s := state{Users: users, Hashes: map[string]string{}}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
		_, cred, err := st.UserByEmail(ctx, u.Email)
		hash := cred.Hash
		if err != nil {
			t.Fatalf("UserByEmail(%s): %v", u.Email, err)
		}
		s.Hashes[u.ID] = hash
	}
	s.Devices, err = st.DevicesOfUsers(ctx, ids)
	if err != nil {
		t.Fatalf("DevicesOfUsers: %v", err)
	}
	return s
}

func sameState(t *testing.T, before, after state) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		t.Errorf("the store changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// srcUser is a users_user row to add to the Django database.
type srcUser struct {
	ID, Email, Name, Password, Preferences string
	PushToken                              *string
	Active, Staff, Superuser               bool
	LastLogin, CreatedAt, UpdatedAt        *time.Time
}

// addUser inserts u with Django's defaults for what it leaves empty: an
// active user with a name, {"email": true, "push": true}, an unusable
// password, and created_at and updated_at at 2024-01-01.
func addUser(t *testing.T, conn *pgx.Conn, u srcUser) {
	t.Helper()
	if u.Name == "" {
		u.Name = "Extra User"
	}
	if u.Password == "" {
		u.Password = "!unusable"
	}
	if u.Preferences == "" {
		u.Preferences = `{"email": true, "push": true}`
	}
	_, err := conn.Exec(t.Context(), `INSERT INTO users_user
		(id, email, name, password, preferences, push_token, is_active, is_staff, is_superuser, last_login, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12)`,
		u.ID, u.Email, u.Name, u.Password, u.Preferences, u.PushToken, u.Active, u.Staff, u.Superuser,
		u.LastLogin, u.CreatedAt, u.UpdatedAt)
	if err != nil {
		t.Fatalf("insert user %s: %v", u.Email, err)
	}
}

// addToken inserts a users_pushtoken row.
func addToken(t *testing.T, conn *pgx.Conn, id, userID string, deviceID *string, token, deviceType string, active bool, created time.Time) {
	t.Helper()
	_, err := conn.Exec(t.Context(), `INSERT INTO users_pushtoken (id, user_id, device_id, token, device_type, is_active, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, userID, deviceID, token, deviceType, active, created)
	if err != nil {
		t.Fatalf("insert token %s: %v", token, err)
	}
}

// djangoHash is the hash Django's PBKDF2PasswordHasher writes, with few
// iterations so that tests stay fast.
func djangoHash(t *testing.T, password, salt string) string {
	t.Helper()
	const iter = 1000
	key, err := pbkdf2.Key(sha256.New, password, []byte(salt), iter, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	return "pbkdf2_sha256$" + strconv.Itoa(iter) + "$" + salt + "$" + base64.StdEncoding.EncodeToString(key)
}

func ptr[T any](v T) *T { return &v }

func date(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &t
}
