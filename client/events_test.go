package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
)

const (
	userA = "0190b7a4-5a4f-7c2e-9d3b-2f1e4a5b6c7d"
	devA  = "0190b7a4-5a4f-7c2e-9d3b-2f1e4a5b6c7e"
)

var eventTime = time.Date(2025, 3, 1, 12, 30, 0, 0, time.UTC)

// newEvent is an event as the service writes it, with data d.
func newEvent(t testing.TB, pos int64, typ string, d any) usersvc.Event {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return usersvc.Event{SpecVersion: usersvc.EventSpecVersion, ID: fmt.Sprintf("0190b7a4-0000-7000-8000-%012d", pos),
		Source: usersvc.EventSource, Type: typ, Subject: userA, Time: eventTime, DataContentType: usersvc.EventContentType,
		Position: pos, Data: b}
}

// sampleData is one data value of every event type.
func sampleData() map[string]any {
	tok := "fcm:grace-phone"
	dev := "pixel-8"
	user := usersvc.UserEventData{ID: userA, Email: "grace@example.com", Name: "Grace Hopper", PushToken: &tok,
		Preferences: usersvc.Preferences{Email: true, Push: false}, IsActive: true, CreatedAt: eventTime, UpdatedAt: eventTime.Add(time.Minute)}
	disabled := user
	disabled.IsActive = false
	return map[string]any{
		usersvc.EventUserRegistered:       user,
		usersvc.EventUserUpdated:          user,
		usersvc.EventUserDeleted:          usersvc.UserIDEventData{UserID: userA},
		usersvc.EventUserDisabled:         disabled,
		usersvc.EventUserEnabled:          user,
		usersvc.EventUserPasswordChanged:  usersvc.UserIDEventData{UserID: userA},
		usersvc.EventPreferencesUpdated:   usersvc.PreferencesEventData{UserID: userA, Preferences: usersvc.Preferences{Email: false, Push: true}},
		usersvc.EventDeviceRegistered:     usersvc.DeviceEventData{UserID: userA, ID: devA, DeviceID: &dev, PushToken: tok, DeviceType: usersvc.DeviceAndroid},
		usersvc.EventDeviceRemoved:        usersvc.DeviceEventData{UserID: userA, ID: devA, PushToken: tok, DeviceType: usersvc.DeviceIOS},
		usersvc.EventPushTokenInvalidated: usersvc.PushTokenInvalidatedEventData{UserID: userA, PushToken: tok, Reason: "unregistered"},
		usersvc.EventSessionsRevoked:      usersvc.SessionsRevokedEventData{UserID: userA, SessionIDs: []string{devA}, Reason: usersvc.SessionsEndedPassword},
		usersvc.EventPasswordResetRequested: usersvc.PasswordResetEventData{UserID: userA, Email: "grace@example.com",
			Token: "q3Jt0bU5mX2Jm7Kq1dQv4Qx8C0yZpL9sTnWf6hRa2Eo", ExpiresAt: eventTime.Add(30 * time.Minute)},
		usersvc.EventVerificationRequested: usersvc.VerificationEventData{UserID: userA, Channel: "sms", Address: "+14155550123",
			Code: "042917", ExpiresAt: eventTime.Add(15 * time.Minute)},
		usersvc.EventEmailChangeRequested: usersvc.EmailChangeEventData{UserID: userA, OldEmail: "grace@example.com", NewEmail: "grace@navy.example",
			Token: "q3Jt0bU5mX2Jm7Kq1dQv4Qx8C0yZpL9sTnWf6hRa2Eo", ExpiresAt: eventTime.Add(time.Hour)},
		usersvc.EventEmailChangeNotice: usersvc.EmailChangeNoticeEventData{UserID: userA, Email: "grace@example.com", NewEmail: "grace@navy.example",
			ExpiresAt: eventTime.Add(time.Hour)},
		usersvc.EventCategoryUpdated: usersvc.CategoryEventData{Key: "marketing", Name: "Marketing", Description: "News and offers",
			Defaults: map[string]bool{"email": true, "push": false, "sms": false, "in_app": true}, Commercial: true,
			CreatedAt: eventTime.Add(-time.Hour), UpdatedAt: eventTime},
		usersvc.EventCategoryDeleted: usersvc.CategoryKeyEventData{Key: "marketing"},
	}
}

