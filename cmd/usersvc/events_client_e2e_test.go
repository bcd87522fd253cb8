package main

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
)

const (
	e2eEventsKey = "e2e-events-key-0123456789abcdef"
	e2eUsersKey  = "e2e-users-key-0123456789abcdef"
)

// A consumer follows the change feed through the client, against the real
// server: every change of a user arrives once, in order, typed; a stored
// cursor resumes after its event; a long poll wakes at the next change;
// keys without events.read and user tokens are refused.
func TestClientFollowsTheChangeFeed(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "SECRET_KEY="+e2eSecret,
		"SERVICE_API_KEYS=reader:"+e2eEventsKey+":events.read,users:"+e2eUsersKey)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	reader := e2eClient(t, srv.base, client.WithServiceKey(e2eEventsKey))

	u, err := e2eClient(t, srv.base).Register(ctx, usersvc.Registration{Email: "grace@example.com", Name: "Grace Hopper", Password: e2ePassword})
	if err != nil {
		t.Fatal(err)
	}
	sess, grace := e2eLogin(t, srv.base, "grace@example.com", e2ePassword)
	if _, err := grace.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{Push: e2ePtr(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := grace.UpdatePushToken(ctx, u.ID, usersvc.PushTokenUpdate{Token: e2ePtr("fcm:grace-phone"), DeviceType: usersvc.DeviceAndroid}); err != nil {
		t.Fatal(err)
	}
	if _, err := grace.UpdateName(ctx, u.ID, "Grace B. Hopper"); err != nil {
		t.Fatal(err)
	}
	if err := e2eClient(t, srv.base).Logout(ctx, sess.Tokens.Refresh); err != nil {
		t.Fatal(err)
	}

	// Everything so far, without waiting.
	var evs []usersvc.Event
	for ev, err := range reader.Events(ctx, 0, client.FeedWait(0)) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
		if ev.Type == usersvc.EventSessionsRevoked {
			break
		}
	}
	var types []string
	for i, ev := range evs {
		types = append(types, ev.Type)
		if ev.Subject != u.ID || (i > 0 && ev.Position <= evs[i-1].Position) {
			t.Errorf("event %d: subject %s, position %d", i, ev.Subject, ev.Position)
		}
		data, err := client.EventData(ev)
		if err != nil {
			t.Errorf("event %d (%s): %v", i, ev.Type, err)
		}
		// What a broker carries decodes the same.
		body, _ := json.Marshal(ev)
		if again, err := client.DecodeEvent(body); err != nil || again.ID != ev.ID {
			t.Errorf("event %d as a message body: %v", i, err)
		}
		switch d := data.(type) {
		case usersvc.PreferencesEventData:
			if !d.Preferences.Equal(usersvc.Preferences{Email: true, Push: false, SMS: true, InApp: true}) {
				t.Errorf("preferences.updated: %+v", d)
			}
		case usersvc.DeviceEventData:
			if d.PushToken != "fcm:grace-phone" || d.DeviceType != usersvc.DeviceAndroid {
				t.Errorf("device.registered: %+v", d)
			}
		case usersvc.SessionsRevokedEventData:
			if d.Reason != usersvc.SessionsEndedLogout || len(d.SessionIDs) != 1 {
				t.Errorf("sessions.revoked: %+v", d)
			}
		}
	}
	want := []string{usersvc.EventUserRegistered, usersvc.EventPreferencesUpdated, usersvc.EventDeviceRegistered,
		usersvc.EventUserUpdated, usersvc.EventSessionsRevoked}
	if !slices.Equal(types, want) {
		t.Fatalf("types = %q, want %q", types, want)
	}

	// A consumer that stored the position of the third event goes on with
	// the fourth.
	for ev, err := range reader.Events(ctx, evs[2].Position, client.FeedWait(0)) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID != evs[3].ID {
			t.Errorf("resumed with %s at %d, want %s at %d", ev.Type, ev.Position, evs[3].Type, evs[3].Position)
		}
		break
	}

	// A long poll at the end of the feed wakes at the next change.
	last := evs[len(evs)-1].Position
	got := make(chan usersvc.Event, 1)
	go func() {
		for ev, err := range reader.Events(ctx, last, client.FeedWait(20*time.Second)) {
			if err == nil {
				got <- ev
			}
			return
		}
	}()
	time.Sleep(200 * time.Millisecond) // the poll is waiting
	usersOnly := e2eClient(t, srv.base, client.WithServiceKey(e2eUsersKey))
	if _, err := usersOnly.BatchUsers(ctx, []string{u.ID}); err != nil { // reads write no event
		t.Fatal(err)
	}
	_, grace = e2eLogin(t, srv.base, "grace@example.com", e2ePassword)
	start := time.Now()
	if err := grace.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.Type != usersvc.EventUserDeleted || ev.Position <= last {
			t.Errorf("woken by %s at %d", ev.Type, ev.Position)
		}
		if d, err := client.DecodeData[usersvc.UserIDEventData](ev); err != nil || d.UserID != u.ID {
			t.Errorf("user.deleted data: %+v, %v", d, err)
		}
		t.Logf("the long poll saw the deletion %v after its answer", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("the long poll did not wake at the deletion")
	}

	// Without events.read, and with a user's token: 403, and the loop ends.
	if _, err := e2eClient(t, srv.base).Register(ctx, usersvc.Registration{Email: "ada@example.com", Name: "Ada Lovelace", Password: e2ePassword}); err != nil {
		t.Fatal(err)
	}
	_, ada := e2eLogin(t, srv.base, "ada@example.com", e2ePassword)
	for _, c := range []*client.Client{usersOnly, ada} {
		var errs []error
		for _, err := range c.Events(ctx, 0, client.FeedWait(0)) {
			errs = append(errs, err)
		}
		if len(errs) != 1 || !errors.Is(errs[0], client.ErrForbidden) {
			t.Errorf("errors = %v, want one ErrForbidden", errs)
		}
	}
}
