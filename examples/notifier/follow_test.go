package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// syncBuffer is a buffer that a running worker writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until buf holds want.
func waitFor(t *testing.T, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %q; got:\n%s", want, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// event is a change event as the service writes it.
func event(t *testing.T, pos int64, typ, subject string, data any) usersvc.Event {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return usersvc.Event{SpecVersion: usersvc.EventSpecVersion, ID: uuid.NewString(), Source: usersvc.EventSource, Type: typ,
		Subject: subject, Time: time.Now().UTC(), DataContentType: usersvc.EventContentType, Position: pos, Data: b}
}

// fakeFeed serves GET /api/v1/events in its documented format from a list
// the test appends to, with long polls and a retention.
type fakeFeed struct {
	mu      sync.Mutex
	events  []usersvc.Event
	oldest  int64
	changed chan struct{}
}

func newFakeFeed(evs ...usersvc.Event) *fakeFeed {
	return &fakeFeed{events: evs, changed: make(chan struct{})}
}

func (f *fakeFeed) add(evs ...usersvc.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, evs...)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, data, meta any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"success": status == 200, "data": data, "error": nil, "message": "", "meta": meta})
	}
	if r.Header.Get("X-Service-API-Key") != serviceKey {
		reply(http.StatusForbidden, nil, nil)
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil {
		limit = 100
	}
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		if after < f.oldest {
			f.mu.Unlock()
			reply(http.StatusGone, map[string]int64{"oldest_cursor": f.oldest, "newest_cursor": f.events[len(f.events)-1].Position}, nil)
			return
		}
		page, next := []usersvc.Event{}, after
		for _, ev := range f.events {
			if ev.Position > after && len(page) < limit {
				page, next = append(page, ev), ev.Position
			}
		}
		changed := f.changed
		f.mu.Unlock()
		if len(page) > 0 {
			reply(http.StatusOK, page, map[string]int64{"next_cursor": next})
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			reply(http.StatusOK, page, map[string]int64{"next_cursor": after})
			return
		case <-r.Context().Done():
			return
		}
	}
}

// worker runs the notifier with args until its stdin closes.
type running struct {
	stdin          io.WriteCloser
	stdout, stderr *syncBuffer
	done           chan error
}

func start(t *testing.T, s *userService, args ...string) *running {
	t.Helper()
	pr, pw := io.Pipe()
	r := &running{stdin: pw, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	go func() {
		r.done <- run(t.Context(), args, env(map[string]string{"USERSVC_URL": s.url, "USERSVC_SERVICE_KEY": serviceKey}), pr, r.stdout, r.stderr)
	}()
	t.Cleanup(func() { pw.Close() })
	return r
}

// send asks for a notification and returns what the worker wrote for it.
func (r *running) send(t *testing.T, id, text string) string {
	t.Helper()
	before := len(r.stdout.String())
	if _, err := fmt.Fprintf(r.stdin, "%s %s\n", id, text); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The answer is one write.
		if got := r.stdout.String()[before:]; strings.HasPrefix(got, "user "+id+"\n") {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer for %s; stderr:\n%s", id, r.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.stdin.Close()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, r.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop when its input ended")
	}
}

