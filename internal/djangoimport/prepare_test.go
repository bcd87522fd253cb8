package djangoimport

import (
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
)

func TestParsePreferences(t *testing.T) {
	on, off := true, false
	for _, c := range []struct {
		raw         string
		email, push bool
		named, bad  bool
	}{
		{raw: `{"email": true, "push": false}`, email: on, push: off, named: true},
		{raw: `{"push": false}`, email: on, push: off, named: true},
		{raw: `{"email": false, "sms": "x"}`, email: off, push: on, named: true},
		{raw: `{"email": null}`, email: on, push: on},
		{raw: `{}`, email: on, push: on},
		{raw: ``, email: on, push: on},
		{raw: `null`, email: on, push: on},
		{raw: `{"email": "false"}`, bad: true},
		{raw: `{"push": 0}`, bad: true},
		{raw: `[true, false]`, bad: true},
		{raw: `"on"`, bad: true},
	} {
		prefs, named, err := parsePreferences(c.raw)
		if c.bad {
			if err == nil {
				t.Errorf("parsePreferences(%s) = %+v, want an error", c.raw, prefs)
			}
			continue
		}
		if err != nil || !prefs.Equal(usersvc.Preferences{Email: c.email, Push: c.push, SMS: true, InApp: true}) || named != c.named {
			t.Errorf("parsePreferences(%s) = %+v, %v, %v; want email %v push %v named %v", c.raw, prefs, named, err, c.email, c.push, c.named)
		}
	}
}

