package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/ratelimit"
)

// newLifecycleHarness is newHarness with an in-process cache in front of
// the store (so that every check holds on a cache hit) and the given rate
// limits.
func newLifecycleHarness(t *testing.T, limits account.Limits) *harness {
	t.Helper()
	return newHarnessWith(t, newSQLite(t), cheapHashing, account.Options{Limits: limits},
		cache.NewMemory(1000, cache.Options{UserTTL: time.Hour, DevicesTTL: time.Hour}))
}

func lcUserPath(id string) string { return "/api/v1/users/" + id + "/" }

func TestLifecycleUpdateName(t *testing.T) {
	h := newLifecycleHarness(t, account.Limits{})
	alice := h.register("Alice Name")
	bob := h.register("Bob Name")
	admin := h.admin()
	svc := []string{"X-Service-API-Key", serviceKey}

	// Warm the cache, then change the name: the next read sees it.
	expect(t, h.do("GET", lcUserPath(alice.ID), nil, bearer(alice.Access)...), http.StatusOK, "")
	r := h.do("PATCH", lcUserPath(alice.ID), map[string]any{"name": "  Alice O'Brien-Smith "}, bearer(alice.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "User updated successfully" || r.data()["name"] != "Alice O'Brien-Smith" || r.data()["id"] != alice.ID || r.data()["email"] != alice.Email {
		t.Errorf("answer = %s", r.Raw)
	}
	for _, k := range []string{"id", "email", "name", "push_token", "preferences", "created_at", "updated_at"} {
		if _, ok := r.data()[k]; !ok {
			t.Errorf("the user lacks %q: %s", k, r.Raw)
		}
	}
	r = h.do("GET", lcUserPath(alice.ID), nil, svc...)
	if r.data()["name"] != "Alice O'Brien-Smith" {
		t.Errorf("read after the change: %s", r.Raw)
	}
	// Without a trailing slash, and by an admin.
	r = h.do("PATCH", "/api/v1/users/"+bob.ID, map[string]any{"name": "Robert"}, bearer(admin.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.data()["name"] != "Robert" {
		t.Errorf("admin rename: %s", r.Raw)
	}

	// Validation, with every failing field reported.
	for name, tc := range map[string]struct {
		body   any
		fields map[string]string
	}{
		"invalid characters": {map[string]any{"name": "R2-D2"}, map[string]string{"name": usersvc.MsgNameInvalid}},
		"too long":           {map[string]any{"name": strings.Repeat("a", 256)}, map[string]string{"name": usersvc.MsgNameTooLong}},
		"blank":              {map[string]any{"name": "   "}, map[string]string{"name": usersvc.MsgRequired}},
		"null":               {map[string]any{"name": nil}, map[string]string{"name": usersvc.MsgRequired}},
		"not a string":       {map[string]any{"name": 7}, map[string]string{"name": usersvc.MsgNotString}},
		"privileged key":     {map[string]any{"name": "Ok Name", "is_admin": true}, map[string]string{"is_admin": usersvc.MsgUnknownField}},
		"bad profile": {map[string]any{"phone": "030 1234567", "locale": "xx-!!", "timezone": "Mars/Olympus"}, map[string]string{
			"phone": usersvc.MsgPhone, "locale": usersvc.MsgLocale, "timezone": usersvc.MsgTimezone}},
		"email is not changed here": {map[string]any{"name": "R2", "email": "x@example.com"},
			map[string]string{"email": usersvc.MsgUnknownField, "name": usersvc.MsgNameInvalid}},
	} {
		t.Run(name, func(t *testing.T) {
			r := h.do("PATCH", lcUserPath(alice.ID), tc.body, bearer(alice.Access)...)
			expect(t, r, http.StatusBadRequest, "")
			got := fieldErrors(r)
			if len(got) != len(tc.fields) {
				t.Errorf("fields = %v, want %v", got, tc.fields)
			}
			for f, msg := range tc.fields {
				if len(got[f]) != 1 || got[f][0] != msg {
					t.Errorf("%s = %v, want [%s]", f, got[f], msg)
				}
			}
		})
	}
	if r := h.do("PATCH", lcUserPath(alice.ID), map[string]any{}, bearer(alice.Access)...); r.Status != http.StatusBadRequest || r.str("message") != account.MsgEmptyProfile {
		t.Errorf("an empty patch: %d %s", r.Status, r.Raw)
	}
	expect(t, h.do("PATCH", lcUserPath(alice.ID), `{"name": "A", "name": "B"}`, bearer(alice.Access)...), http.StatusBadRequest, "")
	expect(t, h.do("PATCH", lcUserPath(alice.ID), `name=A`, append(bearer(alice.Access), "Content-Type", "text/plain")...), http.StatusUnsupportedMediaType, "")
	if r := h.do("GET", lcUserPath(alice.ID), nil, bearer(alice.Access)...); r.data()["name"] != "Alice O'Brien-Smith" {
		t.Errorf("a refused change changed the name: %s", r.Raw)
	}

	// Who may.
	expect(t, h.do("PATCH", lcUserPath(alice.ID), map[string]any{"name": "Mallory"}, bearer(bob.Access)...), http.StatusForbidden, account.MsgForbidden)
	expect(t, h.do("PATCH", lcUserPath(missingID), map[string]any{"name": "Mallory"}, bearer(bob.Access)...), http.StatusForbidden, account.MsgForbidden)
	expect(t, h.do("PATCH", lcUserPath(alice.ID), map[string]any{"name": "Mallory"}, svc...), http.StatusForbidden, "")
	expect(t, h.do("PATCH", lcUserPath(alice.ID), map[string]any{"name": "Mallory"}), http.StatusUnauthorized, "")
	expect(t, h.do("PATCH", lcUserPath(missingID), map[string]any{"name": "Nobody"}, bearer(admin.Access)...), http.StatusNotFound, account.MsgUserNotFound)
	expect(t, h.do("PATCH", lcUserPath("not-a-uuid"), map[string]any{"name": "Nobody"}, bearer(admin.Access)...), http.StatusBadRequest, "Invalid UUID format")
}

func TestLifecycleChangePassword(t *testing.T) {
	h := newLifecycleHarness(t, account.Limits{})
	u := h.register("Pass Changer")
	other := h.register("Other Person")
	admin := h.admin()
	const newPassword = "N3w!Passw0rd-x"
	pwPath := "/api/v1/users/" + u.ID + "/password"

	// Three sessions: the one that changes (u), a second one to end, and
	// the one whose refresh token the caller names.
	login := func(pw string) response {
		return h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": pw})
	}
	second := login(u.Password)
	expect(t, second, http.StatusOK, "")
	third := login(u.Password)
	expect(t, third, http.StatusOK, "")
	keep := third.data()["refresh"].(string)

	// Validation comes first, all fields at once, and changes nothing.
	for name, tc := range map[string]struct {
		body   map[string]any
		fields map[string][]string
	}{
		"missing both": {map[string]any{}, map[string][]string{"current_password": {usersvc.MsgRequired}, "new_password": {usersvc.MsgRequired}}},
		"weak new": {map[string]any{"current_password": u.Password, "new_password": "short"},
			map[string][]string{"new_password": {usersvc.MsgPasswordShort, usersvc.MsgPasswordUpper, usersvc.MsgPasswordDigit, usersvc.MsgPasswordSpecial}}},
		"too long": {map[string]any{"current_password": u.Password, "new_password": "Aa1!" + strings.Repeat("x", 125)},
			map[string][]string{"new_password": {usersvc.MsgPasswordLong}}},
		"same as current": {map[string]any{"current_password": u.Password, "new_password": u.Password},
			map[string][]string{"new_password": {account.MsgSamePassword}}},
		"empty current": {map[string]any{"current_password": "", "new_password": newPassword},
			map[string][]string{"current_password": {usersvc.MsgRequired}}},
		"not strings": {map[string]any{"current_password": 1, "new_password": true},
			map[string][]string{"current_password": {usersvc.MsgNotString}, "new_password": {usersvc.MsgNotString}}},
		"unknown key with a weak password": {map[string]any{"current_password": u.Password, "new_password": "weak", "user_id": u.ID},
			map[string][]string{"user_id": {usersvc.MsgUnknownField}, "new_password": {usersvc.MsgPasswordShort, usersvc.MsgPasswordUpper, usersvc.MsgPasswordDigit, usersvc.MsgPasswordSpecial}}},
		"refresh of another user": {map[string]any{"current_password": u.Password, "new_password": newPassword, "refresh": other.Refresh},
			map[string][]string{"refresh": {account.MsgNotASession}}},
		"access token as refresh": {map[string]any{"current_password": u.Password, "new_password": newPassword, "refresh": u.Access},
			map[string][]string{"refresh": {account.MsgNotASession}}},
		"wrong current": {map[string]any{"current_password": "Wr0ng!Passw0rd", "new_password": newPassword},
			map[string][]string{"current_password": {account.MsgWrongPassword}}},
	} {
		t.Run(name, func(t *testing.T) {
			r := h.do("POST", pwPath, tc.body, bearer(u.Access)...)
			expect(t, r, http.StatusBadRequest, "")
			got := fieldErrors(r)
			if len(got) != len(tc.fields) {
				t.Errorf("fields = %v, want %v", got, tc.fields)
			}
			for f, want := range tc.fields {
				if strings.Join(got[f], "|") != strings.Join(want, "|") {
					t.Errorf("%s = %q, want %q", f, got[f], want)
				}
			}
			if strings.Contains(string(r.Raw), u.Password) || strings.Contains(string(r.Raw), newPassword) {
				t.Error("a password is in the answer")
			}
		})
	}
	r := h.do("POST", pwPath, map[string]any{"current_password": "Wr0ng!Passw0rd", "new_password": newPassword}, bearer(u.Access)...)
	if r.str("error") != "current_password: "+account.MsgWrongPassword {
		t.Errorf("error = %q", r.str("error"))
	}
	expect(t, login(u.Password), http.StatusOK, "")

	// Who may: the user alone.
	body := map[string]any{"current_password": u.Password, "new_password": newPassword}
	expect(t, h.do("POST", pwPath, body, bearer(other.Access)...), http.StatusForbidden, account.MsgForbidden)
	expect(t, h.do("POST", pwPath, body, bearer(admin.Access)...), http.StatusForbidden, "Only the user may do this for their own account")
	expect(t, h.do("POST", pwPath, body, "X-Service-API-Key", serviceKey), http.StatusForbidden, "")
	expect(t, h.do("POST", pwPath, body), http.StatusUnauthorized, "")
	expect(t, h.do("POST", "/api/v1/users/not-a-uuid/password", body, bearer(u.Access)...), http.StatusBadRequest, "Invalid UUID format")

	// The change, keeping the third session.
	body["refresh"] = keep
	r = h.do("POST", pwPath+"/", body, bearer(u.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "Password changed successfully" || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("answer: %s, Cache-Control %q", r.Raw, r.Header.Get("Cache-Control"))
	}
	// u's own login, the second login and the earlier check's login ended.
	if n, _ := r.data()["sessions_ended"].(float64); n != 3 {
		t.Errorf("sessions_ended = %v, want 3", r.data()["sessions_ended"])
	}
	expect(t, login(u.Password), http.StatusUnauthorized, account.MsgInvalidCredentials)
	fresh := login(newPassword)
	expect(t, fresh, http.StatusOK, "")
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh}), http.StatusUnauthorized, "")
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": second.data()["refresh"]}), http.StatusUnauthorized, "")
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": keep}), http.StatusOK, "")
	// The other user's sessions are untouched.
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": other.Refresh}), http.StatusOK, "")
	// The access tokens of the ended sessions are refused at once; the kept
	// session's are not.
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusUnauthorized, account.MsgTokenInvalid)
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(fresh.data()["access"].(string))...), http.StatusOK, "")

	// Without a refresh token every session ends, the new login's too.
	r = h.do("POST", pwPath, map[string]any{"current_password": newPassword, "new_password": "Th1rd!Passw0rd"}, bearer(fresh.data()["access"].(string))...)
	expect(t, r, http.StatusOK, "")
	if n, _ := r.data()["sessions_ended"].(float64); n != 2 {
		t.Errorf("sessions_ended = %v, want 2 (the kept session's successor and the fresh login)", r.data()["sessions_ended"])
	}
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": fresh.data()["refresh"]}), http.StatusUnauthorized, "")
	// A refresh token of an ended session names no session to keep.
	again := login("Th1rd!Passw0rd")
	expect(t, again, http.StatusOK, "")
	r = h.do("POST", pwPath, map[string]any{"current_password": "Th1rd!Passw0rd", "new_password": "F0urth!Passw0rd", "refresh": keep}, bearer(again.data()["access"].(string))...)
	expect(t, r, http.StatusBadRequest, "refresh: "+account.MsgNotASession)

	// An admin changes their own password like anyone.
	r = h.do("POST", "/api/v1/users/"+admin.ID+"/password", map[string]any{"current_password": admin.Password, "new_password": newPassword}, bearer(admin.Access)...)
	expect(t, r, http.StatusOK, "")
}