// decodeAs decodes ev's data as the type of want, through DecodeData.
func decodeAs(ev usersvc.Event, want any) (any, error) {
	switch want.(type) {
	case usersvc.UserEventData:
		return client.DecodeData[usersvc.UserEventData](ev)
	case usersvc.UserIDEventData:
		return client.DecodeData[usersvc.UserIDEventData](ev)
	case usersvc.PreferencesEventData:
		return client.DecodeData[usersvc.PreferencesEventData](ev)
	case usersvc.DeviceEventData:
		return client.DecodeData[usersvc.DeviceEventData](ev)
	case usersvc.PushTokenInvalidatedEventData:
		return client.DecodeData[usersvc.PushTokenInvalidatedEventData](ev)
	case usersvc.SessionsRevokedEventData:
		return client.DecodeData[usersvc.SessionsRevokedEventData](ev)
	case usersvc.PasswordResetEventData:
		return client.DecodeData[usersvc.PasswordResetEventData](ev)
	case usersvc.VerificationEventData:
		return client.DecodeData[usersvc.VerificationEventData](ev)
	case usersvc.EmailChangeEventData:
		return client.DecodeData[usersvc.EmailChangeEventData](ev)
	case usersvc.EmailChangeNoticeEventData:
		return client.DecodeData[usersvc.EmailChangeNoticeEventData](ev)
	case usersvc.CategoryEventData:
		return client.DecodeData[usersvc.CategoryEventData](ev)
	case usersvc.CategoryKeyEventData:
		return client.DecodeData[usersvc.CategoryKeyEventData](ev)
	}
	return nil, fmt.Errorf("no case for %T", want)
}

// Every event type, as a broker message body (what the relay publishes),
// decodes to the event and to its typed data.
func TestDecodeEveryEventType(t *testing.T) {
	data := sampleData()
	if len(data) != len(usersvc.EventTypes) {
		t.Fatalf("the table has %d types, usersvc.EventTypes %d", len(data), len(usersvc.EventTypes))
	}
	for i, typ := range usersvc.EventTypes {
		t.Run(strings.TrimPrefix(typ, "usersvc."), func(t *testing.T) {
			want, ok := data[typ]
			if !ok {
				t.Fatalf("no sample data for %s", typ)
			}
			in := newEvent(t, int64(i+1), typ, want)
			body, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := client.DecodeEvent(body)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if ev.ID != in.ID || ev.Type != typ || ev.Subject != userA || ev.Position != in.Position ||
				!ev.Time.Equal(eventTime) || ev.Source != usersvc.EventSource {
				t.Errorf("event = %+v, want %+v", ev, in)
			}
			got, err := decodeAs(ev, want)
			if err != nil {
				t.Fatalf("DecodeData: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("data = %#v, want %#v", got, want)
			}
			typed, err := client.EventData(ev)
			if err != nil {
				t.Fatalf("EventData: %v", err)
			}
			if !reflect.DeepEqual(typed, want) {
				t.Errorf("EventData = %#v, want %#v", typed, want)
			}
			// Every other data type is refused.
			for _, other := range data {
				if reflect.TypeOf(other) == reflect.TypeOf(want) {
					continue
				}
				if _, err := decodeAs(ev, other); !errors.Is(err, client.ErrInvalidEvent) {
					t.Errorf("DecodeData as %T: error = %v, want ErrInvalidEvent", other, err)
				}
			}
		})
	}
}

func TestDecodeEventRefuses(t *testing.T) {
	good := `"id": "e1", "source": "/usersvc", "type": "usersvc.user.deleted", "subject": "` + userA + `", "position": 7, "time": "2025-03-01T12:30:00Z", "data": {"user_id": "` + userA + `"}`
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"the service's form", `{"specversion": "1.0", "datacontenttype": "application/json", ` + good + `}`, true},
		{"no datacontenttype", `{"specversion": "1.0", ` + good + `}`, true},
		{"a charset", `{"specversion": "1.0", "datacontenttype": "application/json; charset=utf-8", ` + good + `}`, true},
		{"an unknown extension", `{"specversion": "1.0", "traceparent": "00-abc", ` + good + `}`, true},
		{"specversion 0.3", `{"specversion": "0.3", ` + good + `}`, false},
		{"specversion 2.0", `{"specversion": "2.0", ` + good + `}`, false},
		{"no specversion", `{` + good + `}`, false},
		{"a numeric specversion", `{"specversion": 1.0, ` + good + `}`, false},
		{"XML data", `{"specversion": "1.0", "datacontenttype": "application/xml", ` + good + `}`, false},
		{"binary data", `{"specversion": "1.0", "data_base64": "e30=", ` + strings.Replace(good, `, "data": {"user_id": "`+userA+`"}`, "", 1) + `}`, false},
		{"no id", `{"specversion": "1.0", ` + strings.Replace(good, `"id": "e1", `, "", 1) + `}`, false},
		{"no source", `{"specversion": "1.0", ` + strings.Replace(good, `"source": "/usersvc", `, "", 1) + `}`, false},
		{"no type", `{"specversion": "1.0", ` + strings.Replace(good, `"type": "usersvc.user.deleted", `, "", 1) + `}`, false},
		{"no subject", `{"specversion": "1.0", ` + strings.Replace(good, `"subject": "`+userA+`", `, "", 1) + `}`, false},
		{"no position", `{"specversion": "1.0", ` + strings.Replace(good, `"position": 7, `, "", 1) + `}`, false},
		{"a string position", `{"specversion": "1.0", ` + strings.Replace(good, `"position": 7`, `"position": "7"`, 1) + `}`, false},
		{"not JSON", `specversion=1.0`, false},
		{"an array", `[]`, false},
		{"empty", ``, false},
	} {
		_, err := client.DecodeEvent([]byte(tc.body))
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && !errors.Is(err, client.ErrInvalidEvent):
			t.Errorf("%s: error = %v, want ErrInvalidEvent", tc.name, err)
		}
	}
}

