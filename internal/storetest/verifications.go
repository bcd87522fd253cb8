package storetest

import (
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// verification records a verification of u's address on channel, with
// the code hash code (and, for email, the token hash "tok-"+code), made
// at made and valid for ttl seconds.
func verification(t *testing.T, s *sqlstore.Store, u *usersvc.User, channel, code string, made, ttl int) account.Verification {
	t.Helper()
	v := account.Verification{UserID: u.ID, Channel: channel, Address: u.Email, CodeHash: code, CreatedAt: at(made), ExpiresAt: at(made + ttl)}
	if channel == usersvc.ChannelSMS {
		v.Address = *u.Phone
	} else {
		v.TokenHash = "tok-" + code
	}
	if err := s.CreateVerification(t.Context(), v, usersvc.VerificationEventData{UserID: u.ID, Channel: channel, Code: "123456"}); err != nil {
		t.Fatalf("CreateVerification: %v", err)
	}
	return v
}

func setPhone(t *testing.T, s *sqlstore.Store, u *usersvc.User, phone string, when int) *usersvc.User {
	t.Helper()
	got, err := s.UpdateProfile(t.Context(), u.ID, usersvc.ProfilePatch{Phone: usersvc.Nullable[string]{Set: true, Value: &phone}}, at(when))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func testVerifications(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Verifier", at(0))
	if u.EmailVerifiedAt != nil || u.PhoneVerifiedAt != nil {
		t.Fatalf("a new user is verified: %+v", u)
	}
	u = setPhone(t, s, u, "+14155550123", 1)

	// Attempts are counted, at most max, only while unexpired.
	v := verification(t, s, u, usersvc.ChannelSMS, "code-1", 2, 100)
	for want := 1; want <= 3; want++ {
		got, err := s.SpendVerificationAttempt(ctx, u.ID, usersvc.ChannelSMS, 3, at(3))
		if err != nil || got.Attempts != want || got.CodeHash != v.CodeHash || got.Address != v.Address {
			t.Fatalf("attempt %d: %+v, %v", want, got, err)
		}
	}
	_, err := s.SpendVerificationAttempt(ctx, u.ID, usersvc.ChannelSMS, 3, at(3))
	wantCode(t, err, usersvc.ENotFound)
	v = verification(t, s, u, usersvc.ChannelSMS, "code-2", 4, 100) // replaces the spent one
	_, err = s.SpendVerificationAttempt(ctx, u.ID, usersvc.ChannelSMS, 5, at(104))
	wantCode(t, err, usersvc.ENotFound)
	if _, err := s.ConfirmVerification(ctx, account.Verification{UserID: u.ID, Channel: usersvc.ChannelSMS, Address: v.Address, CodeHash: "code-1"}, at(5)); usersvc.ErrorCode(err) != usersvc.ENotFound {
		t.Errorf("a replaced verification confirmed: %v", err)
	}

	// Confirmation: the address is verified, the verification spent.
	got, err := s.ConfirmVerification(ctx, v, at(5))
	if err != nil || got.PhoneVerifiedAt == nil || !got.PhoneVerifiedAt.Equal(at(5)) || got.EmailVerifiedAt != nil {
		t.Fatalf("ConfirmVerification = %+v, %v", got, err)
	}
	if again, err := s.UserByID(ctx, u.ID); err != nil || again.PhoneVerifiedAt == nil || !again.PhoneVerifiedAt.Equal(at(5)) {
		t.Errorf("UserByID after the confirmation = %+v, %v", again, err)
	}
	_, err = s.ConfirmVerification(ctx, v, at(6))
	wantCode(t, err, usersvc.ENotFound)

	// The same phone keeps its verification; another clears it, and a
	// verification sent to the old one confirms nothing.
	if got := setPhone(t, s, u, "+14155550123", 7); got.PhoneVerifiedAt == nil {
		t.Error("setting the same phone cleared its verification")
	}
	old := verification(t, s, u, usersvc.ChannelSMS, "code-3", 8, 100)
	if got := setPhone(t, s, u, "+14155550199", 9); got.PhoneVerifiedAt != nil {
		t.Errorf("a new phone is verified: %+v", got.PhoneVerifiedAt)
	}
	p := lastPosition(t, s)
	_, err = s.ConfirmVerification(ctx, old, at(10))
	wantCode(t, err, usersvc.ENotFound)
	wantEvents(t, s, p)
	if _, err := s.SpendVerificationAttempt(ctx, u.ID, usersvc.ChannelSMS, 5, at(10)); err != nil {
		t.Errorf("a failed confirmation spent the verification: %v", err)
	}

	// Email, by its link token.
	e := verification(t, s, u, usersvc.ChannelEmail, "code-4", 11, 100)
	byToken, err := s.VerificationByToken(ctx, e.TokenHash)
	if err != nil || byToken != e {
		t.Fatalf("VerificationByToken = %+v, %v; want %+v", byToken, err, e)
	}
	_, err = s.VerificationByToken(ctx, "tok-none")
	wantCode(t, err, usersvc.ENotFound)
	if got, err := s.ConfirmVerification(ctx, byToken, at(12)); err != nil || got.EmailVerifiedAt == nil || got.PhoneVerifiedAt != nil {
		t.Errorf("confirming the email = %+v, %v", got, err)
	}
	_, err = s.VerificationByToken(ctx, e.TokenHash)
	wantCode(t, err, usersvc.ENotFound)

	// Ending one, and an unknown user's.
	verification(t, s, u, usersvc.ChannelSMS, "code-5", 13, 100)
	if err := s.DeleteVerification(ctx, u.ID, usersvc.ChannelSMS); err != nil {
		t.Fatal(err)
	}
	_, err = s.SpendVerificationAttempt(ctx, u.ID, usersvc.ChannelSMS, 5, at(14))
	wantCode(t, err, usersvc.ENotFound)
	err = s.CreateVerification(ctx, account.Verification{UserID: newID(t), Channel: "email", Address: "x@example.com", CodeHash: "c",
		CreatedAt: at(15), ExpiresAt: at(100)}, usersvc.VerificationEventData{})
	wantCode(t, err, usersvc.ENotFound)
}
