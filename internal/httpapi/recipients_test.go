package httpapi_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/unsubscribe"
)

// adminPrincipal makes an admin and returns its principal, for setting up
// through the use cases.
func adminPrincipal(tb testing.TB, accounts *account.Service) account.Principal {
	tb.Helper()
	a, err := accounts.CreateAdmin(tb.Context(), usersvc.Registration{Email: "setup." + uuid.NewString() + "@example.com",
		Name: "Setup Admin", Password: "Adm1n!Passw0rd"})
	if err != nil {
		tb.Fatal(err)
	}
	return account.Principal{UserID: a.ID, IsAdmin: true}
}

// newRecipientHarness is a harness whose service signs unsubscribe links.
func newRecipientHarness(t *testing.T) *harness {
	t.Helper()
	signer, err := unsubscribe.New([]byte(strings.Repeat("u", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return newHarnessWith(t, newSQLite(t), cheapHashing, account.Options{Unsubscribe: signer})
}

func TestCategoriesAPI(t *testing.T) {
	h := newRecipientHarness(t)
	admin, alice := h.admin(), h.register("Alice Cat")
	as := bearer(admin.Access)

	r := h.do("PUT", "/api/v1/categories/marketing", map[string]any{"name": "Marketing", "description": "Offers",
		"defaults": map[string]any{"sms": false}, "commercial": true}, as...)
	expect(t, r, http.StatusCreated, "")
	d := r.data()
	if d["key"] != "marketing" || d["commercial"] != true || d["required"] != false {
		t.Errorf("created = %s", r.Raw)
	}
	if defs := d["defaults"].(map[string]any); defs["sms"] != false || defs["email"] != true || defs["push"] != true || defs["in_app"] != true {
		t.Errorf("defaults = %v", defs)
	}
	r = h.do("PUT", "/api/v1/categories/marketing", map[string]any{"name": "Marketing news", "commercial": true}, as...)
	expect(t, r, http.StatusOK, "")
	if r.data()["name"] != "Marketing news" || r.data()["created_at"] != d["created_at"] {
		t.Errorf("replaced = %s", r.Raw)
	}
	// Users may list the categories, not define or read one by key.
	r = h.do("GET", "/api/v1/categories", nil, bearer(alice.Access)...)
	expect(t, r, http.StatusOK, "")
	if list, _ := r.Body["data"].([]any); len(list) != 1 {
		t.Errorf("list = %s", r.Raw)
	}
	expect(t, h.do("GET", "/api/v1/categories", nil), http.StatusUnauthorized, "")
	expect(t, h.do("PUT", "/api/v1/categories/mine", map[string]any{"name": "Mine"}, bearer(alice.Access)...), http.StatusForbidden, "")
	expect(t, h.do("GET", "/api/v1/categories/marketing", nil, bearer(alice.Access)...), http.StatusForbidden, "")
	expect(t, h.do("GET", "/api/v1/categories/marketing", nil, "X-Service-API-Key", serviceKey), http.StatusOK, "")
	// A reading service key may not define categories.
	expect(t, h.do("PUT", "/api/v1/categories/svc", map[string]any{"name": "Svc"}, "X-Service-API-Key", serviceKey), http.StatusForbidden, "")

	for name, tc := range map[string]struct {
		key   string
		body  map[string]any
		field string
	}{
		"bad key":             {"Bad%20Key", map[string]any{"name": "X"}, "key"},
		"no name":             {"ok", map[string]any{}, "name"},
		"required commercial": {"ok", map[string]any{"name": "X", "required": true, "commercial": true}, "commercial"},
		"unknown channel":     {"ok", map[string]any{"name": "X", "defaults": map[string]any{"fax": true}}, "defaults.fax"},
		"not a boolean":       {"ok", map[string]any{"name": "X", "required": "yes"}, "required"},
	} {
		t.Run(name, func(t *testing.T) {
			r := h.do("PUT", "/api/v1/categories/"+tc.key, tc.body, as...)
			expect(t, r, http.StatusBadRequest, "")
			if _, ok := fieldErrors(r)[tc.field]; !ok {
				t.Errorf("no error of %s: %s", tc.field, r.Raw)
			}
		})
	}
	// Names are display text: digits and signs are fine, control characters are not.
	if r := h.do("PUT", "/api/v1/categories/2fa", map[string]any{"name": " 2FA codes & alerts "}, as...); r.Status != http.StatusCreated || r.data()["name"] != "2FA codes & alerts" {
		t.Errorf("a name with digits and signs: %d %s", r.Status, r.Raw)
	}
	if r := h.do("PUT", "/api/v1/categories/bell", map[string]any{"name": "Bell\a"}, as...); r.Status != http.StatusBadRequest || len(fieldErrors(r)["name"]) != 1 {
		t.Errorf("a name with a control character: %d %s", r.Status, r.Raw)
	}
	expect(t, h.do("DELETE", "/api/v1/categories/marketing", nil, as...), http.StatusOK, "")
	expect(t, h.do("DELETE", "/api/v1/categories/marketing", nil, as...), http.StatusNotFound, "Category not found")
	expect(t, h.do("GET", "/api/v1/categories/marketing", nil, as...), http.StatusNotFound, "Category not found")
}

func TestRichPreferencesAPI(t *testing.T) {
	h := newRecipientHarness(t)
	admin, alice, bob := h.admin(), h.register("Alice Pref"), h.register("Bob Pref")
	for key, body := range map[string]map[string]any{
		"marketing": {"name": "Marketing", "commercial": true},
		"security":  {"name": "Security", "required": true},
	} {
		expect(t, h.do("PUT", "/api/v1/categories/"+key, body, bearer(admin.Access)...), http.StatusCreated, "")
	}
	path := "/api/v1/users/" + alice.ID + "/preferences"
	r := h.do("GET", path, nil, bearer(alice.Access)...)
	expect(t, r, http.StatusOK, "")
	want := `{"email":true,"push":true,"sms":true,"in_app":true,"categories":{},"quiet_hours":null}`
	if got := string(mustData(t, r)); got != want {
		t.Errorf("defaults = %s, want %s", got, want)
	}
	r = h.do("PATCH", path, map[string]any{"sms": false, "categories": map[string]any{"marketing": map[string]any{"email": false}},
		"quiet_hours": map[string]any{"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin", "channels": []string{"sms", "push"}}},
		bearer(alice.Access)...)
	expect(t, r, http.StatusOK, "")
	want = `{"email":true,"push":true,"sms":false,"in_app":true,"categories":{"marketing":{"email":false}},` +
		`"quiet_hours":{"start":"22:00","end":"07:00","timezone":"Europe/Berlin","channels":["push","sms"],"days":[]}}`
	if got := string(mustData(t, r)); got != want {
		t.Errorf("after the patch = %s, want %s", got, want)
	}
	// An old client's patch changes only its keys.
	r = h.do("PATCH", path, map[string]any{"push": false}, bearer(alice.Access)...)
	expect(t, r, http.StatusOK, "")
	if d := r.data(); d["push"] != false || d["sms"] != false || d["quiet_hours"] == nil {
		t.Errorf("after an old client's patch: %s", r.Raw)
	}
	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"unknown category":   {map[string]any{"categories": map[string]any{"nope": false}}, "categories.nope"},
		"required opt-out":   {map[string]any{"categories": map[string]any{"security": map[string]any{"sms": false}}}, "categories.security"},
		"bad choice":         {map[string]any{"categories": map[string]any{"marketing": "off"}}, "categories.marketing"},
		"unknown channel":    {map[string]any{"categories": map[string]any{"marketing": map[string]any{"fax": false}}}, "categories.marketing.fax"},
		"bad start":          {map[string]any{"quiet_hours": map[string]any{"start": "25:00", "end": "07:00"}}, "quiet_hours.start"},
		"missing end":        {map[string]any{"quiet_hours": map[string]any{"start": "22:00"}}, "quiet_hours.end"},
		"same start and end": {map[string]any{"quiet_hours": map[string]any{"start": "22:00", "end": "22:00"}}, "quiet_hours.end"},
		"bad zone":           {map[string]any{"quiet_hours": map[string]any{"start": "22:00", "end": "07:00", "timezone": "Mars/Base"}}, "quiet_hours.timezone"},
		"bad day":            {map[string]any{"quiet_hours": map[string]any{"start": "22:00", "end": "07:00", "days": []string{"funday"}}}, "quiet_hours.days"},
		"bad quiet channel":  {map[string]any{"quiet_hours": map[string]any{"start": "22:00", "end": "07:00", "channels": []string{"fax"}}}, "quiet_hours.channels"},
		"sms not boolean":    {map[string]any{"sms": "no"}, "sms"},
	} {
		t.Run(name, func(t *testing.T) {
			r := h.do("PATCH", path, tc.body, bearer(alice.Access)...)
			expect(t, r, http.StatusBadRequest, "")
			if _, ok := fieldErrors(r)[tc.field]; !ok {
				t.Errorf("no error of %s: %s", tc.field, r.Raw)
			}
		})
	}
	r = h.do("PATCH", path, map[string]any{"color": "blue"}, bearer(alice.Access)...)
	expect(t, r, http.StatusBadRequest, "")
	r = h.do("PATCH", path, map[string]any{}, bearer(alice.Access)...)
	if r.Status != http.StatusBadRequest || r.str("message") != account.MsgEmptyPreferences {
		t.Errorf("empty patch: %d %s", r.Status, r.Raw)
	}
	// Nothing refused changed anything; bob was never touched.
	if r := h.do("GET", path, nil, bearer(alice.Access)...); r.data()["push"] != false || r.data()["sms"] != false {
		t.Errorf("after refused patches: %s", r.Raw)
	}
	r = h.do("GET", "/api/v1/users/"+bob.ID+"/preferences", nil, bearer(bob.Access)...)
	if got := string(mustData(t, r)); got != `{"email":true,"push":true,"sms":true,"in_app":true,"categories":{},"quiet_hours":null}` {
		t.Errorf("bob = %s", got)
	}
}

func TestProfileAPI(t *testing.T) {
	h := newRecipientHarness(t)
	r := h.do("POST", "/api/v1/users/", map[string]any{"email": "pat@example.com", "password": "Str0ng!Passw0rd", "name": "Pat",
		"phone": "+49 30 901820", "locale": "de-de", "timezone": "Europe/Berlin",
		"preferences": map[string]any{"sms": false}})
	expect(t, r, http.StatusCreated, "")
	d := r.data()
	if d["phone"] != "+4930901820" || d["locale"] != "de-DE" || d["timezone"] != "Europe/Berlin" || d["preferences"].(map[string]any)["sms"] != false {
		t.Errorf("registered = %s", r.Raw)
	}
	r = h.do("POST", "/api/v1/users/", map[string]any{"email": "bad@example.com", "password": "Str0ng!Passw0rd", "name": "Bad",
		"phone": "0301234", "locale": "!!", "timezone": "Nowhere/City"})
	expect(t, r, http.StatusBadRequest, "")
	fe := fieldErrors(r)
	for _, f := range []string{"phone", "locale", "timezone"} {
		if len(fe[f]) != 1 {
			t.Errorf("%s: %v", f, fe[f])
		}
	}
	login := h.do("POST", "/api/v1/users/login", map[string]any{"email": "pat@example.com", "password": "Str0ng!Passw0rd"})
	expect(t, login, http.StatusOK, "")
	tok, id := login.data()["access"].(string), d["id"].(string)
	r = h.do("PATCH", "/api/v1/users/"+id, map[string]any{"phone": nil, "timezone": "Asia/Tokyo"}, bearer(tok)...)
	expect(t, r, http.StatusOK, "")
	if d := r.data(); d["phone"] != nil || d["timezone"] != "Asia/Tokyo" || d["locale"] != "de-DE" || d["name"] != "Pat" {
		t.Errorf("after the patch = %s", r.Raw)
	}
}

// resolveData is the data of a resolve answer, decoded loosely.
func resolveChannels(t *testing.T, r response) map[string]map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]map[string]any{}
	for _, rec := range r.data()["recipients"].([]any) {
		m := rec.(map[string]any)
		chans := map[string]map[string]any{}
		for ch, v := range m["channels"].(map[string]any) {
			chans[ch] = v.(map[string]any)
		}
		out[m["user_id"].(string)] = chans
	}
	return out
}

