package httpapi_test

import (
	"net/http"
	"slices"
	"testing"
)

// TestNonCanonicalPaths checks that a path ServeMux would clean ("//",
// "." and ".." segments) answers 404 in the envelope, never a redirect
// to the clean path.
func TestNonCanonicalPaths(t *testing.T) {
	h := newHarness(t)
	u := h.register("Canon Ical")
	for _, c := range []struct {
		method, path string
	}{
		{"GET", "//api/v1/users/"},
		{"GET", "//api/v1/users/" + u.ID},
		{"GET", "/api/v1//users/" + u.ID + "/"},
		{"GET", "/api/v1/./users/" + u.ID + "/"},
		{"GET", "/api/v1/users/" + u.ID + "/."},
		{"GET", "/api/v1/users/x/../" + u.ID},
		{"GET", "/api/v1/users/" + u.ID + "/preferences/.."},
		{"PATCH", "/api/v1/users/./" + u.ID + "/preferences"},
		{"DELETE", "/api/v1/users/" + u.ID + "/push_tokens/a/../b"},
		{"POST", "//api/v1/users/login"},
		{"GET", "/health//"},
		{"GET", "/docs/./assets/docs.js"},
		{"GET", "/../api/v1/users/"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := h.do(c.method, c.path, nil, bearer(u.Access)...)
			expect(t, r, http.StatusNotFound, "Not found")
			if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			if loc := r.Header.Get("Location"); loc != "" {
				t.Errorf("Location = %q", loc)
			}
		})
	}
	// Nor does ServeMux redirect a subtree's root to its form with a slash.
	r := h.do("GET", "/docs/assets", nil)
	expect(t, r, http.StatusNotFound, "Not found")
	if loc := r.Header.Get("Location"); loc != "" {
		t.Errorf("GET /docs/assets: Location = %q", loc)
	}
	// The clean forms still answer, with and without a trailing slash.
	expect(t, h.do("GET", "/api/v1/users/"+u.ID+"/", nil, bearer(u.Access)...), http.StatusOK, "")
	expect(t, h.do("GET", "/api/v1/users/"+u.ID, nil, bearer(u.Access)...), http.StatusOK, "")
}

// msgPathText and msgQueryText are the answers to a path or query that
// holds NUL or is not UTF-8.
const (
	msgPathText  = "The path must be valid UTF-8 without NUL characters"
	msgQueryText = "Query parameters must be valid UTF-8 without NUL characters"
)

// badText are percent-encoded path segments and query values that are NUL
// or not UTF-8: a lone continuation byte, a truncated sequence, an encoded
// surrogate, an overlong encoding.
var badText = []string{"%00", "a%00b", "%FF", "%C3%28", "%ED%A0%80", "%C0%AF", "%E2%82"}

