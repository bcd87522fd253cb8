package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRegister(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/api/v1/users/", map[string]any{
		"email": "  Grace.Hopper@Example.COM ", "password": "Cobol#1959rocks", "name": " Grace Hopper ",
		"push_token": "fcm:abc-123", "preferences": map[string]any{"email": false},
	})
	expect(t, r, http.StatusCreated, "")
	if r.str("message") != "User registered successfully" {
		t.Errorf("message = %q", r.str("message"))
	}
	d := r.data()
	if d["user_id"] != d["id"] || d["id"] == "" {
		t.Errorf("user_id %v and id %v differ", d["user_id"], d["id"])
	}
	if d["email"] != "grace.hopper@example.com" || d["name"] != "Grace Hopper" || d["push_token"] != "fcm:abc-123" {
		t.Errorf("data = %v", d)
	}
	prefs := d["preferences"].(map[string]any)
	if prefs["email"] != false || prefs["push"] != true {
		t.Errorf("preferences = %v (missing keys default to true)", prefs)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		ts, _ := d[k].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
			t.Errorf("%s = %q is not RFC 3339 UTC", k, ts)
		}
	}
	wantKeys := []string{"created_at", "email", "email_verified_at", "id", "locale", "name", "phone", "phone_verified_at", "preferences", "push_token", "timezone", "updated_at", "user_id"}
	var keys []string
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("data keys = %v, want %v", keys, wantKeys)
	}
	if strings.Contains(string(r.Raw), "Cobol#1959rocks") || strings.Contains(string(r.Raw), "password") {
		t.Errorf("response mentions the password: %s", r.Raw)
	}

	// The same email in another case is taken.
	r = h.do("POST", "/api/v1/users", map[string]any{"email": "GRACE.HOPPER@example.com", "password": "Cobol#1959rocks", "name": "Grace"})
	expect(t, r, http.StatusConflict, "A user with this email already exists")
}

