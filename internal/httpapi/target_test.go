package httpapi_test

import (
	"net/http"
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
