package relay_test

import (
	"testing"

	"github.com/usersvc/usersvc"
)

// checkDelivery checks what a consumer received (got, in arrival order)
// against the outbox (want): after dropping repeats of an id already
// seen, every event arrived exactly once, and each user's events arrived
// in the order of their positions.
func checkDelivery(t *testing.T, want, got []usersvc.Event) {
	t.Helper()
	wantByID := make(map[string]usersvc.Event, len(want))
	for _, ev := range want {
		wantByID[ev.ID] = ev
	}
	seen := make(map[string]bool, len(got))
	last := map[string]int64{} // user → last position received
	repeats, unknown, disordered := 0, 0, 0
	for _, ev := range got {
		if seen[ev.ID] {
			repeats++
			continue
		}
		seen[ev.ID] = true
		w, ok := wantByID[ev.ID]
		if !ok {
			unknown++
			continue
		}
		if w.Position != ev.Position || w.Subject != ev.Subject || w.Type != ev.Type {
			t.Errorf("event %s arrived as position %d of %s (%s), want %d of %s (%s)",
				ev.ID, ev.Position, ev.Subject, ev.Type, w.Position, w.Subject, w.Type)
		}
		if ev.Position <= last[ev.Subject] {
			if disordered++; disordered <= 3 {
				t.Errorf("user %s: position %d arrived after %d", ev.Subject, ev.Position, last[ev.Subject])
			}
		}
		last[ev.Subject] = max(last[ev.Subject], ev.Position)
	}
	missing := 0
	for _, ev := range want {
		if !seen[ev.ID] {
			if missing++; missing <= 3 {
				t.Errorf("event %s (position %d) never arrived", ev.ID, ev.Position)
			}
		}
	}
	if missing+unknown+disordered > 0 {
		t.Errorf("of %d events: %d missing, %d unknown, %d out of order per user", len(want), missing, unknown, disordered)
	}
	t.Logf("delivery: %d events, %d messages (%d repeats dropped), %d users, each in order", len(want), len(got), repeats, len(last))
}
