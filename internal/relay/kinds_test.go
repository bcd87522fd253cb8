package relay_test

import (
	"bytes"
	"encoding/json"
	"path"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/relay"
	"github.com/usersvc/usersvc/internal/sqlstore"
	"github.com/usersvc/usersvc/internal/storetest"
)

// kindsSequence is the whole feed that the store's conformance test of
// events (storetest's "Events") writes, in order: the user "a" registers
// with a push token, is renamed and changes its preferences; "b"
// registers and takes a's token (removed from a, registered to b); a
// registers two more devices, deletes one, clears its current token; b's
// token is invalidated; a changes its password (another session ends),
// is disabled (its sessions end) and enabled; a session ends, a refresh
// token is reused (its session ends); a asks for a password reset and
// uses it, verifies its email and changes it; a is deleted; "c" is imported with a
// device; category "d" is defined, changed and deleted. Subjects are named by the order of their first event.
var kindsSequence = []struct {
	typ string
	who string
}{
	{usersvc.EventUserRegistered, "a"},
	{usersvc.EventDeviceRegistered, "a"},
	{usersvc.EventUserUpdated, "a"},
	{usersvc.EventPreferencesUpdated, "a"},
	{usersvc.EventUserRegistered, "b"},
	{usersvc.EventDeviceRemoved, "a"},
	{usersvc.EventDeviceRegistered, "b"},
	{usersvc.EventDeviceRegistered, "a"},
	{usersvc.EventDeviceRegistered, "a"},
	{usersvc.EventDeviceRemoved, "a"},
	{usersvc.EventDeviceRemoved, "a"},
	{usersvc.EventPushTokenInvalidated, "b"},
	{usersvc.EventUserPasswordChanged, "a"},
	{usersvc.EventSessionsRevoked, "a"},
	{usersvc.EventUserDisabled, "a"},
	{usersvc.EventSessionsRevoked, "a"},
	{usersvc.EventUserEnabled, "a"},
	{usersvc.EventSessionsRevoked, "a"},
	{usersvc.EventSessionsRevoked, "a"},
	{usersvc.EventPasswordResetRequested, "a"},
	{usersvc.EventUserPasswordChanged, "a"},
	{usersvc.EventVerificationRequested, "a"},
	{usersvc.EventUserUpdated, "a"},
	{usersvc.EventEmailChangeRequested, "a"},
	{usersvc.EventEmailChangeNotice, "a"},
	{usersvc.EventUserUpdated, "a"},
	{usersvc.EventUserDeleted, "a"},
	{usersvc.EventUserRegistered, "c"},
	{usersvc.EventDeviceRegistered, "c"},
	{usersvc.EventCategoryUpdated, "d"},
	{usersvc.EventCategoryUpdated, "d"},
	{usersvc.EventCategoryDeleted, "d"},
}

// Every kind of change, made through the store while the relay runs,
// arrives at a consumer of each broker as the change feed gives it: the
// same events (type, subject, id, position, data and the other attributes),
// in the feed's order, each once.
func TestBrokersReceiveEveryKindOfChange(t *testing.T) {
	outboxes(t, func(t *testing.T, newOutbox func(testing.TB) outbox) {
		bothBrokers(t, func(t *testing.T, b *testBroker) {
			o := newOutbox(t)
			// Small batches: the sequence crosses several.
			start(t, o, b.at(b.addr), relay.Options{Holder: "kinds", Lease: 2 * time.Second, BatchSize: 4})
			everyKindOfChange(t, o.(*sqlOutbox).Store)

			feed := o.all(t)
			wantKinds(t, feed)
			waitDelivered(t, b, len(feed), 10*time.Second)
			eventually(t, 5*time.Second, "every event marked published", func() bool { return o.pending(t) == 0 })
			time.Sleep(300 * time.Millisecond) // a repeat would arrive by now
			got := b.received()
			sameEvents(t, b.name, feed, got)
			checkDelivery(t, feed, got)
			if !t.Failed() {
				t.Logf("%s: %d events of %d types, as the feed gives them, in order, each once", b.name, len(got), len(usersvc.EventTypes))
			}
		})
	})
}

// everyKindOfChange makes, on s, the changes of the store's conformance
// test of events (storetest's "Events", which also checks each step's
// events against the feed); the suite's other tests are skipped.
func everyKindOfChange(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	ran := false
	storetest.Run(t, func(st *testing.T) *sqlstore.Store {
		if path.Base(st.Name()) != "Events" {
			st.SkipNow()
		}
		ran = true
		return s
	})
	if !ran {
		t.Fatal("the store's conformance suite has no test named Events")
	}
	if t.Failed() {
		t.FailNow()
	}
}

// wantKinds checks the feed against kindsSequence, and that it holds
// every event type.
func wantKinds(t *testing.T, feed []usersvc.Event) {
	t.Helper()
	who := map[string]string{} // subject → a, b, c… in order of first event
	got := make([][2]string, len(feed))
	for i, ev := range feed {
		if _, ok := who[ev.Subject]; !ok {
			who[ev.Subject] = string(rune('a' + len(who)))
		}
		got[i] = [2]string{ev.Type, who[ev.Subject]}
	}
	want := make([][2]string, len(kindsSequence))
	for i, k := range kindsSequence {
		want[i] = [2]string{k.typ, k.who}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the feed holds (type, user)\n%q\nwant\n%q", got, want)
	}
	for _, typ := range usersvc.EventTypes {
		if !slices.ContainsFunc(feed, func(ev usersvc.Event) bool { return ev.Type == typ }) {
			t.Errorf("no event of type %s in the feed", typ)
		}
	}
}

// sameEvents checks that the broker's messages (got, in arrival order)
// are the feed's events, in order, each once.
func sameEvents(t *testing.T, broker string, feed, got []usersvc.Event) {
	t.Helper()
	if len(got) != len(feed) {
		t.Errorf("%s: %d messages for %d events", broker, len(got), len(feed))
	}
	seen := make(map[string]bool, len(got))
	for _, ev := range got {
		if seen[ev.ID] {
			t.Errorf("%s: event %s (position %d) arrived more than once", broker, ev.ID, ev.Position)
		}
		seen[ev.ID] = true
	}
	for i := range min(len(got), len(feed)) {
		g, w := got[i], feed[i]
		if g.ID != w.ID || g.Type != w.Type || g.Subject != w.Subject || g.Position != w.Position ||
			g.SpecVersion != w.SpecVersion || g.Source != w.Source || g.DataContentType != w.DataContentType || !g.Time.Equal(w.Time) {
			t.Errorf("%s: message %d is\n%+v\nwant\n%+v", broker, i, g, w)
		}
		if !sameJSON(g.Data, w.Data) {
			t.Errorf("%s: message %d (%s) carries data %s, want %s", broker, i, w.Type, g.Data, w.Data)
		}
	}
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