// The worker follows a scripted feed: its events change the replica (the
// names) and are told, while whom to notify and where stays the service's
// decision.
func TestFollowTheFeed(t *testing.T) {
	s := newUserService(t)
	grace := s.add(t, "grace@example.com", "Grace Hopper", usersvc.Preferences{Email: true, Push: false}, "fcm:grace-phone")
	ada := s.add(t, "ada@example.com", "Ada Lovelace", usersvc.Preferences{Email: false, Push: true}, "fcm:ada-phone")
	later := uuid.NewString()
	other := uuid.NewString()
	// Events older than the worker's start: the batch answer shows their
	// outcome, so the worker skips them.
	feed := newFakeFeed(
		event(t, 1, usersvc.EventUserUpdated, grace, usersvc.UserEventData{ID: grace, Name: "Grace Old", IsActive: true}),
		event(t, 2, usersvc.EventPreferencesUpdated, grace, usersvc.PreferencesEventData{UserID: grace, Preferences: usersvc.Preferences{Email: true}}),
	)
	s.feed = feed
	state := filepath.Join(t.TempDir(), "notifier.json")
	w := start(t, s, "-follow", "feed", "-wait", "1s", "-state", state, grace, ada, later)

	got := w.send(t, grace, "Dinner is ready")
	want := "user " + grace + "\n  email to Grace Hopper <grace@example.com>: Dinner is ready\n  push: not sent (channel_off)\n"
	if got != want {
		t.Errorf("before any change:\n%s\nwant:\n%s", got, want)
	}

	// Ada goes from the service, and the feed says so.
	if err := s.accounts.DeleteUser(t.Context(), account.Principal{UserID: ada}, ada); err != nil {
		t.Fatal(err)
	}
	dev := "pixel-8"
	feed.add(
		event(t, 3, usersvc.EventPreferencesUpdated, grace, usersvc.PreferencesEventData{UserID: grace, Preferences: usersvc.Preferences{Email: false, Push: true}}),
		event(t, 4, usersvc.EventUserUpdated, other, usersvc.UserEventData{ID: other, Name: "Not Served", IsActive: true}),
		event(t, 5, usersvc.EventDeviceRegistered, grace, usersvc.DeviceEventData{UserID: grace, ID: uuid.NewString(), DeviceID: &dev, PushToken: "fcm:grace-pixel", DeviceType: usersvc.DeviceAndroid}),
		event(t, 6, usersvc.EventUserUpdated, grace, usersvc.UserEventData{ID: grace, Email: "grace@example.com", Name: "Grace B. Hopper", IsActive: true}),
		event(t, 7, usersvc.EventPushTokenInvalidated, grace, usersvc.PushTokenInvalidatedEventData{UserID: grace, PushToken: "fcm:grace-phone", Reason: "unregistered"}),
		event(t, 8, usersvc.EventUserDeleted, ada, usersvc.UserIDEventData{UserID: ada}),
		event(t, 9, usersvc.EventUserRegistered, later, usersvc.UserEventData{ID: later, Email: "alan@example.com", Name: "Alan Turing",
			Preferences: usersvc.Preferences{Email: true, Push: true}, IsActive: true}),
		event(t, 10, "usersvc.user.renamed", grace, map[string]string{"user_id": grace}),
		event(t, 11, usersvc.EventSessionsRevoked, grace, usersvc.SessionsRevokedEventData{UserID: grace, Reason: usersvc.SessionsEndedLogout}),
	)
	waitFor(t, w.stderr, "position 9)")
	for _, line := range []string{
		"user " + grace + ": email off, push on, sms off, in_app off (preferences.updated, position 3)",
		"user " + grace + ": device fcm:grace-pixel (android) registered (device.registered, position 5)",
		"user " + grace + ": Grace B. Hopper <grace@example.com>, active true, email off, push off, sms off, in_app off (user.updated, position 6)",
		"user " + grace + ": push token fcm:grace-phone invalidated (unregistered) (push_token.invalidated, position 7)",
		"user " + ada + ": deleted (user.deleted, position 8)",
	} {
		if !strings.Contains(w.stderr.String(), line) {
			t.Errorf("not told: %q\n%s", line, w.stderr.String())
		}
	}
	// The name follows the feed; the decision is the service's, whose
	// preferences of Grace did not change.
	got = w.send(t, grace, "Dinner is ready")
	want = "user " + grace + "\n  email to Grace B. Hopper <grace@example.com>: Dinner is ready\n  push: not sent (channel_off)\n"
	if got != want {
		t.Errorf("after the changes:\n%s\nwant:\n%s", got, want)
	}
	if got := w.send(t, ada, "hello"); got != "user "+ada+"\n  no such user: nothing sent\n" {
		t.Errorf("a deleted user: %q", got)
	}
	if got := w.send(t, later, "hello"); got != "user "+later+"\n  no such user: nothing sent\n" {
		t.Errorf("a user the service does not know: %q", got)
	}
	if strings.Contains(w.stderr.String(), other) {
		t.Errorf("a change of a user not served was told:\n%s", w.stderr.String())
	}
	w.stop(t)

	// The state file keeps the replica and the cursor: a restart goes on
	// from position 11, without the batch endpoint (which would bring
	// back the service's name), and sees what changed while the worker
	// was down.
	feed.add(event(t, 12, usersvc.EventUserUpdated, grace, usersvc.UserEventData{ID: grace, Email: "grace@example.com", Name: "Rear Admiral Hopper", IsActive: true}))
	w = start(t, s, "-follow", "feed", "-wait", "1s", "-state", state, grace, ada, later)
	waitFor(t, w.stderr, "position 12)")
	if got := w.send(t, grace, "hello"); !strings.Contains(got, "  email to Rear Admiral Hopper <grace@example.com>: hello\n") {
		t.Errorf("after the restart: %q", got)
	}
	if strings.Contains(w.stderr.String(), "position 6)") {
		t.Errorf("an event before the stored cursor was applied again:\n%s", w.stderr.String())
	}
	w.stop(t)
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var st replicaState
	if err := json.Unmarshal(b, &st); err != nil || st.Cursor != 12 {
		t.Errorf("state file: cursor %d, %v", st.Cursor, err)
	}
}