func TestLifecycleChangePasswordRateLimited(t *testing.T) {
	rule := ratelimit.Rule{Name: "login_email", Max: 3, Window: time.Minute}
	h := newLifecycleHarness(t, account.Limits{LoginEmail: ratelimit.New(nil, rule, ratelimit.Options{})})
	u := h.register("Guess Target")
	pwPath := "/api/v1/users/" + u.ID + "/password"
	wrong := map[string]any{"current_password": "Wr0ng!Passw0rd", "new_password": "N3w!Passw0rd-x"}
	for range 3 {
		r := h.do("POST", pwPath, wrong, bearer(u.Access)...)
		expect(t, r, http.StatusBadRequest, "current_password: "+account.MsgWrongPassword)
	}
	// The limit is reached: even the right password waits, and so does a login.
	r := h.do("POST", pwPath, map[string]any{"current_password": u.Password, "new_password": "N3w!Passw0rd-x"}, bearer(u.Access)...)
	expect(t, r, http.StatusTooManyRequests, "")
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	expect(t, h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": u.Password}), http.StatusTooManyRequests, "")
	// Validation failures are not guesses and are not limited.
	expect(t, h.do("POST", pwPath, map[string]any{"current_password": u.Password, "new_password": "weak"}, bearer(u.Access)...), http.StatusBadRequest, "")
}

func TestLifecycleSetStatus(t *testing.T) {
	h := newLifecycleHarness(t, account.Limits{})
	u := h.register("Soon Disabled")
	other := h.register("Bystander")
	admin := h.admin()
	statusPath := "/api/v1/users/" + u.ID + "/status"
	off := map[string]any{"is_active": false}
	on := map[string]any{"is_active": true}

	// Who may: admins alone, not even the user.
	expect(t, h.do("PATCH", statusPath, off, bearer(u.Access)...), http.StatusForbidden, "Admin access required")
	expect(t, h.do("PATCH", statusPath, off, bearer(other.Access)...), http.StatusForbidden, "Admin access required")
	expect(t, h.do("PATCH", "/api/v1/users/"+missingID+"/status", off, bearer(other.Access)...), http.StatusForbidden, "Admin access required")
	expect(t, h.do("PATCH", statusPath, off, "X-Service-API-Key", serviceKey), http.StatusForbidden, "")
	expect(t, h.do("PATCH", statusPath, off), http.StatusUnauthorized, "")
	expect(t, h.do("PATCH", "/api/v1/users/"+missingID+"/status", off, bearer(admin.Access)...), http.StatusNotFound, account.MsgUserNotFound)
	// A token claiming admin rights the stored user does not have is not an admin's.
	forged, err := h.tokens.IssueAccess(&usersvc.User{ID: other.ID, Email: other.Email, Name: "Bystander", IsAdmin: true, IsActive: true}, uuid.NewString(), "", time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	expect(t, h.do("PATCH", statusPath, off, bearer(forged)...), http.StatusForbidden, "Admin access required")
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(forged)...), http.StatusForbidden, account.MsgForbidden)

	for name, tc := range map[string]struct {
		body  any
		field string
		msg   string
	}{
		"missing":    {map[string]any{}, "is_active", usersvc.MsgRequired},
		"string":     {map[string]any{"is_active": "false"}, "is_active", usersvc.MsgNotBoolean},
		"number":     {map[string]any{"is_active": 0}, "is_active", usersvc.MsgNotBoolean},
		"null":       {map[string]any{"is_active": nil}, "is_active", usersvc.MsgNotBoolean},
		"other key":  {map[string]any{"is_active": false, "is_admin": true}, "is_admin", usersvc.MsgUnknownField},
		"not object": {`[false]`, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			r := h.do("PATCH", statusPath, tc.body, bearer(admin.Access)...)
			expect(t, r, http.StatusBadRequest, "")
			if tc.field != "" {
				if got := fieldErrors(r)[tc.field]; len(got) != 1 || got[0] != tc.msg {
					t.Errorf("%s = %v, want [%s]", tc.field, got, tc.msg)
				}
			}
		})
	}
	// Still active after the refused requests.
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusOK, "")

	// Disable.
	r := h.do("PATCH", statusPath, off, bearer(admin.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "User status updated successfully" || r.data()["id"] != u.ID || r.data()["is_active"] != false {
		t.Errorf("answer = %s", r.Raw)
	}
	// Its access token (cached a moment ago) is refused at once, on every route.
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusUnauthorized, account.MsgAccountDisabled)
	expect(t, h.do("PATCH", "/api/v1/users/"+u.ID+"/preferences", map[string]any{"push": false}, bearer(u.Access)...), http.StatusUnauthorized, account.MsgAccountDisabled)
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh}), http.StatusUnauthorized, "")
	expect(t, h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": u.Password}), http.StatusForbidden, account.MsgAccountDisabled)
	// Admins and services still see the user; others are untouched.
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(admin.Access)...), http.StatusOK, "")
	expect(t, h.do("GET", lcUserPath(u.ID), nil, "X-Service-API-Key", serviceKey), http.StatusOK, "")
	expect(t, h.do("GET", lcUserPath(other.ID), nil, bearer(other.Access)...), http.StatusOK, "")
	// Disabling twice is fine.
	expect(t, h.do("PATCH", statusPath+"/", off, bearer(admin.Access)...), http.StatusOK, "")

	// Enable again: login works; the sessions ended by the disabling stay ended.
	r = h.do("PATCH", statusPath, on, bearer(admin.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.data()["is_active"] != true {
		t.Errorf("answer = %s", r.Raw)
	}
	login := h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": u.Password})
	expect(t, login, http.StatusOK, "")
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(login.data()["access"].(string))...), http.StatusOK, "")
	// The access token of a session the disabling ended stays refused.
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusUnauthorized, account.MsgTokenInvalid)
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh}), http.StatusUnauthorized, "")

	// An admin may not disable themselves, and stays enabled; another admin may.
	adminPath := "/api/v1/users/" + admin.ID + "/status"
	expect(t, h.do("PATCH", adminPath, off, bearer(admin.Access)...), http.StatusConflict, account.MsgCannotDisableSelf)
	expect(t, h.do("PATCH", adminPath, on, bearer(admin.Access)...), http.StatusOK, "")
	expect(t, h.do("GET", lcUserPath(admin.ID), nil, bearer(admin.Access)...), http.StatusOK, "")
	second := h.admin()
	expect(t, h.do("PATCH", adminPath, off, bearer(second.Access)...), http.StatusOK, "")
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(admin.Access)...), http.StatusUnauthorized, account.MsgAccountDisabled)
}

