package account_test

import (
	"encoding/json"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// verificationEvent returns the last verification.requested after
// position after.
func (e *rulesEnv) verificationEvent(t *testing.T, after int64) usersvc.VerificationEventData {
	t.Helper()
	evs, err := e.store.Events(t.Context(), after, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var d *usersvc.VerificationEventData
	for _, ev := range evs {
		if ev.Type == usersvc.EventVerificationRequested {
			d = new(usersvc.VerificationEventData)
			if err := json.Unmarshal(ev.Data, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d == nil {
		t.Fatal("no verification.requested")
	}
	return *d
}

// requestCode asks for a verification of a's channel and returns the
// event's data.
func (e *rulesEnv) requestCode(t *testing.T, a *actor, channel string) usersvc.VerificationEventData {
	t.Helper()
	p := e.lastPosition(t)
	if _, err := e.svc.RequestVerification(t.Context(), a.p, a.id, channel); err != nil {
		t.Fatalf("RequestVerification(%s): %v", channel, err)
	}
	return e.verificationEvent(t, p)
}

// otherCode is a six-digit code other than code.
func otherCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

func (e *rulesEnv) verifiedAt(t *testing.T, id string) (email, phone bool) {
	t.Helper()
	u, err := e.store.UserByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.EmailVerifiedAt != nil, u.PhoneVerifiedAt != nil
}

func TestVerificationByCodeAndLink(t *testing.T) {
	e := newRulesService(t, func(o *account.Options) { o.VerificationURL = "https://app.example.com/verify" })
	a := e.register(t, "verify@example.com", false)
	phone := "+14155550123"
	if _, err := e.svc.UpdateProfile(t.Context(), a.p, a.id, usersvc.ProfilePatch{Phone: usersvc.Nullable[string]{Set: true, Value: &phone}}); err != nil {
		t.Fatal(err)
	}

	sms := e.requestCode(t, a, usersvc.ChannelSMS)
	if sms.Address != phone || len(sms.Code) != 6 || sms.Token != nil || sms.Link != nil || !sms.ExpiresAt.Equal(e.clock.Now().Add(account.DefaultVerificationTTL)) {
		t.Errorf("sms event = %+v", sms)
	}
	u, err := e.svc.ConfirmVerification(t.Context(), a.p, a.id, usersvc.ChannelSMS, sms.Code)
	if err != nil || u.PhoneVerifiedAt == nil || u.EmailVerifiedAt != nil {
		t.Fatalf("ConfirmVerification = %+v, %v", u, err)
	}

	mail := e.requestCode(t, a, usersvc.ChannelEmail)
	if mail.Address != a.email || mail.Token == nil || mail.Link == nil || *mail.Link != "https://app.example.com/verify?token="+*mail.Token {
		t.Fatalf("email event = %+v", mail)
	}
	if _, err := e.svc.ConfirmVerificationLink(t.Context(), *mail.Token); err != nil {
		t.Fatalf("ConfirmVerificationLink: %v", err)
	}
	if email, phone := e.verifiedAt(t, a.id); !email || !phone {
		t.Errorf("verified: email %v, phone %v", email, phone)
	}
	// The link is spent, and so is the code sent with it.
	_, err = e.svc.ConfirmVerificationLink(t.Context(), *mail.Token)
	wantCode(t, "a spent link", err, usersvc.EInvalid)
	_, err = e.svc.ConfirmVerification(t.Context(), a.p, a.id, usersvc.ChannelEmail, mail.Code)
	wantCode(t, "the code of a spent link", err, usersvc.EInvalid)

	// A new phone is unverified.
	other := "+14155550199"
	u, err = e.svc.UpdateProfile(t.Context(), a.p, a.id, usersvc.ProfilePatch{Phone: usersvc.Nullable[string]{Set: true, Value: &other}})
	if err != nil || u.PhoneVerifiedAt != nil || u.EmailVerifiedAt == nil {
		t.Errorf("after a new phone: %+v, %v", u, err)
	}
}

// The abuse table of verification: every refused code or token is a 400
// that verifies nothing; the fifth wrong code ends the verification, so
// the sixth code, even the right one, is refused.
func TestVerificationRefusals(t *testing.T) {
	e := newRulesService(t)
	a := e.register(t, "victim@example.com", false)
	b := e.register(t, "other@example.com", false)
	admin := e.register(t, "admin@example.com", true)
	ctx := t.Context()

	// Who may ask and confirm: the user alone.
	_, err := e.svc.RequestVerification(ctx, b.p, a.id, usersvc.ChannelEmail)
	wantCode(t, "another user asks", err, usersvc.EForbidden)
	_, err = e.svc.RequestVerification(ctx, admin.p, a.id, usersvc.ChannelEmail)
	wantCode(t, "an admin asks", err, usersvc.EForbidden)
	_, err = e.svc.RequestVerification(ctx, a.p, a.id, usersvc.ChannelSMS)
	wantCode(t, "sms without a phone", err, usersvc.EInvalid)
	_, err = e.svc.RequestVerification(ctx, a.p, a.id, "push")
	wantCode(t, "push", err, usersvc.EInvalid)

	d := e.requestCode(t, a, usersvc.ChannelEmail)
	ofB := e.requestCode(t, b, usersvc.ChannelEmail)
	wrong := otherCode(d.Code)
	tampered := []byte(*d.Token)
	tampered[5] ^= 1
	for _, tc := range []struct {
		name string
		try  func() error
	}{
		{"another user confirms with the right code", func() error {
			_, err := e.svc.ConfirmVerification(ctx, b.p, a.id, usersvc.ChannelEmail, d.Code)
			return err
		}},
		{"b's code for a", func() error {
			_, err := e.svc.ConfirmVerification(ctx, a.p, a.id, usersvc.ChannelEmail, ofB.Code)
			if ofB.Code == d.Code {
				return &usersvc.Error{Code: usersvc.EInvalid} // the same code by chance: nothing to test
			}
			return err
		}},
		{"five digits", func() error {
			_, err := e.svc.ConfirmVerification(ctx, a.p, a.id, usersvc.ChannelEmail, d.Code[:5])
			return err
		}},
		{"letters", func() error {
			_, err := e.svc.ConfirmVerification(ctx, a.p, a.id, usersvc.ChannelEmail, "12345a")
			return err
		}},
		{"the code on the other channel", func() error {
			_, err := e.svc.ConfirmVerification(ctx, a.p, a.id, usersvc.ChannelSMS, d.Code)
			return err
		}},
		{"a truncated link token", func() error { _, err := e.svc.ConfirmVerificationLink(ctx, (*d.Token)[:42]); return err }},
		{"a tampered link token", func() error { _, err := e.svc.ConfirmVerificationLink(ctx, string(tampered)); return err }},
		{"a link token never issued", func() error {
			_, err := e.svc.ConfirmVerificationLink(ctx, "QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.lastPosition(t)
			err := tc.try()
			if c := usersvc.ErrorCode(err); c != usersvc.EInvalid && c != usersvc.EForbidden {
				t.Fatalf("code %q (%v), want a 400 or 403", c, err)
			}
			if e.lastPosition(t) != p {
				t.Error("events were written")
			}
			if email, _ := e.verifiedAt(t, a.id); email {
				t.Fatal("the email got verified")
			}
		})
	}

	// Wrong codes: a's verification had one counted above ("b's code");
	// the fifth wrong code ends it, and then the right one is refused too.
	tried := 1
	if ofB.Code == d.Code {
		tried = 0
	}
	for ; tried < account.MaxVerificationAttempts; tried++ {
		_, err := e.svc.ConfirmVerification(ctx, a.p, a.id, usersvc.ChannelEmail, wrong)
		wantCode(t, "a wrong code", err, usersvc.EInvalid)
	}
	_, err = e.svc.ConfirmVerification(ctx, a.p, a.id, usersvc.ChannelEmail, d.Code)
	wantCode(t, "the right code as the sixth", err, usersvc.EInvalid)
	_, err = e.svc.ConfirmVerificationLink(ctx, *d.Token)
	wantCode(t, "the link of an ended verification", err, usersvc.EInvalid)
	if email, _ := e.verifiedAt(t, a.id); email {
		t.Fatal("the email got verified")
	}

	// Expired: the code and the link.
	d = e.requestCode(t, a, usersvc.ChannelEmail)
	e.clock.Advance(account.DefaultVerificationTTL)
	_, err = e.svc.ConfirmVerification(ctx, a.p, a.id, usersvc.ChannelEmail, d.Code)
	wantCode(t, "an expired code", err, usersvc.EInvalid)
	_, err = e.svc.ConfirmVerificationLink(ctx, *d.Token)
	wantCode(t, "an expired link", err, usersvc.EInvalid)

	// Replayed: a code confirmed once; a code replaced by a new request.
	first := e.requestCode(t, a, usersvc.ChannelEmail)
	second := e.requestCode(t, a, usersvc.ChannelEmail)
	if first.Code != second.Code {
		_, err = e.svc.ConfirmVerification(ctx, a.p, a.id, usersvc.ChannelEmail, first.Code)
		wantCode(t, "a replaced code", err, usersvc.EInvalid)
	}
	if _, err := e.svc.ConfirmVerification(ctx, a.p, a.id, usersvc.ChannelEmail, second.Code); err != nil {
		t.Fatalf("the right code: %v", err)
	}
	_, err = e.svc.ConfirmVerification(ctx, a.p, a.id, usersvc.ChannelEmail, second.Code)
	wantCode(t, "a replayed code", err, usersvc.EInvalid)
	if email, _ := e.verifiedAt(t, b.id); email {
		t.Error("b's email got verified by a's flow")
	}
}
