package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// errInjected is the failure failAt injects.
var errInjected = errors.New("injected failure")

// failAt makes the statements of op whose text contains part fail, until
// the test ends, and returns a counter of the failures it caused.
func failAt(t *testing.T, s *sqlstore.Store, op, part string) *int {
	t.Helper()
	n := new(int)
	s.BeforeStatement = func(gotOp, q string) error {
		if gotOp == op && strings.Contains(q, part) {
			*n++
			return errInjected
		}
		return nil
	}
	t.Cleanup(func() { s.BeforeStatement = nil })
	return n
}

// wantFailed checks that err is the injected failure (as the store
// reports an internal error) and that it happened.
func wantFailed(t *testing.T, err error, n *int) {
	t.Helper()
	if err == nil || !errors.Is(err, errInjected) || *n == 0 {
		t.Fatalf("error = %v after %d injected failures; want the injected failure", err, *n)
	}
}

// testAtomicWrites breaks each write that changes several rows at its
// later statement and finds everything it did before rolled back.
func testAtomicWrites(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()

	t.Run("ChangePassword", func(t *testing.T) {
		u := create(t, s, "Pass", at(0))
		_, tok := login(t, s, u.ID, at(1), time.Hour)
		n := failAt(t, s, "change password", "UPDATE refresh_families")
		_, err := s.ChangePassword(ctx, u.ID, "new-hash", "", at(2))
		wantFailed(t, err, n)
		s.BeforeStatement = nil
		if _, c, err := s.UserByEmail(ctx, u.Email); err != nil || c.Hash != "hash:"+u.ID || c.Version != 0 {
			t.Errorf("credential after a failed change = %+v, %v; want the old hash, version 0", c, err)
		}
		if st := state(t, s, tok.JTI); st.FamilyRevoked {
			t.Errorf("the session ended although the change failed")
		}
	})

	t.Run("Disable", func(t *testing.T) {
		u := create(t, s, "Off", at(0))
		_, tok := login(t, s, u.ID, at(1), time.Hour)
		n := failAt(t, s, "set active", "UPDATE refresh_families")
		_, err := s.SetActive(ctx, u.ID, false, at(2))
		wantFailed(t, err, n)
		s.BeforeStatement = nil
		if got := getUser(t, s, u.ID); !got.IsActive || !got.UpdatedAt.Equal(u.UpdatedAt) {
			t.Errorf("user after a failed disable: active %v, updated %v", got.IsActive, got.UpdatedAt)
		}
		if st := state(t, s, tok.JTI); st.FamilyRevoked {
			t.Errorf("the session ended although the disable failed")
		}
	})

	t.Run("RegisterPushTokenMove", func(t *testing.T) {
		holder := create(t, s, "Holder", at(0))
		taker := create(t, s, "Taker", at(0))
		register(t, s, holder.ID, "tok-atomic-move", "", at(1))
		n := failAt(t, s, "register push token", "INSERT INTO devices")
		_, err := s.RegisterPushToken(ctx, &usersvc.Device{UserID: taker.ID, Token: "tok-atomic-move", DeviceType: usersvc.DeviceIOS}, at(2))
		wantFailed(t, err, n)
		s.BeforeStatement = nil
		wantTokens(t, s, holder.ID, "tok-atomic-move")
		wantPushToken(t, s, holder.ID, ptr("tok-atomic-move"))
		wantTokens(t, s, taker.ID)
		wantPushToken(t, s, taker.ID, nil)
	})

	t.Run("CreateUserWithToken", func(t *testing.T) {
		holder := create(t, s, "Holder2", at(0))
		register(t, s, holder.ID, "tok-atomic-create", "", at(1))
		u := newUser(t, "Newcomer", at(2))
		u.PushToken = ptr("tok-atomic-create")
		n := failAt(t, s, "create user", "INSERT INTO devices")
		_, err := s.CreateUser(ctx, u, "h")
		wantFailed(t, err, n)
		s.BeforeStatement = nil
		_, err = s.UserByID(ctx, u.ID)
		wantCode(t, err, usersvc.ENotFound)
		wantTokens(t, s, holder.ID, "tok-atomic-create")
		wantPushToken(t, s, holder.ID, ptr("tok-atomic-create"))
	})

	t.Run("ImportUser", func(t *testing.T) {
		holder := create(t, s, "Holder3", at(0))
		register(t, s, holder.ID, "tok-atomic-import", "", at(1))
		u := newUser(t, "Imported", at(2))
		devices, err := account.PrepareImport(u, []usersvc.Device{{Token: "tok-atomic-import", DeviceType: usersvc.DeviceWeb}})
		if err != nil {
			t.Fatal(err)
		}
		n := failAt(t, s, "import user", "INSERT INTO devices")
		_, err = s.ImportUser(ctx, u, "h", devices)
		wantFailed(t, err, n)
		s.BeforeStatement = nil
		_, err = s.UserByID(ctx, u.ID)
		wantCode(t, err, usersvc.ENotFound)
		wantTokens(t, s, holder.ID, "tok-atomic-import")
		wantPushToken(t, s, holder.ID, ptr("tok-atomic-import"))
	})

	// The events are the last statement of a write: one that fails takes
	// the change with it, whether its insert runs prepared (SQLite, after
	// the first write of as many events) or not (PostgreSQL).
	t.Run("Event", func(t *testing.T) {
		u := create(t, s, "Evented", at(0))
		for i := range 3 {
			p := lastPosition(t, s)
			n := failAt(t, s, "update preferences", "INSERT INTO events")
			_, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{Email: ptr(false)}, at(1))
			wantFailed(t, err, n)
			s.BeforeStatement = nil
			if got := getUser(t, s, u.ID); !got.Preferences.Email {
				t.Fatalf("round %d: the email preference changed although its event failed", i)
			}
			wantEvents(t, s, p)
			for _, v := range []bool{false, true} {
				if _, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{Email: &v}, at(2)); err != nil {
					t.Fatal(err)
				}
			}
			wantEvents(t, s, p, ev(usersvc.EventPreferencesUpdated, u.ID), ev(usersvc.EventPreferencesUpdated, u.ID))
		}
	})

	t.Run("LoginSession", func(t *testing.T) {
		u := create(t, s, "Login", at(0))
		f := account.RefreshFamily{ID: newID(t), UserID: u.ID, CreatedAt: at(1), ExpiresAt: at(60)}
		first := account.RefreshToken{JTI: newID(t), FamilyID: f.ID, UserID: u.ID, IssuedAt: at(1), ExpiresAt: at(60)}
		n := failAt(t, s, "create refresh family", "INSERT INTO refresh_tokens")
		wantFailed(t, s.CreateRefreshFamily(ctx, f, first, 0), n)
		s.BeforeStatement = nil
		// The family went with its token: a new login under the same id works.
		if err := s.CreateRefreshFamily(ctx, f, first, 0); err != nil {
			t.Errorf("CreateRefreshFamily after a rolled-back one: %v", err)
		}
	})
}