func TestDecodeDataRefuses(t *testing.T) {
	ev := newEvent(t, 1, usersvc.EventPreferencesUpdated, usersvc.PreferencesEventData{UserID: userA})
	for _, tc := range []struct {
		name string
		edit func(*usersvc.Event)
		want error
	}{
		{"an unknown type", func(e *usersvc.Event) { e.Type = "usersvc.user.renamed" }, client.ErrUnknownEventType},
		{"null data", func(e *usersvc.Event) { e.Data = json.RawMessage("null") }, client.ErrInvalidEvent},
		{"no data", func(e *usersvc.Event) { e.Data = nil }, client.ErrInvalidEvent},
		{"an array", func(e *usersvc.Event) { e.Data = json.RawMessage(`[1]`) }, client.ErrInvalidEvent},
		{"a wrong field type", func(e *usersvc.Event) { e.Data = json.RawMessage(`{"preferences": {"email": "yes"}}`) }, client.ErrInvalidEvent},
		{"another specversion", func(e *usersvc.Event) { e.SpecVersion = "1.1" }, client.ErrInvalidEvent},
	} {
		e := ev
		tc.edit(&e)
		if _, err := client.DecodeData[usersvc.PreferencesEventData](e); !errors.Is(err, tc.want) {
			t.Errorf("%s: DecodeData error = %v, want %v", tc.name, err, tc.want)
		}
		if _, err := client.EventData(e); !errors.Is(err, tc.want) {
			t.Errorf("%s: EventData error = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Fields the client does not know yet are ignored.
	ev.Data = json.RawMessage(`{"user_id": "` + userA + `", "preferences": {"email": true, "push": false, "sms": true}, "channel": "web"}`)
	d, err := client.DecodeData[usersvc.PreferencesEventData](ev)
	if err != nil || d.UserID != userA || !d.Preferences.Email || d.Preferences.Push {
		t.Errorf("with new fields: %+v, %v", d, err)
	}
}

// feedServer serves the change feed's documented format from a list of
// events, with long polls, a retention, and failures on demand.
type feedServer struct {
	*httptest.Server

	mu       sync.Mutex
	events   []usersvc.Event
	oldest   int64 // the oldest cursor accepted
	changed  chan struct{}
	fail     []int // statuses to answer, first to last, before serving
	requests []string
}

func newFeedServer(t *testing.T, events ...usersvc.Event) *feedServer {
	t.Helper()
	f := &feedServer{events: events, changed: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// add commits events and wakes the waiting polls.
func (f *feedServer) add(evs ...usersvc.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, evs...)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *feedServer) requested() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func writeEnvelope(w http.ResponseWriter, status int, data, meta any, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var errMsg any
	if status >= 300 {
		errMsg = msg
	}
	json.NewEncoder(w).Encode(map[string]any{"success": status < 300, "data": data, "error": errMsg, "message": msg, "meta": meta})
}

func (f *feedServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/events" || r.Method != http.MethodGet {
		writeEnvelope(w, http.StatusNotFound, nil, nil, "Not found")
		return
	}
	if r.Header.Get("X-Service-API-Key") != serviceKey {
		writeEnvelope(w, http.StatusForbidden, nil, nil, "You do not have permission to perform this action")
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.RawQuery)
	if len(f.fail) > 0 {
		status := f.fail[0]
		f.fail = f.fail[1:]
		f.mu.Unlock()
		writeEnvelope(w, status, nil, nil, http.StatusText(status))
		return
	}
	f.mu.Unlock()
	q := r.URL.Query()
	after, err1 := strconv.ParseInt(q.Get("after"), 10, 64)
	limit, err2 := strconv.Atoi(q.Get("limit"))
	wait, err3 := time.ParseDuration(q.Get("wait"))
	if err1 != nil || err2 != nil || err3 != nil || limit < 1 {
		writeEnvelope(w, http.StatusBadRequest, nil, nil, "Invalid query")
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		if after < f.oldest {
			oldest := f.oldest
			f.mu.Unlock()
			writeEnvelope(w, http.StatusGone, map[string]int64{"oldest_cursor": oldest, "newest_cursor": f.events[len(f.events)-1].Position}, nil, "The cursor is older than the events kept")
			return
		}
		var page []usersvc.Event
		next := after
		for _, ev := range f.events {
			if ev.Position > after && len(page) < limit {
				page = append(page, ev)
				next = ev.Position
			}
		}
		changed := f.changed
		f.mu.Unlock()
		if len(page) > 0 {
			writeEnvelope(w, http.StatusOK, page, map[string]int64{"next_cursor": next}, "Events retrieved successfully")
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			writeEnvelope(w, http.StatusOK, []usersvc.Event{}, map[string]int64{"next_cursor": after}, "Events retrieved successfully")
			return
		case <-r.Context().Done():
			return
		}
	}
}

func feedClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithServiceKey(serviceKey)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sampleEvents are eleven events, of the first eleven types, at positions
// 1 to 11: the tests of the feed's paging count on these positions
// (TestDecodeEveryEventType covers every type).
func sampleEvents(t *testing.T) []usersvc.Event {
	data := sampleData()
	var evs []usersvc.Event
	for i, typ := range usersvc.EventTypes[:11] {
		evs = append(evs, newEvent(t, int64(i+1), typ, data[typ]))
	}
	return evs
}

func TestEventsFollowsTheFeed(t *testing.T) {
	evs := sampleEvents(t)
	f := newFeedServer(t, evs...)
	users := feedClient(t, f.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	var got []int64
	later := newEvent(t, 20, usersvc.EventPreferencesUpdated, usersvc.PreferencesEventData{UserID: userA})
	for ev, err := range users.Events(ctx, 0, client.FeedLimit(4), client.FeedWait(5*time.Second)) {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.EventData(ev); err != nil {
			t.Fatalf("event %d: %v", ev.Position, err)
		}
		got = append(got, ev.Position)
		if ev.Position == int64(len(evs)) {
			// Caught up: the next poll waits for this one.
			time.AfterFunc(100*time.Millisecond, func() { f.add(later) })
		}
		if ev.Position == later.Position {
			break
		}
	}
	want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 20}
	if !slices.Equal(got, want) {
		t.Errorf("positions = %v, want %v", got, want)
	}
	reqs := f.requested()
	wantReqs := []string{"after=0&limit=4&wait=5s", "after=4&limit=4&wait=5s", "after=8&limit=4&wait=5s", "after=11&limit=4&wait=5s"}
	if !slices.Equal(reqs, wantReqs) {
		t.Errorf("requests = %q, want %q", reqs, wantReqs)
	}
}

// A consumer restarting from the position it stored gets the events after
// it, none before.
func TestEventsResumesFromTheStoredCursor(t *testing.T) {
	f := newFeedServer(t, sampleEvents(t)...)
	users := feedClient(t, f.URL)
	var got []int64
	for ev, err := range users.Events(t.Context(), 8, client.FeedWait(0)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Position)
		if ev.Position == 11 {
			break
		}
	}
	if !slices.Equal(got, []int64{9, 10, 11}) {
		t.Errorf("positions = %v", got)
	}
}

func TestEventPage(t *testing.T) {
	f := newFeedServer(t, sampleEvents(t)...)
	users := feedClient(t, f.URL, client.WithTimeout(100*time.Millisecond))
	ctx := t.Context()

	p, err := users.EventPage(ctx, 9, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 || p.NextCursor != 11 {
		t.Errorf("page = %d events, next %d; want 2, 11", len(p.Events), p.NextCursor)
	}
	// A long poll may outlast the client's timeout of an attempt.
	start := time.Now()
	p, err = users.EventPage(ctx, 11, 10, 400*time.Millisecond)
	if err != nil {
		t.Fatalf("long poll: %v", err)
	}
	if len(p.Events) != 0 || p.NextCursor != 11 || time.Since(start) < 400*time.Millisecond {
		t.Errorf("empty page = %+v after %v", p, time.Since(start))
	}
	if _, err := users.EventPage(ctx, -1, 0, 0); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("negative cursor: %v", err)
	}
}

func TestEventsCursorTooOld(t *testing.T) {
	f := newFeedServer(t, sampleEvents(t)[5:]...)
	f.oldest = 5
	users := feedClient(t, f.URL)
	var errs []error
	for ev, err := range users.Events(t.Context(), 2) {
		if err == nil {
			t.Fatalf("event %d from a cursor too old", ev.Position)
		}
		errs = append(errs, err)
	}
	if len(errs) != 1 {
		t.Fatalf("errors = %v, want one, then the end", errs)
	}
	var gone *client.CursorTooOldError
	if !errors.As(errs[0], &gone) || !errors.Is(errs[0], client.ErrCursorTooOld) {
		t.Fatalf("error = %v, want a *CursorTooOldError", errs[0])
	}
	if gone.After != 2 || gone.Oldest != 5 || gone.Newest != 11 || gone.Err.Status != http.StatusGone {
		t.Errorf("error = %+v", gone)
	}
	// The consumer resynchronises, then follows from the newest cursor,
	// or from the oldest.
	p, err := users.EventPage(t.Context(), gone.Newest, 100, 0)
	if err != nil || len(p.Events) != 0 || p.NextCursor != 11 {
		t.Errorf("from the newest cursor: %+v, %v", p, err)
	}
	p, err = users.EventPage(t.Context(), gone.Oldest, 100, 0)
	if err != nil || len(p.Events) != 6 || p.Events[0].Position != 6 {
		t.Errorf("from the oldest cursor: %v", err)
	}
}

// Failures to reach the service are yielded, and the iterator goes on from
// the same cursor when the loop does.
func TestEventsGoesOnAfterTransientFailures(t *testing.T) {
	f := newFeedServer(t, sampleEvents(t)[:3]...)
	f.fail = []int{http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusServiceUnavailable}
	users := feedClient(t, f.URL, client.WithRetry(client.RetryPolicy{Attempts: 2, BaseDelay: time.Millisecond}), client.WithCircuitBreaker(0, 0))
	var (
		got   []int64
		fails int
	)
	for ev, err := range users.Events(t.Context(), 0, client.FeedWait(0)) {
		if err != nil {
			if !errors.Is(err, client.ErrUnavailable) {
				t.Fatalf("error = %v, want ErrUnavailable", err)
			}
			fails++
			continue
		}
		got = append(got, ev.Position)
		if ev.Position == 3 {
			break
		}
	}
	// Two attempts per poll: the first poll fails twice over, the second
	// fails once and is retried.
	if fails != 1 || !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("failures %d, positions %v; want 1, [1 2 3]", fails, got)
	}
	for _, q := range f.requested() {
		if !strings.HasPrefix(q, "after=0&") {
			t.Errorf("request %q: a failed poll is repeated from the same cursor", q)
		}
	}
}

func TestEventsStops(t *testing.T) {
	bad := newEvent(t, 1, usersvc.EventUserDeleted, usersvc.UserIDEventData{UserID: userA})
	bad.SpecVersion = "2.0"
	for _, tc := range []struct {
		name  string
		setup func(*feedServer)
		key   string
		want  error
	}{
		{"a refused key", nil, "another-key-0123456789", client.ErrForbidden},
		{"a bad request", func(f *feedServer) { f.fail = []int{http.StatusBadRequest} }, serviceKey, client.ErrInvalid},
		{"an unknown specversion", func(f *feedServer) { f.add(bad) }, serviceKey, client.ErrInvalidEvent},
	} {
		f := newFeedServer(t)
		if tc.setup != nil {
			tc.setup(f)
		}
		users, err := client.New(f.URL, client.WithServiceKey(tc.key))
		if err != nil {
			t.Fatal(err)
		}
		var errs []error
		for _, err := range users.Events(t.Context(), 0, client.FeedWait(0)) {
			errs = append(errs, err)
		}
		if len(errs) != 1 || !errors.Is(errs[0], tc.want) {
			t.Errorf("%s: errors = %v, want one matching %v", tc.name, errs, tc.want)
		}
	}
}

func TestEventsEndsWithTheContext(t *testing.T) {
	f := newFeedServer(t)
	users := feedClient(t, f.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	var errs []error
	for _, err := range users.Events(ctx, 0, client.FeedWait(time.Minute)) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Errorf("errors = %v, want one matching DeadlineExceeded", errs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ended after %v", d)
	}
}