func TestResolveAPI(t *testing.T) {
	h := newRecipientHarness(t)
	admin, quiet, plain, gone := h.admin(), h.register("Quiet Person"), h.register("Plain Person"), h.register("Gone Person")
	expect(t, h.do("PUT", "/api/v1/categories/digest", map[string]any{"name": "Digest", "defaults": map[string]any{"push": false}},
		bearer(admin.Access)...), http.StatusCreated, "")
	expect(t, h.do("PATCH", "/api/v1/users/"+quiet.ID+"/preferences", map[string]any{
		"quiet_hours": map[string]any{"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin", "channels": []string{"email"}}},
		bearer(quiet.Access)...), http.StatusOK, "")
	expect(t, h.do("PATCH", "/api/v1/users/"+plain.ID, map[string]any{"phone": "+14155550123", "locale": "en-US"}, bearer(plain.Access)...), http.StatusOK, "")
	expect(t, h.do("PATCH", "/api/v1/users/"+gone.ID+"/status", map[string]any{"is_active": false}, bearer(admin.Access)...), http.StatusOK, "")
	missing := uuid.NewString()

	// 23:30 in Berlin (CET, UTC+1) is 22:30Z: quiet until 07:00 CET = 06:00Z.
	body := map[string]any{"category": "digest", "channels": []string{"email", "push", "sms", "in_app"},
		"user_ids": []string{quiet.ID, plain.ID, gone.ID, missing}, "at": "2026-01-15T22:30:00Z"}
	r := h.do("POST", "/api/v1/recipients/resolve", body, "X-Service-API-Key", serviceKey)
	expect(t, r, http.StatusOK, "")
	got := resolveChannels(t, r)
	reason := func(c map[string]any) string { s, _ := c["reason"].(string); return s }
	q := got[quiet.ID]
	if q["email"]["send"] != false || reason(q["email"]) != "quiet_hours" || q["email"]["deliver_after"] != "2026-01-16T06:00:00.000000Z" ||
		q["email"]["email"] != quiet.Email {
		t.Errorf("quiet email = %v", q["email"])
	}
	if reason(q["push"]) != "category_off" || reason(q["sms"]) != "no_address" || q["in_app"]["send"] != true {
		t.Errorf("quiet = %v", q)
	}
	p := got[plain.ID]
	if p["email"]["send"] != true || p["sms"]["send"] != true || p["sms"]["phone"] != "+14155550123" {
		t.Errorf("plain = %v", p)
	}
	for ch, c := range got[gone.ID] {
		if reason(c) != "account_disabled" {
			t.Errorf("disabled %s = %v", ch, c)
		}
	}
	if nf := r.data()["not_found"].([]any); len(nf) != 1 || nf[0] != missing {
		t.Errorf("not_found = %v", nf)
	}

	// Bad requests, and who may ask.
	tooMany := make([]string, 1001)
	for i := range tooMany {
		tooMany[i] = uuid.NewString()
	}
	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"too many ids":     {map[string]any{"channels": []string{"email"}, "user_ids": tooMany}, "user_ids"},
		"no ids":           {map[string]any{"channels": []string{"email"}, "user_ids": []string{}}, "user_ids"},
		"bad channel":      {map[string]any{"channels": []string{"fax"}, "user_ids": []string{plain.ID}}, "channels"},
		"no channels":      {map[string]any{"channels": []string{}, "user_ids": []string{plain.ID}}, "channels"},
		"unknown category": {map[string]any{"category": "nope", "channels": []string{"email"}, "user_ids": []string{plain.ID}}, "category"},
		"bad time":         {map[string]any{"channels": []string{"email"}, "user_ids": []string{plain.ID}, "at": "tomorrow"}, "at"},
	} {
		t.Run(name, func(t *testing.T) {
			r := h.do("POST", "/api/v1/recipients/resolve", tc.body, "X-Service-API-Key", serviceKey)
			expect(t, r, http.StatusBadRequest, "")
			if _, ok := fieldErrors(r)[tc.field]; !ok {
				t.Errorf("no error of %s: %s", tc.field, r.Raw)
			}
		})
	}
	expect(t, h.do("POST", "/api/v1/recipients/resolve", body, bearer(plain.Access)...), http.StatusForbidden, "")
	expect(t, h.do("POST", "/api/v1/recipients/resolve", body), http.StatusUnauthorized, "")
	expect(t, h.do("POST", "/api/v1/recipients/resolve", body, bearer(admin.Access)...), http.StatusOK, "")
}