// badTexts are strings that PostgreSQL cannot hold as text and that SQLite
// would keep as they are: a NUL, and invalid UTF-8 (a lone byte, an
// overlong sequence, a surrogate).
var badTexts = []string{"a\x00b", "\xff", "\xc3\x28", "\xed\xa0\x80"}

// testBadText finds that every method answers text it cannot store as a
// lookup of nothing or as EInvalid, never as an internal error, the same
// on every dialect.
func testBadText(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Texts", at(0))
	register(t, s, u.ID, "tok-good", "phone", at(1))
	for _, bad := range badTexts {
		_, _, err := s.UserByEmail(ctx, bad+"@example.com")
		wantCode(t, err, usersvc.ENotFound)
		_, err = s.UserByID(ctx, bad)
		wantCode(t, err, usersvc.ENotFound)
		wantCode(t, s.DeleteDevice(ctx, u.ID, bad, at(2)), usersvc.ENotFound)
		_, err = s.RefreshTokenState(ctx, bad)
		wantCode(t, err, usersvc.ENotFound)
		_, err = spend(t, s, bad, at(2))
		wantCode(t, err, usersvc.ENotFound)
		if n, err := s.RevokeSessions(ctx, u.ID, []string{bad}, "", "ended", at(2)); err != nil || n != 0 {
			t.Errorf("RevokeSessions(%q) = %d, %v", bad, n, err)
		}
		if ids, n, err := s.InvalidatePushTokens(ctx, []string{bad}, "unregistered", at(2)); err != nil || n != 0 || len(ids) != 0 {
			t.Errorf("InvalidatePushTokens(%q) = %v, %d, %v", bad, ids, n, err)
		}
		if ids, err := s.TokenHolders(ctx, []string{bad}); err != nil || len(ids) != 0 {
			t.Errorf("TokenHolders(%q) = %v, %v", bad, ids, err)
		}
		if us, err := s.UsersByIDs(ctx, []string{bad, u.ID}); err != nil || len(us) != 1 {
			t.Errorf("UsersByIDs(%q, a user) = %d users, %v", bad, len(us), err)
		}
		_, err = s.UpdateProfile(ctx, u.ID, usersvc.ProfilePatch{Name: ptr("Name " + bad)}, at(2))
		wantCode(t, err, usersvc.EInvalid)
		_, err = s.RegisterPushToken(ctx, &usersvc.Device{UserID: u.ID, Token: "tok-" + bad, DeviceType: usersvc.DeviceWeb}, at(2))
		wantCode(t, err, usersvc.EInvalid)
		dev := bad
		_, err = s.RegisterPushToken(ctx, &usersvc.Device{UserID: u.ID, Token: "tok-ok", DeviceID: &dev, DeviceType: usersvc.DeviceWeb}, at(2))
		wantCode(t, err, usersvc.EInvalid)
		wantCode(t, s.ClearPushToken(ctx, u.ID, &dev, at(2)), usersvc.EInvalid)
		nu := newUser(t, "New", at(2))
		nu.Email = "x" + bad + "@example.com"
		_, err = s.CreateUser(ctx, nu, "h")
		wantCode(t, err, usersvc.EInvalid)
	}
	// Nothing changed.
	wantTokens(t, s, u.ID, "tok-good")
	if got := getUser(t, s, u.ID); got.Name != u.Name {
		t.Errorf("name = %q, want %q", got.Name, u.Name)
	}
}