func TestPreferencesFallBackToTheirTable(t *testing.T) {
	f := false
	notify := map[string]notificationPreferences{"u1": {Email: &f}}
	for raw, want := range map[string]usersvc.Preferences{
		`{}`:              {Email: false, Push: true, SMS: true, InApp: true},
		`{"email": true}`: {Email: true, Push: true, SMS: true, InApp: true},
	} {
		u := &djangoUser{ID: "u1", Preferences: &raw}
		got, err := preferences(u, notify)
		if err != nil || !got.Equal(want) {
			t.Errorf("preferences(%s) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
}

func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func TestTimestamps(t *testing.T) {
	now := *at("2030-01-01T00:00:00Z")
	for _, c := range []struct {
		name             string
		u                djangoUser
		created, updated time.Time
	}{
		{"both", djangoUser{CreatedAt: at("2020-01-01T00:00:00Z"), UpdatedAt: at("2021-01-01T00:00:00Z")}, *at("2020-01-01T00:00:00Z"), *at("2021-01-01T00:00:00Z")},
		{"no update", djangoUser{CreatedAt: at("2020-01-01T00:00:00Z")}, *at("2020-01-01T00:00:00Z"), *at("2020-01-01T00:00:00Z")},
		{"update before creation", djangoUser{CreatedAt: at("2020-01-01T00:00:00Z"), UpdatedAt: at("2019-01-01T00:00:00Z")}, *at("2020-01-01T00:00:00Z"), *at("2020-01-01T00:00:00Z")},
		{"earliest known", djangoUser{DateJoined: at("2018-01-01T00:00:00Z"), LastLogin: at("2019-01-01T00:00:00Z"), UpdatedAt: at("2021-01-01T00:00:00Z")}, *at("2018-01-01T00:00:00Z"), *at("2021-01-01T00:00:00Z")},
		{"last login", djangoUser{LastLogin: at("2019-01-01T00:00:00Z")}, *at("2019-01-01T00:00:00Z"), *at("2019-01-01T00:00:00Z")},
		{"nothing", djangoUser{}, now, now},
	} {
		created, updated := timestamps(&c.u, now)
		if !created.Equal(c.created) || !updated.Equal(c.updated) {
			t.Errorf("%s: %v, %v; want %v, %v", c.name, created, updated, c.created, c.updated)
		}
	}
}

func TestPasswordScheme(t *testing.T) {
	for hash, ok := range map[string]bool{
		"pbkdf2_sha256$260000$salt$hash": true,
		"pbkdf2_sha1$260000$salt$hash":   true,
		"argon2$argon2id$v=19$m=102400":  true,
		"bcrypt_sha256$$2b$12$abc":       true,
		"bcrypt$$2b$12$abc":              true,
		"!unusable":                      true,
		"$argon2id$v=19$m=19456,t=2,p=1": true,
		"md5$salt$hash":                  false,
		"unsalted_md5$hash":              false,
		"plain":                          false,
		"":                               false,
	} {
		if _, got := passwordScheme(hash); got != ok {
			t.Errorf("passwordScheme(%q) = %v, want %v", hash, got, ok)
		}
	}
}

// TestPrepare checks the planning of an import on a hand-made snapshot:
// collapse by case, token ownership and current tokens.
func TestPrepare(t *testing.T) {
	s := func(v string) *string { return &v }
	prefs := s(`{}`)
	snap := &snapshot{
		users: []djangoUser{
			{ID: "a", Email: s("Same@Example.com"), Name: s("A"), Preferences: prefs, IsActive: true,
				CreatedAt: at("2020-01-01T00:00:00Z"), LastLogin: at("2020-06-01T00:00:00Z")},
			{ID: "b", Email: s("same@example.com"), Name: s("B"), Preferences: prefs, IsActive: true,
				CreatedAt: at("2021-01-01T00:00:00Z"), LastLogin: at("2022-06-01T00:00:00Z")},
			{ID: "c", Email: s("c@example.com"), Name: s("C"), Preferences: prefs, IsActive: true, PushToken: s("shared"),
				CreatedAt: at("2020-01-01T00:00:00Z"), UpdatedAt: at("2023-01-01T00:00:00Z")},
			{ID: "d", Email: s("d@example.com"), Name: s("D"), Preferences: prefs, IsActive: true, PushToken: s("d-current"),
				CreatedAt: at("2020-01-01T00:00:00Z"), UpdatedAt: at("2023-05-01T00:00:00Z")},
			{ID: "e", Email: s("bad"), Name: s("E"), Preferences: prefs},
		},
		devices: map[string][]djangoDevice{
			"a": {{ID: "a1", UserID: "a", Token: s("a-token"), DeviceType: s("ios"), IsActive: true, CreatedAt: at("2020-02-01T00:00:00Z")}},
			"d": {
				{ID: "d1", UserID: "d", Token: s("shared"), DeviceType: s("android"), IsActive: true, CreatedAt: at("2022-01-01T00:00:00Z")},
				{ID: "d2", UserID: "d", Token: s("d-current"), DeviceType: s("ios"), DeviceID: s("phone"), IsActive: true, CreatedAt: at("2021-01-01T00:00:00Z")},
				{ID: "d3", UserID: "d", Token: s("d-newest"), DeviceType: s("ios"), DeviceID: s("phone"), IsActive: true, CreatedAt: at("2022-02-01T00:00:00Z")},
				{ID: "d4", UserID: "d", Token: s("d-old"), DeviceType: s("web"), IsActive: false, CreatedAt: at("2019-01-01T00:00:00Z")},
			},
		},
	}
	r := &Report{UsersSeen: len(snap.users)}
	plans := r.prepare(snap, time.Now())
	byID := map[string]*plan{}
	for _, p := range plans {
		byID[p.user.ID] = p
	}
	if len(plans) != 3 || byID["b"] == nil || byID["c"] == nil || byID["d"] == nil {
		t.Fatalf("plans = %v, want b, c, d", plans)
	}
	if r.UsersCollapsed != 1 || r.UsersFailed != 1 {
		t.Errorf("collapsed %d, failed %d; want 1, 1", r.UsersCollapsed, r.UsersFailed)
	}
	var collapse string
	for _, p := range r.Problems {
		if p.Kind == KindEmailCase {
			collapse = p.String()
		}
	}
	if !strings.Contains(collapse, "users_user a ") || !strings.Contains(collapse, "user b") || !strings.Contains(collapse, "logged in more recently") {
		t.Errorf("collapse problem = %q", collapse)
	}

	// c set "shared" as its push_token after d registered it on a device.
	c := byID["c"]
	if deref(c.user.PushToken) != "shared" || len(c.devices) != 1 || c.devices[0].ID != "" || c.devices[0].DeviceType != usersvc.DeviceOther {
		t.Errorf("c = %+v, devices %+v", c.user, c.devices)
	}
	d := byID["d"]
	tokens := []string{}
	for _, dev := range d.devices {
		tokens = append(tokens, dev.Token)
	}
	// d1 went to c; d2 and d3 share a device id: the newest, d3, is kept;
	// d4 is inactive. d's push_token was on d2: it becomes a device of its
	// own, and stays current.
	if strings.Join(tokens, ",") != "d-newest,d-current" || d.inactive != 1 || d.tokensSkipped != 2 {
		t.Errorf("d devices = %v, inactive %d, skipped %d", tokens, d.inactive, d.tokensSkipped)
	}
	if deref(d.user.PushToken) != "d-current" {
		t.Errorf("d push_token = %s", deref(d.user.PushToken))
	}
}

func TestPrepareCurrentToken(t *testing.T) {
	s := func(v string) *string { return &v }
	updated := at("2024-06-01T00:00:00Z")
	snap := &snapshot{
		users: []djangoUser{
			{ID: "u", Email: s("u@example.com"), Name: s("U"), IsActive: true, PushToken: s("older"),
				CreatedAt: at("2024-01-01T00:00:00Z"), UpdatedAt: updated},
			{ID: "v", Email: s("v@example.com"), Name: s("V"), IsActive: true,
				CreatedAt: at("2024-01-01T00:00:00Z"), UpdatedAt: updated},
		},
		devices: map[string][]djangoDevice{
			"u": {
				{ID: "u1", Token: s("older"), DeviceType: s("android"), IsActive: true, CreatedAt: at("2024-02-01T00:00:00Z")},
				{ID: "u2", Token: s("newer"), DeviceType: s("ios"), IsActive: true, CreatedAt: at("2024-03-01T00:00:00Z")},
			},
			"v": {
				{ID: "v1", Token: s("v-old"), DeviceType: s("android"), IsActive: true, CreatedAt: at("2024-02-01T00:00:00Z")},
				{ID: "v2", Token: s("v-new"), DeviceType: s("ios"), IsActive: true, CreatedAt: at("2024-03-01T00:00:00Z")},
			},
		},
	}
	plans := (&Report{}).prepare(snap, time.Now())
	u, v := plans[0], plans[1]
	// users_user.push_token is current; its device is marked last seen when
	// Django last wrote the user.
	if deref(u.user.PushToken) != "older" {
		t.Errorf("u push_token = %s", deref(u.user.PushToken))
	}
	for _, d := range u.devices {
		if d.Token == "older" && !d.LastSeenAt.Equal(*updated) || d.Token == "newer" && !d.LastSeenAt.Equal(*at("2024-03-01T00:00:00Z")) {
			t.Errorf("u device %+v", d)
		}
	}
	// No push_token: the newest device's token is current.
	if deref(v.user.PushToken) != "v-new" {
		t.Errorf("v push_token = %s", deref(v.user.PushToken))
	}
}

func TestReportFormat(t *testing.T) {
	r := &Report{UsersSeen: 3, UsersImported: 1, UsersPresent: 1, UsersFailed: 1, DevicesImported: 2,
		Problems: []Problem{
			{Table: TableUser, RowID: "u1", UserID: "u1", Email: "Bad", Kind: KindInvalidEmail, Reason: "not imported: Invalid email format"},
			{Table: TablePushToken, RowID: "t1", UserID: "u2", Email: "x@example.com", Kind: KindInvalidToken, Reason: "token skipped"},
		}}
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `users seen:                  3
users imported:              1
users already present:       1
users collapsed by case:     0
users not imported:          1
devices imported:            2
devices skipped (inactive):  0
push tokens skipped:         0
problems:                    2
  users_user u1 "Bad": invalid_email: not imported: Invalid email format
  users_pushtoken t1 of user u2 "x@example.com": invalid_push_token: token skipped
`
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
}
