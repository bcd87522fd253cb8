package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogin(t *testing.T) {
	h := newHarness(t)
	u := h.register("Ada Lovelace")

	r := h.do("POST", "/api/v1/users/login", map[string]any{"email": "  " + strings.ToUpper(u.Email), "password": u.Password})
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "Login successful" || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("message %q, Cache-Control %q", r.str("message"), r.Header.Get("Cache-Control"))
	}
	d := r.data()
	usr := d["user"].(map[string]any)
	if usr["id"] != u.ID || usr["email"] != u.Email || d["access"] == "" || d["refresh"] == "" {
		t.Errorf("data = %v", d)
	}
	if _, ok := usr["user_id"]; ok {
		t.Errorf("login user has user_id: %v", usr)
	}

	wrong := h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": "Wr0ng!password"})
	unknown := h.do("POST", "/api/v1/users/login", map[string]any{"email": "nobody@example.com", "password": "Wr0ng!password"})
	expect(t, wrong, http.StatusUnauthorized, "Invalid email or password")
	expect(t, unknown, http.StatusUnauthorized, "Invalid email or password")
	if string(wrong.Raw) != string(unknown.Raw) {
		t.Errorf("wrong password and unknown email answer differently:\n%s\n%s", wrong.Raw, unknown.Raw)
	}

	for name, body := range map[string]any{
		"missing email":       map[string]any{"password": "x"},
		"missing password":    map[string]any{"email": u.Email},
		"non-string password": map[string]any{"email": u.Email, "password": 12345678},
		"non-string email":    map[string]any{"email": []string{u.Email}, "password": u.Password},
		"unknown field":       map[string]any{"email": u.Email, "password": u.Password, "remember": true},
		"not an object":       `["x"]`,
	} {
		t.Run(name, func(t *testing.T) {
			expect(t, h.do("POST", "/api/v1/users/login", body), http.StatusBadRequest, "")
		})
	}

	// The password is checked exactly as sent: no trimming.
	r = h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": u.Password + " "})
	expect(t, r, http.StatusUnauthorized, "Invalid email or password")
}

func TestLoginDisabledAccount(t *testing.T) {
	h := newHarness(t)
	u := h.register("Dormant User")
	if _, err := h.store.SetActive(t.Context(), u.ID, false, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	r := h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": u.Password})
	expect(t, r, http.StatusForbidden, "Account is disabled")
	// A wrong password does not reveal that the account exists.
	r = h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": "Wr0ng!password"})
	expect(t, r, http.StatusUnauthorized, "Invalid email or password")
	// Its refresh token no longer works.
	r = h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh})
	expect(t, r, http.StatusUnauthorized, "")
}

// claims decodes the payload of a JWT without checking it.
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokenClaims(t *testing.T) {
	h := newHarness(t)
	u := h.register("Claims Person")
	a := claims(t, u.Access)
	for k, want := range map[string]any{"token_type": "access", "user_id": u.ID, "sub": u.ID, "email": u.Email, "name": "Claims Person", "is_admin": false, "iss": "usersvc"} {
		if a[k] != want {
			t.Errorf("access %s = %v, want %v", k, a[k], want)
		}
	}
	if exp, iat := a["exp"].(float64), a["iat"].(float64); exp-iat != (15 * time.Minute).Seconds() {
		t.Errorf("access lifetime = %vs", exp-iat)
	}
	rc := claims(t, u.Refresh)
	if rc["token_type"] != "refresh" || rc["user_id"] != u.ID || rc["jti"] == "" {
		t.Errorf("refresh claims = %v", rc)
	}
}

func TestRefreshRotation(t *testing.T) {
	h := newHarness(t)
	u := h.register("Rotating User")

	r := h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh})
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "Request successful" || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("message %q, Cache-Control %q", r.str("message"), r.Header.Get("Cache-Control"))
	}
	next := r.data()["refresh"].(string)
	access := r.data()["access"].(string)
	if next == u.Refresh || access == "" {
		t.Fatal("refresh did not rotate")
	}
	if got := h.do("GET", "/api/v1/users/"+u.ID, nil, bearer(access)...); got.Status != http.StatusOK {
		t.Fatalf("new access token rejected: %d", got.Status)
	}

	// The spent token is reused: its whole family is revoked, the newest
	// token included.
	r = h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh})
	expect(t, r, http.StatusUnauthorized, "")
	r = h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": next})
	expect(t, r, http.StatusUnauthorized, "")

	// Another login is another family, untouched.
	other := h.do("POST", "/api/v1/users/login", map[string]any{"email": u.Email, "password": u.Password})
	r = h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": other.data()["refresh"]})
	expect(t, r, http.StatusOK, "")
}

