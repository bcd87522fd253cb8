package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
)

// The self-service flows through the Go client against run(), the code
// and tokens read from the feed with the client as a delivery service
// would: a password reset, a phone verification, a change of email.
func TestClientSelfService(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "SECRET_KEY="+e2eSecret, "SERVICE_API_KEYS=feed:"+e2eFeedKey+":events.read")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	anon := e2eClient(t, srv.base)
	feed := e2eClient(t, srv.base, client.WithServiceKey(e2eFeedKey))
	var cursor int64
	// next returns the data of the next event of type typ on the feed.
	next := func(typ string) any {
		t.Helper()
		for {
			p, err := feed.EventPage(ctx, cursor, 100, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range p.Events {
				cursor = ev.Position
				if ev.Type == typ {
					d, err := client.EventData(ev)
					if err != nil {
						t.Fatal(err)
					}
					return d
				}
			}
			if len(p.Events) == 0 {
				t.Fatalf("no %s on the feed", typ)
			}
		}
	}

	u, err := anon.Register(ctx, usersvc.Registration{Email: "client@example.com", Name: "Client", Password: e2ePassword,
		Profile: usersvc.ProfilePatch{Phone: usersvc.Nullable[string]{Set: true, Value: e2ePtr("+14155550123")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := anon.ForgotPassword(ctx, "client@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := anon.ForgotPassword(ctx, "nobody@example.com"); err != nil {
		t.Fatal(err)
	}
	reset := next(usersvc.EventPasswordResetRequested).(usersvc.PasswordResetEventData)
	if _, err := anon.ResetPassword(ctx, reset.Token[:40], "N3w!Passw0rd-client"); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("a truncated token: %v", err)
	}
	if _, err := anon.ResetPassword(ctx, reset.Token, "N3w!Passw0rd-client"); err != nil {
		t.Fatal(err)
	}
	_, me := e2eLogin(t, srv.base, "client@example.com", "N3w!Passw0rd-client")

	if _, err := me.RequestVerification(ctx, u.ID, usersvc.ChannelSMS); err != nil {
		t.Fatal(err)
	}
	code := next(usersvc.EventVerificationRequested).(usersvc.VerificationEventData).Code
	got, err := me.ConfirmVerification(ctx, u.ID, usersvc.ChannelSMS, code)
	if err != nil || got.PhoneVerifiedAt == nil {
		t.Fatalf("ConfirmVerification = %+v, %v", got, err)
	}

	if _, err := me.RequestEmailChange(ctx, u.ID, "client@example.com", "N3w!Passw0rd-client"); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("the same email: %v", err)
	}
	if _, err := me.RequestEmailChange(ctx, u.ID, "moved-client@example.com", "N3w!Passw0rd-client"); err != nil {
		t.Fatal(err)
	}
	change := next(usersvc.EventEmailChangeRequested).(usersvc.EmailChangeEventData)
	if email, err := anon.ConfirmEmailChange(ctx, change.Token); err != nil || email != "moved-client@example.com" {
		t.Fatalf("ConfirmEmailChange = %q, %v", email, err)
	}
	if got, err := me.User(ctx, u.ID); err != nil || got.Email != "moved-client@example.com" || got.EmailVerifiedAt == nil {
		t.Errorf("User = %+v, %v", got, err)
	}
	if err := anon.ConfirmVerificationLink(ctx, change.Token); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("a change token as a verification link: %v", err)
	}
}
