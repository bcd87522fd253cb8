package account_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/redistest"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// sessionInterval is the refresh reuse interval of these tests.
const sessionInterval = 10 * time.Second

// sessionPassword is the password of every user of these tests.
const sessionPassword usersvc.Password = "Sess10n!Passw0rd"

// sessionDB opens a new, migrated store of a database that every store
// opened by the returned function shares: a replica each.
type sessionDB struct {
	name string
	open func(t *testing.T) *sqlstore.Store
}

func sessionDBs(t *testing.T) []sessionDB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "usersvc.db")
	dbs := []sessionDB{{"sqlite", func(t *testing.T) *sqlstore.Store {
		st, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		return migrated(t, st)
	}}}
	var url string
	dbs = append(dbs, sessionDB{"postgres", func(t *testing.T) *sqlstore.Store {
		if url == "" {
			url = pgtest.NewDatabase(t)
		}
		st, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		return migrated(t, st)
	}})
	return dbs
}

func migrated(t *testing.T, st *sqlstore.Store) *sqlstore.Store {
	t.Helper()
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// sessionReplicas returns n Services over db, with the reuse interval,
// one signing key and one clock; with redis, each has its own cache in
// that Redis in front of its own store.
func sessionReplicas(t *testing.T, db sessionDB, n int, redis *redistest.Server) ([]*account.Service, *rulesClock) {
	t.Helper()
	hasher, tokens := cheapCrypto(t, "session-test-secret-0123456789abcdefghij", 24*time.Hour)
	clock := &rulesClock{t: time.Now().UTC().Truncate(time.Second)}
	out := make([]*account.Service, n)
	for i := range out {
		var st account.Store = db.open(t)
		if redis != nil {
			c := cache.NewRedis(redis.Client(t), cache.RedisOptions{})
			t.Cleanup(func() { _ = c.Close() })
			st = cache.Wrap(st.(*sqlstore.Store), c)
		}
		out[i] = account.New(st, hasher, tokens, account.Options{Now: clock.Now, RefreshReuseInterval: sessionInterval})
	}
	return out, clock
}

// sessionUser registers a user on svc and logs it in.
func sessionUser(t *testing.T, svc *account.Service) (usersvc.User, *account.Session) {
	t.Helper()
	u, err := svc.Register(t.Context(), usersvc.Registration{Email: uuid.NewString() + "@example.com", Password: sessionPassword, Name: "Session Tester"})
	if err != nil {
		t.Fatal(err)
	}
	return *u, sessionLogin(t, svc, u.Email)
}

func sessionLogin(t *testing.T, svc *account.Service, email string) *account.Session {
	t.Helper()
	s, err := svc.Login(t.Context(), usersvc.Credentials{Email: email, Password: sessionPassword})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRefresh(t *testing.T, svc *account.Service, raw string) *account.Session {
	t.Helper()
	s, err := svc.Refresh(t.Context(), raw)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return s
}

func refused(t *testing.T, what string, svc *account.Service, raw string) {
	t.Helper()
	if _, err := svc.Refresh(t.Context(), raw); usersvc.ErrorCode(err) != usersvc.EUnauthorized {
		t.Errorf("%s: refresh answered %v, want EUnauthorized", what, err)
	}
}

func forEachSessionDB(t *testing.T, f func(t *testing.T, db sessionDB)) {
	for _, db := range sessionDBs(t) {
		t.Run(db.name, func(t *testing.T) { f(t, db) })
	}
}

// A client whose refresh answer was lost retries with the same token:
// within the interval it gets the same successor and the session lives
// on; after it, the retry is reuse and ends the session.
func TestRefreshRetryOfLostAnswer(t *testing.T) {
	forEachSessionDB(t, func(t *testing.T, db sessionDB) {
		svcs, clock := sessionReplicas(t, db, 1, nil)
		svc := svcs[0]
		u, s := sessionUser(t, svc)
		lost := mustRefresh(t, svc, s.Refresh)
		clock.Advance(sessionInterval - time.Second)
		retry := mustRefresh(t, svc, s.Refresh)
		if retry.Refresh != lost.Refresh {
			t.Fatalf("the retry got another successor")
		}
		if _, err := svc.Authenticate(t.Context(), retry.Access, ""); err != nil {
			t.Errorf("the retry's access token: %v", err)
		}
		next := mustRefresh(t, svc, retry.Refresh)

		// After the interval: reuse, and the family is revoked.
		s2 := sessionLogin(t, svc, u.Email)
		a := mustRefresh(t, svc, s2.Refresh)
		clock.Advance(sessionInterval + time.Second)
		refused(t, "a retry after the interval", svc, s2.Refresh)
		refused(t, "the successor of a revoked family", svc, a.Refresh)
		if _, err := svc.Authenticate(t.Context(), a.Access, ""); usersvc.ErrorCode(err) != usersvc.EUnauthorized {
			t.Errorf("an access token of the revoked session: %v", err)
		}
		// The first session is untouched.
		mustRefresh(t, svc, next.Refresh)
	})
}

// Twenty parallel refreshes of one token, on one replica and spread over
// two (with Redis), all get one successor; the session lives on.
func TestParallelRefreshOneSuccessor(t *testing.T) {
	redis := redistest.Start(t)
	for _, replicas := range []int{1, 2} {
		t.Run(fmt.Sprintf("replicas=%d", replicas), func(t *testing.T) { testParallelRefresh(t, redis, replicas) })
	}
}

func testParallelRefresh(t *testing.T, redis *redistest.Server, replicas int) {
	forEachSessionDB(t, func(t *testing.T, db sessionDB) {
		var rs *redistest.Server
		if replicas == 2 {
			rs = redis
		}
		svcs, _ := sessionReplicas(t, db, replicas, rs)
		_, s := sessionUser(t, svcs[0])
		const n = 20
		got := make([]*account.Session, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				got[i], errs[i] = svcs[i%replicas].Refresh(t.Context(), s.Refresh)
			})
		}
		close(start)
		wg.Wait()
		distinct := map[string]bool{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("refresh %d of %d on %d replicas: %v", i, n, replicas, errs[i])
			}
			distinct[got[i].Refresh] = true
		}
		if len(distinct) != 1 {
			t.Fatalf("%d parallel refreshes on %d replicas gave %d distinct successors, want 1", n, replicas, len(distinct))
		}
		next := mustRefresh(t, svcs[replicas-1], got[0].Refresh)
		if _, err := svcs[0].Authenticate(t.Context(), next.Access, ""); err != nil {
			t.Errorf("the session after the parallel refreshes: %v", err)
		}
	})
}

