package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/usersvc/usersvc"
)

const e2eFeedKey = "e2e-feed-key-0123456789abcdef"

// feedEvents reads the change feed after cursor with an events.read key,
// as a delivery service does, and returns its events and next cursor.
func feedEvents(t *testing.T, base string, cursor int64) ([]map[string]any, int64) {
	t.Helper()
	code, body := send(t, jsonRequest(t, "GET", base+"/api/v1/events?wait=0s&after="+strconv.FormatInt(cursor, 10), nil, "X-Service-API-Key", e2eFeedKey))
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/events: %d %v", code, body)
	}
	var evs []map[string]any
	for _, e := range body["data"].([]any) {
		evs = append(evs, e.(map[string]any))
	}
	return evs, int64(body["meta"].(map[string]any)["next_cursor"].(float64))
}

// e2eSignUp registers a user with e2ePassword and the fields of reg
// (email and name at least), logs it in, and returns its id and the
// Authorization header of its session.
func e2eSignUp(t *testing.T, base string, reg map[string]any) (string, []string) {
	t.Helper()
	reg["password"] = e2ePassword
	code, body := post(t, base+"/api/v1/users", reg)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %v", code, body)
	}
	code, login := post(t, base+"/api/v1/users/login", map[string]any{"email": reg["email"], "password": e2ePassword})
	if code != http.StatusOK {
		t.Fatalf("login: %d %v", code, login)
	}
	return body["data"].(map[string]any)["id"].(string), []string{"Authorization", "Bearer " + login["data"].(map[string]any)["access"].(string)}
}

