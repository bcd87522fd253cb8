package account_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
	"github.com/usersvc/usersvc/internal/token"
)

// The rules of the use cases (who may do what, how refresh tokens rotate,
// what disabling, deleting and a password change do to sessions), tested
// where they live: against a Service on a real SQLite store.

// The service keys of newRulesService: one per scope, and one with none.
const (
	readerKey      = "reader-key-0123456789abcdef"
	invalidatorKey = "invalidator-key-0123456789abcdef"
	bareKey        = "bare-key-0123456789abcdef"
)

// rulesPassword is the password of every user of these tests.
const rulesPassword usersvc.Password = "Rul3s!Passw0rd"

// rulesRefreshLifetime is how long a refresh family lives in these tests.
const rulesRefreshLifetime = time.Hour

// rulesEnv is a Service and what its tests need beside it.
type rulesEnv struct {
	svc    *account.Service
	store  *sqlstore.Store
	tokens *token.Service // signs with the Service's own key
	clock  *rulesClock
}

// cheapCrypto returns the password hashing and HS256 tokens of these tests:
// argon2id with cheap parameters, and tokens signed with secret whose
// access tokens live 15 minutes and refresh families refresh.
func cheapCrypto(t *testing.T, secret string, refresh time.Duration) (*password.Hasher, *token.Service) {
	t.Helper()
	hasher, err := password.New(password.WithParams(password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.NewHMACKeySet(token.Secret(secret))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Config{Keys: keys, AccessLifetime: 15 * time.Minute, RefreshLifetime: refresh})
	if err != nil {
		t.Fatal(err)
	}
	return hasher, tokens
}

// newRulesService returns a Service on a new SQLite database in a temporary
// directory, with cheap password hashing, HS256 tokens (refresh families
// living rulesRefreshLifetime), the service keys above, and a clock that
// moves only when told. It is the one place these tests build a Service;
// with, when given, changes the options first.
func newRulesService(t *testing.T, with ...func(*account.Options)) *rulesEnv {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "usersvc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	hasher, tokens := cheapCrypto(t, "rules-test-secret-0123456789abcdefghijkl", rulesRefreshLifetime)
	clock := &rulesClock{t: time.Now().UTC().Truncate(time.Second)}
	opts := account.Options{
		ServiceKeys: account.ServiceKeys{
			{Name: "reader", Key: readerKey, Scopes: []string{account.ScopeUsersRead}},
			{Name: "invalidator", Key: invalidatorKey, Scopes: []string{account.ScopePushTokensInvalidate}},
			{Name: "bare", Key: bareKey},
		},
		Now: clock.Now,
	}
	for _, w := range with {
		w(&opts)
	}
	svc := account.New(st, hasher, tokens, opts)
	return &rulesEnv{svc: svc, store: st, tokens: tokens, clock: clock}
}

// rulesClock is a clock that moves only when told, safe for concurrent use.
type rulesClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *rulesClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *rulesClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// actor is a registered user with one logged-in session.
type actor struct {
	id, email string
	session   *account.Session
	p         account.Principal
}

// register registers email as a user (an admin when admin is set), logs in
// and authenticates with the access token.
func (e *rulesEnv) register(t *testing.T, email string, admin bool) *actor {
	t.Helper()
	create := e.svc.Register
	if admin {
		create = e.svc.CreateAdmin
	}
	u, err := create(t.Context(), usersvc.Registration{Email: email, Password: rulesPassword, Name: "Rules Tester"})
	if err != nil {
		t.Fatalf("registering %s: %v", email, err)
	}
	a := &actor{id: u.ID, email: u.Email, session: e.login(t, email)}
	a.p = e.authenticate(t, a.session.Access)
	if a.p.UserID != u.ID || a.p.IsAdmin != admin {
		t.Fatalf("%s authenticated as %+v", email, a.p)
	}
	return a
}

// login logs in as email with rulesPassword.
func (e *rulesEnv) login(t *testing.T, email string) *account.Session {
	t.Helper()
	s, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: email, Password: rulesPassword})
	if err != nil {
		t.Fatalf("logging in as %s: %v", email, err)
	}
	return s
}

// authenticate turns an access token into a principal.
func (e *rulesEnv) authenticate(t *testing.T, access string) account.Principal {
	t.Helper()
	p, err := e.svc.Authenticate(t.Context(), access, "")
	if err != nil {
		t.Fatalf("authenticating: %v", err)
	}
	return p
}

// service is the principal of a service key.
func (e *rulesEnv) service(t *testing.T, key string) account.Principal {
	t.Helper()
	p, err := e.svc.Authenticate(t.Context(), "", key)
	if err != nil || p.Service == "" {
		t.Fatalf("authenticating a service key: %+v, %v", p, err)
	}
	return p
}

// wantCode fails the test unless err has the code want ("" for no error).
func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := usersvc.ErrorCode(err); got != want {
		t.Fatalf("%s: code %q (%v), want %q", what, got, err, want)
	}
}
