package account_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// authRefused checks that an access token no longer authenticates.
func (e *rulesEnv) authRefused(t *testing.T, what, access, msg string) {
	t.Helper()
	_, err := e.svc.Authenticate(t.Context(), access, "")
	wantCode(t, what, err, usersvc.EUnauthorized)
	if got := usersvc.ErrorMessage(err); got != msg {
		t.Errorf("%s: message %q, want %q", what, got, msg)
	}
}

func TestDisabledUser(t *testing.T) {
	e := newRulesService(t)
	adm := e.register(t, "admin@example.com", true)
	u := e.register(t, "disabled@example.com", false)
	other := e.login(t, u.email)
	untouched := e.login(t, u.email) // not presented while disabled

	if _, err := e.svc.SetActive(t.Context(), adm.p, u.id, false); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: u.email, Password: rulesPassword})
	wantCode(t, "login", err, usersvc.EForbidden)
	if msg := usersvc.ErrorMessage(err); msg != account.MsgAccountDisabled {
		t.Errorf("login: message %q", msg)
	}
	// A wrong password is still only a wrong password: being disabled is
	// told only to whoever knows the password.
	_, err = e.svc.Login(t.Context(), usersvc.Credentials{Email: u.email, Password: "Wr0ng!Password"})
	wantCode(t, "login with a wrong password", err, usersvc.EUnauthorized)
	e.refused(t, "refresh", u.session.Refresh)
	e.refused(t, "refresh of another session", other.Refresh)
	e.authRefused(t, "access token", u.session.Access, account.MsgAccountDisabled)

	// Enabled again: login works, the sessions ended by the disabling stay ended.
	if _, err := e.svc.SetActive(t.Context(), adm.p, u.id, true); err != nil {
		t.Fatal(err)
	}
	fresh := e.login(t, u.email)
	e.refused(t, "refresh of a session from before the disabling", untouched.Refresh)
	e.refused(t, "refresh of a session tried while disabled", other.Refresh)
	e.refresh(t, fresh.Refresh)
	if p := e.authenticate(t, fresh.Access); p.UserID != u.id {
		t.Errorf("authenticated as %q", p.UserID)
	}
}

func TestAdminCannotDisableThemselves(t *testing.T) {
	e := newRulesService(t)
	adm := e.register(t, "admin@example.com", true)
	_, err := e.svc.SetActive(t.Context(), adm.p, adm.id, false)
	wantCode(t, "disabling oneself", err, usersvc.EConflict)
	e.refresh(t, adm.session.Refresh) // nothing ended
	// Another admin may.
	second := e.register(t, "admin2@example.com", true)
	if _, err := e.svc.SetActive(t.Context(), second.p, adm.id, false); err != nil {
		t.Fatalf("another admin disabling: %v", err)
	}
}

func TestDeletedUser(t *testing.T) {
	e := newRulesService(t)
	u := e.register(t, "deleted@example.com", false)
	spent := u.session.Refresh
	live := e.refresh(t, spent)

	if err := e.svc.DeleteUser(t.Context(), u.p, u.id); err != nil {
		t.Fatal(err)
	}
	e.authRefused(t, "access token", live.Access, account.MsgTokenInvalid)
	e.refused(t, "refresh", live.Refresh)
	wantCode(t, "logout", e.svc.Logout(t.Context(), live.Refresh), usersvc.EUnauthorized)
	_, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: u.email, Password: rulesPassword})
	wantCode(t, "login", err, usersvc.EUnauthorized)

	// The email registers again, as a new user whom the old tokens do not reach.
	again := e.register(t, u.email, false)
	if again.id == u.id {
		t.Fatal("the new account has the deleted one's id")
	}
	e.authRefused(t, "the deleted user's access token after re-registration", live.Access, account.MsgTokenInvalid)
	e.refused(t, "the deleted user's refresh token after re-registration", live.Refresh)
	e.refresh(t, again.session.Refresh)
}

func TestTokenOfUnknownUser(t *testing.T) {
	e := newRulesService(t)
	// Validly signed, for a user that never existed.
	ghost := &usersvc.User{ID: uuid.NewString(), Email: "ghost@example.com", Name: "Ghost", IsAdmin: true, IsActive: true}
	access, err := e.tokens.IssueAccess(ghost, uuid.NewString(), "", e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.authRefused(t, "access token", access, account.MsgTokenInvalid)
	refresh, err := e.tokens.IssueRefresh(account.RefreshToken{JTI: uuid.NewString(), FamilyID: uuid.NewString(), UserID: ghost.ID,
		IssuedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(rulesRefreshLifetime)})
	if err != nil {
		t.Fatal(err)
	}
	e.refused(t, "refresh token the store never issued", refresh)
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	e := newRulesService(t)
	u := e.register(t, "password@example.com", false)
	second, third := e.login(t, u.email), e.login(t, u.email)
	const newPassword usersvc.Password = "N3w!Passw0rd"

	// A wrong current password changes nothing.
	_, err := e.svc.ChangePassword(t.Context(), u.p, u.id, account.PasswordChange{Current: "Wr0ng!Password", New: newPassword})
	wantCode(t, "wrong current password", err, usersvc.EInvalid)
	second = e.refresh(t, second.Refresh)

	ended, err := e.svc.ChangePassword(t.Context(), u.p, u.id, account.PasswordChange{Current: rulesPassword, New: newPassword, Keep: u.session.Refresh})
	if err != nil {
		t.Fatal(err)
	}
	if ended != 2 {
		t.Errorf("%d sessions ended, want 2", ended)
	}
	e.refused(t, "another session", second.Refresh)
	e.refused(t, "a third session", third.Refresh)
	kept := e.refresh(t, u.session.Refresh)
	// The access tokens of the ended sessions are refused at once; the kept
	// session's are not.
	if _, err := e.svc.Authenticate(t.Context(), third.Access, ""); usersvc.ErrorCode(err) != usersvc.EUnauthorized {
		t.Errorf("the access token of an ended session: %v, want EUnauthorized", err)
	}
	if p := e.authenticate(t, kept.Access); p.UserID != u.id {
		t.Errorf("authenticated as %q", p.UserID)
	}

	_, err = e.svc.Login(t.Context(), usersvc.Credentials{Email: u.email, Password: rulesPassword})
	wantCode(t, "login with the old password", err, usersvc.EUnauthorized)
	if _, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: u.email, Password: newPassword}); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}

	// Without a session to keep, every session ends, the caller's too.
	ended, err = e.svc.ChangePassword(t.Context(), u.p, u.id, account.PasswordChange{Current: newPassword, New: rulesPassword})
	if err != nil {
		t.Fatal(err)
	}
	if ended != 2 {
		t.Errorf("%d sessions ended, want 2 (the kept one and the new login)", ended)
	}
	e.refused(t, "the session kept before", kept.Refresh)
}
