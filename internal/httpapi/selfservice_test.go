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

// feedVerification reads, from the change feed after position after, the
// data of the last verification.requested of userID, as a delivery
// service would, and the next cursor.
func feedVerification(t *testing.T, v *oaValidator, after float64, userID string) (map[string]any, float64) {
	t.Helper()
	r := v.do(200, "GET", "/api/v1/events?after="+itoa(int64(after)), nil, "X-Service-API-Key", feedKey)
	var data map[string]any
	for _, e := range r.Body["data"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] == usersvc.EventVerificationRequested && ev["subject"] == userID {
			data = ev["data"].(map[string]any)
		}
	}
	if data == nil {
		t.Fatal("no verification.requested on the feed")
	}
	return data, r.Body["meta"].(map[string]any)["next_cursor"].(float64)
}

func TestOpenAPIVerification(t *testing.T) {
	h := newHarnessWith(t, newSQLite(t), cheapHashing, account.Options{RequireVerified: []string{"email", "sms"}})
	v := newOAValidator(t, h)
	ada, bob := h.register("Ada Verify"), h.register("Bob Verify")
	auth := bearer(ada.Access)
	base := "/api/v1/users/" + ada.ID + "/verifications"
	v.do(400, "POST", base, map[string]any{"channel": "sms"}, auth...) // no phone yet
	v.do(200, "PATCH", "/api/v1/users/"+ada.ID, map[string]any{"phone": "+14155550123"}, auth...)
	resolve := func() map[string]any {
		r := v.do(200, "POST", "/api/v1/recipients/resolve", map[string]any{"channels": []string{"email", "sms"}, "user_ids": []string{ada.ID}},
			"X-Service-API-Key", serviceKey)
		return r.data()["recipients"].([]any)[0].(map[string]any)["channels"].(map[string]any)
	}
	if ch := resolve(); ch["sms"].(map[string]any)["reason"] != "unverified" || ch["email"].(map[string]any)["reason"] != "unverified" {
		t.Errorf("resolve before verifying: %v", ch)
	}

	v.do(202, "POST", base, map[string]any{"channel": "sms"}, auth...)
	sms, cursor := feedVerification(t, v, 0, ada.ID)
	code := sms["code"].(string)
	v.do(400, "POST", base, map[string]any{"channel": "push"}, auth...)
	v.do(403, "POST", base, map[string]any{"channel": "sms"}, bearer(bob.Access)...)
	v.do(403, "POST", base+"/confirm", map[string]any{"channel": "sms", "code": code}, bearer(bob.Access)...)
	v.do(401, "POST", base+"/confirm", map[string]any{"channel": "sms", "code": code})
	v.do(400, "POST", base+"/confirm", map[string]any{"channel": "sms", "code": "12345"}, auth...)
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	v.do(400, "POST", base+"/confirm", map[string]any{"channel": "sms", "code": wrong}, auth...)
	u := v.do(200, "POST", base+"/confirm/", map[string]any{"channel": "sms", "code": code}, auth...)
	if u.data()["phone_verified_at"] == nil || u.data()["email_verified_at"] != nil {
		t.Errorf("after the sms code: %v", u.data())
	}
	v.do(400, "POST", base+"/confirm", map[string]any{"channel": "sms", "code": code}, auth...) // spent

	v.do(202, "POST", base, map[string]any{"channel": "email"}, auth...)
	mail, _ := feedVerification(t, v, cursor, ada.ID)
	token := mail["token"].(string)
	v.do(400, "POST", "/api/v1/users/verifications/confirm", map[string]any{"token": token[:42]})
	v.do(400, "POST", "/api/v1/users/verifications/confirm", map[string]any{"token": token, "code": "1"})
	v.do(200, "POST", "/api/v1/users/verifications/confirm", map[string]any{"token": token})
	v.do(400, "POST", "/api/v1/users/verifications/confirm", map[string]any{"token": token})
	got := v.do(200, "GET", "/api/v1/users/"+ada.ID, nil, auth...)
	if got.data()["email_verified_at"] == nil || got.data()["phone_verified_at"] == nil {
		t.Errorf("the user: %v", got.data())
	}
	if ch := resolve(); ch["sms"].(map[string]any)["send"] != true || ch["email"].(map[string]any)["send"] != true {
		t.Errorf("resolve after verifying: %v", ch)
	}
	// A new phone is unverified again.
	v.do(200, "PATCH", "/api/v1/users/"+ada.ID, map[string]any{"phone": "+14155550199"}, auth...)
	if ch := resolve(); ch["sms"].(map[string]any)["reason"] != "unverified" {
		t.Errorf("resolve after a new phone: %v", ch)
	}
}

