package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

const missingID = "0195f0a2-7c4e-7d4b-9a6f-2f1f2b6c9d10"

func TestAccessRules(t *testing.T) {
	h := newHarness(t)
	alice := h.register("Alice")
	bob := h.register("Bob")
	admin := h.admin()
	svc := []string{"X-Service-API-Key", serviceKey}

	routes := []struct {
		method, path string
		body         any
		write        bool
	}{
		{"GET", "/api/v1/users/%s/", nil, false},
		{"GET", "/api/v1/users/%s/preferences", nil, false},
		{"PATCH", "/api/v1/users/%s/preferences", map[string]any{"push": false}, true},
		{"PATCH", "/api/v1/users/%s/push_token", map[string]any{"push_token": "tok-1"}, true},
	}
	for _, rt := range routes {
		path := func(id string) string { return strings.Replace(rt.path, "%s", id, 1) }
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			// Own data: allowed.
			if r := h.do(rt.method, path(alice.ID), rt.body, bearer(alice.Access)...); r.Status != http.StatusOK {
				t.Errorf("own: %d %s", r.Status, r.Raw)
			}
			// Somebody else's, existing or not: 403, never 404.
			expect(t, h.do(rt.method, path(bob.ID), rt.body, bearer(alice.Access)...), http.StatusForbidden, "")
			expect(t, h.do(rt.method, path(missingID), rt.body, bearer(alice.Access)...), http.StatusForbidden, "")
			// Admins: anyone's; 404 for nobody.
			if r := h.do(rt.method, path(bob.ID), rt.body, bearer(admin.Access)...); r.Status != http.StatusOK {
				t.Errorf("admin: %d %s", r.Status, r.Raw)
			}
			expect(t, h.do(rt.method, path(missingID), rt.body, bearer(admin.Access)...), http.StatusNotFound, "User not found")
			// Services read anyone's and change nobody's.
			if rt.write {
				expect(t, h.do(rt.method, path(bob.ID), rt.body, svc...), http.StatusForbidden, "")
			} else {
				expect(t, h.do(rt.method, path(bob.ID), rt.body, svc...), http.StatusOK, "")
				expect(t, h.do(rt.method, path(missingID), rt.body, svc...), http.StatusNotFound, "User not found")
			}
			// Bad credentials.
			expect(t, h.do(rt.method, path(alice.ID), rt.body), http.StatusUnauthorized, "")
			expect(t, h.do(rt.method, path(alice.ID), rt.body, "X-Service-API-Key", "wrong-key-0123456789"), http.StatusUnauthorized, "")
			expect(t, h.do(rt.method, path(alice.ID), rt.body, bearer(alice.Refresh)...), http.StatusUnauthorized, "")
			expect(t, h.do(rt.method, path(alice.ID), rt.body, "Authorization", "Basic YTpi"), http.StatusUnauthorized, "")
			expect(t, h.do(rt.method, path(alice.ID), rt.body, bearer(noneToken(alice.Access))...), http.StatusUnauthorized, "")
			expect(t, h.do(rt.method, path("not-a-uuid"), rt.body, bearer(alice.Access)...), http.StatusBadRequest, "Invalid UUID format")
		})
	}
	// A token in the query string is never read.
	expect(t, h.do("GET", "/api/v1/users/"+alice.ID+"?token="+alice.Access+"&access_token="+alice.Access, nil), http.StatusUnauthorized, "")
	// Expired access tokens are refused.
	h.clock.Advance(16 * 60 * 1e9)
	expect(t, h.do("GET", "/api/v1/users/"+alice.ID, nil, bearer(alice.Access)...), http.StatusUnauthorized, "")
}

// noneToken re-signs tok's header and claims with alg "none".
func noneToken(tok string) string {
	parts := strings.Split(tok, ".")
	return "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
}

