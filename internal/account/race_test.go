package account_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/sqlstore"
	"github.com/usersvc/usersvc/internal/token"
)

// Logins racing the writes that end a user's sessions (a password change,
// a disable, a delete), on both stores, under real concurrency: whatever
// the interleaving, no session survives the write, and no login answers
// anything but a wrong password, a disabled account, or a session.

// The shape of one round of TestLoginRacesSessionEndingWrites.
const (
	raceRounds     = 5
	raceLoginners  = 4                     // goroutines firing logins
	raceEvery      = 15 * time.Millisecond // between the logins of one goroutine
	raceMaxLogins  = 40                    // per goroutine and round
	raceMaxTime    = 2 * time.Second       // per goroutine and round
	raceTailLogins = 3                     // per goroutine, started after the write returned
	raceWriteAfter = 45 * time.Millisecond // before the write starts (plus a few ms per round)
)

// raceOldPassword is the password every round's user registers with.
const raceOldPassword usersvc.Password = "0ld!Race-Passw0rd"

// raceEnv is a Service over a store, and what the checks need beside it.
type raceEnv struct {
	svc    *account.Service
	store  *sqlstore.Store
	tokens *token.Service
	events *reasonCounter
	admin  account.Principal
}

// newRaceService builds a Service over st (migrated here) with cheap
// password hashing, HS256 tokens, the real clock, no rate limits, and a
// logger that counts the reasons of failed logins. It registers an admin.
func newRaceService(t *testing.T, st *sqlstore.Store) *raceEnv {
	t.Helper()
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	hasher, tokens := cheapCrypto(t, "race-test-secret-0123456789abcdefghijklm", time.Hour)
	events := &reasonCounter{}
	svc := account.New(st, hasher, tokens, account.Options{
		Logger: slog.New(events),
		Limits: account.Limits{},
	})
	e := &raceEnv{svc: svc, store: st, tokens: tokens, events: events}
	if _, err := svc.CreateAdmin(t.Context(), usersvc.Registration{Email: "race-admin@example.com", Password: raceOldPassword, Name: "Race Admin"}); err != nil {
		t.Fatalf("creating the admin: %v", err)
	}
	e.admin = e.principal(t, "race-admin@example.com", raceOldPassword).p
	if !e.admin.IsAdmin {
		t.Fatalf("the admin authenticated as %+v", e.admin)
	}
	return e
}

// loggedIn is a principal and the session it came from.
type loggedIn struct {
	p       account.Principal
	session *account.Session
}

// principal logs in as email and authenticates with the access token.
func (e *raceEnv) principal(t *testing.T, email string, pw usersvc.Password) loggedIn {
	t.Helper()
	s, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: email, Password: pw})
	if err != nil {
		t.Fatalf("logging in as %s: %v", email, err)
	}
	p, err := e.svc.Authenticate(t.Context(), s.Access, "")
	if err != nil {
		t.Fatalf("authenticating as %s: %v", email, err)
	}
	return loggedIn{p: p, session: s}
}

// reasonCounter is a slog.Handler that counts the failed logins refused
// because the credential changed while the password was being checked:
// the losers of the race that got as far as recording a session.
type reasonCounter struct{ credentialChanged atomic.Int64 }

func (c *reasonCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *reasonCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *reasonCounter) WithGroup(string) slog.Handler            { return c }
func (c *reasonCounter) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" && a.Value.String() == "credential_changed" {
			c.credentialChanged.Add(1)
		}
		return true
	})
	return nil
}

// attempt is one login of a round and its outcome.
type attempt struct {
	start, end time.Time
	code, msg  string // usersvc.ErrorCode and ErrorMessage of the error; "" for a session
	refresh    string // the session's refresh token, when there is one
}

// raceWrite is a write that ends the sessions of a user: it runs as the
// user (self) or as the admin, depending on the round.
type raceWrite struct {
	name string
	run  func(ctx context.Context, e *raceEnv, round int, user loggedIn) error
}

func racePassword(round int) usersvc.Password {
	return usersvc.Password(fmt.Sprintf("N3w!Race-Passw0rd-%d", round))
}

var raceWrites = []raceWrite{
	{"password change", func(ctx context.Context, e *raceEnv, round int, user loggedIn) error {
		_, err := e.svc.ChangePassword(ctx, user.p, user.p.UserID, account.PasswordChange{Current: raceOldPassword, New: racePassword(round)})
		return err
	}},
	{"disable", func(ctx context.Context, e *raceEnv, _ int, user loggedIn) error {
		_, err := e.svc.SetActive(ctx, e.admin, user.p.UserID, false)
		return err
	}},
	{"delete", func(ctx context.Context, e *raceEnv, round int, user loggedIn) error {
		by := user.p // the user on even rounds, an admin on odd ones
		if round%2 == 1 {
			by = e.admin
		}
		return e.svc.DeleteUser(ctx, by, user.p.UserID)
	}},
}