// A worker whose cursor the feed no longer holds fills its replica again
// from the batch endpoint, and goes on from the newest cursor.
func TestFollowTheFeedAfterItsRetention(t *testing.T) {
	s := newUserService(t)
	grace := s.add(t, "grace@example.com", "Grace Hopper", usersvc.Preferences{Email: true, Push: true}, "fcm:grace-phone")
	state := filepath.Join(t.TempDir(), "notifier.json")
	stale := `{"cursor": 3, "users": {"` + grace + `": {"exists": true, "active": true, "email": "old@example.com", "name": "Old Name", "preferences": {"email": true, "push": false}, "position": 3}}}`
	if err := os.WriteFile(state, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(event(t, 40, usersvc.EventSessionsRevoked, grace, usersvc.SessionsRevokedEventData{UserID: grace}))
	feed.oldest = 39
	s.feed = feed
	w := start(t, s, "-follow", "feed", "-wait", "1s", "-state", state, grace)
	waitFor(t, w.stderr, "the change feed no longer holds cursor 3")
	// Until the refill is done, the stale copy answers; then the fresh one.
	deadline := time.Now().Add(10 * time.Second)
	got := w.send(t, grace, "hi")
	for strings.Contains(got, "Old Name") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got = w.send(t, grace, "hi")
	}
	want := "user " + grace + "\n  email to Grace Hopper <grace@example.com>: hi\n  push to fcm:grace-phone (android): hi\n"
	if got != want {
		t.Errorf("after the refill:\n%s\nwant:\n%s", got, want)
	}
	feed.add(event(t, 41, usersvc.EventPreferencesUpdated, grace, usersvc.PreferencesEventData{UserID: grace, Preferences: usersvc.Preferences{Email: true}}))
	waitFor(t, w.stderr, "position 41)")
	w.stop(t)
}

// Every kind of event, a repeat, and an event of another user, applied to
// the replica.
func TestReplicaApply(t *testing.T) {
	id, other, devID := uuid.NewString(), uuid.NewString(), uuid.NewString()
	r := newReplica([]string{id})
	user := usersvc.UserEventData{ID: id, Email: "grace@example.com", Name: "Grace Hopper", Preferences: usersvc.Preferences{Email: true, Push: true}, IsActive: true}
	disabled := user
	disabled.IsActive = false
	renamed := user
	renamed.Name = "Grace B. Hopper"
	device := usersvc.DeviceEventData{UserID: id, ID: devID, PushToken: "fcm:one", DeviceType: usersvc.DeviceAndroid}
	for _, tc := range []struct {
		ev     usersvc.Event
		change string // the line told, without the user and the event; "" for none
		name   string // the name afterwards
	}{
		{event(t, 1, usersvc.EventUserRegistered, id, user), "Grace Hopper <grace@example.com>, active true, email on, push on, sms off, in_app off", "Grace Hopper"},
		{event(t, 2, usersvc.EventDeviceRegistered, id, device), "device fcm:one (android) registered", "Grace Hopper"},
		{event(t, 2, usersvc.EventDeviceRemoved, id, device), "", "Grace Hopper"},
		{event(t, 3, usersvc.EventUserUpdated, id, renamed), "Grace B. Hopper <grace@example.com>, active true, email on, push on, sms off, in_app off", "Grace B. Hopper"},
		{event(t, 4, usersvc.EventUserPasswordChanged, id, usersvc.UserIDEventData{UserID: id}), "", "Grace B. Hopper"},
		{event(t, 5, usersvc.EventPreferencesUpdated, other, usersvc.PreferencesEventData{UserID: other}), "", "Grace B. Hopper"},
		{event(t, 6, usersvc.EventPreferencesUpdated, id, usersvc.PreferencesEventData{UserID: id, Preferences: usersvc.Preferences{Push: true, InApp: true}}), "email off, push on, sms off, in_app on", "Grace B. Hopper"},
		{event(t, 7, usersvc.EventDeviceRemoved, id, device), "device fcm:one removed", "Grace B. Hopper"},
		{event(t, 8, usersvc.EventPushTokenInvalidated, id, usersvc.PushTokenInvalidatedEventData{UserID: id, PushToken: "fcm:one", Reason: "expired"}), "push token fcm:one invalidated (expired)", "Grace B. Hopper"},
		{event(t, 9, usersvc.EventUserDisabled, id, disabled), "Grace Hopper <grace@example.com>, active false, email on, push on, sms off, in_app off", "Grace Hopper"},
		{event(t, 10, usersvc.EventSessionsRevoked, id, usersvc.SessionsRevokedEventData{UserID: id}), "", "Grace Hopper"},
		{event(t, 11, usersvc.EventUserDeleted, id, usersvc.UserIDEventData{UserID: id}), "deleted", ""},
		{event(t, 10, usersvc.EventUserEnabled, id, user), "", ""},
	} {
		line, err := r.apply(tc.ev)
		if err != nil {
			t.Fatalf("%s at %d: %v", tc.ev.Type, tc.ev.Position, err)
		}
		want := ""
		if tc.change != "" {
			want = fmt.Sprintf("user %s: %s (%s, position %d)", id, tc.change, strings.TrimPrefix(tc.ev.Type, "usersvc."), tc.ev.Position)
		}
		if line != want {
			t.Errorf("%s at %d: told\n%q\nwant\n%q", tc.ev.Type, tc.ev.Position, line, want)
		}
		if got := r.name(id); got != tc.name {
			t.Errorf("%s at %d: name %q, want %q", tc.ev.Type, tc.ev.Position, got, tc.name)
		}
	}
	if r.cursor() != 11 {
		t.Errorf("cursor = %d, want 11", r.cursor())
	}
	// Data that does not fit its type is refused.
	bad := event(t, 20, usersvc.EventPreferencesUpdated, id, []int{1})
	if _, err := r.apply(bad); err == nil {
		t.Error("data of the wrong shape was applied")
	}
}

