package account_test

import (
	"encoding/json"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// emailChangeToken asks for a's email to become newEmail and returns the
// token of email_change.requested, checking the notice to the old address.
func (e *rulesEnv) emailChangeToken(t *testing.T, a *actor, newEmail string) string {
	t.Helper()
	p := e.lastPosition(t)
	if _, err := e.svc.RequestEmailChange(t.Context(), a.p, a.id, newEmail, rulesPassword); err != nil {
		t.Fatalf("RequestEmailChange: %v", err)
	}
	evs, err := e.store.Events(t.Context(), p, 100)
	if err != nil || len(evs) != 2 || evs[0].Type != usersvc.EventEmailChangeRequested || evs[1].Type != usersvc.EventEmailChangeNotice {
		t.Fatalf("events = %+v, %v", evs, err)
	}
	var req usersvc.EmailChangeEventData
	var notice usersvc.EmailChangeNoticeEventData
	if json.Unmarshal(evs[0].Data, &req) != nil || json.Unmarshal(evs[1].Data, &notice) != nil {
		t.Fatal("undecodable data")
	}
	if req.NewEmail != newEmail || notice.Email != a.email || notice.NewEmail != newEmail {
		t.Errorf("request %+v, notice %+v", req, notice)
	}
	return req.Token
}

func (e *rulesEnv) emailOf(t *testing.T, id string) string {
	t.Helper()
	u, err := e.store.UserByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.Email
}

// The abuse table of a change of email: every refusal is a 4xx that
// changes nothing; the change happens only on confirmation.
func TestEmailChangeRefusals(t *testing.T) {
	e := newRulesService(t)
	a := e.register(t, "mover@example.com", false)
	b := e.register(t, "bystander@example.com", false)
	admin := e.register(t, "admin@example.com", true)
	ctx := t.Context()

	for _, tc := range []struct {
		name, email string
		p           account.Principal
		pw          usersvc.Password
		code        string
	}{
		{"another user", "x@example.com", b.p, rulesPassword, usersvc.EForbidden},
		{"an admin", "x@example.com", admin.p, rulesPassword, usersvc.EForbidden},
		{"a wrong password", "x@example.com", a.p, "Wr0ng!Passw0rd", usersvc.EInvalid},
		{"no password", "x@example.com", a.p, "", usersvc.EInvalid},
		{"not an email", "nope", a.p, rulesPassword, usersvc.EInvalid},
		{"the same email", "MOVER@example.com", a.p, rulesPassword, usersvc.EInvalid},
		{"a taken email at the request", "Bystander@example.com", a.p, rulesPassword, usersvc.EConflict},
	} {
		p := e.lastPosition(t)
		_, err := e.svc.RequestEmailChange(ctx, tc.p, a.id, tc.email, tc.pw)
		wantCode(t, tc.name, err, tc.code)
		if e.lastPosition(t) != p {
			t.Errorf("%s: events were written", tc.name)
		}
	}

	tok := e.emailChangeToken(t, a, "moved@example.com")
	if got := e.emailOf(t, a.id); got != a.email {
		t.Fatalf("the email changed before the confirmation: %s", got)
	}
	tampered := []byte(tok)
	tampered[7] ^= 1
	for _, bad := range []string{"", tok[:42], tok + "A", string(tampered), "QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"} {
		p := e.lastPosition(t)
		_, err := e.svc.ConfirmEmailChange(ctx, bad)
		wantCode(t, "token "+bad, err, usersvc.EInvalid)
		if e.lastPosition(t) != p || e.emailOf(t, a.id) != a.email {
			t.Fatalf("token %q changed something", bad)
		}
	}

	// Taken between the request and the confirmation: 409, and the token
	// stays good once the address is free again.
	squat := e.emailChangeToken(t, b, "wanted@example.com")
	want := e.emailChangeToken(t, a, "wanted@example.com")
	if _, err := e.svc.ConfirmEmailChange(ctx, squat); err != nil {
		t.Fatalf("b's change: %v", err)
	}
	_, err := e.svc.ConfirmEmailChange(ctx, want)
	wantCode(t, "a taken email at the confirmation", err, usersvc.EConflict)
	if e.emailOf(t, a.id) != a.email {
		t.Fatal("a's email changed")
	}

	// The change: verified, and every other change of a spent.
	u, err := e.svc.ConfirmEmailChange(ctx, tok)
	if err != nil || u.Email != "moved@example.com" || u.EmailVerifiedAt == nil {
		t.Fatalf("ConfirmEmailChange = %+v, %v", u, err)
	}
	_, err = e.svc.ConfirmEmailChange(ctx, tok)
	wantCode(t, "a replayed token", err, usersvc.EInvalid)
	_, err = e.svc.ConfirmEmailChange(ctx, want)
	wantCode(t, "an earlier change of the user", err, usersvc.EInvalid)
	if _, err := e.svc.Login(ctx, usersvc.Credentials{Email: "moved@example.com", Password: rulesPassword}); err != nil {
		t.Errorf("login with the new email: %v", err)
	}

	// Expired.
	a.email = "moved@example.com"
	late := e.emailChangeToken(t, a, "later@example.com")
	e.clock.Advance(account.DefaultEmailChangeTTL)
	_, err = e.svc.ConfirmEmailChange(ctx, late)
	wantCode(t, "an expired token", err, usersvc.EInvalid)
	if e.emailOf(t, a.id) != a.email {
		t.Fatal("an expired token changed the email")
	}
}
