package httpapi_test

import (
	"bytes"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/ratelimit"
)

// feedResetToken reads, from the change feed after position after, the
// token of the last password_reset.requested of userID, as a mail service
// would, and the feed's next cursor. Every answer of the feed is
// validated against the document (the event's data schema included).
func feedResetToken(t *testing.T, v *oaValidator, after float64, userID string) (string, float64) {
	t.Helper()
	r := v.do(200, "GET", "/api/v1/events?after="+itoa(int64(after)), nil, "X-Service-API-Key", feedKey)
	token := ""
	for _, e := range r.Body["data"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] == usersvc.EventPasswordResetRequested && ev["subject"] == userID {
			token = ev["data"].(map[string]any)["token"].(string)
		}
	}
	return token, r.Body["meta"].(map[string]any)["next_cursor"].(float64)
}

func TestOpenAPIPasswordReset(t *testing.T) {
	h := newHarnessWith(t, newSQLite(t), cheapHashing, account.Options{
		Limits: account.Limits{ForgotEmail: ratelimit.New(nil, ratelimit.Rule{Name: "forgot_email", Max: 3, Window: time.Hour}, ratelimit.Options{})},
	})
	v := newOAValidator(t, h)
	ada := h.register("Ada Reset")
	_, cursor := feedResetToken(t, v, 0, ada.ID)

	known := v.do(202, "POST", "/api/v1/users/password/forgot", map[string]any{"email": ada.Email})
	unknown := v.do(202, "POST", "/api/v1/users/password/forgot/", map[string]any{"email": "nobody@example.com"})
	if !bytes.Equal(known.Raw, unknown.Raw) {
		t.Errorf("the answers differ:\n%s\n%s", known.Raw, unknown.Raw)
	}
	if known.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", known.Header.Get("Cache-Control"))
	}
	token, cursor := feedResetToken(t, v, cursor, ada.ID)
	if len(token) != 43 {
		t.Fatalf("no token on the feed (%q)", token)
	}
	v.do(400, "POST", "/api/v1/users/password/forgot", map[string]any{"email": "not-an-email"})
	v.do(400, "POST", "/api/v1/users/password/forgot", map[string]any{"email": ada.Email, "extra": 1})
	v.do(415, "POST", "/api/v1/users/password/forgot", `email=a`, "Content-Type", "application/x-www-form-urlencoded")
	v.do(202, "POST", "/api/v1/users/password/forgot", map[string]any{"email": "nobody@example.com"})
	v.do(202, "POST", "/api/v1/users/password/forgot", map[string]any{"email": "nobody@example.com"})
	lim := v.do(429, "POST", "/api/v1/users/password/forgot", map[string]any{"email": "NOBODY@example.com"})
	if lim.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}

	tampered := []byte(token)
	tampered[10] ^= 1
	for _, bad := range []string{token[:42], string(tampered), token + "x", ""} {
		r := v.do(400, "POST", "/api/v1/users/password/reset", map[string]any{"token": bad, "new_password": "Fl0w-Matic#1955"})
		if bytes.Contains(r.Raw, []byte(token[:20])) {
			t.Errorf("the answer repeats the token: %s", r.Raw)
		}
	}
	v.do(400, "POST", "/api/v1/users/password/reset", map[string]any{"token": token, "new_password": "weak"})
	v.do(400, "POST", "/api/v1/users/password/reset", map[string]any{"token": token})
	// Every refusal left the password and the session alone.
	v.do(200, "GET", "/api/v1/users/"+ada.ID, nil, bearer(ada.Access)...)

	done := v.do(200, "POST", "/api/v1/users/password/reset", map[string]any{"token": token, "new_password": "Fl0w-Matic#1955"})
	if n := done.data()["sessions_ended"]; n != float64(1) {
		t.Errorf("sessions_ended = %v, want 1", n)
	}
	v.do(400, "POST", "/api/v1/users/password/reset", map[string]any{"token": token, "new_password": "An0ther#Passw0rd"})
	v.do(401, "GET", "/api/v1/users/"+ada.ID, nil, bearer(ada.Access)...)
	v.do(401, "POST", "/api/v1/users/login", map[string]any{"email": ada.Email, "password": ada.Password})
	v.do(200, "POST", "/api/v1/users/login", map[string]any{"email": ada.Email, "password": "Fl0w-Matic#1955"})

	// The feed: the change and the end of the session, after the request.
	r := v.do(200, "GET", "/api/v1/events?after="+itoa(int64(cursor)), nil, "X-Service-API-Key", feedKey)
	var types []string
	for _, e := range r.Body["data"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	if want := []string{usersvc.EventUserPasswordChanged, usersvc.EventSessionsRevoked}; !slices.Equal(types, want) {
		t.Errorf("feed after the reset = %q, want %q", types, want)
	}
}

// TestForgotPasswordTiming measures the answer to a forgotten-password
// request for an email with an account and for one without: medians of
// 30 requests each, interleaved, with no floor (the work alone) and with
// the service's floor. It reports the figures; the bodies must be equal.
func TestForgotPasswordTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing: skipped in -short")
	}
	for _, floor := range []time.Duration{0, 150 * time.Millisecond} {
		h := newHarnessWith(t, newSQLite(t), cheapHashing, account.Options{ForgotPasswordFloor: floor})
		ada := h.register("Ada Timing")
		var bodies [2][]byte
		var took [2][]time.Duration
		for i := range 60 {
			email := []string{ada.Email, "nobody.timing@example.com"}[i%2]
			start := time.Now()
			r := h.do("POST", "/api/v1/users/password/forgot", map[string]any{"email": email})
			took[i%2] = append(took[i%2], time.Since(start))
			if r.Status != http.StatusAccepted {
				t.Fatalf("%s: %d %s", email, r.Status, r.Raw)
			}
			if bodies[i%2] == nil {
				bodies[i%2] = r.Raw
			}
		}
		if !bytes.Equal(bodies[0], bodies[1]) {
			t.Errorf("bodies differ: %s / %s", bodies[0], bodies[1])
		}
		m0, m1 := median(took[0]), median(took[1])
		t.Logf("floor %v: median of 30, existing email %v, unknown email %v (difference %.1f%% of the larger)",
			floor, m0, m1, 100*float64(max(m0, m1)-min(m0, m1))/float64(max(m0, m1)))
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