func TestRegisterValidation(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("a", 250) + "@example.com"
	ok := map[string]any{"email": "v@example.com", "password": "Val1d!pass", "name": "Valid Name"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range ok {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name  string
		body  any
		field string
		want  []string
	}{
		{"email missing", with("email", nil), "email", []string{"This field is required"}},
		{"email null", `{"email":null,"password":"Val1d!pass","name":"N"}`, "email", []string{"This field is required"}},
		{"email blank", with("email", "   "), "email", []string{"This field is required"}},
		{"email number", with("email", 42), "email", []string{"Must be a string"}},
		{"email too long", with("email", long), "email", []string{"Email address is too long (max 254 characters)"}},
		{"email no at", with("email", "nobody.example.com"), "email", []string{"Invalid email format"}},
		{"email two ats", with("email", "a@b@example.com"), "email", []string{"Invalid email format"}},
		{"email no dot in domain", with("email", "a@localhost"), "email", []string{"Invalid email format"}},
		{"email empty local", with("email", "@example.com"), "email", []string{"Invalid email format"}},
		{"email double dot", with("email", "a..b@example.com"), "email", []string{"Invalid email format"}},
		{"email space inside", with("email", "a b@example.com"), "email", []string{"Invalid email format"}},
		{"password missing", with("password", nil), "password", []string{"This field is required"}},
		{"password not string", with("password", true), "password", []string{"Must be a string"}},
		{"password short", with("password", "Aa1!"), "password", []string{"Password must be at least 8 characters long"}},
		{"password long", with("password", "Aa1!"+strings.Repeat("x", 125)), "password", []string{"Password is too long (max 128 characters)"}},
		{"password no upper", with("password", "lower1!case"), "password", []string{"Password must contain at least one uppercase letter"}},
		{"password no lower", with("password", "UPPER1!CASE"), "password", []string{"Password must contain at least one lowercase letter"}},
		{"password no number", with("password", "NoNumber!here"), "password", []string{"Password must contain at least one number"}},
		{"password no special", with("password", "NoSpecial1here"), "password", []string{"Password must contain at least one special character"}},
		{"password space is not special", with("password", "No Special1 here"), "password", []string{"Password must contain at least one special character"}},
		{"password every rule", with("password", "abc"), "password", []string{
			"Password must be at least 8 characters long",
			"Password must contain at least one uppercase letter",
			"Password must contain at least one number",
			"Password must contain at least one special character",
		}},
		{"name missing", with("name", nil), "name", []string{"This field is required"}},
		{"name blank", with("name", "  "), "name", []string{"This field is required"}},
		{"name not string", with("name", []string{"x"}), "name", []string{"Must be a string"}},
		{"name too long", with("name", strings.Repeat("n", 256)), "name", []string{"Must not exceed 255 characters"}},
		{"name digits", with("name", "R2D2"), "name", []string{"Contains invalid characters (only letters, spaces, hyphens, apostrophes and periods allowed)"}},
		{"name markup", with("name", "<script>"), "name", []string{"Contains invalid characters (only letters, spaces, hyphens, apostrophes and periods allowed)"}},
		{"push token bad", with("push_token", "has spaces in it"), "push_token", []string{"Invalid token format (only alphanumeric characters, hyphens, underscores, and colons allowed)"}},
		{"push token long", with("push_token", strings.Repeat("t", 513)), "push_token", []string{"Token is too long (max 512 characters)"}},
		{"preferences string", with("preferences", "yes"), "preferences", []string{"Must be an object"}},
		{"preferences not bool", with("preferences", map[string]any{"email": "false"}), "preferences.email", []string{"Must be a boolean"}},
		{"preferences unknown", with("preferences", map[string]any{"fax": true}), "preferences.fax", []string{"Unknown field"}},
		{"privileged id", with("id", "3b241101-e2bb-4255-8caf-4136c566a962"), "id", []string{"Unknown field"}},
		{"privileged is_admin", with("is_admin", true), "is_admin", []string{"Unknown field"}},
		{"privileged created_at", with("created_at", "2020-01-01T00:00:00Z"), "created_at", []string{"Unknown field"}},
		{"keys are case-sensitive", `{"Email":"v@example.com","password":"Val1d!pass","name":"N"}`, "email", []string{"This field is required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do("POST", "/api/v1/users/", c.body)
			expect(t, r, http.StatusBadRequest, "")
			got := fieldErrors(r)[c.field]
			if !slices.Equal(got, c.want) {
				t.Errorf("%s errors = %q, want %q (all: %s)", c.field, got, c.want, r.Raw)
			}
			if !strings.Contains(r.str("error"), c.field+": "+c.want[0]) {
				t.Errorf("error %q does not name %s", r.str("error"), c.field)
			}
		})
	}
	// Nothing of the rejected bodies was stored.
	r := h.do("POST", "/api/v1/users/login", map[string]any{"email": "v@example.com", "password": "Val1d!pass"})
	expect(t, r, http.StatusUnauthorized, "Invalid email or password")
}

func TestRegisterReportsEveryField(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/api/v1/users/", map[string]any{"email": "bad", "password": "short", "name": "B4d", "role": "x"})
	expect(t, r, http.StatusBadRequest, "")
	fe := fieldErrors(r)
	for _, f := range []string{"email", "password", "name", "role"} {
		if len(fe[f]) == 0 {
			t.Errorf("no error for %s: %s", f, r.Raw)
		}
	}
	want := "email: Invalid email format; name: Contains invalid characters"
	if !strings.HasPrefix(r.str("error"), want) {
		t.Errorf("error = %q, want it to start with %q", r.str("error"), want)
	}
}

func TestStrictJSON(t *testing.T) {
	h := newHarness(t)
	valid := `{"email":"s@example.com","password":"Val1d!pass","name":"S"}`
	cases := []struct {
		name   string
		body   string
		ctype  string
		status int
		err    string
	}{
		{"not JSON", `{"email":`, "application/json", 400, "Invalid JSON body"},
		{"array", `[` + valid + `]`, "application/json", 400, "Invalid JSON body"},
		{"string", `"hello"`, "application/json", 400, "Invalid JSON body"},
		{"empty", ``, "application/json", 400, "Invalid JSON body"},
		{"trailing value", valid + `{}`, "application/json", 400, "Invalid JSON body"},
		{"duplicated key", `{"email":"s@example.com","email":"t@example.com","password":"Val1d!pass","name":"S"}`, "application/json", 400, ""},
		{"invalid UTF-8", "{\"email\":\"s@example.com\",\"password\":\"Val1d!pass\",\"name\":\"S\xff\"}", "application/json", 400, "Invalid JSON body"},
		{"wrong content type", valid, "text/plain", 415, ""},
		{"too large", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, "application/json", 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do("POST", "/api/v1/users/", c.body, "Content-Type", c.ctype)
			expect(t, r, c.status, c.err)
			for _, leak := range []string{"json:", "Go struct", "unmarshal", "string into", "usersvc."} {
				if strings.Contains(string(r.Raw), leak) {
					t.Errorf("response leaks %q: %s", leak, r.Raw)
				}
			}
		})
	}
	// A body without a Content-Type is read as JSON.
	r := h.do("POST", "/api/v1/users/", valid, "Content-Type", "")
	expect(t, r, http.StatusCreated, "")
}

