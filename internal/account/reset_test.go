package account_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/ratelimit"
)

const resetPassword usersvc.Password = "Res3t!Passw0rd"

// resetEvents returns the password_reset.requested events after position
// after, and the last position.
func (e *rulesEnv) resetEvents(t *testing.T, after int64) ([]usersvc.PasswordResetEventData, int64) {
	t.Helper()
	evs, err := e.store.Events(t.Context(), after, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []usersvc.PasswordResetEventData
	for _, ev := range evs {
		after = ev.Position
		if ev.Type != usersvc.EventPasswordResetRequested {
			continue
		}
		var d usersvc.PasswordResetEventData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out, after
}

// lastPosition is the position of the newest event.
func (e *rulesEnv) lastPosition(t *testing.T) int64 {
	t.Helper()
	_, newest, err := e.store.EventBounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return newest
}

// forgot asks for a reset of email and returns the token delivered.
func (e *rulesEnv) forgot(t *testing.T, email string) usersvc.PasswordResetEventData {
	t.Helper()
	p := e.lastPosition(t)
	if err := e.svc.ForgotPassword(t.Context(), email); err != nil {
		t.Fatalf("ForgotPassword(%s): %v", email, err)
	}
	got, _ := e.resetEvents(t, p)
	if len(got) != 1 {
		t.Fatalf("ForgotPassword(%s) emitted %d password_reset.requested, want 1", email, len(got))
	}
	return got[0]
}

// liveSessions is the number of live sessions of userID.
func (e *rulesEnv) liveSessions(t *testing.T, userID string) int {
	t.Helper()
	ids, err := e.store.SessionIDs(t.Context(), userID, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

func TestForgotPasswordEmitsAToken(t *testing.T) {
	var steps []string
	e := newRulesService(t, func(o *account.Options) {
		o.PasswordResetURL = "https://app.example.com/reset?from=mail"
		o.OnSelfService = func(flow, outcome string) { steps = append(steps, flow+":"+outcome) }
	})
	a := e.register(t, "forgetful@example.com", false)
	d := e.forgot(t, "  Forgetful@Example.COM ")
	if d.UserID != a.id || d.Email != a.email || len(d.Token) != 43 || !d.ExpiresAt.Equal(e.clock.Now().Add(account.DefaultPasswordResetTTL)) {
		t.Errorf("event data = %+v", d)
	}
	if d.Link == nil || *d.Link != "https://app.example.com/reset?from=mail&token="+d.Token {
		t.Errorf("link = %v", d.Link)
	}
	// Only the hash is kept: the token itself is in no column of the store.
	var n int
	if err := e.store.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM password_resets WHERE token_hash = ?`, d.Token).Scan(&n); err != nil || n != 0 {
		t.Errorf("a reset is stored under the token itself: %d, %v", n, err)
	}

	// Unknown and disabled accounts: the same nil answer, nothing emitted.
	b := e.register(t, "disabled@example.com", false)
	admin := e.register(t, "admin@example.com", true)
	if _, err := e.svc.SetActive(t.Context(), admin.p, b.id, false); err != nil {
		t.Fatal(err)
	}
	p := e.lastPosition(t)
	for _, email := range []string{"nobody@example.com", b.email} {
		if err := e.svc.ForgotPassword(t.Context(), email); err != nil {
			t.Errorf("ForgotPassword(%s) = %v, want nil", email, err)
		}
	}
	if got, _ := e.resetEvents(t, p); len(got) != 0 {
		t.Errorf("resets emitted for an unknown or disabled account: %+v", got)
	}
	wantCode(t, "a malformed email", e.svc.ForgotPassword(t.Context(), "not-an-email"), usersvc.EInvalid)

	n2, err := e.svc.ResetPassword(t.Context(), d.Token, resetPassword)
	if err != nil || n2 != 1 {
		t.Fatalf("ResetPassword = %d, %v; want 1 session ended", n2, err)
	}
	if _, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: a.email, Password: resetPassword}); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	_, err = e.svc.Login(t.Context(), usersvc.Credentials{Email: a.email, Password: rulesPassword})
	wantCode(t, "login with the old password", err, usersvc.EUnauthorized)
	want := []string{"password_reset:requested", "password_reset:requested", "password_reset:requested", "password_reset:confirmed"}
	if !slices.Equal(steps, want) {
		t.Errorf("steps = %q, want %q", steps, want)
	}
}

// The abuse table: every refused token or password answers 400 on its
// field and changes nothing (no event, the password and sessions stay).
func TestResetPasswordRefusals(t *testing.T) {
	e := newRulesService(t)
	a := e.register(t, "victim@example.com", false)
	b := e.register(t, "other@example.com", false)
	good := e.forgot(t, a.email).Token

	expiring := e.forgot(t, a.email).Token
	e.clock.Advance(account.DefaultPasswordResetTTL)
	late := e.forgot(t, a.email).Token // made at the expiry of expiring

	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	spent := e.forgot(t, b.email).Token
	if _, err := e.svc.ResetPassword(t.Context(), spent, resetPassword); err != nil {
		t.Fatalf("the first use: %v", err)
	}
	ofB := e.forgot(t, b.email).Token // after the reset, which spent b's earlier tokens
	bSessions := e.liveSessions(t, b.id)

	for _, tc := range []struct {
		name, token string
		pw          usersvc.Password
		field       string
	}{
		{"empty", "", resetPassword, "token"},
		{"truncated", good[:42], resetPassword, "token"},
		{"one byte short", good[:len(good)-2], resetPassword, "token"},
		{"extended", good + "A", resetPassword, "token"},
		{"tampered first character", flip(good, 0), resetPassword, "token"},
		{"tampered last character", flip(good, 42), resetPassword, "token"},
		{"not base64url", strings.Repeat("!", 43), resetPassword, "token"},
		{"standard base64 alphabet", strings.Repeat("+", 43), resetPassword, "token"},
		{"a well-formed token never issued", strings.Repeat("Q", 43), resetPassword, "token"},
		{"expired", expiring, resetPassword, "token"},
		{"replayed (spent)", spent, resetPassword, "token"},
		{"a weak new password", good, "weak", "new_password"},
		{"a password over 128 characters", good, usersvc.Password("Aa1!" + strings.Repeat("b", 125)), "new_password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.lastPosition(t)
			_, err := e.svc.ResetPassword(t.Context(), tc.token, tc.pw)
			wantCode(t, tc.name, err, usersvc.EInvalid)
			var ue *usersvc.Error
			if !errors.As(err, &ue) || ue.Fields[tc.field] == nil {
				t.Errorf("error fields = %v, want %s", err, tc.field)
			}
			if strings.Contains(err.Error(), good) || (tc.token != "" && strings.Contains(usersvc.ErrorMessage(err), tc.token)) {
				t.Errorf("the error repeats the token: %v", err)
			}
			if got := e.lastPosition(t); got != p {
				t.Errorf("events were written: position %d → %d", p, got)
			}
			if n := e.liveSessions(t, a.id); n != 1 {
				t.Errorf("the victim has %d live sessions, want 1", n)
			}
			if n := e.liveSessions(t, b.id); n != bSessions {
				t.Errorf("the other user has %d live sessions, want %d", n, bSessions)
			}
		})
	}
	if _, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: a.email, Password: rulesPassword}); err != nil {
		t.Fatalf("the victim's password changed: %v", err)
	}

	// Cross-user: b's token changes b's password, never a's.
	if _, err := e.svc.ResetPassword(t.Context(), ofB, "Oth3r!Passw0rd"); err != nil {
		t.Fatalf("b's token: %v", err)
	}
	if _, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: a.email, Password: rulesPassword}); err != nil {
		t.Errorf("b's token changed a's password: %v", err)
	}
	// The newest token still works and ends a's three sessions (the
	// first login and the two checks above); it spends a's other tokens
	// (good, made earlier and still valid).
	n, err := e.svc.ResetPassword(t.Context(), late, resetPassword)
	if err != nil || n != 3 {
		t.Fatalf("ResetPassword(late) = %d, %v; want 3 sessions ended", n, err)
	}
	_, err = e.svc.ResetPassword(t.Context(), good, "An0ther!Passw0rd")
	wantCode(t, "an earlier token after a reset", err, usersvc.EInvalid)
}

// A token of an account disabled after the request is refused.
func TestResetPasswordOfDisabledAccount(t *testing.T) {
	e := newRulesService(t)
	a := e.register(t, "soon-disabled@example.com", false)
	admin := e.register(t, "admin@example.com", true)
	tok := e.forgot(t, a.email).Token
	if _, err := e.svc.SetActive(t.Context(), admin.p, a.id, false); err != nil {
		t.Fatal(err)
	}
	p := e.lastPosition(t)
	_, err := e.svc.ResetPassword(t.Context(), tok, resetPassword)
	wantCode(t, "a disabled account's token", err, usersvc.EInvalid)
	if got := e.lastPosition(t); got != p {
		t.Errorf("events were written")
	}
}

// Forgotten-password requests are limited per email and per address,
// whether or not the email has an account.
func TestForgotPasswordRateLimits(t *testing.T) {
	var rules []string
	e := newRulesService(t, func(o *account.Options) {
		o.Limits.ForgotEmail = ratelimit.New(nil, ratelimit.Rule{Name: "forgot_email", Max: 2, Window: time.Hour}, ratelimit.Options{})
		o.Limits.ForgotAddr = ratelimit.New(nil, ratelimit.Rule{Name: "forgot_addr", Max: 4, Window: time.Hour}, ratelimit.Options{})
		o.OnRateLimited = func(rule string) { rules = append(rules, rule) }
	})
	ctx := account.WithClient(t.Context(), &account.Client{Addr: "192.0.2.7"})
	for _, email := range []string{"nobody@example.com", "nobody@example.com", "nobody@example.com", "x@example.com", "y@example.com", "z@example.com"} {
		_ = e.svc.ForgotPassword(ctx, email)
	}
	if want := []string{"forgot_email", "forgot_addr"}; !slices.Equal(rules, want) {
		t.Errorf("refusals = %q, want %q", rules, want)
	}
	err := e.svc.ForgotPassword(ctx, "w@example.com")
	wantCode(t, "past the address limit", err, usersvc.ERateLimited)
}