// The forgotten-password flow through run(): a delivery service reads the
// token from the feed; the reset ends the session, a replay is refused;
// the link uses PASSWORD_RESET_URL; with LOG_LEVEL=debug the link is in
// the log; the metrics count each step.
func TestPasswordResetEndToEnd(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "SECRET_KEY="+e2eSecret, "LOG_LEVEL=debug",
		"SERVICE_API_KEYS=feed:"+e2eFeedKey+":events.read", "PASSWORD_RESET_URL=https://app.example.com/reset")
	const email, newPassword = "forgetful@example.com", "N3w!Passw0rd-e2e"
	userID, auth := e2eSignUp(t, srv.base, map[string]any{"email": email, "name": "Forgetful"})
	// The session is read once, so the cache holds it when the reset ends it.
	if code, _ := send(t, jsonRequest(t, "GET", srv.base+"/api/v1/users/"+userID, nil, auth...)); code != http.StatusOK {
		t.Fatalf("GET the user: %d", code)
	}
	_, cursor := feedEvents(t, srv.base, 0)

	code, known := post(t, srv.base+"/api/v1/users/password/forgot", map[string]any{"email": "Forgetful@Example.com"})
	code2, unknown := post(t, srv.base+"/api/v1/users/password/forgot", map[string]any{"email": "nobody@example.com"})
	if code != http.StatusAccepted || code2 != http.StatusAccepted || known["message"] != unknown["message"] {
		t.Fatalf("forgot: %d %v / %d %v", code, known, code2, unknown)
	}
	evs, cursor := feedEvents(t, srv.base, cursor)
	if len(evs) != 1 || evs[0]["type"] != usersvc.EventPasswordResetRequested || evs[0]["subject"] != userID {
		t.Fatalf("feed after the requests: %v", evs)
	}
	data := evs[0]["data"].(map[string]any)
	token, _ := data["token"].(string)
	if data["email"] != email || data["link"] != "https://app.example.com/reset?token="+token || data["expires_at"] == nil {
		t.Errorf("event data = %v", data)
	}
	if !strings.Contains(srv.logs.String(), token) || !strings.Contains(srv.logs.String(), "password reset requested") {
		t.Errorf("LOG_LEVEL=debug: the link is not in the log")
	}

	code, body := post(t, srv.base+"/api/v1/users/password/reset", map[string]any{"token": token[:40], "new_password": newPassword})
	if code != http.StatusBadRequest {
		t.Errorf("a truncated token: %d %v", code, body)
	}
	code, body = post(t, srv.base+"/api/v1/users/password/reset", map[string]any{"token": token, "new_password": newPassword})
	if code != http.StatusOK || body["data"].(map[string]any)["sessions_ended"] != float64(1) {
		t.Fatalf("reset: %d %v", code, body)
	}
	code, body = post(t, srv.base+"/api/v1/users/password/reset", map[string]any{"token": token, "new_password": "An0ther!Passw0rd"})
	if code != http.StatusBadRequest {
		t.Errorf("a replay: %d %v", code, body)
	}
	if code, _ := send(t, jsonRequest(t, "GET", srv.base+"/api/v1/users/"+userID, nil, auth...)); code != http.StatusUnauthorized {
		t.Errorf("the session survived the reset: %d", code)
	}
	if code, body := post(t, srv.base+"/api/v1/users/login", map[string]any{"email": email, "password": newPassword}); code != http.StatusOK {
		t.Errorf("login with the new password: %d %v", code, body)
	}
	evs, _ = feedEvents(t, srv.base, cursor)
	var types []string
	for _, ev := range evs {
		types = append(types, ev["type"].(string))
	}
	if strings.Join(types, " ") != usersvc.EventUserPasswordChanged+" "+usersvc.EventSessionsRevoked {
		t.Errorf("feed after the reset: %q", types)
	}

	resp, err := http.Get(srv.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`usersvc_self_service_total{flow="password_reset",outcome="requested"} 2`,
		`usersvc_self_service_total{flow="password_reset",outcome="confirmed"} 1`,
		`usersvc_self_service_total{flow="password_reset",outcome="failed"} 2`,
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Verification through run(): the code and the link read from the feed as
// the SMS and email services would; REQUIRE_VERIFIED makes resolve answer
// unverified until then; LOG_LEVEL=debug logs the code.
func TestVerificationEndToEnd(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "SECRET_KEY="+e2eSecret, "LOG_LEVEL=debug", "REQUIRE_VERIFIED=email,sms",
		"SERVICE_API_KEYS=feed:"+e2eFeedKey+":events.read,resolver:"+e2eUsersKey+":users.read")
	const email = "verify@example.com"
	userID, auth := e2eSignUp(t, srv.base, map[string]any{"email": email, "name": "Verifier", "phone": "+14155550123"})
	reasons := func() (string, string) {
		t.Helper()
		code, body := post(t, srv.base+"/api/v1/recipients/resolve", map[string]any{"channels": []string{"email", "sms"}, "user_ids": []string{userID}},
			"X-Service-API-Key", e2eUsersKey)
		if code != http.StatusOK {
			t.Fatalf("resolve: %d %v", code, body)
		}
		ch := body["data"].(map[string]any)["recipients"].([]any)[0].(map[string]any)["channels"].(map[string]any)
		r := func(c string) string {
			if ch[c].(map[string]any)["send"] == true {
				return "send"
			}
			return ch[c].(map[string]any)["reason"].(string)
		}
		return r("email"), r("sms")
	}
	if e, s := reasons(); e != "unverified" || s != "unverified" {
		t.Errorf("before: email %s, sms %s", e, s)
	}
	_, cursor := feedEvents(t, srv.base, 0)
	delivered := func(channel string) map[string]any {
		t.Helper()
		if code, body := post(t, srv.base+"/api/v1/users/"+userID+"/verifications", map[string]any{"channel": channel}, auth...); code != http.StatusAccepted {
			t.Fatalf("request %s: %d %v", channel, code, body)
		}
		evs, next := feedEvents(t, srv.base, cursor) // the confirmation before (user.updated), then the request
		cursor = next
		last := evs[len(evs)-1]
		if last["type"] != usersvc.EventVerificationRequested {
			t.Fatalf("feed: %v", evs)
		}
		return last["data"].(map[string]any)
	}

	sms := delivered("sms")
	if sms["address"] != "+14155550123" || !strings.Contains(srv.logs.String(), sms["code"].(string)) {
		t.Errorf("sms: %v (or the code is not in the debug log)", sms)
	}
	if code, body := post(t, srv.base+"/api/v1/users/"+userID+"/verifications/confirm", map[string]any{"channel": "sms", "code": sms["code"]}, auth...); code != http.StatusOK {
		t.Fatalf("confirm sms: %d %v", code, body)
	}
	mail := delivered("email")
	if code, body := post(t, srv.base+"/api/v1/users/verifications/confirm", map[string]any{"token": mail["token"]}); code != http.StatusOK {
		t.Fatalf("confirm the link: %d %v", code, body)
	}
	if code, _ := post(t, srv.base+"/api/v1/users/verifications/confirm", map[string]any{"token": mail["token"]}); code != http.StatusBadRequest {
		t.Errorf("a replayed link: %d", code)
	}
	if e, s := reasons(); e != "send" || s != "send" {
		t.Errorf("after: email %s, sms %s", e, s)
	}
	// The cached user shows the verification.
	_, body := send(t, jsonRequest(t, "GET", srv.base+"/api/v1/users/"+userID, nil, auth...))
	if d := body["data"].(map[string]any); d["email_verified_at"] == nil || d["phone_verified_at"] == nil {
		t.Errorf("the user: %v", d)
	}
}