// Theft is still detected: once a successor has been used, replaying its
// parent, or any older ancestor, revokes the family.
func TestRefreshTheftDetected(t *testing.T) {
	forEachSessionDB(t, func(t *testing.T, db sessionDB) {
		svcs, _ := sessionReplicas(t, db, 1, nil)
		svc := svcs[0]
		u, s := sessionUser(t, svc)
		a := mustRefresh(t, svc, s.Refresh)
		b := mustRefresh(t, svc, a.Refresh) // the successor is used
		refused(t, "the parent replayed after its successor was used", svc, s.Refresh)
		refused(t, "the newest token of the revoked family", svc, b.Refresh)

		s2 := sessionLogin(t, svc, u.Email)
		x1 := mustRefresh(t, svc, s2.Refresh)
		x2 := mustRefresh(t, svc, x1.Refresh)
		x3 := mustRefresh(t, svc, x2.Refresh)
		refused(t, "a grandparent replayed", svc, s2.Refresh)
		refused(t, "the newest token after an ancestor's replay", svc, x3.Refresh)
		if _, err := svc.Authenticate(t.Context(), x3.Access, ""); usersvc.ErrorCode(err) != usersvc.EUnauthorized {
			t.Errorf("an access token of the revoked family: %v", err)
		}
	})
}

