package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// wantEvents reads the events after position after and checks their types
// and subjects, in order; it returns them.
func wantEvents(t *testing.T, s *sqlstore.Store, after int64, want ...[2]string) []usersvc.Event {
	t.Helper()
	evs, err := s.Events(t.Context(), after, 1000)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	got := make([][2]string, len(evs))
	for i, e := range evs {
		got[i] = [2]string{e.Type, e.Subject}
		if e.SpecVersion != "1.0" || e.Source != usersvc.EventSource || e.ID == "" || e.Time.IsZero() ||
			e.DataContentType != "application/json" || (i > 0 && e.Position <= evs[i-1].Position) || e.Position <= after {
			t.Errorf("event %d = %+v", i, e)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events after %d =\n%q\nwant\n%q", after, got, want)
	}
	return evs
}

func ev(typ, subject string) [2]string { return [2]string{typ, subject} }

func data[T any](t *testing.T, e usersvc.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		t.Fatalf("data of %s: %v", e.Type, err)
	}
	return v
}

func lastPosition(t *testing.T, s *sqlstore.Store) int64 {
	t.Helper()
	_, newest, err := s.EventBounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return newest
}

// testEvents makes every kind of change and reads back exactly the events
// each writes, in order, with their data.
func testEvents(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := newUser(t, "Evented", at(0))
	u.PushToken = ptr("tok-ev-1")
	if _, err := s.CreateUser(ctx, u, "hash:"+u.ID); err != nil {
		t.Fatal(err)
	}
	evs := wantEvents(t, s, 0, ev(usersvc.EventUserRegistered, u.ID), ev(usersvc.EventDeviceRegistered, u.ID))
	if d := data[usersvc.UserEventData](t, evs[0]); d.ID != u.ID || d.Email != u.Email || d.PushToken == nil || *d.PushToken != "tok-ev-1" {
		t.Errorf("user.registered data = %+v", d)
	}
	if raw := string(evs[0].Data); strings.Contains(raw, "hash") || strings.Contains(raw, "password") {
		t.Errorf("user.registered carries a secret: %s", raw)
	}
	if d := data[usersvc.DeviceEventData](t, evs[1]); d.PushToken != "tok-ev-1" || d.UserID != u.ID || d.ID == "" {
		t.Errorf("device.registered data = %+v", d)
	}

	p := lastPosition(t, s)
	if _, err := s.UpdateProfile(ctx, u.ID, usersvc.ProfilePatch{Name: ptr("Renamed")}, at(1)); err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{Email: ptr(false), Push: &yes}, at(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{}, at(2)); err != nil { // reads, no event
		t.Fatal(err)
	}
	evs = wantEvents(t, s, p, ev(usersvc.EventUserUpdated, u.ID), ev(usersvc.EventPreferencesUpdated, u.ID))
	if d := data[usersvc.UserEventData](t, evs[0]); d.Name != "Renamed" {
		t.Errorf("user.updated data = %+v", d)
	}
	if d := data[usersvc.PreferencesEventData](t, evs[1]); !d.Preferences.Equal(usersvc.Preferences{Email: false, Push: true, SMS: true, InApp: true}) {
		t.Errorf("preferences.updated data = %+v", d)
	}

	// A token that moves: removed from its holder, registered to the taker.
	other := create(t, s, "Other", at(3))
	p = lastPosition(t, s)
	if _, err := s.RegisterPushToken(ctx, &usersvc.Device{UserID: other.ID, Token: "tok-ev-1", DeviceID: ptr("tablet"), DeviceType: usersvc.DeviceWeb}, at(4)); err != nil {
		t.Fatal(err)
	}
	evs = wantEvents(t, s, p, ev(usersvc.EventDeviceRemoved, u.ID), ev(usersvc.EventDeviceRegistered, other.ID))
	if d := data[usersvc.DeviceEventData](t, evs[0]); d.PushToken != "tok-ev-1" {
		t.Errorf("device.removed data = %+v", d)
	}

	p = lastPosition(t, s)
	register(t, s, u.ID, "tok-ev-2", "phone", at(5))
	register(t, s, u.ID, "tok-ev-3", "watch", at(6))
	if err := s.DeleteDevice(ctx, u.ID, "phone", at(7)); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearPushToken(ctx, u.ID, nil, at(8)); err != nil { // the current one: tok-ev-3
		t.Fatal(err)
	}
	if _, _, err := s.InvalidatePushTokens(ctx, []string{"tok-ev-1"}, "unregistered", at(9)); err != nil {
		t.Fatal(err)
	}
	evs = wantEvents(t, s, p,
		ev(usersvc.EventDeviceRegistered, u.ID), ev(usersvc.EventDeviceRegistered, u.ID),
		ev(usersvc.EventDeviceRemoved, u.ID), ev(usersvc.EventDeviceRemoved, u.ID),
		ev(usersvc.EventPushTokenInvalidated, other.ID))
	if d := data[usersvc.DeviceEventData](t, evs[3]); d.PushToken != "tok-ev-3" {
		t.Errorf("device.removed of the cleared token = %+v", d)
	}
	if d := data[usersvc.PushTokenInvalidatedEventData](t, evs[4]); d.PushToken != "tok-ev-1" || d.Reason != "unregistered" {
		t.Errorf("push_token.invalidated data = %+v", d)
	}

	// Sessions: a password change (one other session), a disable, an
	// enable, the end of a session, reuse; a rehash and a login write none.
	_, first := login(t, s, u.ID, at(10), time.Hour)
	f2, _ := login(t, s, u.ID, at(10), time.Hour)
	if err := s.SetPasswordHash(ctx, u.ID, "rehash", at(11)); err != nil {
		t.Fatal(err)
	}
	p = lastPosition(t, s)
	if _, err := s.ChangePassword(ctx, u.ID, "hash-2", first.FamilyID, at(12)); err != nil {
		t.Fatal(err)
	}
	evs = wantEvents(t, s, p, ev(usersvc.EventUserPasswordChanged, u.ID), ev(usersvc.EventSessionsRevoked, u.ID))
	if d := data[usersvc.SessionsRevokedEventData](t, evs[1]); !slices.Equal(d.SessionIDs, []string{f2.ID}) || d.Reason != usersvc.SessionsEndedPassword {
		t.Errorf("sessions.revoked data = %+v", d)
	}
	p = lastPosition(t, s)
	if _, err := s.SetActive(ctx, u.ID, false, at(13)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetActive(ctx, u.ID, true, at(14)); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, s, p, ev(usersvc.EventUserDisabled, u.ID), ev(usersvc.EventSessionsRevoked, u.ID), ev(usersvc.EventUserEnabled, u.ID))

	f3, _ := login(t, s, u.ID, at(15), time.Hour)
	_, t4 := login(t, s, u.ID, at(15), time.Hour)
	p = lastPosition(t, s)
	if _, err := s.RevokeSessions(ctx, u.ID, []string{f3.ID}, "", usersvc.SessionsEndedLogout, at(16)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefreshToken(ctx, u.ID, t4.JTI, at(17), func(account.RefreshState) account.Rotation { return account.Rotation{Revoke: true} }); err != nil {
		t.Fatal(err)
	}
	evs = wantEvents(t, s, p, ev(usersvc.EventSessionsRevoked, u.ID), ev(usersvc.EventSessionsRevoked, u.ID))
	if d := data[usersvc.SessionsRevokedEventData](t, evs[1]); d.Reason != usersvc.SessionsEndedReuse || !slices.Equal(d.SessionIDs, []string{t4.FamilyID}) {
		t.Errorf("sessions.revoked of reuse = %+v", d)
	}

	// A password reset: its request, then the change (no live session
	// is left to end).
	p = lastPosition(t, s)
	r := reset(t, s, u.ID, "ev-reset", 17, 1800)
	if _, err := s.ResetPassword(ctx, r, "hash-3", at(18)); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, s, p, ev(usersvc.EventPasswordResetRequested, u.ID), ev(usersvc.EventUserPasswordChanged, u.ID))

	// A verification: its request, then the confirmation (user.updated).
	p = lastPosition(t, s)
	v := verification(t, s, u, usersvc.ChannelEmail, "ev-code", 18, 900)
	if _, err := s.ConfirmVerification(ctx, v, at(18)); err != nil {
		t.Fatal(err)
	}
	evs = wantEvents(t, s, p, ev(usersvc.EventVerificationRequested, u.ID), ev(usersvc.EventUserUpdated, u.ID))
	if d := data[usersvc.UserEventData](t, evs[1]); d.EmailVerifiedAt == nil || !d.EmailVerifiedAt.Equal(at(18)) {
		t.Errorf("user.updated of a verification = %+v", d)
	}

	// A change of email: its request and notice, then the change.
	p = lastPosition(t, s)
	c := emailChange(t, s, u, "renamed-"+u.Email, "ev-change", 18, 3600)
	if _, err := s.ConfirmEmailChange(ctx, c, at(18)); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, s, p, ev(usersvc.EventEmailChangeRequested, u.ID), ev(usersvc.EventEmailChangeNotice, u.ID), ev(usersvc.EventUserUpdated, u.ID))

	// A failed write writes no event; a deletion writes one.
	p = lastPosition(t, s)
	if _, err := s.UpdateProfile(ctx, newID(t), usersvc.ProfilePatch{Name: ptr("Nobody")}, at(18)); err == nil {
		t.Fatal("UpdateName of an unknown user succeeded")
	}
	if err := s.DeleteUser(ctx, u.ID, at(19)); err != nil {
		t.Fatal(err)
	}
	evs = wantEvents(t, s, p, ev(usersvc.EventUserDeleted, u.ID))
	if d := data[usersvc.UserIDEventData](t, evs[0]); d.UserID != u.ID {
		t.Errorf("user.deleted data = %+v", d)
	}

	// Import: the user and its devices.
	imp := newUser(t, "Imported", at(20))
	devices, err := account.PrepareImport(imp, []usersvc.Device{{Token: "tok-ev-imp", DeviceType: usersvc.DeviceIOS}})
	if err != nil {
		t.Fatal(err)
	}
	p = lastPosition(t, s)
	if _, err := s.ImportUser(ctx, imp, "h", devices); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, s, p, ev(usersvc.EventUserRegistered, imp.ID), ev(usersvc.EventDeviceRegistered, imp.ID))

	// A category defined, changed and deleted: events of the category, not
	// of a user; deleting an unknown one writes none.
	cat := "ev-news"
	p = lastPosition(t, s)
	for i, name := range []string{"News", "Newsletter"} {
		c := &usersvc.Category{Key: cat, Name: name, Defaults: map[string]bool{usersvc.ChannelEmail: true, usersvc.ChannelPush: false,
			usersvc.ChannelSMS: false, usersvc.ChannelInApp: true}, Commercial: true}
		if _, err := s.PutCategory(ctx, c, at(21+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteCategory(ctx, "ev-nothing", at(23)); usersvc.ErrorCode(err) != usersvc.ENotFound {
		t.Fatalf("DeleteCategory of an unknown key = %v", err)
	}
	if err := s.DeleteCategory(ctx, cat, at(24)); err != nil {
		t.Fatal(err)
	}
	subject := usersvc.CategorySubject(cat)
	evs = wantEvents(t, s, p, ev(usersvc.EventCategoryUpdated, subject), ev(usersvc.EventCategoryUpdated, subject), ev(usersvc.EventCategoryDeleted, subject))
	if d := data[usersvc.CategoryEventData](t, evs[1]); d.Key != cat || d.Name != "Newsletter" || !d.Commercial || d.Required ||
		!d.Defaults[usersvc.ChannelEmail] || d.Defaults[usersvc.ChannelPush] || !d.CreatedAt.Equal(at(21)) || !d.UpdatedAt.Equal(at(22)) {
		t.Errorf("category.updated data = %+v", d)
	}
	if d := data[usersvc.CategoryKeyEventData](t, evs[2]); d.Key != cat || !evs[2].Time.Equal(at(24)) {
		t.Errorf("category.deleted = %+v, data %+v", evs[2], d)
	}
}

// testEventTraceParent: an event written under a traced request carries
// its W3C trace context (CloudEvents' distributed tracing extension); one
// written without has none, and its JSON has no such attribute.
func testEventTraceParent(t *testing.T, s *sqlstore.Store) {
	u := create(t, s, "Traced", at(0))
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	p := lastPosition(t, s)
	traced := trace.ContextWithSpanContext(t.Context(), sc)
	if _, err := s.UpdatePreferences(traced, u.ID, usersvc.PreferencesPatch{Email: ptr(false)}, at(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdatePreferences(t.Context(), u.ID, usersvc.PreferencesPatch{Email: ptr(true)}, at(2)); err != nil {
		t.Fatal(err)
	}
	evs := wantEvents(t, s, p, ev(usersvc.EventPreferencesUpdated, u.ID), ev(usersvc.EventPreferencesUpdated, u.ID))
	if want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; evs[0].TraceParent != want {
		t.Errorf("traceparent of the traced write = %q, want %q", evs[0].TraceParent, want)
	}
	if evs[1].TraceParent != "" {
		t.Errorf("traceparent of the untraced write = %q, want none", evs[1].TraceParent)
	}
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(string(b), `"traceparent"`); has != (i == 0) {
			t.Errorf("event %d in JSON: %s", i, b)
		}
	}
	// The relay reads it too.
	un, err := s.UnpublishedEvents(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(un, func(e usersvc.Event) bool { return e.ID == evs[0].ID }); i < 0 || un[i].TraceParent != evs[0].TraceParent {
		t.Errorf("the traced event among the unpublished: %d of %d", i, len(un))
	}
}

// testEventOutbox covers the relay's side: unpublished events, their
// marking, pruning, and the lease.
func testEventOutbox(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	for i := range 3 {
		create(t, s, "Outbox", at(i))
	}
	all, err := s.UnpublishedEvents(ctx, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("UnpublishedEvents = %d, %v; want 3", len(all), err)
	}
	if err := s.MarkEventsPublished(ctx, []int64{all[0].Position, all[1].Position}, at(10)); err != nil {
		t.Fatal(err)
	}
	rest, err := s.UnpublishedEvents(ctx, 10)
	if err != nil || len(rest) != 1 || rest[0].Position != all[2].Position {
		t.Fatalf("UnpublishedEvents after marking = %+v, %v", rest, err)
	}
	// Pruning keeps unpublished events when asked, and always the newest.
	if n, err := s.PruneEvents(ctx, at(100), true); err != nil || n != 2 {
		t.Fatalf("PruneEvents(keep unpublished) = %d, %v; want 2", n, err)
	}
	if oldest, newest, err := s.EventBounds(ctx); err != nil || oldest != all[2].Position || newest != all[2].Position {
		t.Fatalf("EventBounds = %d, %d, %v", oldest, newest, err)
	}
	if n, err := s.PruneEvents(ctx, at(100), false); err != nil || n != 0 {
		t.Fatalf("PruneEvents of the newest = %d, %v; want 0", n, err)
	}

	// The lease.
	ok, err := s.AcquireLease(ctx, "relay", "a", 10*time.Second, at(0))
	if err != nil || !ok {
		t.Fatalf("AcquireLease(a) = %v, %v", ok, err)
	}
	if ok, _ := s.AcquireLease(ctx, "relay", "b", 10*time.Second, at(5)); ok {
		t.Fatal("b took a's live lease")
	}
	if ok, _ := s.AcquireLease(ctx, "relay", "a", 10*time.Second, at(5)); !ok {
		t.Fatal("a could not renew its lease")
	}
	if ok, _ := s.AcquireLease(ctx, "relay", "b", 10*time.Second, at(16)); !ok {
		t.Fatal("b could not take an expired lease")
	}
	if err := s.ReleaseLease(ctx, "relay", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcquireLease(ctx, "relay", "a", 10*time.Second, at(17)); ok {
		t.Fatal("a's release freed b's lease")
	}
	if err := s.ReleaseLease(ctx, "relay", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.AcquireLease(ctx, "relay", "a", 10*time.Second, at(18)); !ok {
		t.Fatal("a released lease could not be taken")
	}

	// A commit wakes the waiters of this process.
	ch := s.EventsChanged()
	create(t, s, "Waker", at(30))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("a commit with events did not wake EventsChanged")
	}
}

// wantUnpublished checks that the unpublished events are those at want,
// in order.
func wantUnpublished(t *testing.T, s *sqlstore.Store, what string, want ...int64) {
	t.Helper()
	evs, err := s.UnpublishedEvents(t.Context(), 1000)
	if err != nil {
		t.Fatalf("%s: UnpublishedEvents: %v", what, err)
	}
	got := make([]int64, len(evs))
	for i, e := range evs {
		got[i] = e.Position
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: unpublished events at %v, want %v", what, got, want)
	}
}

func positions(evs []usersvc.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Position
	}
	return out
}

// testEventWatermark covers the relay's watermark: marking a prefix
// publishes exactly it, a late mark of older events never moves the
// watermark back, and pruning keeps what is above it.
func testEventWatermark(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	for i := range 5 {
		create(t, s, "Watermark", at(i))
	}
	all, err := s.Events(ctx, 0, 10)
	if err != nil || len(all) != 5 {
		t.Fatalf("Events = %d, %v; want 5", len(all), err)
	}
	p := positions(all)
	wantUnpublished(t, s, "before any mark", p...)
	if first, err := s.UnpublishedEvents(ctx, 1); err != nil || len(first) != 1 || first[0].Position != p[0] {
		t.Fatalf("UnpublishedEvents(1) = %+v, %v", first, err)
	}

	mark := func(what string, ps ...int64) {
		t.Helper()
		if err := s.MarkEventsPublished(ctx, ps, at(10)); err != nil {
			t.Fatalf("%s: MarkEventsPublished(%v): %v", what, ps, err)
		}
	}
	mark("a prefix", p[0], p[1], p[2])
	wantUnpublished(t, s, "after marking three", p[3:]...)
	mark("a late mark of the first", p[0])
	mark("a late mark of two", p[1], p[2])
	mark("nothing")
	wantUnpublished(t, s, "after late marks", p[3:]...)
	mark("the next one", p[3])
	wantUnpublished(t, s, "after marking four", p[4])
	mark("a late mark again", p[1])
	wantUnpublished(t, s, "after a late mark once more", p[4])

	// Pruning keeps what is above the watermark, however old.
	if n, err := s.PruneEvents(ctx, at(100), true); err != nil || n != 4 {
		t.Fatalf("PruneEvents(keep unpublished) = %d, %v; want 4", n, err)
	}
	if oldest, _, err := s.EventBounds(ctx); err != nil || oldest != p[4] {
		t.Fatalf("oldest kept = %d, %v; want %d", oldest, err, p[4])
	}
	// A new event is unpublished; marking it leaves nothing.
	create(t, s, "After", at(20))
	rest, err := s.UnpublishedEvents(ctx, 10)
	if err != nil || len(rest) != 2 || rest[0].Position != p[4] || rest[1].Position <= p[4] {
		t.Fatalf("UnpublishedEvents after a new event = %v, %v", positions(rest), err)
	}
	mark("all", positions(rest)...)
	wantUnpublished(t, s, "after marking all")
	// With nothing unpublished, pruning with keepUnpublished keeps only
	// the newest, as without.
	if n, err := s.PruneEvents(ctx, at(100), true); err != nil || n != 1 {
		t.Fatalf("PruneEvents with nothing unpublished = %d, %v; want 1", n, err)
	}
}

// testEventPruning prunes more events than one transaction of pruning
// deletes: every batch goes, up to the first recent event, and the
// watermark and the newest event still hold.
func testEventPruning(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	s.PruneBatch = 3
	for i := range 11 {
		create(t, s, fmt.Sprintf("Pruned %d", i), at(i))
	}
	all, err := s.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	old := slices.IndexFunc(all, func(e usersvc.Event) bool { return !e.Time.Before(at(8)) })
	if old < 8 {
		t.Fatalf("events = %d, the first at or after 8 is #%d; want 8 or more before it", len(all), old)
	}
	if n, err := s.PruneEvents(ctx, at(8), false); err != nil || n != old {
		t.Fatalf("PruneEvents(before 8) = %d, %v; want %d in batches of 3", n, err, old)
	}
	if oldest, _, err := s.EventBounds(ctx); err != nil || oldest != all[old].Position {
		t.Fatalf("oldest kept = %d, %v; want %d", oldest, err, all[old].Position)
	}
	// With the watermark below the newest, everything up to it goes, and
	// nothing above it.
	last := len(all) - 1
	if err := s.MarkEventsPublished(ctx, positions(all[:last-1]), at(20)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneEvents(ctx, at(100), true); err != nil || n != last-1-old {
		t.Fatalf("PruneEvents(keep unpublished) = %d, %v; want %d", n, err, last-1-old)
	}
	wantUnpublished(t, s, "after pruning", all[last-1].Position, all[last].Position)
	if n, err := s.PruneEvents(ctx, at(100), false); err != nil || n != 1 {
		t.Fatalf("PruneEvents of all but the newest = %d, %v; want 1", n, err)
	}
	if oldest, newest, err := s.EventBounds(ctx); err != nil || oldest != all[last].Position || newest != oldest {
		t.Fatalf("EventBounds = %d, %d, %v; want only %d", oldest, newest, err, all[last].Position)
	}
}

// RunMigrations runs the tests of what the migrations make of existing
// rows. openBlank must return a fresh store that is not migrated, and close
// it when its test ends; d is its dialect, with which the tests write the
// rows of an older schema themselves (the store writes the newest one).
func RunMigrations(t *testing.T, d sqlstore.Dialect, openBlank func(t *testing.T) *sqlstore.Store) {
	t.Run("EventWatermarkMigration", func(t *testing.T) { testEventWatermarkMigration(t, d, openBlank) })
}

// eventProgressVersion is the migration that replaced the marks of
// published events by the relay's watermark.
const eventProgressVersion = 9

// testEventWatermarkMigration builds databases of the schema before the
// watermark, with events marked published per row, migrates them, and
// checks that exactly the events not yet published remain unpublished
// (none skipped) and that positions go on from the kept ones.
func testEventWatermarkMigration(t *testing.T, d sqlstore.Dialect, openBlank func(t *testing.T) *sqlstore.Store) {
	cases := []struct {
		name      string
		events    int
		published []int // indexes of the events marked published
		want      []int // indexes of the events unpublished after the migration
	}{
		{"none kept", 0, nil, nil},
		{"none published", 4, nil, []int{0, 1, 2, 3}},
		{"a prefix published", 6, []int{0, 1, 2}, []int{3, 4, 5}},
		{"all published", 4, []int{0, 1, 2, 3}, nil},
		// The relay never marked past an unpublished event; were one so
		// marked, it is published again rather than the other skipped.
		{"a hole", 5, []int{0, 1, 3}, []int{2, 3, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := openBlank(t)
			if err := s.MigrateTo(ctx, eventProgressVersion-1); err != nil {
				t.Fatalf("MigrateTo(%d): %v", eventProgressVersion-1, err)
			}
			// The events of that schema, as its service wrote them.
			before := make([]usersvc.Event, tc.events)
			for i := range tc.events {
				e := usersvc.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: usersvc.EventUserRegistered,
					Subject: uuid.NewString(), Time: at(i), Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
				if err := s.DB().QueryRowContext(ctx, d.Rebind(`INSERT INTO events (id, type, subject, time, data)
					VALUES (?, ?, ?, ?, ?) RETURNING position`), e.ID, e.Type, e.Subject, d.Time(e.Time), string(e.Data)).Scan(&e.Position); err != nil {
					t.Fatalf("event %d of schema %d: %v", i, eventProgressVersion-1, err)
				}
				before[i] = e
			}
			for _, i := range tc.published {
				if _, err := s.DB().ExecContext(ctx, fmt.Sprintf(`UPDATE events SET published_at = time WHERE position = %d`, before[i].Position)); err != nil {
					t.Fatalf("mark event %d published: %v", i, err)
				}
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			after, err := s.Events(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Fatalf("%d events after the migration, want %d", len(after), len(before))
			}
			for i := range after {
				a, b := after[i], before[i]
				if a.Position != b.Position || a.ID != b.ID || a.Type != b.Type || a.Subject != b.Subject ||
					!a.Time.Equal(b.Time) || string(a.Data) != string(b.Data) || a.TraceParent != "" {
					t.Errorf("event %d after the migration = %+v, want %+v", i, a, b)
				}
			}
			want := make([]int64, len(tc.want))
			for j, i := range tc.want {
				want[j] = before[i].Position
			}
			wantUnpublished(t, s, "after the migration", want...)

			// Positions go on above the kept ones, unpublished.
			create(t, s, "New", at(50))
			evs, err := s.Events(ctx, 0, 100)
			if err != nil || len(evs) != tc.events+1 {
				t.Fatalf("Events after a new one = %d, %v; want %d", len(evs), err, tc.events+1)
			}
			newest := evs[len(evs)-1].Position
			if tc.events > 0 && newest <= before[tc.events-1].Position {
				t.Fatalf("a new event took position %d, not above %d", newest, before[tc.events-1].Position)
			}
			wantUnpublished(t, s, "after a new event", append(want, newest)...)
		})
	}
}
