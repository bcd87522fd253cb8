package httpapi_test

import (
	"net/http"
	"sync"
	"testing"
)

// TestOnPostgres runs the rules that depend on the database's own
// guarantees (uniqueness, atomic spending of refresh tokens, token moves)
// on PostgreSQL. It is skipped without USERSVC_TEST_POSTGRES_URL.
func TestOnPostgres(t *testing.T) {
	h := newHarnessOn(t, newPostgres(t), cheapHashing)

	t.Run("concurrent registration of one email", func(t *testing.T) {
		const n = 20
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				statuses[i] = h.do("POST", "/api/v1/users/", map[string]any{"email": "PG.Race@example.com", "password": "Val1d!pass", "name": "Racer"}).Status
			})
		}
		wg.Wait()
		count := map[int]int{}
		for _, s := range statuses {
			count[s]++
		}
		if count[http.StatusCreated] != 1 || count[http.StatusConflict] != n-1 {
			t.Fatalf("statuses = %v", count)
		}
	})

	t.Run("refresh reuse and concurrency", func(t *testing.T) {
		checkParallelRefresh(t, h, h.register("Pg Refresher"))
		// Sequential rotation, then reuse of the spent token revokes the family.
		v := h.register("Pg Rotator")
		r := h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": v.Refresh})
		expect(t, r, http.StatusOK, "")
		next := r.data()["refresh"].(string)
		expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": v.Refresh}), http.StatusUnauthorized, "")
		expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": next}), http.StatusUnauthorized, "")
	})

	t.Run("access rules and push token move", func(t *testing.T) {
		a := h.register("Pg Alice")
		b := h.register("Pg Bob")
		expect(t, h.do("GET", "/api/v1/users/"+b.ID, nil, bearer(a.Access)...), http.StatusForbidden, "")
		expect(t, h.do("GET", "/api/v1/users/"+missingID, nil, "X-Service-API-Key", serviceKey), http.StatusNotFound, "User not found")
		expect(t, h.do("PATCH", "/api/v1/users/"+a.ID+"/push_token", map[string]any{"push_token": "pg-shared"}, bearer(a.Access)...), http.StatusOK, "")
		expect(t, h.do("PATCH", "/api/v1/users/"+b.ID+"/push_token", map[string]any{"push_token": "pg-shared"}, bearer(b.Access)...), http.StatusOK, "")
		if r := h.do("GET", "/api/v1/users/"+a.ID, nil, bearer(a.Access)...); r.data()["push_token"] != nil {
			t.Errorf("token did not move: %s", r.Raw)
		}
	})
	t.Run("NUL and invalid UTF-8", func(t *testing.T) { checkTextRefusals(t, h) })
}
