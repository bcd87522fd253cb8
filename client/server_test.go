package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/unsubscribe"
)

// The credentials of the test servers: the HS256 secret, the key of the
// "notifier" service (it may read users) and the key of the "pusher"
// service (it may only invalidate push tokens).
const (
	testSecret     = "test-secret-key-that-is-long-enough-0123456789"
	serviceKey     = "notifier-key-0123456789abcdef"
	invalidatorKey = "pusher-key-0123456789abcdef"
	// curatorKey is the key of the "curator" service, which may define
	// categories (categories.write) and nothing else.
	curatorKey = "curator-key-0123456789abcdef"
	// unsubscribeKey signs the one-click unsubscribe links.
	unsubscribeKey = "unsubscribe-key-of-the-client-tests-0123456789"
)

// testServer is the user service on real adapters (SQLite in a temporary
// directory, argon2id with cheap parameters) behind httptest.
type testServer struct {
	URL      string
	accounts *account.Service
	tokens   *token.Service
	srv      *httptest.Server
	store    *sqlstore.Store
	dir      string

	mu       sync.Mutex
	requests map[string]int // by "METHOD path"
}

// startServer starts a server that signs with keys (HS256 with testSecret
// when nil). Close stops it and removes its files.
func startServer(keys *token.KeySet) (*testServer, error) {
	ctx := context.Background()
	if keys == nil {
		var err error
		if keys, err = token.NewHMACKeySet(token.Secret(testSecret)); err != nil {
			return nil, err
		}
	}
	tokens, err := token.New(token.Config{Keys: keys})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "usersvc-client-test-")
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "usersvc.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &testServer{tokens: tokens, store: st, dir: dir, requests: map[string]int{}}
	if err := st.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	hasher, err := password.New(password.WithParams(password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}))
	if err != nil {
		s.Close()
		return nil, err
	}
	serviceKeys, err := account.ParseServiceKeys("notifier:" + serviceKey + ":users.read,events.read,pusher:" + invalidatorKey + ":push_tokens.invalidate,curator:" + curatorKey + ":categories.write")
	if err != nil {
		s.Close()
		return nil, err
	}
	signer, err := unsubscribe.New([]byte(unsubscribeKey))
	if err != nil {
		s.Close()
		return nil, err
	}
	s.accounts = account.New(st, hasher, tokens, account.Options{ServiceKeys: serviceKeys, Unsubscribe: signer})
	logger := slog.New(slog.DiscardHandler)
	var handler http.Handler
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.Method+" "+r.URL.Path]++
		s.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	// The unsubscribe links point at the server's own address.
	s.URL = "http://" + s.srv.Listener.Addr().String()
	handler = httpapi.NewServer(logger, httpapi.Config{Version: "test", JWKS: tokens.JWKS, PublicURL: s.URL}, s.accounts, httpapi.Health{Database: st.Ping})
	s.srv.Start()
	return s, nil
}

// Close stops the server and removes its files.
func (s *testServer) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
	s.store.Close()
	os.RemoveAll(s.dir)
}

// count returns how many requests reached "METHOD path".
func (s *testServer) count(methodPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[methodPath]
}

// newTestServer starts an HS256 server for the length of the test.
func newTestServer(t *testing.T) *testServer {
	t.Helper()
	return newTestServerWith(t, nil)
}

func newTestServerWith(t *testing.T, keys *token.KeySet) *testServer {
	t.Helper()
	s, err := startServer(keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// newEdDSAKeys returns a key set of one new Ed25519 key.
func newEdDSAKeys(t *testing.T) *token.KeySet {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.NewKeySet(token.EdDSA, priv)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// addUser registers a user directly (not through the API), with the
// preferences given and, for each token, a device. It returns the user's id.
func (s *testServer) addUser(ctx context.Context, email, name string, prefs usersvc.Preferences, tokens ...string) (string, error) {
	u, err := s.accounts.Register(ctx, usersvc.Registration{
		Email: email, Name: name, Password: "Str0ng!Passw0rd",
		Preferences: usersvc.PreferencesPatch{Email: &prefs.Email, Push: &prefs.Push},
	})
	if err != nil {
		return "", err
	}
	for i, tok := range tokens {
		device := []string{"phone", "tablet", "laptop"}[i%3]
		kind := []string{usersvc.DeviceAndroid, usersvc.DeviceIOS, usersvc.DeviceWeb}[i%3]
		_, err := s.accounts.UpdatePushToken(ctx, account.Principal{UserID: u.ID}, u.ID, usersvc.PushTokenUpdate{Token: &tok, DeviceID: &device, DeviceType: kind})
		if err != nil {
			return "", err
		}
	}
	return u.ID, nil
}

// testUser is a user registered and logged in through the client.
type testUser struct {
	ID       string
	Email    string
	Password string
	Tokens   client.Tokens
	// Client calls as this user.
	Client *client.Client
}

// register registers and logs in a user through the client.
func (s *testServer) register(t *testing.T, email, name string) testUser {
	t.Helper()
	anon := s.client(t)
	u := testUser{Email: email, Password: "Str0ng!Passw0rd"}
	reg, err := anon.Register(t.Context(), usersvc.Registration{Email: email, Name: name, Password: usersvc.Password(u.Password)})
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	u.ID = reg.ID
	sess, err := anon.Login(t.Context(), usersvc.Credentials{Email: email, Password: usersvc.Password(u.Password)})
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	u.Tokens = sess.Tokens
	u.Client = s.client(t, client.WithBearerToken(sess.Tokens.Access))
	return u
}

// admin creates an admin and logs it in through the client.
func (s *testServer) admin(t *testing.T, email string) testUser {
	t.Helper()
	u := testUser{Email: email, Password: "Adm1n!Passw0rd"}
	a, err := s.accounts.CreateAdmin(t.Context(), usersvc.Registration{Email: email, Name: "Admin", Password: usersvc.Password(u.Password)})
	if err != nil {
		t.Fatal(err)
	}
	u.ID = a.ID
	sess, err := s.client(t).Login(t.Context(), usersvc.Credentials{Email: email, Password: usersvc.Password(u.Password)})
	if err != nil {
		t.Fatalf("login admin: %v", err)
	}
	u.Tokens = sess.Tokens
	u.Client = s.client(t, client.WithBearerToken(sess.Tokens.Access))
	return u
}

// client returns a client of the server.
func (s *testServer) client(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(s.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
