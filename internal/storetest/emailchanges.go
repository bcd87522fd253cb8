package storetest

import (
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// emailChange records a change of u's email to newEmail with the token
// hash hash, made at made and valid for ttl seconds.
func emailChange(t *testing.T, s *sqlstore.Store, u *usersvc.User, newEmail, hash string, made, ttl int) account.EmailChange {
	t.Helper()
	c := account.EmailChange{TokenHash: hash, UserID: u.ID, OldEmail: u.Email, NewEmail: newEmail, CreatedAt: at(made), ExpiresAt: at(made + ttl)}
	err := s.CreateEmailChange(t.Context(), c, usersvc.EmailChangeEventData{UserID: u.ID, NewEmail: newEmail, Token: "token-of-" + hash},
		usersvc.EmailChangeNoticeEventData{UserID: u.ID, Email: u.Email, NewEmail: newEmail})
	if err != nil {
		t.Fatalf("CreateEmailChange: %v", err)
	}
	return c
}

func testEmailChanges(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Mover", at(0))
	other := create(t, s, "Squatter", at(0))
	email := func(want string, verified bool) {
		t.Helper()
		got, err := s.UserByID(ctx, u.ID)
		if err != nil || got.Email != want || (got.EmailVerifiedAt != nil) != verified {
			t.Fatalf("user = %+v, %v; want email %s, verified %v", got, err, want, verified)
		}
	}

	p := lastPosition(t, s)
	c := emailChange(t, s, u, "moved@example.com", "c1", 1, 100)
	evs := wantEvents(t, s, p, ev(usersvc.EventEmailChangeRequested, u.ID), ev(usersvc.EventEmailChangeNotice, u.ID))
	if d := data[usersvc.EmailChangeNoticeEventData](t, evs[1]); d.Email != u.Email || d.NewEmail != "moved@example.com" {
		t.Errorf("notice = %+v", d)
	}
	got, err := s.EmailChange(ctx, "c1")
	if err != nil || got != c {
		t.Fatalf("EmailChange = %+v, %v; want %+v", got, err, c)
	}
	_, err = s.EmailChange(ctx, "c-none")
	wantCode(t, err, usersvc.ENotFound)

	// Refusals change nothing: expired, another user's, a taken address.
	_, err = s.ConfirmEmailChange(ctx, c, at(101))
	wantCode(t, err, usersvc.ENotFound)
	_, err = s.ConfirmEmailChange(ctx, account.EmailChange{TokenHash: "c1", UserID: other.ID, OldEmail: other.Email, NewEmail: c.NewEmail}, at(2))
	wantCode(t, err, usersvc.ENotFound)
	taken := emailChange(t, s, u, other.Email, "c2", 2, 100)
	p = lastPosition(t, s)
	_, err = s.ConfirmEmailChange(ctx, taken, at(3))
	wantCode(t, err, usersvc.EConflict)
	wantEvents(t, s, p)
	email(u.Email, false)
	if _, err := s.EmailChange(ctx, "c2"); err != nil {
		t.Errorf("a refused change was spent: %v", err)
	}

	// The change: the new email, verified; every change of the user spent.
	changed, err := s.ConfirmEmailChange(ctx, c, at(4))
	if err != nil || changed.Email != "moved@example.com" || changed.EmailVerifiedAt == nil || !changed.EmailVerifiedAt.Equal(at(4)) {
		t.Fatalf("ConfirmEmailChange = %+v, %v", changed, err)
	}
	wantEvents(t, s, p, ev(usersvc.EventUserUpdated, u.ID))
	email("moved@example.com", true)
	for _, h := range []string{"c1", "c2"} {
		_, err = s.EmailChange(ctx, h)
		wantCode(t, err, usersvc.ENotFound)
	}
	_, err = s.ConfirmEmailChange(ctx, c, at(5))
	wantCode(t, err, usersvc.ENotFound)

	// A change made for the old email confirms nothing once it changed.
	moved := *u
	stale := emailChange(t, s, &moved, "again@example.com", "c3", 6, 100) // OldEmail is the first email
	_, err = s.ConfirmEmailChange(ctx, stale, at(7))
	wantCode(t, err, usersvc.ENotFound)
	email("moved@example.com", true)
}