// The worker follows the user service's own change feed: the changes made
// through the service reach the replica, and the notifications follow them.
func TestFollowTheServiceFeed(t *testing.T) {
	s := newUserService(t)
	ctx := t.Context()
	grace := s.add(t, "grace@example.com", "Grace Hopper", usersvc.Preferences{Email: true, Push: false}, "fcm:grace-phone")
	ada := s.add(t, "ada@example.com", "Ada Lovelace", usersvc.Preferences{Email: false, Push: true})
	w := start(t, s, "-follow", "feed", "-wait", "2s", grace, ada)
	if got := w.send(t, grace, "hi"); got != "user "+grace+"\n  email to Grace Hopper <grace@example.com>: hi\n  push: not sent (channel_off)\n" {
		t.Fatalf("before any change: %q", got)
	}

	self := func(id string) account.Principal { return account.Principal{UserID: id} }
	no, yes := false, true
	if _, err := s.accounts.UpdatePreferences(ctx, self(grace), grace, usersvc.PreferencesPatch{Email: &no, Push: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.accounts.UpdateProfile(ctx, self(grace), grace, usersvc.ProfilePatch{Name: new("Grace B. Hopper")}); err != nil {
		t.Fatal(err)
	}
	tok := "apns:ada-ipad"
	if _, err := s.accounts.UpdatePushToken(ctx, self(ada), ada, usersvc.PushTokenUpdate{Token: &tok, DeviceType: usersvc.DeviceIOS}); err != nil {
		t.Fatal(err)
	}
	if err := s.accounts.DeleteUser(ctx, self(grace), grace); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w.stderr, "user "+grace+": deleted")
	waitFor(t, w.stderr, "device apns:ada-ipad (ios) registered")
	for _, want := range []string{"email off, push on, sms on, in_app on (preferences.updated", "Grace B. Hopper <grace@example.com>"} {
		if !strings.Contains(w.stderr.String(), want) {
			t.Errorf("no change %q told:\n%s", want, w.stderr.String())
		}
	}
	if got := w.send(t, grace, "hi"); got != "user "+grace+"\n  no such user: nothing sent\n" {
		t.Errorf("a deleted user: %q", got)
	}
	if got := w.send(t, ada, "hi"); got != "user "+ada+"\n  email: not sent (channel_off)\n  push to apns:ada-ipad (ios): hi\n" {
		t.Errorf("a new device: %q", got)
	}
	w.stop(t)
}
