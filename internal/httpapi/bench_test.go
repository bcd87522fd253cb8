package httpapi_test

import (
	"net/http"
	"testing"
)

// BenchmarkLogin measures a whole login over HTTP with the production
// argon2id parameters (19 MiB, t=2, p=1), on SQLite; and, as the baseline
// of the same run, a health request that does no hashing.
func BenchmarkLogin(b *testing.B) {
	h := newHarnessOn(b, newSQLite(b), realHashing)
	u := h.register("Bench User")
	body := map[string]any{"email": u.Email, "password": u.Password}
	b.Run("login", func(b *testing.B) {
		for b.Loop() {
			if r := h.do("POST", "/api/v1/users/login", body); r.Status != http.StatusOK {
				b.Fatalf("login: %d", r.Status)
			}
		}
	})
	b.Run("unknown-email", func(b *testing.B) {
		bad := map[string]any{"email": "nobody@example.com", "password": u.Password}
		for b.Loop() {
			if r := h.do("POST", "/api/v1/users/login", bad); r.Status != http.StatusUnauthorized {
				b.Fatalf("login: %d", r.Status)
			}
		}
	})
	b.Run("get-user-baseline", func(b *testing.B) {
		for b.Loop() {
			if r := h.do("GET", "/api/v1/users/"+u.ID, nil, bearer(u.Access)...); r.Status != http.StatusOK {
				b.Fatalf("get: %d", r.Status)
			}
		}
	})
}