func TestOpenAPIEmailChange(t *testing.T) {
	h := newHarness(t)
	v := newOAValidator(t, h)
	ada, bob := h.register("Ada Move"), h.register("Bob Move")
	auth := bearer(ada.Access)
	path := "/api/v1/users/" + ada.ID + "/email"
	v.do(400, "POST", path, map[string]any{"new_email": "moved@example.com", "current_password": "Wr0ng!Passw0rd"}, auth...)
	v.do(400, "POST", path, map[string]any{"new_email": ada.Email, "current_password": ada.Password}, auth...)
	v.do(409, "POST", path, map[string]any{"new_email": bob.Email, "current_password": ada.Password}, auth...)
	v.do(403, "POST", path, map[string]any{"new_email": "moved@example.com", "current_password": bob.Password}, bearer(bob.Access)...)
	v.do(401, "POST", path, map[string]any{"new_email": "moved@example.com", "current_password": ada.Password})
	v.do(202, "POST", path+"/", map[string]any{"new_email": "Moved@Example.com", "current_password": ada.Password}, auth...)

	r := v.do(200, "GET", "/api/v1/events?after=0", nil, "X-Service-API-Key", feedKey)
	token, notice := "", false
	for _, e := range r.Body["data"].([]any) {
		ev := e.(map[string]any)
		switch ev["type"] {
		case usersvc.EventEmailChangeRequested:
			token = ev["data"].(map[string]any)["token"].(string)
		case usersvc.EventEmailChangeNotice:
			notice = ev["data"].(map[string]any)["email"] == ada.Email
		}
	}
	if token == "" || !notice {
		t.Fatalf("the feed lacks the request or the notice (token %q, notice %v)", token, notice)
	}
	v.do(200, "GET", "/api/v1/users/"+ada.ID, nil, auth...)
	v.do(400, "POST", "/api/v1/users/email/confirm", map[string]any{"token": token[:30]})
	done := v.do(200, "POST", "/api/v1/users/email/confirm", map[string]any{"token": token})
	if done.data()["email"] != "moved@example.com" {
		t.Errorf("confirmed: %v", done.data())
	}
	v.do(400, "POST", "/api/v1/users/email/confirm", map[string]any{"token": token})
	u := v.do(200, "GET", "/api/v1/users/"+ada.ID, nil, auth...)
	if u.data()["email"] != "moved@example.com" || u.data()["email_verified_at"] == nil {
		t.Errorf("the user after the change: %v", u.data())
	}

	// Taken at the confirmation time: 409.
	v.do(202, "POST", "/api/v1/users/"+bob.ID+"/email", map[string]any{"new_email": "contested@example.com", "current_password": bob.Password}, bearer(bob.Access)...)
	r = v.do(200, "GET", "/api/v1/events?after=0", nil, "X-Service-API-Key", feedKey)
	for _, e := range r.Body["data"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] == usersvc.EventEmailChangeRequested && ev["subject"] == bob.ID {
			token = ev["data"].(map[string]any)["token"].(string)
		}
	}
	v.do(201, "POST", "/api/v1/users", map[string]any{"email": "contested@example.com", "password": "Str0ng!Passw0rd", "name": "Eve"})
	v.do(409, "POST", "/api/v1/users/email/confirm", map[string]any{"token": token})
}