// raceTally sums up the rounds of one write on one store.
type raceTally struct {
	rounds, logins                   int
	won, lost                        int // sessions obtained; logins refused
	wonBeforeWrite, lostAfterWrite   int // won and started before the write started; refused and started after it returned
	startedBefore, startedAfter      int // started before the write returned; after it
	overlapping                      int // ran while the write ran
	credentialChanged                int // refused because the credential moved on while checking the password
	surviving, refreshed, notFound   int // sessions alive in the store; refresh tokens that still worked; 404s to logins
	unexpected, wonAfterWriteReturns int // answers neither 401, 403 (disabled) nor a session; sessions of logins started after the write returned
}

func TestLoginRacesSessionEndingWrites(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) *sqlstore.Store
	}{
		{"sqlite", func(t *testing.T) *sqlstore.Store {
			st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "usersvc.db"))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
		{"postgres", func(t *testing.T) *sqlstore.Store {
			st, err := postgres.Open(t.Context(), pgtest.NewDatabase(t))
			if err != nil {
				t.Fatalf("postgres.Open: %v", err)
			}
			return st
		}},
	}
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			e := newRaceService(t, sc.open(t))
			overlapping := 0 // logins that ran while a write ran, over every round of every write
			for _, w := range raceWrites {
				t.Run(w.name, func(t *testing.T) {
					var tally raceTally
					for round := range raceRounds {
						raceRound(t, e, w, round, &tally)
					}
					t.Logf("%s, %s: %d rounds, %d logins: %d won (%d before the write started), %d lost (%d started after it returned, %d refused at the session because the credential changed); "+
						"%d started before the write returned, %d after, %d overlapped it; %d sessions surviving, %d refresh tokens still working, %d answers 404, %d unexpected answers, %d sessions won by logins started after the write returned",
						sc.name, w.name, tally.rounds, tally.logins, tally.won, tally.wonBeforeWrite, tally.lost, tally.lostAfterWrite, tally.credentialChanged,
						tally.startedBefore, tally.startedAfter, tally.overlapping, tally.surviving, tally.refreshed, tally.notFound, tally.unexpected, tally.wonAfterWriteReturns)
					if tally.startedBefore == 0 || tally.startedAfter == 0 {
						t.Errorf("no race: %d logins started before the write returned and %d after", tally.startedBefore, tally.startedAfter)
					}
					if tally.won == 0 || tally.lost == 0 {
						t.Errorf("no race: %d logins won and %d lost", tally.won, tally.lost)
					}
					overlapping += tally.overlapping
				})
			}
			// A short write (a disable on SQLite takes well under a
			// millisecond) may fall between two logins in a round, so that
			// some login ran during one is asserted over all the rounds.
			if overlapping == 0 {
				t.Errorf("no race: no login ran while a write ran, in %d rounds", raceRounds*len(raceWrites))
			}
		})
	}
}

