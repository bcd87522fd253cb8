package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/usersvc/usersvc"
)

// Errors of the change events.
var (
	// ErrCursorTooOld: the cursor given to the change feed is older than
	// the events the service keeps (410). Events were pruned that the
	// consumer has not seen: it must resynchronise its copy from the list
	// or batch endpoints and go on from the newest cursor the refusal names
	// (see *CursorTooOldError).
	ErrCursorTooOld = errors.New("usersvc: cursor too old")
	// ErrInvalidEvent: a message is not a change event of the service: not
	// CloudEvents 1.0 structured JSON, an attribute is missing, or its data
	// is not what its type carries.
	ErrInvalidEvent = errors.New("usersvc: invalid event")
	// ErrUnknownEventType: the event's type is none this client knows,
	// probably one added to the service after the client was built. A
	// consumer should skip it (and still store its position).
	ErrUnknownEventType = errors.New("usersvc: unknown event type")
)

// CursorTooOldError is the change feed's refusal of a cursor older than its
// retention. It matches ErrCursorTooOld and unwraps to the service's *Error.
type CursorTooOldError struct {
	// After is the cursor that was refused.
	After int64
	// Oldest is the oldest cursor the feed still accepts.
	Oldest int64
	// Newest is the position of the newest event when the cursor was
	// refused. A copy refilled from the list or batch endpoints after the
	// refusal holds every change up to it: the consumer goes on from
	// Newest. (Going on from Oldest instead replays the events kept over
	// the fresh copy: harmless when they are applied in order, each
	// carrying the whole new state of what it changes, but slower.)
	Newest int64
	// Err is the service's answer (status 410).
	Err *Error
}

func (e *CursorTooOldError) Error() string {
	return fmt.Sprintf("usersvc: change feed: cursor %d is older than the events kept (oldest cursor %d, newest %d): resynchronise", e.After, e.Oldest, e.Newest)
}

// Is reports whether target is ErrCursorTooOld.
func (e *CursorTooOldError) Is(target error) bool { return target == ErrCursorTooOld }

// Unwrap returns the service's answer.
func (e *CursorTooOldError) Unwrap() error { return e.Err }

// EventPage is one answer of the change feed.
type EventPage struct {
	// Events are the events after the cursor asked for, in order of
	// Position; none when the wait passed first.
	Events []usersvc.Event
	// NextCursor is the cursor to ask with next: the position of the last
	// event of the page, or the cursor asked for when the page is empty.
	NextCursor int64
}

// Limits of the change feed's requests.
const (
	// DefaultFeedWait is how long Events lets the service hold a request
	// that finds no new event.
	DefaultFeedWait = 25 * time.Second
	// DefaultFeedLimit is how many events Events asks for at once.
	DefaultFeedLimit = 100
	// feedMaxBackoff bounds the pause of Events between failed polls.
	feedMaxBackoff = 30 * time.Second
)