// A change of email through run(): the confirmation read from the feed as
// the email service would, the notice to the old address beside it.
func TestEmailChangeEndToEnd(t *testing.T) {
	srv := startServer(t, "DATA_DIR="+t.TempDir(), "SECRET_KEY="+e2eSecret, "LOG_LEVEL=debug",
		"SERVICE_API_KEYS=feed:"+e2eFeedKey+":events.read", "EMAIL_CHANGE_URL=https://app.example.com/email?from=mail")
	const email, moved = "old@example.com", "new@example.com"
	userID, auth := e2eSignUp(t, srv.base, map[string]any{"email": email, "name": "Mover"})
	_, cursor := feedEvents(t, srv.base, 0)
	if code, body := post(t, srv.base+"/api/v1/users/"+userID+"/email", map[string]any{"new_email": moved, "current_password": e2ePassword}, auth...); code != http.StatusAccepted {
		t.Fatalf("request: %d %v", code, body)
	}
	evs, _ := feedEvents(t, srv.base, cursor)
	if len(evs) != 2 || evs[0]["type"] != usersvc.EventEmailChangeRequested || evs[1]["type"] != usersvc.EventEmailChangeNotice {
		t.Fatalf("feed: %v", evs)
	}
	req, notice := evs[0]["data"].(map[string]any), evs[1]["data"].(map[string]any)
	token := req["token"].(string)
	if req["new_email"] != moved || req["link"] != "https://app.example.com/email?from=mail&token="+token || notice["email"] != email {
		t.Errorf("request %v, notice %v", req, notice)
	}
	if !strings.Contains(srv.logs.String(), token) {
		t.Error("LOG_LEVEL=debug: the link is not in the log")
	}
	if code, body := post(t, srv.base+"/api/v1/users/email/confirm", map[string]any{"token": token}); code != http.StatusOK {
		t.Fatalf("confirm: %d %v", code, body)
	}
	if code, _ := post(t, srv.base+"/api/v1/users/email/confirm", map[string]any{"token": token}); code != http.StatusBadRequest {
		t.Errorf("a replay: %d", code)
	}
	if code, _ := post(t, srv.base+"/api/v1/users/login", map[string]any{"email": moved, "password": e2ePassword}); code != http.StatusOK {
		t.Errorf("login with the new email: %d", code)
	}
	if code, _ := post(t, srv.base+"/api/v1/users/login", map[string]any{"email": email, "password": e2ePassword}); code != http.StatusUnauthorized {
		t.Errorf("login with the old email: %d", code)
	}
}
