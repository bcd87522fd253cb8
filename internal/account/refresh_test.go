package account_test

import (
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// refresh spends a refresh token, failing the test unless it gives a new pair.
func (e *rulesEnv) refresh(t *testing.T, raw string) *account.Session {
	t.Helper()
	s, err := e.svc.Refresh(t.Context(), raw)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if s.Refresh == raw || s.Access == "" {
		t.Fatal("refresh did not hand out a new pair")
	}
	return s
}

// refused checks that a refresh token no longer refreshes.
func (e *rulesEnv) refused(t *testing.T, what, raw string) {
	t.Helper()
	_, err := e.svc.Refresh(t.Context(), raw)
	wantCode(t, what, err, usersvc.EUnauthorized)
}

func TestRefreshRotates(t *testing.T) {
	e := newRulesService(t)
	u := e.register(t, "rotate@example.com", false)
	next := e.refresh(t, u.session.Refresh)
	if p := e.authenticate(t, next.Access); p.UserID != u.id {
		t.Fatalf("the new access token is of %q", p.UserID)
	}
	// The successor refreshes in its turn.
	e.refresh(t, next.Refresh)
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	e := newRulesService(t)
	u := e.register(t, "reuse@example.com", false)
	elsewhere := e.login(t, u.email) // another family of the same user

	first := u.session.Refresh
	second := e.refresh(t, first)
	third := e.refresh(t, second.Refresh)

	// The spent first token presented again: reuse.
	e.refused(t, "the spent token again", first)
	// Its whole family ends, the newest token of the legitimate holder included.
	e.refused(t, "the newest token of the family", third.Refresh)
	e.refused(t, "a spent token of the family", second.Refresh)
	// Another login is another family, untouched.
	e.refresh(t, elsewhere.Refresh)
}

func TestRefreshParallelOneWinner(t *testing.T) {
	e := newRulesService(t)
	u := e.register(t, "parallel@example.com", false)

	const n = 20
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		sessions = make([]*account.Session, n)
		errs     = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			sessions[i], errs[i] = e.svc.Refresh(t.Context(), u.session.Refresh)
		})
	}
	close(start)
	wg.Wait()

	var winner *account.Session
	for i, err := range errs {
		switch code := usersvc.ErrorCode(err); code {
		case "":
			if winner != nil {
				t.Fatal("two parallel refreshes of one token both succeeded")
			}
			winner = sessions[i]
		case usersvc.EUnauthorized:
		default:
			t.Errorf("refresh %d: code %q (%v), want success or unauthorized", i, code, err)
		}
	}
	if winner == nil {
		t.Fatal("no parallel refresh succeeded")
	}
	// The others were reuse: the family ended, the winner's pair with it.
	e.refused(t, "the winner's refresh token", winner.Refresh)
	// Logging in again starts a new family.
	e.refresh(t, e.login(t, u.email).Refresh)
}

func TestLogoutEndsFamily(t *testing.T) {
	e := newRulesService(t)
	u := e.register(t, "logout@example.com", false)
	elsewhere := e.login(t, u.email)
	first := u.session.Refresh
	second := e.refresh(t, first)

	if err := e.svc.Logout(t.Context(), second.Refresh); err != nil {
		t.Fatalf("logout: %v", err)
	}
	e.refused(t, "the token logged out with", second.Refresh)
	// Logging out of an ended family is not an error, with any of its tokens.
	if err := e.svc.Logout(t.Context(), second.Refresh); err != nil {
		t.Errorf("logout again: %v", err)
	}
	if err := e.svc.Logout(t.Context(), first); err != nil {
		t.Errorf("logout with a spent token of the family: %v", err)
	}
	// Only that family ended.
	e.refresh(t, elsewhere.Refresh)
	// What is not a refresh token of this service is refused.
	for name, raw := range map[string]string{"an access token": second.Access, "garbage": "a.b.c", "empty": ""} {
		wantCode(t, "logout with "+name, e.svc.Logout(t.Context(), raw), usersvc.EUnauthorized)
	}
}

func TestRefreshFamilyNotExtendedByRotation(t *testing.T) {
	e := newRulesService(t)
	u := e.register(t, "lifetime@example.com", false)
	e.clock.Advance(rulesRefreshLifetime * 2 / 3)
	rotated := e.refresh(t, u.session.Refresh)
	// Were rotation to extend the family, rotated would live a whole
	// lifetime from now; the family ends a lifetime after its login.
	e.clock.Advance(rulesRefreshLifetime/3 + time.Second)
	e.refused(t, "a token rotated in a family past its lifetime", rotated.Refresh)
}