func TestLifecycleDeleteUser(t *testing.T) {
	h := newLifecycleHarness(t, account.Limits{})
	u := h.register("Leaving User")
	other := h.register("Staying User")
	admin := h.admin()
	svc := []string{"X-Service-API-Key", serviceKey}
	expect(t, h.do("PATCH", "/api/v1/users/"+u.ID+"/push_token", map[string]any{"push_token": "fcm:leaving", "device_id": "phone"}, bearer(u.Access)...), http.StatusOK, "")
	// Warm the cache of the user and its devices.
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusOK, "")
	expect(t, h.do("GET", "/api/v1/users/"+u.ID+"/push_tokens", nil, svc...), http.StatusOK, "")

	// Who may: the user and admins.
	expect(t, h.do("DELETE", lcUserPath(u.ID), nil, bearer(other.Access)...), http.StatusForbidden, account.MsgForbidden)
	expect(t, h.do("DELETE", lcUserPath(missingID), nil, bearer(other.Access)...), http.StatusForbidden, account.MsgForbidden)
	expect(t, h.do("DELETE", lcUserPath(u.ID), nil, svc...), http.StatusForbidden, "")
	expect(t, h.do("DELETE", lcUserPath(u.ID), nil), http.StatusUnauthorized, "")
	expect(t, h.do("DELETE", lcUserPath("nope"), nil, bearer(admin.Access)...), http.StatusBadRequest, "Invalid UUID format")
	expect(t, h.do("DELETE", lcUserPath(missingID), nil, bearer(admin.Access)...), http.StatusNotFound, account.MsgUserNotFound)
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusOK, "")

	// The user deletes themselves.
	r := h.do("DELETE", "/api/v1/users/"+u.ID, nil, bearer(u.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "User deleted successfully" || r.Body["data"] != nil {
		t.Errorf("answer = %s", r.Raw)
	}
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusUnauthorized, account.MsgTokenInvalid)
	expect(t, h.do("DELETE", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusUnauthorized, "")
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh}), http.StatusUnauthorized, "")
	expect(t, h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": u.Password}), http.StatusUnauthorized, account.MsgInvalidCredentials)
	expect(t, h.do("GET", lcUserPath(u.ID), nil, svc...), http.StatusNotFound, account.MsgUserNotFound)
	expect(t, h.do("GET", "/api/v1/users/"+u.ID+"/push_tokens", nil, svc...), http.StatusNotFound, account.MsgUserNotFound)
	if d, err := h.store.Devices(t.Context(), u.ID); err != nil || len(d) != 0 {
		t.Errorf("devices after deletion: %v %v", d, err)
	}
	// The email registers again, as a new user; the token moves freely.
	r = h.do("POST", "/api/v1/users/", map[string]any{"email": u.Email, "password": u.Password, "name": "Back Again", "push_token": "fcm:leaving"})
	expect(t, r, http.StatusCreated, "")
	if r.data()["id"] == u.ID {
		t.Error("the new account has the deleted one's id")
	}
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusUnauthorized, "")

	// An admin deletes another user; that user's token ends too.
	expect(t, h.do("DELETE", lcUserPath(other.ID), nil, bearer(admin.Access)...), http.StatusOK, "")
	expect(t, h.do("GET", lcUserPath(other.ID), nil, bearer(admin.Access)...), http.StatusNotFound, account.MsgUserNotFound)
	expect(t, h.do("GET", lcUserPath(other.ID), nil, bearer(other.Access)...), http.StatusUnauthorized, "")
	expect(t, h.do("DELETE", lcUserPath(other.ID), nil, bearer(admin.Access)...), http.StatusNotFound, account.MsgUserNotFound)
}

