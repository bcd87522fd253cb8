package storetest

import (
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// reset records a password reset of userID, made at made and valid for
// ttl seconds, with the token hash hash.
func reset(t *testing.T, s *sqlstore.Store, userID, hash string, made, ttl int) account.PasswordReset {
	t.Helper()
	r := account.PasswordReset{TokenHash: hash, UserID: userID, CreatedAt: at(made), ExpiresAt: at(made + ttl)}
	data := usersvc.PasswordResetEventData{UserID: userID, Token: "token-of-" + hash, ExpiresAt: r.ExpiresAt}
	if err := s.CreatePasswordReset(t.Context(), r, data); err != nil {
		t.Fatalf("CreatePasswordReset: %v", err)
	}
	return r
}

func testPasswordResets(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Forgetful", at(0))
	other := create(t, s, "Bystander", at(0))
	credential := func(want int64, hash string) {
		t.Helper()
		_, c, err := s.UserByEmail(ctx, u.Email)
		if err != nil || c.Version != want || c.Hash != hash {
			t.Fatalf("credential = %+v, %v; want version %d, hash %q", c, err, want, hash)
		}
	}
	_, c0, err := s.UserByEmail(ctx, u.Email)
	if err != nil {
		t.Fatal(err)
	}
	credential(0, c0.Hash)

	// Recording: the event carries the data it was given; an unknown user
	// is ENotFound and writes nothing.
	p := lastPosition(t, s)
	old := reset(t, s, u.ID, "aa01", 1, 4) // expires at 5
	evs := wantEvents(t, s, p, ev(usersvc.EventPasswordResetRequested, u.ID))
	if d := data[usersvc.PasswordResetEventData](t, evs[0]); d.Token != "token-of-aa01" || !d.ExpiresAt.Equal(at(5)) {
		t.Errorf("password_reset.requested data = %+v", d)
	}
	p = lastPosition(t, s)
	err = s.CreatePasswordReset(ctx, account.PasswordReset{TokenHash: "bb", UserID: newID(t), CreatedAt: at(1), ExpiresAt: at(9)},
		usersvc.PasswordResetEventData{})
	wantCode(t, err, usersvc.ENotFound)
	wantEvents(t, s, p)

	got, err := s.PasswordReset(ctx, "aa01")
	if err != nil || got != old {
		t.Fatalf("PasswordReset = %+v, %v; want %+v", got, err, old)
	}
	_, err = s.PasswordReset(ctx, "ffff")
	wantCode(t, err, usersvc.ENotFound)

	// A later request drops the user's expired resets only.
	r1 := reset(t, s, u.ID, "aa02", 10, 1800)
	r2 := reset(t, s, u.ID, "aa03", 11, 1800)
	ro := reset(t, s, other.ID, "cc01", 11, 1800)
	_, err = s.PasswordReset(ctx, old.TokenHash)
	wantCode(t, err, usersvc.ENotFound)

	// Refusals change nothing: an expired reset, another user's, a spent one.
	f1, t1 := login(t, s, u.ID, at(12), time.Hour)
	f2, t2 := login(t, s, u.ID, at(12), time.Hour)
	p = lastPosition(t, s)
	_, err = s.ResetPassword(ctx, r1, "hash-2", at(10+1800))
	wantCode(t, err, usersvc.ENotFound)
	_, err = s.ResetPassword(ctx, account.PasswordReset{TokenHash: r1.TokenHash, UserID: other.ID}, "hash-2", at(13))
	wantCode(t, err, usersvc.ENotFound)
	_, err = s.ResetPassword(ctx, old, "hash-2", at(2))
	wantCode(t, err, usersvc.ENotFound)
	wantEvents(t, s, p)
	credential(0, c0.Hash)
	sameState(t, state(t, s, t1.JTI), t1, f1.ExpiresAt, false, false)

	// The reset: the password, every session, the user's other resets.
	n, err := s.ResetPassword(ctx, r1, "hash-2", at(14))
	if err != nil || n != 2 {
		t.Fatalf("ResetPassword = %d, %v; want 2 sessions ended", n, err)
	}
	credential(1, "hash-2")
	sameState(t, state(t, s, t1.JTI), t1, f1.ExpiresAt, false, true)
	sameState(t, state(t, s, t2.JTI), t2, f2.ExpiresAt, false, true)
	wantEvents(t, s, p, ev(usersvc.EventUserPasswordChanged, u.ID), ev(usersvc.EventSessionsRevoked, u.ID))
	for _, h := range []string{r1.TokenHash, r2.TokenHash} {
		_, err = s.PasswordReset(ctx, h)
		wantCode(t, err, usersvc.ENotFound)
	}
	if got, err := s.PasswordReset(ctx, ro.TokenHash); err != nil || got != ro {
		t.Errorf("the other user's reset = %+v, %v", got, err)
	}

	// Spent: a second use changes nothing.
	p = lastPosition(t, s)
	_, err = s.ResetPassword(ctx, r1, "hash-3", at(15))
	wantCode(t, err, usersvc.ENotFound)
	wantEvents(t, s, p)
	credential(1, "hash-2")

	// A deleted user's resets go with it.
	if err := s.DeleteUser(ctx, other.ID, at(16)); err != nil {
		t.Fatal(err)
	}
	_, err = s.PasswordReset(ctx, ro.TokenHash)
	wantCode(t, err, usersvc.ENotFound)
}
