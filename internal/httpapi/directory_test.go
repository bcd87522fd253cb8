package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

func TestListUsers(t *testing.T) {
	h := newHarness(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, h.register(fmt.Sprintf("Lister %c", 'A'+i)).ID)
		h.clock.Advance(1e6)
	}
	admin := h.admin()
	r := h.do("GET", "/api/v1/users/?page=2&limit=2", nil, bearer(admin.Access)...)
	expect(t, r, http.StatusOK, "")
	meta := r.Body["meta"].(map[string]any)
	want := map[string]any{"total": 6.0, "limit": 2.0, "page": 2.0, "total_pages": 3.0, "has_next": true, "has_previous": true}
	for k, v := range want {
		if meta[k] != v {
			t.Errorf("meta.%s = %v, want %v", k, meta[k], v)
		}
	}
	list := r.Body["data"].([]any)
	if len(list) != 2 {
		t.Fatalf("page has %d users", len(list))
	}
	// Newest first: the admin, then the users in reverse order; page 2 holds ids[3], ids[2].
	if list[0].(map[string]any)["id"] != ids[3] || list[1].(map[string]any)["id"] != ids[2] {
		t.Errorf("order: %v", list)
	}
	r = h.do("GET", "/api/v1/users", nil, "X-Service-API-Key", serviceKey)
	expect(t, r, http.StatusOK, "")
	if m := r.Body["meta"].(map[string]any); m["limit"] != 20.0 || m["page"] != 1.0 || m["has_next"] != false || m["has_previous"] != false {
		t.Errorf("default meta = %v", m)
	}
	for _, q := range []string{"?limit=0", "?limit=101", "?page=0", "?page=x"} {
		expect(t, h.do("GET", "/api/v1/users/"+q, nil, bearer(admin.Access)...), http.StatusBadRequest, "")
	}
	u := h.register("Plain User")
	expect(t, h.do("GET", "/api/v1/users/", nil, bearer(u.Access)...), http.StatusForbidden, "")
	expect(t, h.do("GET", "/api/v1/users/", nil), http.StatusUnauthorized, "")
}

func TestBatchUsers(t *testing.T) {
	h := newHarness(t)
	a := h.register("Batch A")
	b := h.register("Batch B")
	expect(t, h.do("PATCH", "/api/v1/users/"+a.ID+"/push_token", map[string]any{"push_token": "tok-a1", "device_id": "phone", "device_type": "ios"}, bearer(a.Access)...), http.StatusOK, "")
	expect(t, h.do("PATCH", "/api/v1/users/"+a.ID+"/push_token", map[string]any{"push_token": "tok-a2", "device_id": "web", "device_type": "web"}, bearer(a.Access)...), http.StatusOK, "")
	svc := []string{"X-Service-API-Key", serviceKey}
	r := h.do("POST", "/api/v1/users/batch", map[string]any{"user_ids": []string{a.ID, b.ID, missingID, a.ID}}, svc...)
	expect(t, r, http.StatusOK, "")
	d := r.data()
	users := d["users"].([]any)
	if len(users) != 2 {
		t.Fatalf("users = %v", users)
	}
	first := users[0].(map[string]any)
	if first["id"] != a.ID || len(first["push_tokens"].([]any)) != 2 || first["preferences"] == nil {
		t.Errorf("first = %v", first)
	}
	if nf := d["not_found"].([]any); len(nf) != 1 || nf[0] != missingID {
		t.Errorf("not_found = %v", nf)
	}
	ids := make([]string, 1001)
	for i := range ids {
		ids[i] = missingID
	}
	for name, body := range map[string]any{
		"empty":     map[string]any{"user_ids": []string{}},
		"too many":  map[string]any{"user_ids": ids},
		"not uuid":  map[string]any{"user_ids": []string{"nope"}},
		"not list":  map[string]any{"user_ids": "x"},
		"missing":   map[string]any{},
		"unknown":   map[string]any{"user_ids": []string{a.ID}, "x": 1},
		"non-items": json.RawMessage(`{"user_ids":[1,2]}`),
	} {
		t.Run(name, func(t *testing.T) {
			expect(t, h.do("POST", "/api/v1/users/batch", body, svc...), http.StatusBadRequest, "")
		})
	}
	expect(t, h.do("POST", "/api/v1/users/batch", map[string]any{"user_ids": []string{a.ID}}, bearer(b.Access)...), http.StatusForbidden, "")
}

func TestDevices(t *testing.T) {
	h := newHarness(t)
	a := h.register("Device Owner")
	other := h.register("Device Other")
	path := "/api/v1/users/" + a.ID + "/push_tokens"
	expect(t, h.do("PATCH", "/api/v1/users/"+a.ID+"/push_token", map[string]any{"push_token": "tok-1", "device_id": "pixel", "device_type": "android"}, bearer(a.Access)...), http.StatusOK, "")
	expect(t, h.do("PATCH", "/api/v1/users/"+a.ID+"/push_token", map[string]any{"push_token": "tok-2", "device_id": "ipad", "device_type": "ios"}, bearer(a.Access)...), http.StatusOK, "")
	r := h.do("GET", path, nil, bearer(a.Access)...)
	expect(t, r, http.StatusOK, "")
	list := r.Body["data"].([]any)
	if len(list) != 2 {
		t.Fatalf("devices = %v", list)
	}
	d0 := list[0].(map[string]any)
	for _, k := range []string{"id", "device_id", "push_token", "device_type", "created_at", "updated_at", "last_seen_at"} {
		if _, ok := d0[k]; !ok {
			t.Errorf("device lacks %s: %v", k, d0)
		}
	}
	expect(t, h.do("GET", path, nil, "X-Service-API-Key", serviceKey), http.StatusOK, "")
	expect(t, h.do("GET", path, nil, bearer(other.Access)...), http.StatusForbidden, "")
	expect(t, h.do("DELETE", path+"/pixel", nil, "X-Service-API-Key", serviceKey), http.StatusForbidden, "")
	expect(t, h.do("DELETE", path+"/pixel", nil, bearer(other.Access)...), http.StatusForbidden, "")
	expect(t, h.do("DELETE", path+"/pixel", nil, bearer(a.Access)...), http.StatusOK, "")
	expect(t, h.do("DELETE", path+"/pixel", nil, bearer(a.Access)...), http.StatusNotFound, "Device not found")
	r = h.do("GET", path, nil, bearer(a.Access)...)
	if list := r.Body["data"].([]any); len(list) != 1 || list[0].(map[string]any)["device_id"] != "ipad" {
		t.Errorf("after delete: %s", r.Raw)
	}
}