// TestLifecycleTokenOfUnknownUser checks that a well-signed access token whose user
// never existed is refused.
func TestLifecycleTokenOfUnknownUser(t *testing.T) {
	h := newHarness(t)
	tok, err := h.tokens.IssueAccess(&usersvc.User{ID: missingID, Email: "ghost@example.com", Name: "Ghost", IsAdmin: true, IsActive: true}, uuid.NewString(), "", time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	expect(t, h.do("GET", lcUserPath(missingID), nil, bearer(tok)...), http.StatusUnauthorized, account.MsgTokenInvalid)
	expect(t, h.do("GET", "/api/v1/users/", nil, bearer(tok)...), http.StatusUnauthorized, account.MsgTokenInvalid)
}

// TestOpenAPILifecycleResponses validates the answers of the lifecycle
// routes, each success and each kind of error, against the document.
func TestOpenAPILifecycleResponses(t *testing.T) {
	h := newHarness(t)
	v := newOAValidator(t, h)
	u := h.register("Doc User")
	other := h.register("Doc Other")
	admin := h.admin()
	svc := []string{"X-Service-API-Key", serviceKey}
	auth := bearer(u.Access)

	v.do(200, "PATCH", "/api/v1/users/"+u.ID, map[string]any{"name": "Doc Renamed"}, auth...)
	v.do(400, "PATCH", "/api/v1/users/"+u.ID, map[string]any{"name": "R2-D2"}, auth...)
	v.do(401, "PATCH", "/api/v1/users/"+u.ID, map[string]any{"name": "Anon"})
	v.do(403, "PATCH", "/api/v1/users/"+u.ID, map[string]any{"name": "Svc"}, svc...)
	v.do(404, "PATCH", "/api/v1/users/"+missingID, map[string]any{"name": "Nobody"}, bearer(admin.Access)...)
	v.do(415, "PATCH", "/api/v1/users/"+u.ID, "name=x", append(auth, "Content-Type", "text/plain")...)

	pw := "/api/v1/users/" + u.ID + "/password"
	v.do(400, "POST", pw, map[string]any{"current_password": "Wr0ng!Passw0rd", "new_password": "N3w!Passw0rd-x"}, auth...)
	v.do(403, "POST", pw, map[string]any{"current_password": u.Password, "new_password": "N3w!Passw0rd-x"}, bearer(admin.Access)...)
	v.do(401, "POST", pw, map[string]any{"current_password": u.Password, "new_password": "N3w!Passw0rd-x"})
	v.do(413, "POST", pw, `{"current_password": "`+strings.Repeat("a", 1<<20)+`"}`, auth...)
	v.do(200, "POST", pw, map[string]any{"current_password": u.Password, "new_password": "N3w!Passw0rd-x", "refresh": u.Refresh}, auth...)

	st := "/api/v1/users/" + other.ID + "/status"
	v.do(200, "PATCH", st, map[string]any{"is_active": false}, bearer(admin.Access)...)
	v.do(401, "GET", "/api/v1/users/"+other.ID, nil, bearer(other.Access)...)
	v.do(200, "PATCH", st, map[string]any{"is_active": true}, bearer(admin.Access)...)
	// The disabling ended other's sessions: log in again.
	other.Access = v.do(200, "POST", "/api/v1/users/login", map[string]any{"email": other.Email, "password": other.Password}).data()["access"].(string)
	v.do(400, "PATCH", st, map[string]any{"is_active": "no"}, bearer(admin.Access)...)
	v.do(403, "PATCH", st, map[string]any{"is_active": false}, auth...)
	v.do(404, "PATCH", "/api/v1/users/"+missingID+"/status", map[string]any{"is_active": false}, bearer(admin.Access)...)
	v.do(409, "PATCH", "/api/v1/users/"+admin.ID+"/status", map[string]any{"is_active": false}, bearer(admin.Access)...)

	v.do(403, "DELETE", "/api/v1/users/"+u.ID, nil, bearer(other.Access)...)
	v.do(400, "DELETE", "/api/v1/users/not-a-uuid", nil, bearer(admin.Access)...)
	v.do(404, "DELETE", "/api/v1/users/"+missingID, nil, bearer(admin.Access)...)
	v.do(200, "DELETE", "/api/v1/users/"+u.ID, nil, auth...)
	v.do(401, "DELETE", "/api/v1/users/"+u.ID, nil, auth...)

	for _, want := range []string{
		"PATCH /api/v1/users/{user_id} 200", "POST /api/v1/users/{user_id}/password 200",
		"PATCH /api/v1/users/{user_id}/status 409", "DELETE /api/v1/users/{user_id} 200",
	} {
		if !v.seen[want] {
			t.Errorf("%s was not validated", want)
		}
	}
}

// TestLifecycleOnPostgres runs the lifecycle writes that depend on the
// store (revoking families but one, cascading a deletion) on PostgreSQL.
// It is skipped without USERSVC_TEST_POSTGRES_URL.
func TestLifecycleOnPostgres(t *testing.T) {
	h := newHarnessOn(t, newPostgres(t), cheapHashing)
	u := h.register("Pg Lifecycle")
	admin := h.admin()
	second := h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": u.Password})
	expect(t, second, http.StatusOK, "")

	expect(t, h.do("PATCH", lcUserPath(u.ID), map[string]any{"name": "Pg Renamed"}, bearer(u.Access)...), http.StatusOK, "")
	r := h.do("POST", "/api/v1/users/"+u.ID+"/password", map[string]any{"current_password": u.Password, "new_password": "N3w!Passw0rd-x", "refresh": u.Refresh}, bearer(u.Access)...)
	expect(t, r, http.StatusOK, "")
	if n, _ := r.data()["sessions_ended"].(float64); n != 1 {
		t.Errorf("sessions_ended = %v, want 1", r.data()["sessions_ended"])
	}
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": second.data()["refresh"]}), http.StatusUnauthorized, "")
	r = h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh})
	expect(t, r, http.StatusOK, "")
	kept := r.data()["refresh"].(string)

	expect(t, h.do("PATCH", "/api/v1/users/"+u.ID+"/status", map[string]any{"is_active": false}, bearer(admin.Access)...), http.StatusOK, "")
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusUnauthorized, account.MsgAccountDisabled)
	expect(t, h.do("PATCH", "/api/v1/users/"+u.ID+"/status", map[string]any{"is_active": true}, bearer(admin.Access)...), http.StatusOK, "")
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": kept}), http.StatusUnauthorized, "")
	// The disabling ended every session: log in again.
	relog := h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": "N3w!Passw0rd-x"})
	expect(t, relog, http.StatusOK, "")
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusUnauthorized, account.MsgTokenInvalid)
	u.Access = relog.data()["access"].(string)

	expect(t, h.do("PATCH", "/api/v1/users/"+u.ID+"/push_token", map[string]any{"push_token": "pg-gone", "device_id": "phone"}, bearer(u.Access)...), http.StatusOK, "")
	expect(t, h.do("DELETE", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusOK, "")
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(u.Access)...), http.StatusUnauthorized, "")
	expect(t, h.do("GET", lcUserPath(u.ID), nil, bearer(admin.Access)...), http.StatusNotFound, account.MsgUserNotFound)
	expect(t, h.do("POST", "/api/v1/users/", map[string]any{"email": u.Email, "password": u.Password, "name": "Pg Again", "push_token": "pg-gone"}), http.StatusCreated, "")
}
