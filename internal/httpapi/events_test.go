package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
)

func TestEventsFeed(t *testing.T) { checkFeed(t, newHarness(t)) }

func TestEventsFeedOnPostgres(t *testing.T) {
	checkFeed(t, newHarnessOn(t, newPostgres(t), cheapHashing))
}

// feedTypes returns the types and subjects of a feed answer's events, and
// its next cursor.
func feedTypes(t testing.TB, r response) ([][2]string, int64) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("feed: %d %s", r.Status, r.Raw)
	}
	evs, _ := r.Body["data"].([]any)
	out := make([][2]string, len(evs))
	for i, e := range evs {
		m := e.(map[string]any)
		out[i] = [2]string{m["type"].(string), m["subject"].(string)}
		if m["specversion"] != "1.0" || m["source"] != "/usersvc" || m["datacontenttype"] != "application/json" || m["data"] == nil {
			t.Errorf("event %d = %v", i, m)
		}
	}
	meta, _ := r.Body["meta"].(map[string]any)
	next, ok := meta["next_cursor"].(float64)
	if !ok {
		t.Fatalf("no next_cursor in %s", r.Raw)
	}
	return out, int64(next)
}

func checkFeed(t *testing.T, h *harness) {
	key := []string{"X-Service-API-Key", feedKey}
	feed := func(query string) response { return h.do("GET", "/api/v1/events"+query, nil, key...) }

	// Who may read it.
	u := h.register("Feed Reader")
	expect(t, h.do("GET", "/api/v1/events", nil), http.StatusUnauthorized, "")
	expect(t, h.do("GET", "/api/v1/events", nil, "Authorization", "Bearer "+u.Access), http.StatusForbidden, "")
	expect(t, h.do("GET", "/api/v1/events", nil, "X-Service-API-Key", serviceKey), http.StatusForbidden, "")
	for _, q := range []string{"?limit=0", "?limit=1001", "?after=-1", "?after=x", "?wait=2m", "?wait=soon"} {
		expect(t, feed(q), http.StatusBadRequest, "")
	}

	// Everything so far, then what a change adds.
	all, cursor := feedTypes(t, feed("?after=0"))
	if len(all) == 0 || all[0] != [2]string{usersvc.EventUserRegistered, u.ID} {
		t.Fatalf("events from the start = %v", all)
	}
	expect(t, h.do("PATCH", "/api/v1/users/"+u.ID+"/preferences", map[string]any{"push": false}, "Authorization", "Bearer "+u.Access), http.StatusOK, "")
	got, next := feedTypes(t, feed("?after="+itoa(cursor)))
	if len(got) != 1 || got[0] != [2]string{usersvc.EventPreferencesUpdated, u.ID} || next <= cursor {
		t.Fatalf("events after %d = %v, next %d", cursor, got, next)
	}
	cursor = next
	got, next = feedTypes(t, feed("?after="+itoa(cursor)))
	if len(got) != 0 || next != cursor {
		t.Fatalf("an empty page: %v, next %d; want none, %d", got, next, cursor)
	}

	// A long poll answers when a change commits.
	type result struct {
		r  response
		at time.Time
	}
	done := make(chan result, 1)
	go func() {
		r := feed("?after=" + itoa(cursor) + "&wait=20s")
		done <- result{r, time.Now()}
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case res := <-done:
		t.Fatalf("the long poll answered before any change: %s", res.r.Raw)
	default:
	}
	expect(t, h.do("PATCH", "/api/v1/users/"+u.ID+"/", map[string]any{"name": "Feed Renamed"}, "Authorization", "Bearer "+u.Access), http.StatusOK, "")
	written := time.Now()
	select {
	case res := <-done:
		got, next = feedTypes(t, res.r)
		if len(got) != 1 || got[0] != [2]string{usersvc.EventUserUpdated, u.ID} {
			t.Fatalf("the long poll's events = %v", got)
		}
		t.Logf("the long poll answered %v after the write's 2xx", res.at.Sub(written))
		cursor = next
	case <-time.After(10 * time.Second):
		t.Fatal("the long poll did not answer within 10 s of a change")
	}
	// A wait that passes answers an empty page with the same cursor.
	start := time.Now()
	got, next = feedTypes(t, feed("?after="+itoa(cursor)+"&wait=1"))
	if len(got) != 0 || next != cursor || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("a wait that passed: %v, next %d after %v", got, next, time.Since(start))
	}

	// A cursor older than the events kept is 410, naming the cursors.
	pruner, ok := h.store.(interface {
		PruneEvents(ctx context.Context, before time.Time, keepUnpublished bool) (int, error)
	})
	if !ok {
		t.Fatal("the store cannot prune events")
	}
	if n, err := pruner.PruneEvents(t.Context(), time.Now().Add(time.Hour), false); err != nil || n == 0 {
		t.Fatalf("PruneEvents = %d, %v", n, err)
	}
	r := feed("?after=0")
	expect(t, r, http.StatusGone, "")
	d := r.data()
	if d["oldest_cursor"] != float64(cursor-1) || d["newest_cursor"] != float64(cursor) {
		t.Errorf("410 data = %v; want oldest %d, newest %d", d, cursor-1, cursor)
	}
	if got, _ := feedTypes(t, feed("?after="+itoa(cursor-1))); len(got) != 1 {
		t.Errorf("from the oldest cursor: %v", got)
	}
}
