package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// eventsPath is the change feed.
const eventsPath = "/api/v1/events"

// handleEvents serves the change feed: GET /api/v1/events?after=&limit=&wait=.
// work bounds what the request does besides waiting.
func handleEvents(accounts *account.Service, work time.Duration) handlerFunc {
	type meta struct {
		NextCursor int64 `json:"next_cursor"`
	}
	type gone struct {
		OldestCursor int64 `json:"oldest_cursor"`
		NewestCursor int64 `json:"newest_cursor"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		q, fe := r.URL.Query(), usersvc.FieldErrors{}
		after, err := strconv.ParseInt(or(q.Get("after"), "0"), 10, 64)
		if err != nil {
			fe.Add("after", "Must be a whole number of at least 0")
		}
		limit, err := strconv.Atoi(or(q.Get("limit"), strconv.Itoa(account.DefaultEventsLimit)))
		if err != nil {
			fe.Add("limit", "Must be a whole number from 1 to 1000")
		}
		wait, err := parseWait(q.Get("wait"))
		if err != nil {
			fe.Add("wait", "Must be a duration from 0s to 60s, such as 30s")
		}
		if err := fe.Err(); err != nil {
			return err
		}
		// Room for the wait on top of the server's write timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + work + 5*time.Second))
		page, err := accounts.Feed(r.Context(), principalOf(r), after, limit, wait)
		var expired *account.CursorExpired
		if errors.As(err, &expired) {
			msg := account.MsgCursorExpired
			writeJSON(w, http.StatusGone, envelope{Data: gone{OldestCursor: expired.Oldest, NewestCursor: expired.Newest}, Error: &msg, Message: msg})
			return nil
		}
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Events retrieved successfully", page.Events, meta{NextCursor: page.Next})
		return nil
	}
}

// parseWait reads the wait of a feed request: a Go duration (30s, 1m) or
// a whole number of seconds; empty is 0.
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
