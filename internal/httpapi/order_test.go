package httpapi_test

import (
	"net/http"
	"testing"
)

// A caller who may not act on a user learns that before anything about
// the body: the access rule decides first, whether the body is malformed,
// invalid or fine. The user themself gets the body's 400.
func TestAuthorizationBeforeValidation(t *testing.T) {
	h := newHarness(t)
	alice, bob := h.register("Alice Order"), h.register("Bob Order")
	bearer := func(u user) []string { return []string{"Authorization", "Bearer " + u.Access} }
	cases := []struct {
		method, path string
		body         any
	}{
		{"PATCH", "/api/v1/users/" + bob.ID + "/preferences", map[string]any{"email": "not a boolean"}},
		{"PATCH", "/api/v1/users/" + bob.ID + "/preferences", map[string]any{"unknown": true}},
		{"PATCH", "/api/v1/users/" + bob.ID + "/preferences", `{"email": tru`},
		{"PATCH", "/api/v1/users/" + bob.ID + "/preferences", map[string]any{}},
		{"PATCH", "/api/v1/users/" + bob.ID + "/", map[string]any{"name": ""}},
		{"PATCH", "/api/v1/users/" + bob.ID + "/push_token", map[string]any{"push_token": 7}},
		{"POST", "/api/v1/users/" + bob.ID + "/password", map[string]any{"new_password": "x"}},
		{"PATCH", "/api/v1/users/" + bob.ID + "/status", map[string]any{"is_active": "no"}},
	}
	for _, c := range cases {
		if r := h.do(c.method, c.path, c.body, bearer(alice)...); r.Status != http.StatusForbidden {
			t.Errorf("%s %s %v by another user: %d %s, want 403", c.method, c.path, c.body, r.Status, r.Raw)
		}
		self := bearer(bob)
		if r := h.do(c.method, c.path, c.body, self...); r.Status == http.StatusForbidden && c.path != "/api/v1/users/"+bob.ID+"/status" {
			t.Errorf("%s %s %v by the user: 403, want the body's answer", c.method, c.path, c.body)
		} else if r.Status != http.StatusBadRequest && r.Status != http.StatusForbidden {
			t.Errorf("%s %s %v by the user: %d %s, want 400", c.method, c.path, c.body, r.Status, r.Raw)
		}
	}
}
