package account

import (
	"context"
	"time"

	"github.com/usersvc/usersvc"
)

// ScopeEventsRead lets a service key read the change feed.
const ScopeEventsRead = "events.read"

// Bounds of a feed request.
const (
	DefaultEventsLimit = 100
	MaxEventsLimit     = 1000
	MaxEventsWait      = 60 * time.Second
)

// MsgCursorExpired is the answer to a cursor older than the events kept.
const MsgCursorExpired = "The cursor is older than the events kept: resynchronise, then continue from newest_cursor"

// Events is the feed's part of the store.
type Events interface {
	// Events returns at most limit events after position after, in order.
	Events(ctx context.Context, after int64, limit int) ([]usersvc.Event, error)
	// EventBounds returns the positions of the oldest and newest events kept.
	EventBounds(ctx context.Context) (oldest, newest int64, err error)
	// EventsChanged returns a channel closed when events may have been
	// committed since the call.
	EventsChanged() <-chan struct{}
}

// EventPage is one answer of the feed.
type EventPage struct {
	Events []usersvc.Event
	// Next is the cursor to ask with next: the position of the last event,
	// or the cursor asked with when there was none.
	Next int64
}

// CursorExpired is the error (inside an EGone *usersvc.Error) of a cursor
// older than the events kept: events after it were pruned. The consumer
// resynchronises (the list and batch endpoints) and continues from Newest.
type CursorExpired struct {
	Oldest, Newest int64
}

func (e *CursorExpired) Error() string { return MsgCursorExpired }

// Feed returns the events after the cursor after, for services with the
// events.read scope. With wait, it holds until an event arrives or wait
// passes (then an empty page with the same cursor).
func (s *Service) Feed(ctx context.Context, p Principal, after int64, limit int, wait time.Duration) (*EventPage, error) {
	ev := s.events
	if err := s.requireScope(ctx, p, ScopeEventsRead, false); err != nil {
		return nil, err
	}
	fe := usersvc.FieldErrors{}
	if after < 0 {
		fe.Add("after", "Must be a whole number of at least 0")
	}
	if limit < 1 || limit > MaxEventsLimit {
		fe.Add("limit", "Must be a whole number from 1 to 1000")
	}
	if wait < 0 || wait > MaxEventsWait {
		fe.Add("wait", "Must be a duration from 0s to 60s")
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	for {
		changed := ev.EventsChanged() // before reading, so no commit is missed
		oldest, newest, err := ev.EventBounds(ctx)
		if err != nil {
			return nil, err
		}
		if oldest > 0 && after < oldest-1 {
			return nil, &usersvc.Error{Code: usersvc.EGone, Message: MsgCursorExpired, Err: &CursorExpired{Oldest: oldest - 1, Newest: newest}}
		}
		evs, err := ev.Events(ctx, after, limit)
		if err != nil {
			return nil, err
		}
		if len(evs) > 0 || wait == 0 {
			next := after
			if len(evs) > 0 {
				next = evs[len(evs)-1].Position
			}
			return &EventPage{Events: evs, Next: next}, nil
		}
		select {
		case <-changed:
		case <-deadline:
			return &EventPage{Events: []usersvc.Event{}, Next: after}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