func TestGetUser(t *testing.T) {
	h := newHarness(t)
	u := h.register("Grace Hopper")
	r := h.do("GET", "/api/v1/users/"+u.ID, nil, bearer(u.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "User retrieved successfully" {
		t.Errorf("message = %q", r.str("message"))
	}
	d := r.data()
	if d["id"] != u.ID || d["email"] != u.Email || d["name"] != "Grace Hopper" || d["push_token"] != nil {
		t.Errorf("data = %v", d)
	}
	if _, ok := d["user_id"]; ok {
		t.Error("user_id in a GET")
	}
	// Upper-case ids are the same id.
	if r := h.do("GET", "/api/v1/users/"+strings.ToUpper(u.ID)+"/", nil, bearer(u.Access)...); r.Status != http.StatusOK || r.data()["id"] != u.ID {
		t.Errorf("upper-case id: %d %s", r.Status, r.Raw)
	}
}

func TestPreferences(t *testing.T) {
	h := newHarness(t)
	u := h.register("Pref User")
	path := "/api/v1/users/" + u.ID + "/preferences"
	r := h.do("GET", path, nil, bearer(u.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "Notification preferences retrieved successfully" || r.data()["email"] != true || r.data()["push"] != true {
		t.Errorf("%s", r.Raw)
	}
	r = h.do("PATCH", path, map[string]any{"push": false}, bearer(u.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "Notification preferences updated successfully" || r.data()["email"] != true || r.data()["push"] != false {
		t.Errorf("%s", r.Raw)
	}
	// The next read, through any route, sees it.
	if r := h.do("GET", path+"/", nil, bearer(u.Access)...); r.data()["push"] != false {
		t.Errorf("read after write: %s", r.Raw)
	}
	if r := h.do("GET", "/api/v1/users/"+u.ID, nil, bearer(u.Access)...); r.data()["preferences"].(map[string]any)["push"] != false {
		t.Errorf("user after write: %s", r.Raw)
	}
	for name, body := range map[string]string{
		"unknown key":  `{"fax": true}`,
		"string bool":  `{"email": "false"}`,
		"number":       `{"email": 0}`,
		"null":         `{"push": null}`,
		"empty object": `{}`,
		"array":        `[true]`,
		"not JSON":     `email=true`,
	} {
		t.Run(name, func(t *testing.T) {
			r := h.do("PATCH", path, body, bearer(u.Access)...)
			expect(t, r, http.StatusBadRequest, "")
			if name == "unknown key" && !strings.Contains(r.str("error"), "fax") {
				t.Errorf("error does not name the key: %q", r.str("error"))
			}
		})
	}
	// Nothing changed.
	if r := h.do("GET", path, nil, bearer(u.Access)...); r.data()["email"] != true || r.data()["push"] != false {
		t.Errorf("rejected patches changed something: %s", r.Raw)
	}
}

func TestPushToken(t *testing.T) {
	h := newHarness(t)
	alice := h.register("Alice Push")
	bob := h.register("Bob Push")
	path := func(u user) string { return "/api/v1/users/" + u.ID + "/push_token" }
	getToken := func(u user) any {
		return h.do("GET", "/api/v1/users/"+u.ID, nil, bearer(u.Access)...).data()["push_token"]
	}

	r := h.do("PATCH", path(alice), map[string]any{"push_token": "  fcm:token_A-1  ", "device_id": "pixel", "device_type": "android"}, bearer(alice.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "Push token updated successfully" || r.data()["id"] != alice.ID || r.data()["push_token"] != "fcm:token_A-1" {
		t.Errorf("%s", r.Raw)
	}
	if got := getToken(alice); got != "fcm:token_A-1" {
		t.Errorf("push_token = %v", got)
	}
	// A second device: the newest registration is the user's token.
	expect(t, h.do("PATCH", path(alice), map[string]any{"push_token": "apns-token-2", "device_id": "ipad", "device_type": "ios"}, bearer(alice.Access)...), http.StatusOK, "")
	if got := getToken(alice); got != "apns-token-2" {
		t.Errorf("push_token = %v", got)
	}
	devs, err := h.store.Devices(t.Context(), alice.ID)
	if err != nil || len(devs) != 2 {
		t.Fatalf("devices = %v, %v", devs, err)
	}
	// Bob registers Alice's token: it moves to him.
	expect(t, h.do("PATCH", path(bob), map[string]any{"push_token": "apns-token-2"}, bearer(bob.Access)...), http.StatusOK, "")
	if got := getToken(bob); got != "apns-token-2" {
		t.Errorf("bob push_token = %v", got)
	}
	if got := getToken(alice); got == "apns-token-2" {
		t.Errorf("alice still holds the moved token")
	}
	devs, _ = h.store.Devices(t.Context(), alice.ID)
	if len(devs) != 1 {
		t.Errorf("alice has %d devices after the move", len(devs))
	}
	// null clears.
	r = h.do("PATCH", path(bob), `{"push_token": null}`, bearer(bob.Access)...)
	expect(t, r, http.StatusOK, "")
	if r.data()["push_token"] != nil || getToken(bob) != nil {
		t.Errorf("null did not clear: %s", r.Raw)
	}
	for name, c := range map[string]struct {
		body string
		err  string
	}{
		"bad chars":   {`{"push_token": "a b"}`, "push_token: Invalid token format (only alphanumeric characters, hyphens, underscores, and colons allowed)"},
		"blank":       {`{"push_token": "   "}`, "push_token: Invalid token format (only alphanumeric characters, hyphens, underscores, and colons allowed)"},
		"too long":    {`{"push_token": "` + strings.Repeat("x", 513) + `"}`, "push_token: Token is too long (max 512 characters)"},
		"number":      {`{"push_token": 5}`, "push_token: Must be a string"},
		"missing":     {`{}`, "push_token: This field is required"},
		"device type": {`{"push_token": "ok", "device_type": "fridge"}`, ""},
		"unknown":     {`{"push_token": "ok", "user_id": "x"}`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			expect(t, h.do("PATCH", path(alice), c.body, bearer(alice.Access)...), http.StatusBadRequest, c.err)
		})
	}
	// 512 characters exactly is fine.
	expect(t, h.do("PATCH", path(alice), map[string]any{"push_token": strings.Repeat("y", 512)}, bearer(alice.Access)...), http.StatusOK, "")
}

func TestRoutingEnvelope(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/api/v1/nothing-here", nil)
	expect(t, r, http.StatusNotFound, "Not found")
	r = h.do("PUT", "/api/v1/users/refresh", nil)
	expect(t, r, http.StatusMethodNotAllowed, "Method not allowed")
	// GET, PATCH and DELETE are allowed too: /users/refresh also reads as
	// /users/{user_id} (and answers 400 Invalid UUID format).
	if r.Header.Get("Allow") != "GET, POST, PATCH, DELETE" {
		t.Errorf("Allow = %q", r.Header.Get("Allow"))
	}
	r = h.do("PUT", "/api/v1/users/"+missingID+"/preferences/", nil)
	expect(t, r, http.StatusMethodNotAllowed, "")
	if r.Header.Get("Allow") != "GET, PATCH" {
		t.Errorf("Allow = %q", r.Header.Get("Allow"))
	}
	// With and without a trailing slash, no redirect.
	for _, p := range []string{"/api/v1/users/login", "/api/v1/users/login/"} {
		r := h.do("POST", p, map[string]any{"email": "a@example.com", "password": "x"})
		expect(t, r, http.StatusUnauthorized, "")
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("X-Request-ID") == "" {
		t.Errorf("headers = %v", r.Header)
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/health", nil)
	if r.Status != 200 || r.Body["status"] != "healthy" || r.Body["database"] != "connected" || r.Body["redis"] != "not_configured" || r.Body["version"] != "test" || r.Body["timestamp"] == nil {
		t.Errorf("/health: %d %s", r.Status, r.Raw)
	}
	if r := h.do("GET", "/health/liveness", nil); r.Status != 200 || r.Body["status"] != "alive" {
		t.Errorf("liveness: %d %s", r.Status, r.Raw)
	}
	if r := h.do("GET", "/health/readiness/", nil); r.Status != 200 || r.Body["status"] != "ready" {
		t.Errorf("readiness: %d %s", r.Status, r.Raw)
	}
	h.draining.Store(true)
	if r := h.do("GET", "/health/readiness", nil); r.Status != 503 || r.Body["status"] != "not_ready" {
		t.Errorf("readiness while draining: %d %s", r.Status, r.Raw)
	}
	if r := h.do("GET", "/health/liveness", nil); r.Status != 200 {
		t.Errorf("liveness while draining: %d", r.Status)
	}
	// The database goes away: unhealthy, not ready, API calls 503.
	h.store.Close()
	h.draining.Store(false)
	if r := h.do("GET", "/health", nil); r.Status != 503 || r.Body["status"] != "unhealthy" {
		t.Errorf("/health without a database: %d %s", r.Status, r.Raw)
	}
	if r := h.do("GET", "/health/readiness", nil); r.Status != 503 {
		t.Errorf("readiness without a database: %d", r.Status)
	}
	r = h.do("POST", "/api/v1/users/login", map[string]any{"email": "a@example.com", "password": "Val1d!pass"})
	expect(t, r, http.StatusServiceUnavailable, "")
	if strings.Contains(string(r.Raw), "sql") {
		t.Errorf("driver text leaked: %s", r.Raw)
	}
}

// TestAmbiguousCredentials checks that a request presenting more than one
// credential is a 400, whichever of them is good: no "first one wins".
func TestAmbiguousCredentials(t *testing.T) {
	h := newHarness(t)
	alice := h.register("Alice Twice")
	bob := h.register("Bob Twice")
	const want = "Send one credential: one Authorization header or one X-Service-API-Key header"
	for _, c := range []struct {
		name    string
		headers [][2]string
	}{
		{"two bearer tokens", [][2]string{{"Authorization", "Bearer " + alice.Access}, {"Authorization", "Bearer " + bob.Access}}},
		{"one token twice", [][2]string{{"Authorization", "Bearer " + alice.Access}, {"Authorization", "Bearer " + alice.Access}}},
		{"a token and an empty header", [][2]string{{"Authorization", "Bearer " + alice.Access}, {"Authorization", ""}}},
		{"a token and a service key", [][2]string{{"Authorization", "Bearer " + alice.Access}, {"X-Service-API-Key", serviceKey}}},
		{"a bad token and a service key", [][2]string{{"Authorization", "Bearer nope"}, {"X-Service-API-Key", serviceKey}}},
		{"basic and a service key", [][2]string{{"Authorization", "Basic YTpi"}, {"X-Service-API-Key", serviceKey}}},
		{"two service keys", [][2]string{{"X-Service-API-Key", serviceKey}, {"X-Service-API-Key", invalidatorKey}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, rt := range []struct{ method, path string }{
				{"GET", "/api/v1/users/" + alice.ID},
				{"GET", "/api/v1/users/" + alice.ID + "/push_tokens/"},
				{"DELETE", "/api/v1/users/" + alice.ID},
				{"GET", "/api/v1/users/"},
				{"POST", "/api/v1/users/batch"},
				{"POST", "/api/v1/push_tokens/invalidate"},
			} {
				req := h.request(rt.method, rt.path, nil)
				for _, kv := range c.headers {
					req.Header.Add(kv[0], kv[1])
				}
				r := h.send(req)
				expect(t, r, http.StatusBadRequest, want)
			}
		})
	}
	// Alice is still there: the DELETE above was refused.
	expect(t, h.do("GET", "/api/v1/users/"+alice.ID, nil, bearer(alice.Access)...), http.StatusOK, "")
	// One credential, with an empty header of the other kind, is not ambiguous.
	expect(t, h.do("GET", "/api/v1/users/"+alice.ID, nil, "X-Service-API-Key", serviceKey), http.StatusOK, "")
	req := h.request("GET", "/api/v1/users/"+alice.ID, nil, bearer(alice.Access)...)
	req.Header["X-Service-Api-Key"] = []string{""}
	expect(t, h.send(req), http.StatusOK, "")
	req = h.request("GET", "/api/v1/users/"+alice.ID, nil, "X-Service-API-Key", serviceKey)
	req.Header["Authorization"] = []string{""}
	expect(t, h.send(req), http.StatusOK, "")
}

// TestPublicRoutesReadNoCredentials checks that the routes open to anyone
// answer the same whatever credentials come with the request: bad,
// malformed or ambiguous ones are not read.
func TestPublicRoutesReadNoCredentials(t *testing.T) {
	h := newHarness(t)
	u := h.register("Public Reader")
	creds := map[string][][2]string{
		"none":            nil,
		"bad token":       {{"Authorization", "Bearer not.a.token"}},
		"refresh token":   {{"Authorization", "Bearer " + u.Refresh}},
		"basic":           {{"Authorization", "Basic YTpi"}},
		"bad service key": {{"X-Service-API-Key", "wrong-key-0123456789"}},
		"two tokens":      {{"Authorization", "Bearer " + u.Access}, {"Authorization", "Bearer x"}},
		"token and key":   {{"Authorization", "Bearer " + u.Access}, {"X-Service-API-Key", serviceKey}},
	}
	seq := 0
	for name, hs := range creds {
		t.Run(name, func(t *testing.T) {
			send := func(method, path string, body any) response {
				t.Helper()
				req := h.request(method, path, body)
				for _, kv := range hs {
					req.Header.Add(kv[0], kv[1])
				}
				return h.send(req)
			}
			seq++
			email := "public." + itoa(int64(seq)) + "@example.com"
			expect(t, send("POST", "/api/v1/users/", map[string]any{"email": email, "password": "Str0ng!Passw0rd", "name": "Pub"}), http.StatusCreated, "")
			r := send("POST", "/api/v1/users/login", map[string]any{"email": email, "password": "Str0ng!Passw0rd"})
			expect(t, r, http.StatusOK, "")
			r = send("POST", "/api/v1/users/refresh", map[string]any{"refresh": r.data()["refresh"].(string)})
			expect(t, r, http.StatusOK, "")
			expect(t, send("POST", "/api/v1/users/logout", map[string]any{"refresh": r.data()["refresh"].(string)}), http.StatusOK, "")
			expect(t, send("POST", "/api/v1/users/login", map[string]any{"email": email, "password": "Wr0ng!Passw0rd"}), http.StatusUnauthorized, "Invalid email or password")
			for _, p := range []string{"/health", "/health/liveness", "/health/readiness", "/.well-known/jwks.json", "/api/v1/openapi.json"} {
				if r := send("GET", p, nil); r.Status != http.StatusOK {
					t.Errorf("GET %s: %d %s", p, r.Status, r.Raw)
				}
			}
			for _, p := range []string{"/docs", "/docs/assets/docs.js"} {
				req := h.request("GET", p, nil)
				for _, kv := range hs {
					req.Header.Add(kv[0], kv[1])
				}
				resp, err := h.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d", p, resp.StatusCode)
				}
			}
		})
	}
}