func TestConcurrentRegistrationOfOneEmail(t *testing.T) {
	h := newHarness(t)
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := h.do("POST", "/api/v1/users/", map[string]any{"email": "race@example.com", "password": "Val1d!pass", "name": "Racer"})
			statuses[i] = r.Status
		})
	}
	wg.Wait()
	created, conflicts := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			conflicts++
		}
	}
	if created != 1 || conflicts != n-1 {
		t.Fatalf("statuses %v: %d created, %d conflicts; want 1 and %d", statuses, created, conflicts, n-1)
	}
}

// TestUnknownFieldsEcho checks that the answer to unknown or duplicated keys
// repeats at most 64 characters of each and names at most 10, whatever
// the client sent.
func TestUnknownFieldsEcho(t *testing.T) {
	h := newHarness(t)
	valid := map[string]any{"email": "echo@example.com", "password": "Str0ng!Passw0rd", "name": "Echo"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range valid {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	huge := strings.Repeat("k", 900<<10)

	t.Run("one huge key", func(t *testing.T) {
		r := h.do("POST", "/api/v1/users/", with(map[string]any{huge: 1}))
		clipped := strings.Repeat("k", 64) + "…"
		expect(t, r, http.StatusBadRequest, clipped+": Unknown field")
		if fe := fieldErrors(r); len(fe) != 1 || fe[clipped] == nil {
			t.Errorf("data = %v", fe)
		}
		if len(r.Raw) > 1024 {
			t.Errorf("answer of %d bytes", len(r.Raw))
		}
	})

	t.Run("many keys", func(t *testing.T) {
		extra := map[string]any{}
		for i := range 400 {
			extra[fmt.Sprintf("%03d%s", i, strings.Repeat("é", 1000))] = i
		}
		r := h.do("POST", "/api/v1/users/", with(extra))
		expect(t, r, http.StatusBadRequest, "")
		fe := fieldErrors(r)
		if len(fe) != 11 {
			t.Errorf("data has %d fields: %v", len(fe), fe)
		}
		for i := range 10 {
			name := fmt.Sprintf("%03d%s…", i, strings.Repeat("é", 61))
			if !slices.Equal(fe[name], []string{"Unknown field"}) {
				t.Errorf("%s: %v", name, fe[name])
			}
		}
		if !slices.Equal(fe["…"], []string{"And 390 more unknown fields"}) {
			t.Errorf("…: %v", fe["…"])
		}
		if !strings.HasSuffix(r.str("error"), "; …: And 390 more unknown fields") {
			t.Errorf("error = %q", r.str("error"))
		}
		if len(r.Raw) > 8<<10 {
			t.Errorf("answer of %d bytes", len(r.Raw))
		}
	})

	t.Run("eleven keys", func(t *testing.T) {
		extra := map[string]any{}
		for i := range 11 {
			extra[fmt.Sprintf("x%02d", i)] = i
		}
		fe := fieldErrors(h.do("POST", "/api/v1/users/", with(extra)))
		if len(fe) != 11 || fe["x09"] == nil || fe["x10"] != nil || !slices.Equal(fe["…"], []string{"And 1 more unknown field"}) {
			t.Errorf("data = %v", fe)
		}
	})

	t.Run("nested", func(t *testing.T) {
		prefs := map[string]any{"email": true}
		for i := range 12 {
			prefs[fmt.Sprintf("p%02d", i)] = i
		}
		fe := fieldErrors(h.do("POST", "/api/v1/users/", with(map[string]any{"preferences": prefs})))
		if len(fe) != 11 || fe["preferences.p00"] == nil || !slices.Equal(fe["preferences.…"], []string{"And 2 more unknown fields"}) {
			t.Errorf("data = %v", fe)
		}
	})

	t.Run("duplicated huge key", func(t *testing.T) {
		key := strings.Repeat("k", 400<<10)
		r := h.do("POST", "/api/v1/users/", `{"`+key+`":1,"`+key+`":2}`)
		expect(t, r, http.StatusBadRequest, `Invalid JSON body: duplicated key "`+strings.Repeat("k", 64)+`…"`)
	})
}