// checkTextRefusals sends NUL and invalid UTF-8 in every place a request
// carries text: path segments, query keys and values, and JSON strings
// of each route's body. Every one must be a 400 in the envelope naming
// the problem; none may reach a store and answer 5xx.
func checkTextRefusals(t *testing.T, h *harness) {
	alice := h.register("Alice Text")
	auth := bearer(alice.Access)
	svc := []string{"X-Service-API-Key", serviceKey}
	pusher := []string{"X-Service-API-Key", invalidatorKey}

	t.Run("path", func(t *testing.T) {
		for _, bad := range badText {
			for _, c := range []struct {
				method, path string
				headers      []string
			}{
				{"DELETE", "/api/v1/users/" + alice.ID + "/push_tokens/" + bad, auth},
				{"DELETE", "/api/v1/users/" + alice.ID + "/push_tokens/" + bad + "/", auth},
				{"GET", "/api/v1/users/" + bad, auth},
				{"GET", "/api/v1/users/" + bad + "/preferences", svc},
				{"PATCH", "/api/v1/users/" + bad, auth},
				{"POST", "/api/v1/users/login" + bad, nil},
				{"GET", "/health/" + bad, nil},
				{"GET", "/docs/assets/" + bad, nil},
				{"GET", "/" + bad, nil},
			} {
				r := h.do(c.method, c.path, nil, c.headers...)
				if r.Status >= 500 {
					t.Errorf("%s %s: %d %s", c.method, c.path, r.Status, r.Raw)
					continue
				}
				expect(t, r, http.StatusBadRequest, msgPathText)
				if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("%s %s: Cache-Control = %q", c.method, c.path, cc)
				}
			}
		}
	})

	t.Run("query", func(t *testing.T) {
		for _, bad := range badText {
			for _, q := range []string{"?page=" + bad, "?limit=1&x=" + bad, "?" + bad + "=1", "?page=1&page=" + bad} {
				r := h.do("GET", "/api/v1/users/"+q, nil, svc...)
				if r.Status >= 500 {
					t.Errorf("GET /api/v1/users/%s: %d %s", q, r.Status, r.Raw)
					continue
				}
				expect(t, r, http.StatusBadRequest, msgQueryText)
			}
			r := h.do("GET", "/api/v1/users/"+alice.ID+"?x="+bad, nil, auth...)
			expect(t, r, http.StatusBadRequest, msgQueryText)
		}
	})

	t.Run("body", func(t *testing.T) {
		const nul = "a\u0000b"
		device := "dev-" + alice.ID[:8]
		expect(t, h.do("PATCH", "/api/v1/users/"+alice.ID+"/push_token", map[string]any{"push_token": "fcm:text", "device_id": device}, auth...), http.StatusOK, "")
		for _, c := range []struct {
			name, method, path string
			body               map[string]any
			headers            []string
			field              string
		}{
			{"register email", "POST", "/api/v1/users/", map[string]any{"email": "x" + nul + "@example.com", "password": "Str0ng!Passw0rd", "name": "X"}, nil, "email"},
			{"register password", "POST", "/api/v1/users/", map[string]any{"email": "x@example.com", "password": "Str0ng!Pa" + nul, "name": "X"}, nil, "password"},
			{"register name", "POST", "/api/v1/users/", map[string]any{"email": "x@example.com", "password": "Str0ng!Passw0rd", "name": nul}, nil, "name"},
			{"register push token", "POST", "/api/v1/users/", map[string]any{"email": "x@example.com", "password": "Str0ng!Passw0rd", "name": "X", "push_token": nul}, nil, "push_token"},
			{"login email", "POST", "/api/v1/users/login", map[string]any{"email": alice.Email + "\u0000", "password": alice.Password}, nil, "email"},
			{"login password", "POST", "/api/v1/users/login", map[string]any{"email": alice.Email, "password": alice.Password + "\u0000"}, nil, "password"},
			{"refresh", "POST", "/api/v1/users/refresh", map[string]any{"refresh": alice.Refresh + "\u0000"}, nil, "refresh"},
			{"logout", "POST", "/api/v1/users/logout", map[string]any{"refresh": nul}, nil, "refresh"},
			{"push token", "PATCH", "/api/v1/users/" + alice.ID + "/push_token", map[string]any{"push_token": "fcm:" + nul}, auth, "push_token"},
			{"device id", "PATCH", "/api/v1/users/" + alice.ID + "/push_token", map[string]any{"push_token": "fcm:x", "device_id": device + "\u0000"}, auth, "device_id"},
			{"device type", "PATCH", "/api/v1/users/" + alice.ID + "/push_token", map[string]any{"push_token": "fcm:x", "device_type": "ios\u0000"}, auth, "device_type"},
			{"name", "PATCH", "/api/v1/users/" + alice.ID, map[string]any{"name": "Alice" + "\u0000"}, auth, "name"},
			{"current password", "POST", "/api/v1/users/" + alice.ID + "/password", map[string]any{"current_password": alice.Password + "\u0000", "new_password": "N3w!Passw0rd"}, auth, "current_password"},
			{"new password", "POST", "/api/v1/users/" + alice.ID + "/password", map[string]any{"current_password": alice.Password, "new_password": "N3w!Passw0rd" + "\u0000"}, auth, "new_password"},
			{"kept refresh", "POST", "/api/v1/users/" + alice.ID + "/password", map[string]any{"current_password": alice.Password, "new_password": "N3w!Passw0rd", "refresh": alice.Refresh + "\u0000"}, auth, "refresh"},
			{"batch ids", "POST", "/api/v1/users/batch", map[string]any{"user_ids": []string{alice.ID, alice.ID + "\u0000"}}, svc, "user_ids"},
			{"invalidated tokens", "POST", "/api/v1/push_tokens/invalidate", map[string]any{"push_tokens": []string{"fcm:text\u0000"}}, pusher, "push_tokens"},
			{"invalidation reason", "POST", "/api/v1/push_tokens/invalidate", map[string]any{"push_tokens": []string{"fcm:text"}, "reason": nul}, pusher, "reason"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := h.do(c.method, c.path, c.body, c.headers...)
				if r.Status >= 500 {
					t.Fatalf("%d %s", r.Status, r.Raw)
				}
				expect(t, r, http.StatusBadRequest, "")
				if msgs := fieldErrors(r)[c.field]; !slices.Contains(msgs, "Must not contain NUL characters") {
					t.Errorf("%s: %v, want the NUL message: %s", c.field, msgs, r.Raw)
				}
			})
		}
		// Nothing was changed: the device and the password are as they were.
		r := h.do("GET", "/api/v1/users/"+alice.ID+"/push_tokens", nil, auth...)
		expect(t, r, http.StatusOK, "")
		if list, _ := r.Body["data"].([]any); len(list) != 1 {
			t.Errorf("devices: %s", r.Raw)
		}
		expect(t, h.do("POST", "/api/v1/users/login", map[string]any{"email": alice.Email, "password": alice.Password}), http.StatusOK, "")
	})
}

func TestTextRefusals(t *testing.T) { checkTextRefusals(t, newHarness(t)) }