func TestInvalidatePushTokens(t *testing.T) {
	h := newHarness(t)
	a := h.register("Invalid A")
	b := h.register("Invalid B")
	expect(t, h.do("PATCH", "/api/v1/users/"+a.ID+"/push_token", map[string]any{"push_token": "dead-1"}, bearer(a.Access)...), http.StatusOK, "")
	expect(t, h.do("PATCH", "/api/v1/users/"+b.ID+"/push_token", map[string]any{"push_token": "dead-2"}, bearer(b.Access)...), http.StatusOK, "")
	body := map[string]any{"push_tokens": []string{"dead-1", "dead-2", "never-seen"}, "reason": "unregistered"}
	// Only a service with the push_tokens.invalidate scope may.
	expect(t, h.do("POST", "/api/v1/push_tokens/invalidate", body, bearer(a.Access)...), http.StatusForbidden, "")
	expect(t, h.do("POST", "/api/v1/push_tokens/invalidate", body, "X-Service-API-Key", serviceKey), http.StatusForbidden, "")
	expect(t, h.do("POST", "/api/v1/push_tokens/invalidate", body, "X-Service-API-Key", invalidatorKey), http.StatusOK, "")
	r := h.do("GET", "/api/v1/users/"+a.ID, nil, bearer(a.Access)...)
	if r.data()["push_token"] != nil {
		t.Errorf("a's token survived: %s", r.Raw)
	}
	r = h.do("GET", "/api/v1/users/"+b.ID+"/push_tokens", nil, bearer(b.Access)...)
	if len(r.Body["data"].([]any)) != 0 {
		t.Errorf("b's device survived: %s", r.Raw)
	}
	expect(t, h.do("POST", "/api/v1/push_tokens/invalidate", map[string]any{"push_tokens": []string{}}, "X-Service-API-Key", invalidatorKey), http.StatusBadRequest, "")
	expect(t, h.do("POST", "/api/v1/push_tokens/invalidate", map[string]any{"push_tokens": []string{"bad token"}}, "X-Service-API-Key", invalidatorKey), http.StatusBadRequest, "")
}

func TestJWKS(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/.well-known/jwks.json", nil)
	if r.Status != 200 || r.Header.Get("Cache-Control") == "" {
		t.Fatalf("%d %v", r.Status, r.Header)
	}
	if keys, ok := r.Body["keys"].([]any); !ok || len(keys) != 0 {
		t.Errorf("HS256 JWKS = %s", r.Raw)
	}
}

// TestListUsersPageOverflow checks that a page whose offset, (page-1)*limit,
// does not fit in an int is refused, instead of wrapping to another page.
func TestListUsersPageOverflow(t *testing.T) {
	h := newHarness(t)
	h.register("Only User")
	svc := []string{"X-Service-API-Key", serviceKey}
	for _, c := range []struct {
		query, err string
	}{
		{"?page=9223372036854775807", "page: Must be at most 461168601842738791 with a limit of 20"},
		{"?page=9223372036854775807&limit=1", ""}, // fits: an empty page
		{"?page=9223372036854775807&limit=2", "page: Must be at most 4611686018427387904 with a limit of 2"},
		{"?page=4611686018427387905&limit=2", "page: Must be at most 4611686018427387904 with a limit of 2"},
		{"?page=4611686018427387904&limit=2", ""},
		{"?page=92233720368547760&limit=100", "page: Must be at most 92233720368547759 with a limit of 100"},
		{"?page=92233720368547759&limit=100", ""},
		{"?page=461168601842738792", "page: Must be at most 461168601842738791 with a limit of 20"},
		{"?page=9223372036854775808", "page: Must be a whole number"},
		// A limit out of range is refused for itself, with no bound on the page.
		{"?page=9223372036854775807&limit=0", "limit: Must be a whole number from 1 to 100"},
		{"?page=9223372036854775807&limit=1000", "limit: Must be a whole number from 1 to 100"},
	} {
		t.Run(c.query, func(t *testing.T) {
			r := h.do("GET", "/api/v1/users/"+c.query, nil, svc...)
			if c.err != "" {
				expect(t, r, http.StatusBadRequest, c.err)
				return
			}
			expect(t, r, http.StatusOK, "")
			if list := r.Body["data"].([]any); len(list) != 0 {
				t.Errorf("page holds %d users: %s", len(list), r.Raw)
			}
			if m := r.Body["meta"].(map[string]any); m["total"] != 1.0 || m["has_next"] != false || m["has_previous"] != true {
				t.Errorf("meta = %v", m)
			}
		})
	}
}