// raceRound runs one round: a new user, logins with its old password from
// raceLoginners goroutines, and w in the middle of them; then the checks.
func raceRound(t *testing.T, e *raceEnv, w raceWrite, round int, tally *raceTally) {
	t.Helper()
	ctx := t.Context()
	email := fmt.Sprintf("race-%d-%d@example.com", time.Now().UnixNano(), round)
	if _, err := e.svc.Register(ctx, usersvc.Registration{Email: email, Password: raceOldPassword, Name: "Race Tester"}); err != nil {
		t.Fatalf("round %d: registering: %v", round, err)
	}
	user := e.principal(t, email, raceOldPassword)
	changedBefore := e.events.credentialChanged.Load()

	var (
		mu       sync.Mutex
		attempts []attempt
		wg       sync.WaitGroup
		written  = make(chan struct{})
	)
	begin := time.Now()
	for g := range raceLoginners {
		wg.Go(func() {
			// Stagger the goroutines so that a login starts every few ms.
			time.Sleep(time.Duration(g) * raceEvery / raceLoginners)
			tick := time.NewTicker(raceEvery)
			defer tick.Stop()
			after := 0
			for n := 0; n < raceMaxLogins && time.Since(begin) < raceMaxTime && after < raceTailLogins; n++ {
				select {
				case <-written:
					after++
				default:
				}
				a := attempt{start: time.Now()}
				s, err := e.svc.Login(ctx, usersvc.Credentials{Email: email, Password: raceOldPassword})
				a.end = time.Now()
				if err != nil {
					a.code, a.msg = usersvc.ErrorCode(err), usersvc.ErrorMessage(err)
					if a.code == usersvc.EInternal || a.code == usersvc.EUnavailable {
						a.msg = err.Error()
					}
				} else {
					a.refresh = s.Refresh
				}
				mu.Lock()
				attempts = append(attempts, a)
				mu.Unlock()
				<-tick.C
			}
		})
	}

	time.Sleep(raceWriteAfter + time.Duration(round)*3*time.Millisecond)
	writeStart := time.Now()
	werr := w.run(ctx, e, round, user)
	writeEnd := time.Now()
	close(written)
	wg.Wait()
	if werr != nil {
		t.Fatalf("round %d: %s: %v", round, w.name, werr)
	}

	// The outcomes of the logins.
	var won, lost, overlapping, before, after, notFound int
	refreshes := []string{user.session.Refresh}
	for _, a := range attempts {
		if a.start.Before(writeEnd) {
			before++
		} else {
			after++
		}
		if a.start.Before(writeEnd) && a.end.After(writeStart) {
			overlapping++
		}
		switch {
		case a.code == "":
			won++
			refreshes = append(refreshes, a.refresh)
			if a.start.Before(writeStart) {
				tally.wonBeforeWrite++
			}
			if a.start.After(writeEnd) {
				tally.wonAfterWriteReturns++
				t.Errorf("%s, round %d: a login with the old password started %v after the write returned and got a session", w.name, round, a.start.Sub(writeEnd))
			}
		case a.code == usersvc.EUnauthorized && a.msg == account.MsgInvalidCredentials:
			lost++
		case a.code == usersvc.EForbidden && a.msg == account.MsgAccountDisabled && w.name == "disable":
			lost++
		case a.code == usersvc.ENotFound:
			notFound++
			t.Errorf("%s, round %d: a login answered 404: %q", w.name, round, a.msg)
		default:
			tally.unexpected++
			t.Errorf("%s, round %d: a login answered %q %q", w.name, round, a.code, a.msg)
		}
		if a.code != "" && a.start.After(writeEnd) {
			tally.lostAfterWrite++
		}
	}
	changed := int(e.events.credentialChanged.Load() - changedBefore)

	// Every session obtained with the old password, the user's own among
	// them, has ended in the store...
	surviving := 0
	now := time.Now()
	for i, raw := range refreshes {
		claims, err := e.tokens.ParseRefresh(raw, now)
		if err != nil {
			t.Fatalf("%s, round %d: parsing refresh token %d: %v", w.name, round, i, err)
		}
		st, err := e.store.RefreshTokenState(ctx, claims.JTI)
		switch {
		case usersvc.ErrorCode(err) == usersvc.ENotFound && w.name == "delete":
		case err != nil:
			t.Fatalf("%s, round %d: state of refresh token %d: %v", w.name, round, i, err)
		case !st.FamilyRevoked:
			surviving++
		}
	}
	// ... and Refresh refuses each of its tokens; a disabled user is
	// enabled again first, which must not bring any of them back.
	if w.name == "disable" {
		if _, err := e.svc.SetActive(ctx, e.admin, user.p.UserID, true); err != nil {
			t.Fatalf("round %d: enabling the user again: %v", round, err)
		}
	}
	refreshed := 0
	for i, raw := range refreshes {
		_, err := e.svc.Refresh(ctx, raw)
		switch code := usersvc.ErrorCode(err); code {
		case usersvc.EUnauthorized:
		case "":
			refreshed++
		default:
			t.Errorf("%s, round %d: refreshing token %d: %v", w.name, round, i, err)
		}
	}
	if surviving != 0 || refreshed != 0 {
		t.Errorf("%s, round %d: of %d sessions from before and during the write, %d survive in the store and %d refresh tokens still work", w.name, round, len(refreshes), surviving, refreshed)
	}

	// The user's credentials are as the write left them, and a session
	// started now refreshes: the refusals above are not vacuous.
	switch w.name {
	case "password change":
		_, err := e.svc.Login(ctx, usersvc.Credentials{Email: email, Password: raceOldPassword})
		wantCode(t, "logging in with the old password after the change", err, usersvc.EUnauthorized)
		raceFreshSession(t, e, email, racePassword(round))
	case "disable":
		raceFreshSession(t, e, email, raceOldPassword)
	case "delete":
		_, err := e.svc.Login(ctx, usersvc.Credentials{Email: email, Password: raceOldPassword})
		wantCode(t, "logging in after the delete", err, usersvc.EUnauthorized)
	}

	t.Logf("round %d: %d logins (%d started before the write returned, %d after, %d overlapped its %v), %d won, %d lost (%d at the session); %d sessions surviving, %d refreshed, %d answers 404",
		round, len(attempts), before, after, overlapping, writeEnd.Sub(writeStart).Round(time.Microsecond), won, lost, changed, surviving, refreshed, notFound)
	tally.rounds++
	tally.logins += len(attempts)
	tally.won += won
	tally.lost += lost
	tally.startedBefore += before
	tally.startedAfter += after
	tally.overlapping += overlapping
	tally.credentialChanged += changed
	tally.surviving += surviving
	tally.refreshed += refreshed
	tally.notFound += notFound
}

// raceFreshSession logs in as email with pw and refreshes the session.
func raceFreshSession(t *testing.T, e *raceEnv, email string, pw usersvc.Password) {
	t.Helper()
	s, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: email, Password: pw})
	if err != nil {
		t.Fatalf("logging in as %s after the write: %v", email, err)
	}
	if _, err := e.svc.Refresh(t.Context(), s.Refresh); err != nil {
		t.Fatalf("refreshing a session started after the write: %v", err)
	}
}