// EventPage asks the change feed (GET /api/v1/events) for at most limit
// events after the cursor after (0 for the first event kept; limit 0 for
// the service's default). When there is none yet, the service holds the
// request until one is committed or wait passes, and then answers an empty
// page; wait 0 answers at once. It needs a service key with the scope
// events.read. A cursor older than the service's retention fails with a
// *CursorTooOldError. Every event is checked as DecodeEvent checks one.
//
// Like every GET, the call is retried on timeouts, connection failures,
// 429 and 5xx; each attempt may last wait longer than WithTimeout.
func (c *Client) EventPage(ctx context.Context, after int64, limit int, wait time.Duration) (*EventPage, error) {
	if after < 0 || limit < 0 || wait < 0 {
		return nil, fmt.Errorf("usersvc: change feed: %w: negative cursor, limit or wait", ErrInvalid)
	}
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "wait": {formatWait(wait)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var (
		evs  []usersvc.Event
		meta struct {
			NextCursor *int64 `json:"next_cursor"`
		}
	)
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/events", query: q, auth: true, data: &evs, meta: &meta, hold: wait})
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusGone {
		oldest, newest := goneCursors(e)
		return nil, &CursorTooOldError{After: after, Oldest: oldest, Newest: newest, Err: e}
	}
	if err != nil {
		return nil, err
	}
	p := &EventPage{Events: evs, NextCursor: after}
	for i, ev := range evs {
		if err := checkEvent(ev); err != nil {
			return nil, fmt.Errorf("usersvc: change feed: event %d of the page: %w", i, err)
		}
		if ev.Position <= p.NextCursor {
			return nil, fmt.Errorf("usersvc: change feed: %w: position %d does not follow %d", ErrInvalidEvent, ev.Position, p.NextCursor)
		}
		p.NextCursor = ev.Position
	}
	if meta.NextCursor != nil {
		if *meta.NextCursor < p.NextCursor {
			return nil, fmt.Errorf("usersvc: change feed: next cursor %d is behind the page's last event %d", *meta.NextCursor, p.NextCursor)
		}
		p.NextCursor = *meta.NextCursor
	}
	return p, nil
}

// formatWait writes a wait as the service reads it: a Go duration, whole
// seconds when it is ("30s").
func formatWait(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// goneCursors reads the cursors a 410 of the feed names in its data,
// {"oldest_cursor": N, "newest_cursor": M}.
func goneCursors(e *Error) (oldest, newest int64) {
	var v struct {
		Oldest int64 `json:"oldest_cursor"`
		Newest int64 `json:"newest_cursor"`
	}
	if len(e.data) > 0 {
		_ = json.Unmarshal(e.data, &v)
	}
	return v.Oldest, v.Newest
}

// An EventsOption tunes the polling of Events.
type EventsOption func(*feedConfig)

type feedConfig struct {
	limit int
	wait  time.Duration
}

// FeedLimit makes Events ask for at most n events per request
// (DefaultFeedLimit, 100, unless set; the service may allow fewer).
func FeedLimit(n int) EventsOption {
	return func(f *feedConfig) {
		if n > 0 {
			f.limit = n
		}
	}
}

// FeedWait makes Events let the service hold a request that finds no new
// event for d (DefaultFeedWait, 25 s, unless set). Shorter waits cost more
// requests; an event is delivered as soon as it is committed either way.
func FeedWait(d time.Duration) EventsOption {
	return func(f *feedConfig) {
		if d >= 0 {
			f.wait = d
		}
	}
}

// Events follows the change feed from the cursor after: it yields every
// event with a Position greater than after, in order, and then waits for
// the next ones (long polls of EventPage) until ctx ends or the loop
// breaks.
//
//	for ev, err := range users.Events(ctx, cursor) {
//		if err != nil {
//			… // see below
//		}
//		… // apply ev
//		cursor = ev.Position // and store it, once ev is applied
//	}
//
// The caller keeps the cursor: after handling an event, store its Position
// (with the change it made, ideally in the same transaction), and start
// again from the stored value after a restart. An event whose handling was
// not recorded is then delivered again, never skipped.
//
// Errors are yielded with a zero Event:
//   - a failure to reach the service (ErrUnavailable, after the client's
//     retries) or a 429: the loop may go on, Events tries again from the
//     same cursor after a pause that grows to 30 s;
//   - a *CursorTooOldError (ErrCursorTooOld): the consumer missed pruned
//     events and must resynchronise (from BatchUsers or ListUsers), then
//     follow again from its Newest; Events stops;
//   - any other failure (a refused key, a missing events.read scope, an
//     event this client cannot read), and ctx's end: Events stops.
func (c *Client) Events(ctx context.Context, after int64, opts ...EventsOption) iter.Seq2[usersvc.Event, error] {
	f := feedConfig{limit: DefaultFeedLimit, wait: DefaultFeedWait}
	for _, o := range opts {
		o(&f)
	}
	return func(yield func(usersvc.Event, error) bool) {
		cursor, failures := after, 0
		for {
			if err := ctx.Err(); err != nil {
				yield(usersvc.Event{}, err)
				return
			}
			start := time.Now()
			p, err := c.EventPage(ctx, cursor, f.limit, f.wait)
			if err != nil {
				if ctx.Err() != nil {
					yield(usersvc.Event{}, err)
					return
				}
				if !yield(usersvc.Event{}, err) {
					return
				}
				if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrRateLimited) {
					return
				}
				failures++
				pause := c.feedBackoff(failures)
				var e *Error
				if errors.As(err, &e) {
					pause = max(pause, e.RetryAfter)
				}
				if !sleep(ctx, pause) {
					yield(usersvc.Event{}, ctx.Err())
					return
				}
				continue
			}
			failures = 0
			for _, ev := range p.Events {
				if !yield(ev, nil) {
					return
				}
			}
			cursor = p.NextCursor
			// A service that answers an empty page at once, whatever the
			// wait asked, is not polled in a tight loop.
			if len(p.Events) == 0 && f.wait > 0 {
				if rest := min(f.wait, time.Second) - time.Since(start); rest > 0 && !sleep(ctx, rest) {
					yield(usersvc.Event{}, ctx.Err())
					return
				}
			}
		}
	}
}

// feedBackoff is the pause of Events after its nth failed poll in a row:
// the client's backoff, but growing to feedMaxBackoff.
func (c *Client) feedBackoff(n int) time.Duration {
	d := max(c.retry.BaseDelay, 100*time.Millisecond)
	for i := 1; i < n && d < feedMaxBackoff; i++ {
		d *= 2
	}
	d = min(d, feedMaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d, or less when ctx ends first; it reports whether the wait
// was whole.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// DecodeEvent reads one change event from a message body: a RabbitMQ
// delivery's Body, a NATS message's Data, or one element of the change
// feed. It accepts CloudEvents 1.0 in the structured JSON mode only, with
// the attributes the service always sets (id, source, type, subject, a
// positive position) and JSON data; any other specversion is refused.
// Unknown attributes are ignored, and so is an unknown type: DecodeData
// reports that one.
func DecodeEvent(body []byte) (usersvc.Event, error) {
	var ev struct {
		usersvc.Event
		DataBase64 *string `json:"data_base64"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return usersvc.Event{}, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if ev.DataBase64 != nil {
		return usersvc.Event{}, fmt.Errorf("%w: data_base64: the service sends JSON data only", ErrInvalidEvent)
	}
	if err := checkEvent(ev.Event); err != nil {
		return usersvc.Event{}, err
	}
	return ev.Event, nil
}

// checkEvent checks the attributes of ev.
func checkEvent(ev usersvc.Event) error {
	switch {
	case ev.SpecVersion != usersvc.EventSpecVersion:
		return fmt.Errorf("%w: specversion %q, this client reads %q", ErrInvalidEvent, ev.SpecVersion, usersvc.EventSpecVersion)
	case ev.ID == "":
		return fmt.Errorf("%w: no id", ErrInvalidEvent)
	case ev.Source == "":
		return fmt.Errorf("%w: no source", ErrInvalidEvent)
	case ev.Type == "":
		return fmt.Errorf("%w: no type", ErrInvalidEvent)
	case ev.Subject == "":
		return fmt.Errorf("%w: event %s: no subject", ErrInvalidEvent, ev.ID)
	case ev.Position <= 0:
		return fmt.Errorf("%w: event %s: no position", ErrInvalidEvent, ev.ID)
	}
	if ev.DataContentType != "" {
		mt, _, err := mime.ParseMediaType(ev.DataContentType)
		if err != nil || mt != usersvc.EventContentType {
			return fmt.Errorf("%w: event %s: datacontenttype %q, this client reads %q", ErrInvalidEvent, ev.ID, ev.DataContentType, usersvc.EventContentType)
		}
	}
	return nil
}

// newEventData returns a pointer to the data type of the event type typ,
// or nil for a type this client does not know.
func newEventData(typ string) any {
	switch typ {
	case usersvc.EventUserRegistered, usersvc.EventUserUpdated, usersvc.EventUserDisabled, usersvc.EventUserEnabled:
		return new(usersvc.UserEventData)
	case usersvc.EventUserDeleted, usersvc.EventUserPasswordChanged:
		return new(usersvc.UserIDEventData)
	case usersvc.EventPreferencesUpdated:
		return new(usersvc.PreferencesEventData)
	case usersvc.EventDeviceRegistered, usersvc.EventDeviceRemoved:
		return new(usersvc.DeviceEventData)
	case usersvc.EventPushTokenInvalidated:
		return new(usersvc.PushTokenInvalidatedEventData)
	case usersvc.EventSessionsRevoked:
		return new(usersvc.SessionsRevokedEventData)
	case usersvc.EventPasswordResetRequested:
		return new(usersvc.PasswordResetEventData)
	case usersvc.EventVerificationRequested:
		return new(usersvc.VerificationEventData)
	case usersvc.EventEmailChangeRequested:
		return new(usersvc.EmailChangeEventData)
	case usersvc.EventEmailChangeNotice:
		return new(usersvc.EmailChangeNoticeEventData)
	case usersvc.EventCategoryUpdated:
		return new(usersvc.CategoryEventData)
	case usersvc.EventCategoryDeleted:
		return new(usersvc.CategoryKeyEventData)
	}
	return nil
}

// DecodeData decodes the data of ev as T, which must be the data type of
// ev's type (usersvc.UserEventData for usersvc.EventUserRegistered,
// usersvc.DeviceEventData for usersvc.EventDeviceRegistered, …: see
// usersvc.EventTypes). An unknown type fails with ErrUnknownEventType;
// another T, missing data or data of the wrong shape with ErrInvalidEvent.
// Fields the client does not know are ignored, so that the service may add
// some.
//
//	switch ev.Type {
//	case usersvc.EventPreferencesUpdated:
//		d, err := client.DecodeData[usersvc.PreferencesEventData](ev)
//		…
//	}
func DecodeData[T any](ev usersvc.Event) (T, error) {
	var v T
	if err := checkEvent(ev); err != nil {
		return v, err
	}
	want := newEventData(ev.Type)
	if want == nil {
		return v, fmt.Errorf("%w: %q (event %s)", ErrUnknownEventType, ev.Type, ev.ID)
	}
	if _, ok := want.(*T); !ok {
		return v, fmt.Errorf("%w: event %s of type %s carries %T, not %T", ErrInvalidEvent, ev.ID, ev.Type, want, &v)
	}
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 || data[0] != '{' {
		return v, fmt.Errorf("%w: event %s of type %s: its data is not a JSON object", ErrInvalidEvent, ev.ID, ev.Type)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%w: event %s of type %s: %v", ErrInvalidEvent, ev.ID, ev.Type, err)
	}
	return v, nil
}

// EventData decodes the data of ev into the value of its type's data type
// (usersvc.UserEventData, usersvc.UserIDEventData,
// usersvc.PreferencesEventData, usersvc.DeviceEventData,
// usersvc.PushTokenInvalidatedEventData, usersvc.SessionsRevokedEventData,
// usersvc.PasswordResetEventData, usersvc.VerificationEventData,
// usersvc.EmailChangeEventData, usersvc.EmailChangeNoticeEventData,
// usersvc.CategoryEventData or usersvc.CategoryKeyEventData),
// for a type switch. Its errors are those of DecodeData.
func EventData(ev usersvc.Event) (any, error) {
	switch newEventData(ev.Type).(type) {
	case *usersvc.UserEventData:
		return DecodeData[usersvc.UserEventData](ev)
	case *usersvc.UserIDEventData:
		return DecodeData[usersvc.UserIDEventData](ev)
	case *usersvc.PreferencesEventData:
		return DecodeData[usersvc.PreferencesEventData](ev)
	case *usersvc.DeviceEventData:
		return DecodeData[usersvc.DeviceEventData](ev)
	case *usersvc.PushTokenInvalidatedEventData:
		return DecodeData[usersvc.PushTokenInvalidatedEventData](ev)
	case *usersvc.SessionsRevokedEventData:
		return DecodeData[usersvc.SessionsRevokedEventData](ev)
	case *usersvc.PasswordResetEventData:
		return DecodeData[usersvc.PasswordResetEventData](ev)
	case *usersvc.VerificationEventData:
		return DecodeData[usersvc.VerificationEventData](ev)
	case *usersvc.EmailChangeEventData:
		return DecodeData[usersvc.EmailChangeEventData](ev)
	case *usersvc.EmailChangeNoticeEventData:
		return DecodeData[usersvc.EmailChangeNoticeEventData](ev)
	case *usersvc.CategoryEventData:
		return DecodeData[usersvc.CategoryEventData](ev)
	case *usersvc.CategoryKeyEventData:
		return DecodeData[usersvc.CategoryKeyEventData](ev)
	}
	return DecodeData[struct{}](ev) // the unknown type's error
}