func TestRefreshRejects(t *testing.T) {
	h := newHarness(t)
	u := h.register("Rejecting User")
	parts := strings.Split(u.Refresh, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	for name, body := range map[string]any{
		"access token as refresh": map[string]any{"refresh": u.Access},
		"tampered":                map[string]any{"refresh": tampered},
		"garbage":                 map[string]any{"refresh": "not-a-token"},
		"other key":               map[string]any{"refresh": newTestTokensRefresh(t, "another-secret-that-is-long-enough-000000", u.ID)},
	} {
		t.Run(name, func(t *testing.T) {
			r := h.do("POST", "/api/v1/users/refresh", body)
			expect(t, r, http.StatusUnauthorized, "")
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Error("no Cache-Control: no-store")
			}
		})
	}
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{}), http.StatusBadRequest, "refresh: This field is required")
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": 1}), http.StatusBadRequest, "refresh: Must be a string")

	// Expired.
	h.clock.Advance(24*time.Hour + time.Second)
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh}), http.StatusUnauthorized, "")
}

func TestRefreshFamilyIsNotExtended(t *testing.T) {
	h := newHarness(t)
	u := h.register("Family User")
	tok := u.Refresh
	exp0 := claims(t, tok)["exp"].(float64)
	for range 3 {
		h.clock.Advance(8 * time.Hour)
		r := h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": tok})
		if r.Status != http.StatusOK {
			break
		}
		tok = r.data()["refresh"].(string)
		if exp := claims(t, tok)["exp"].(float64); exp > exp0 {
			t.Fatalf("rotation extended the family: exp %v > %v", exp, exp0)
		}
	}
	// 24 h after the login, the family is over.
	h.clock.Advance(time.Second)
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": tok}), http.StatusUnauthorized, "")
}

func TestConcurrentRefresh(t *testing.T) {
	h := newHarness(t)
	checkParallelRefresh(t, h, h.register("Parallel User"))
}

// checkParallelRefresh presents one refresh token 20 times at once: at
// most one successor pair is issued, nothing fails with a 5xx, and the
// token is spent afterwards whatever happened.
func checkParallelRefresh(t *testing.T, h *harness, u user) {
	t.Helper()
	const n = 20
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh}) })
	}
	wg.Wait()
	pairs := map[string]bool{}
	for _, r := range results {
		switch r.Status {
		case http.StatusOK:
			pairs[r.data()["refresh"].(string)] = true
		case http.StatusUnauthorized:
		default:
			t.Errorf("status %d: %s", r.Status, r.Raw)
		}
	}
	if len(pairs) > 1 {
		t.Fatalf("%d different successors were issued", len(pairs))
	}
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh}), http.StatusUnauthorized, "")
}

func TestLogout(t *testing.T) {
	h := newHarness(t)
	u := h.register("Leaving User")
	r := h.do("POST", "/api/v1/users/logout", map[string]any{"refresh": u.Refresh})
	expect(t, r, http.StatusOK, "")
	if r.str("message") != "Logged out successfully" {
		t.Errorf("message = %q", r.str("message"))
	}
	expect(t, h.do("POST", "/api/v1/users/logout", map[string]any{"refresh": u.Refresh}), http.StatusOK, "")
	expect(t, h.do("POST", "/api/v1/users/refresh", map[string]any{"refresh": u.Refresh}), http.StatusUnauthorized, "")
	expect(t, h.do("POST", "/api/v1/users/logout", map[string]any{"refresh": u.Access}), http.StatusUnauthorized, "")
	expect(t, h.do("POST", "/api/v1/users/logout", map[string]any{"refresh": "x.y.z"}), http.StatusUnauthorized, "")
	expect(t, h.do("POST", "/api/v1/users/logout", map[string]any{}), http.StatusBadRequest, "")
}