// Logout, the end of one session and a password change refuse the
// session's access token on the next request: on one replica, and on a
// second replica with Redis.
func TestEndedSessionRefusesAccessToken(t *testing.T) {
	redis := redistest.Start(t)
	forEachSessionDB(t, func(t *testing.T, db sessionDB) {
		svcs, _ := sessionReplicas(t, db, 2, redis)
		a, b := svcs[0], svcs[1]
		ctx := t.Context()
		u, s := sessionUser(t, a)
		p := func(svc *account.Service, access string) error {
			_, err := svc.Authenticate(ctx, access, "")
			return err
		}
		// Warm both replicas' caches with the live session.
		for _, svc := range svcs {
			if err := p(svc, s.Access); err != nil {
				t.Fatal(err)
			}
		}
		refusedOn := func(what, access string) {
			t.Helper()
			for i, svc := range svcs {
				if err := p(svc, access); usersvc.ErrorCode(err) != usersvc.EUnauthorized {
					t.Errorf("%s: replica %d answered %v, want EUnauthorized", what, i, err)
				}
			}
		}

		// Logout on A.
		if err := a.Logout(ctx, s.Refresh); err != nil {
			t.Fatal(err)
		}
		refusedOn("after a logout", s.Access)

		// The end of one session on B, by its own user.
		one, two := sessionLogin(t, a, u.Email), sessionLogin(t, a, u.Email)
		owner, err := b.Authenticate(ctx, two.Access, "")
		if err != nil {
			t.Fatal(err)
		}
		infos, err := b.Sessions(ctx, owner, u.ID)
		if err != nil || len(infos) != 2 {
			t.Fatalf("sessions: %+v, %v", infos, err)
		}
		var oneID string
		for _, in := range infos {
			if in.Current {
				continue
			}
			oneID = in.ID
		}
		if err := b.EndSession(ctx, owner, u.ID, oneID); err != nil {
			t.Fatal(err)
		}
		refusedOn("after the session ended", one.Access)
		if err := p(a, two.Access); err != nil {
			t.Errorf("the other session after one ended: %v", err)
		}
		if err := b.EndSession(ctx, owner, u.ID, oneID); usersvc.ErrorCode(err) != usersvc.ENotFound {
			t.Errorf("ending an ended session: %v, want ENotFound", err)
		}

		// A password change on A ends every other session, seen on B.
		three := sessionLogin(t, b, u.Email)
		if _, err := a.ChangePassword(ctx, owner, u.ID, account.PasswordChange{Current: sessionPassword, New: "N3w!Sess10n-pass", Keep: two.Refresh}); err != nil {
			t.Fatal(err)
		}
		refusedOn("after a password change", three.Access)
		for i, svc := range svcs {
			if err := p(svc, two.Access); err != nil {
				t.Errorf("the kept session on replica %d: %v", i, err)
			}
		}

		// Log out everywhere but here, then everywhere.
		_ = sessionLoginWith(t, a, u.Email, "N3w!Sess10n-pass")
		if n, err := b.EndSessions(ctx, owner, u.ID, false); err != nil || n != 1 {
			t.Errorf("EndSessions(but current) = %d, %v; want 1", n, err)
		}
		if err := p(a, two.Access); err != nil {
			t.Errorf("the caller's session after ending the others: %v", err)
		}
		if n, err := b.EndSessions(ctx, owner, u.ID, true); err != nil || n != 1 {
			t.Errorf("EndSessions(all) = %d, %v; want 1", n, err)
		}
		refusedOn("after logging out everywhere", two.Access)
	})
}

func sessionLoginWith(t *testing.T, svc *account.Service, email string, pw usersvc.Password) *account.Session {
	t.Helper()
	s, err := svc.Login(t.Context(), usersvc.Credentials{Email: email, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