// postOneClick posts the RFC 8058 body to an unsubscribe URL.
func postOneClick(t *testing.T, h *harness, link, body string, headers ...string) response {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return h.do("POST", u.Path, body, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
}

func TestUnsubscribeEndToEnd(t *testing.T) {
	h := newRecipientHarness(t)
	admin, alice, bob := h.admin(), h.register("Alice Unsub"), h.register("Bob Unsub")
	as := bearer(admin.Access)
	expect(t, h.do("PUT", "/api/v1/categories/marketing", map[string]any{"name": "Marketing", "commercial": true}, as...), http.StatusCreated, "")
	expect(t, h.do("PUT", "/api/v1/categories/security", map[string]any{"name": "Security", "required": true}, as...), http.StatusCreated, "")
	svc := []string{"X-Service-API-Key", serviceKey}
	link := func(userID, category, channel string) string {
		t.Helper()
		body := map[string]any{"user_id": userID, "category": category}
		if channel != "" {
			body["channel"] = channel
		}
		r := h.do("POST", "/api/v1/unsubscribe/links", body, svc...)
		expect(t, r, http.StatusOK, "")
		d := r.data()
		headers := d["headers"].(map[string]any)
		if headers["List-Unsubscribe"] != "<"+d["url"].(string)+">" || headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
			t.Errorf("headers = %v", headers)
		}
		return d["url"].(string)
	}
	prefs := func(u user) string {
		t.Helper()
		return string(mustData(t, h.do("GET", "/api/v1/users/"+u.ID+"/preferences", nil, bearer(u.Access)...)))
	}
	aliceLink := link(alice.ID, "marketing", "")
	if !strings.HasPrefix(aliceLink, "http://localhost:8000/api/v1/unsubscribe/") {
		t.Errorf("link = %s", aliceLink)
	}
	before, bobBefore := prefs(alice), prefs(bob)

	// A GET shows the question and changes nothing.
	u, _ := url.Parse(aliceLink)
	resp, err := h.srv.Client().Get(h.srv.URL + u.Path)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `<form method="post">`) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET page: %d %s", resp.StatusCode, page)
	}
	if prefs(alice) != before {
		t.Fatal("a GET changed the preferences")
	}

	// Forged, truncated, cross-user and wrong-body requests change nothing.
	token := strings.TrimPrefix(u.Path, "/api/v1/unsubscribe/")
	bobLink := link(bob.ID, "marketing", "email")
	bobToken := strings.TrimPrefix(bobLink, "http://localhost:8000/api/v1/unsubscribe/")
	flipped := []byte(token)
	flipped[len(flipped)/2] ^= 1
	spliced := token[:40] + bobToken[40:]
	for name, tok := range map[string]string{
		"forged":    strings.Repeat("A", len(token)),
		"truncated": token[:len(token)-5],
		"flipped":   string(flipped),
		"spliced":   spliced,
		"empty-ish": "x",
	} {
		r := postOneClick(t, h, "http://x/api/v1/unsubscribe/"+tok, "List-Unsubscribe=One-Click")
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s token: %d %s", name, r.Status, r.Raw)
		}
	}
	// A browser posting a bad link gets a page, not the envelope.
	resp, err = h.srv.Client().Do(h.request("POST", "/api/v1/unsubscribe/"+token[:len(token)-3], "List-Unsubscribe=One-Click",
		"Content-Type", "application/x-www-form-urlencoded", "Accept", "text/html"))
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(page), "This link is not valid") {
		t.Errorf("browser POST of a bad link: %d %s", resp.StatusCode, page)
	}
	r := postOneClick(t, h, aliceLink, "unsubscribe=yes")
	expect(t, r, http.StatusBadRequest, "")
	if prefs(alice) != before || prefs(bob) != bobBefore {
		t.Fatalf("refused requests changed preferences: %s / %s", prefs(alice), prefs(bob))
	}

	// The real thing, twice: the category is off for alice only.
	for range 2 {
		r = postOneClick(t, h, aliceLink, "List-Unsubscribe=One-Click")
		expect(t, r, http.StatusOK, "")
		if r.data()["category"] != "marketing" || r.data()["channel"] != nil {
			t.Errorf("answer = %s", r.Raw)
		}
	}
	if got := prefs(alice); !strings.Contains(got, `"categories":{"marketing":false}`) {
		t.Errorf("alice after = %s", got)
	}
	if prefs(bob) != bobBefore {
		t.Errorf("bob changed: %s", prefs(bob))
	}
	r = h.do("POST", "/api/v1/recipients/resolve", map[string]any{"category": "marketing", "channels": []string{"email", "push"},
		"user_ids": []string{alice.ID, bob.ID}}, svc...)
	expect(t, r, http.StatusOK, "")
	got := resolveChannels(t, r)
	if got[alice.ID]["email"]["reason"] != "category_off" || got[alice.ID]["push"]["reason"] != "category_off" || got[bob.ID]["email"]["send"] != true {
		t.Errorf("resolve after = %v", got)
	}
	// bob's link turns off email only; the browser form gets a page.
	resp, err = h.srv.Client().Do(func() *http.Request {
		req := h.request("POST", strings.TrimPrefix(bobLink, "http://localhost:8000"), "List-Unsubscribe=One-Click",
			"Content-Type", "application/x-www-form-urlencoded", "Accept", "text/html")
		return req
	}())
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "You are unsubscribed") {
		t.Errorf("browser POST: %d %s", resp.StatusCode, page)
	}
	if got := prefs(bob); !strings.Contains(got, `"categories":{"marketing":{"email":false}}`) {
		t.Errorf("bob after = %s", got)
	}

	// Only commercial categories get links; users may not make them.
	r = h.do("POST", "/api/v1/unsubscribe/links", map[string]any{"user_id": alice.ID, "category": "security"}, svc...)
	expect(t, r, http.StatusBadRequest, "")
	expect(t, h.do("POST", "/api/v1/unsubscribe/links", map[string]any{"user_id": alice.ID, "category": "marketing"}, bearer(alice.Access)...), http.StatusForbidden, "")
	expect(t, h.do("POST", "/api/v1/unsubscribe/links", map[string]any{"user_id": uuid.NewString(), "category": "marketing"}, svc...), http.StatusNotFound, "")
	// A category made non-commercial after the link was sent: refused.
	expect(t, h.do("PUT", "/api/v1/categories/marketing", map[string]any{"name": "Marketing"}, as...), http.StatusOK, "")
	r = postOneClick(t, h, bobLink, "List-Unsubscribe=One-Click")
	expect(t, r, http.StatusBadRequest, "")
}

// TestUnsubscribeOff checks that without a signer the links are 503 and
// every token is refused.
func TestUnsubscribeOff(t *testing.T) {
	h := newHarnessWith(t, newSQLite(t), cheapHashing, account.Options{})
	alice := h.register("Alice Off")
	r := h.do("POST", "/api/v1/unsubscribe/links", map[string]any{"user_id": alice.ID, "category": "x"}, "X-Service-API-Key", serviceKey)
	expect(t, r, http.StatusServiceUnavailable, "")
	r = postOneClick(t, h, "http://x/api/v1/unsubscribe/abc", "List-Unsubscribe=One-Click")
	if r.Status < 400 {
		t.Errorf("POST without a signer: %d", r.Status)
	}
}

func mustData(t *testing.T, r response) []byte {
	t.Helper()
	i := strings.Index(string(r.Raw), `"data":`)
	j := strings.Index(string(r.Raw), `,"error":`)
	if i < 0 || j < i {
		t.Fatalf("no data in %s", r.Raw)
	}
	return r.Raw[i+len(`"data":`) : j]
}
