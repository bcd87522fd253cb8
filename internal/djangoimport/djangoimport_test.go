package djangoimport_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/djangoimport"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/sqlstore"
	"github.com/usersvc/usersvc/internal/token"
)

// Ids of the users of the Django dump.
const (
	graceID    = "301b598d-95d6-4400-a92d-ea76cd91548e"
	alanID     = "ae116c8c-102f-4d1b-9de1-24b02910fa27"
	adaID      = "98ff1c70-b351-4759-b552-0562bd52428a"
	linusID    = "30cb77a0-ab86-4479-9641-973e44b66c5c"
	adminID    = "c4ef13f0-ecb5-410d-94b5-3bc71062c051"
	dormantID  = "9c99141f-a90a-4a25-9f85-9126944138d8"
	sha1ID     = "1de90a8c-dc1a-49f7-ad19-cd88ec03d3be"
	nopassID   = "73302d25-717f-403b-bbdc-d84f26d6eecd"
	gracePixel = "21ef5e04-5153-41d2-b30a-0d64b7d3042c"
	graceIPad  = "ba129805-1a74-46b8-86ab-ce46491d1c90"
)

// TestImportFixture imports the dump of the Django service into each store,
// checks every row against the dump, logs in as every user of its README,
// and imports again.
func TestImportFixture(t *testing.T) {
	src := djangoDB(t)
	forEachTarget(t, func(t *testing.T, st *sqlstore.Store) {
		r := run(t, src, st, djangoimport.Options{})
		wantCounts(t, r, counts{Seen: 8, Imported: 8, Devices: 2})

		matchSource(t, src, st)
		matchReadme(t, st)
		fresh := snapshot(t, st)

		t.Run("second import changes nothing", func(t *testing.T) {
			r := run(t, src, st, djangoimport.Options{})
			wantCounts(t, r, counts{Seen: 8, Present: 8})
			sameState(t, fresh, snapshot(t, st))
		})

		loginAll(t, st)

		t.Run("import after logins keeps the new hashes", func(t *testing.T) {
			before := snapshot(t, st)
			r := run(t, src, st, djangoimport.Options{})
			wantCounts(t, r, counts{Seen: 8, Present: 8})
			sameState(t, before, snapshot(t, st))
		})
	})
}

// matchSource checks every user and active device of the Django database
// against the store.
func matchSource(t *testing.T, src *pgx.Conn, st *sqlstore.Store) {
	t.Helper()
	ctx := t.Context()
	rows, err := src.Query(ctx, `SELECT id::text, email, name, password, push_token, preferences::text,
		is_active, is_staff OR is_superuser, created_at, updated_at FROM users_user`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID, Email, Name, Password string
		PushToken                 *string
		Preferences               string
		Active, Admin             bool
		CreatedAt, UpdatedAt      time.Time
	}
	users, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range users {
		got, cred, err := st.UserByEmail(ctx, usersvc.CanonicalEmail(want.Email))
		hash := cred.Hash
		if err != nil {
			t.Errorf("user %s: %v", want.Email, err)
			continue
		}
		prefs := map[string]bool{"email": true, "push": true}
		if err := json.Unmarshal([]byte(want.Preferences), &prefs); err != nil {
			t.Fatal(err)
		}
		exp := usersvc.User{
			ID: want.ID, Email: strings.ToLower(want.Email), Name: want.Name, PushToken: want.PushToken,
			Preferences: usersvc.Preferences{Email: prefs["email"], Push: prefs["push"], SMS: true, InApp: true},
			IsAdmin:     want.Admin, IsActive: want.Active,
			CreatedAt: want.CreatedAt.UTC(), UpdatedAt: want.UpdatedAt.UTC(),
		}
		if got.PushToken == nil && exp.PushToken == nil {
			got.PushToken, exp.PushToken = nil, nil
		}
		if !sameUser(*got, exp) {
			t.Errorf("user %s:\ngot  %+v\nwant %+v", want.Email, *got, exp)
		}
		if hash != want.Password {
			t.Errorf("user %s: hash %q, want the Django hash %q", want.Email, hash, want.Password)
		}
	}

	rows, err = src.Query(ctx, `SELECT id::text, user_id::text, device_id, token, device_type, created_at
		FROM users_pushtoken WHERE is_active`)
	if err != nil {
		t.Fatal(err)
	}
	type device struct {
		ID, UserID string
		DeviceID   *string
		Token      string
		DeviceType string
		CreatedAt  time.Time
	}
	devices, err := pgx.CollectRows(rows, pgx.RowToStructByPos[device])
	if err != nil {
		t.Fatal(err)
	}
	byUser := map[string]map[string]device{}
	for _, d := range devices {
		if byUser[d.UserID] == nil {
			byUser[d.UserID] = map[string]device{}
		}
		byUser[d.UserID][d.ID] = d
	}
	for _, u := range users {
		stored, err := st.Devices(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := byUser[u.ID]
		if len(stored) != len(want) {
			t.Errorf("user %s has %d devices, want %d", u.Email, len(stored), len(want))
		}
		for _, d := range stored {
			w, ok := want[d.ID]
			if !ok {
				t.Errorf("user %s: unexpected device %+v", u.Email, d)
				continue
			}
			if d.UserID != u.ID || deref(d.DeviceID) != deref(w.DeviceID) || d.Token != w.Token ||
				d.DeviceType != w.DeviceType || !d.CreatedAt.Equal(w.CreatedAt) {
				t.Errorf("user %s: device %+v, want %+v", u.Email, d, w)
			}
		}
	}
}

func sameUser(a, b usersvc.User) bool {
	return a.ID == b.ID && a.Email == b.Email && a.Name == b.Name && deref(a.PushToken) == deref(b.PushToken) &&
		(a.PushToken == nil) == (b.PushToken == nil) && a.Preferences.Equal(b.Preferences) &&
		a.IsAdmin == b.IsAdmin && a.IsActive == b.IsActive &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// matchReadme checks what the README of the dump says of its users.
func matchReadme(t *testing.T, st *sqlstore.Store) {
	t.Helper()
	ctx := t.Context()
	user := func(id string) *usersvc.User {
		u, err := st.UserByID(ctx, id)
		if err != nil {
			t.Fatalf("UserByID(%s): %v", id, err)
		}
		return u
	}
	grace := user(graceID)
	if !grace.Preferences.Equal(usersvc.Preferences{Email: false, Push: true, SMS: true, InApp: true}) {
		t.Errorf("grace preferences = %+v, want email off", grace.Preferences)
	}
	if deref(grace.PushToken) != "apns_0a1b2c3d4e5f" {
		t.Errorf("grace push_token = %s, want the latest, apns_0a1b2c3d4e5f", deref(grace.PushToken))
	}
	devices, err := st.Devices(ctx, graceID)
	if err != nil || len(devices) != 2 {
		t.Fatalf("grace devices = %+v, %v; want 2", devices, err)
	}
	for i, want := range []struct{ id, deviceID, typ, token string }{
		{graceIPad, "grace-ipad", usersvc.DeviceIOS, "apns_0a1b2c3d4e5f"},
		{gracePixel, "grace-pixel", usersvc.DeviceAndroid, "fcm:APA91bGrace_phone-123"},
	} {
		d := devices[i]
		if d.ID != want.id || deref(d.DeviceID) != want.deviceID || d.DeviceType != want.typ || d.Token != want.token {
			t.Errorf("grace device %d = %+v, want %+v", i, d, want)
		}
	}
	if ada := user(adaID); !ada.Preferences.Equal(usersvc.Preferences{Email: true, Push: false, SMS: true, InApp: true}) {
		t.Errorf("ada preferences = %+v, want push off", ada.Preferences)
	}
	if alan := user(alanID); alan.Email != "alan.turing@example.org" {
		t.Errorf("alan email = %q", alan.Email)
	}
	for _, id := range []string{graceID, alanID, adaID, linusID, dormantID, sha1ID, nopassID} {
		if u := user(id); u.IsAdmin {
			t.Errorf("%s is an admin", u.Email)
		}
	}
	if !user(adminID).IsAdmin {
		t.Error("ops-admin is not an admin")
	}
	if user(dormantID).IsActive {
		t.Error("dormant is active")
	}
}

// loginAll logs in as every user of the README of the dump.
func loginAll(t *testing.T, st *sqlstore.Store) {
	t.Helper()
	hasher, err := password.New()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.NewHMACKeySet(token.Secret("django-import-test-secret-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Config{Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	svc := account.New(st, hasher, tokens, account.Options{})

	hashOf := func(t *testing.T, email string) string {
		t.Helper()
		_, cred, err := st.UserByEmail(t.Context(), usersvc.CanonicalEmail(email))
		hash := cred.Hash
		if err != nil {
			t.Fatalf("UserByEmail(%s): %v", email, err)
		}
		return hash
	}
	login := func(email, pw string) (*account.Session, error) {
		return svc.Login(t.Context(), usersvc.Credentials{Email: email, Password: usersvc.Password(pw)})
	}

	for _, c := range []struct {
		email, password string
		admin           bool
	}{
		{"grace.hopper@example.com", "Cobol#1959rocks", false},
		{"Alan.Turing@Example.org", "Enigma!1912x", false},
		{"ada@example.net", "Analytical&Engine1843", false},
		{"linus@example.com", "Penguin*1991ok", false},
		{"ops-admin@example.com", "Admin#Pass2025", true},
		{"sha1user@example.com", "Legacy!Sha1pw", false},
	} {
		t.Run(c.email, func(t *testing.T) {
			old := hashOf(t, c.email)
			if _, err := login(c.email, c.password+"x"); usersvc.ErrorCode(err) != usersvc.EUnauthorized {
				t.Errorf("wrong password: %v, want unauthorized", err)
			}
			if h := hashOf(t, c.email); h != old {
				t.Errorf("a failed login changed the hash to %q", h)
			}
			sess, err := login(c.email, c.password)
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			if sess.User.IsAdmin != c.admin {
				t.Errorf("IsAdmin = %v, want %v", sess.User.IsAdmin, c.admin)
			}
			claims, err := tokens.ParseAccess(sess.Access, time.Now())
			if err != nil || claims.IsAdmin != c.admin || claims.UserID != sess.User.ID {
				t.Errorf("access token claims = %+v, %v; want is_admin %v", claims, err, c.admin)
			}
			if h := hashOf(t, c.email); !strings.HasPrefix(h, "$argon2id$") {
				t.Errorf("hash after the first login = %q, want argon2id", h)
			}
			if _, err := login(c.email, c.password); err != nil {
				t.Errorf("second login, on the argon2id hash: %v", err)
			}
		})
	}

	t.Run("disabled", func(t *testing.T) {
		old := hashOf(t, "dormant@example.com")
		_, err := login("dormant@example.com", "Sleepy#Owl2020")
		if usersvc.ErrorCode(err) != usersvc.EForbidden || usersvc.ErrorMessage(err) != account.MsgAccountDisabled {
			t.Errorf("Login = %v, want forbidden %q", err, account.MsgAccountDisabled)
		}
		if _, err := login("dormant@example.com", "Sleepy#Owl2021"); usersvc.ErrorCode(err) != usersvc.EUnauthorized {
			t.Errorf("wrong password: %v, want unauthorized", err)
		}
		if h := hashOf(t, "dormant@example.com"); h != old {
			t.Errorf("the hash of a disabled user changed to %q", h)
		}
	})

	t.Run("unusable password", func(t *testing.T) {
		hash := hashOf(t, "nopass@example.com")
		if !strings.HasPrefix(hash, "!") {
			t.Fatalf("hash = %q, want Django's unusable password", hash)
		}
		for _, pw := range []string{"", "!", hash, hash[1:], "No Password", "nopass@example.com", "Cobol#1959rocks"} {
			if _, err := login("nopass@example.com", pw); usersvc.ErrorCode(err) != usersvc.EUnauthorized {
				t.Errorf("Login with %q = %v, want unauthorized", pw, err)
			}
		}
		if h := hashOf(t, "nopass@example.com"); h != hash {
			t.Errorf("the unusable hash changed to %q", h)
		}
	})
}

// TestCaseCollapse imports users whose emails differ only by case.
func TestCaseCollapse(t *testing.T) {
	src := djangoDB(t)
	const (
		oldID    = "0a000000-0000-4000-8000-000000000001"
		activeID = "0a000000-0000-4000-8000-000000000002"
		firstID  = "0b000000-0000-4000-8000-000000000001"
		laterID  = "0b000000-0000-4000-8000-000000000002"
		graceDup = "0c000000-0000-4000-8000-000000000001"
	)
	// The one that logged in most recently is kept...
	addUser(t, src, srcUser{ID: oldID, Email: "Case.Person@Example.com", Active: true,
		Password: djangoHash(t, "Old#Passw0rd", "saltold"), CreatedAt: date("2020-01-01T00:00:00Z"), UpdatedAt: date("2020-01-01T00:00:00Z")})
	addUser(t, src, srcUser{ID: activeID, Email: "case.person@EXAMPLE.com", Active: true,
		Password: djangoHash(t, "New#Passw0rd", "saltnew"), LastLogin: date("2023-06-01T00:00:00Z"),
		CreatedAt: date("2021-01-01T00:00:00Z"), UpdatedAt: date("2021-01-01T00:00:00Z")})
	// ...else the one created first.
	addUser(t, src, srcUser{ID: laterID, Email: "twin@example.com", Active: true,
		CreatedAt: date("2022-01-01T00:00:00Z"), UpdatedAt: date("2022-01-01T00:00:00Z")})
	addUser(t, src, srcUser{ID: firstID, Email: "Twin@Example.com", Active: true,
		CreatedAt: date("2019-01-01T00:00:00Z"), UpdatedAt: date("2019-01-01T00:00:00Z")})
	// A user of the dump under another case: the active one is kept.
	addUser(t, src, srcUser{ID: graceDup, Email: "GRACE.HOPPER@example.com", Active: false,
		LastLogin: date("2026-12-01T00:00:00Z"), CreatedAt: date("2018-01-01T00:00:00Z"), UpdatedAt: date("2018-01-01T00:00:00Z")})

	forEachTarget(t, func(t *testing.T, st *sqlstore.Store) {
		r := run(t, src, st, djangoimport.Options{})
		wantCounts(t, r, counts{Seen: 13, Imported: 10, Collapsed: 3, Devices: 2, Problems: 3})
		for loser, winner := range map[string]string{oldID: activeID, laterID: firstID, graceDup: graceID} {
			var found bool
			for _, p := range r.Problems {
				if p.RowID == loser {
					found = true
					if p.Kind != djangoimport.KindEmailCase || !strings.Contains(p.Reason, winner) {
						t.Errorf("problem of %s = %+v, want %s naming %s", loser, p, djangoimport.KindEmailCase, winner)
					}
				}
			}
			if !found {
				t.Errorf("no problem reported for %s", loser)
			}
			if _, err := st.UserByID(t.Context(), loser); usersvc.ErrorCode(err) != usersvc.ENotFound {
				t.Errorf("UserByID(%s) = %v, want not found", loser, err)
			}
			if _, err := st.UserByID(t.Context(), winner); err != nil {
				t.Errorf("UserByID(%s) = %v", winner, err)
			}
		}
		var out strings.Builder
		if _, err := r.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "users collapsed by case:     3") || !strings.Contains(out.String(), djangoimport.KindEmailCase) {
			t.Errorf("report does not tell of the collapse:\n%s", out.String())
		}

		hasher, err := password.New()
		if err != nil {
			t.Fatal(err)
		}
		_, cred, err := st.UserByEmail(t.Context(), "case.person@example.com")
		hash := cred.Hash
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, _ := hasher.Verify(t.Context(), "New#Passw0rd", hash); !ok {
			t.Error("the kept account does not have its own password")
		}

		again := run(t, src, st, djangoimport.Options{})
		wantCounts(t, again, counts{Seen: 13, Present: 10, Collapsed: 3, Problems: 3})
	})
}

// TestBadRows imports a database with rows that cannot be imported, or not
// as they are: the others are imported, every such row is reported.
func TestBadRows(t *testing.T) {
	src := djangoDB(t)
	const (
		badEmailID = "0d000000-0000-4000-8000-000000000001"
		badPrefsID = "0d000000-0000-4000-8000-000000000002"
		tokensID   = "0d000000-0000-4000-8000-000000000003"
		nameID     = "0d000000-0000-4000-8000-000000000004"
		noTimesID  = "0d000000-0000-4000-8000-000000000005"
		partialID  = "0d000000-0000-4000-8000-000000000006"
		md5ID      = "0d000000-0000-4000-8000-000000000007"
		webID      = "0d000000-0000-4000-8000-000000000008"
		tokValid   = "0e000000-0000-4000-8000-000000000001"
		tokBad     = "0e000000-0000-4000-8000-000000000002"
		tokOff     = "0e000000-0000-4000-8000-000000000003"
		tokOdd     = "0e000000-0000-4000-8000-000000000004"
		tokGrace   = "0e000000-0000-4000-8000-000000000005"
		linusTaken = "0f000000-0000-4000-8000-000000000001"
	)
	t0 := date("2024-01-01T00:00:00Z")
	addUser(t, src, srcUser{ID: badEmailID, Email: "not-an-email", Active: true, CreatedAt: t0, UpdatedAt: t0})
	addUser(t, src, srcUser{ID: badPrefsID, Email: "prefs@example.com", Active: true, Preferences: `{"email": "no"}`, CreatedAt: t0, UpdatedAt: t0})
	addUser(t, src, srcUser{ID: tokensID, Email: "tokens@example.com", Active: true, PushToken: ptr("bad token!"), CreatedAt: t0, UpdatedAt: t0})
	addToken(t, src, tokValid, tokensID, ptr("dev-1"), "tok-valid-1", "android", true, time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC))
	addToken(t, src, tokBad, tokensID, ptr("dev-2"), "has spaces here", "ios", true, time.Date(2024, 2, 2, 0, 0, 0, 0, time.UTC))
	addToken(t, src, tokOff, tokensID, ptr("dev-3"), "tok-inactive", "ios", false, time.Date(2024, 2, 3, 0, 0, 0, 0, time.UTC))
	addToken(t, src, tokOdd, tokensID, ptr("dev 4"), "tok-bb", "BlackBerry", true, time.Date(2024, 2, 4, 0, 0, 0, 0, time.UTC))
	addToken(t, src, tokGrace, tokensID, nil, "fcm:APA91bGrace_phone-123", "android", true, time.Date(2024, 2, 5, 0, 0, 0, 0, time.UTC))
	addUser(t, src, srcUser{ID: nameID, Email: "r2@example.com", Name: "  R2-D2 ", Active: true, CreatedAt: t0, UpdatedAt: t0})
	addUser(t, src, srcUser{ID: noTimesID, Email: "notimes@example.com", Active: true, Preferences: `{}`,
		LastLogin: date("2024-05-01T10:00:00.123456Z")})
	if _, err := src.Exec(t.Context(), `INSERT INTO users_notificationpreferences
		(id, user_id, email_notifications, push_notifications, sms_notifications, categories)
		VALUES (gen_random_uuid(), $1, false, true, false, '{}')`, noTimesID); err != nil {
		t.Fatal(err)
	}
	addUser(t, src, srcUser{ID: partialID, Email: "partial@example.com", Active: true, Preferences: `{"email": false, "sms": "x"}`, CreatedAt: t0, UpdatedAt: t0})
	addUser(t, src, srcUser{ID: md5ID, Email: "md5@example.com", Active: true, Password: "md5$salt$0123456789abcdef", CreatedAt: t0, UpdatedAt: t0})
	addUser(t, src, srcUser{ID: webID, Email: "web@example.com", Active: true, PushToken: ptr(" web-only-token "), CreatedAt: t0, UpdatedAt: date("2024-03-01T00:00:00Z")})

	forEachTarget(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := t.Context()
		// Someone registered with linus's email before the import.
		now := time.Now().UTC().Truncate(time.Microsecond)
		taken := &usersvc.User{ID: linusTaken, Email: "linus@example.com", Name: "Another Linus",
			Preferences: usersvc.DefaultPreferences(), IsActive: true, CreatedAt: now, UpdatedAt: now}
		if _, err := st.CreateUser(ctx, taken, "!"); err != nil {
			t.Fatal(err)
		}

		r := run(t, src, st, djangoimport.Options{})
		wantCounts(t, r, counts{Seen: 16, Imported: 13, Failed: 3, Devices: 5, Inactive: 1, TokensSkipped: 3, Problems: 10})
		wantKinds := map[string][]string{
			badEmailID: {djangoimport.KindInvalidEmail},
			badPrefsID: {djangoimport.KindBadPreferences},
			linusID:    {djangoimport.KindEmailTaken},
			tokensID:   {djangoimport.KindInvalidToken},
			tokBad:     {djangoimport.KindInvalidToken},
			tokOdd:     {djangoimport.KindInvalidDeviceID, djangoimport.KindDeviceType},
			tokGrace:   {djangoimport.KindTokenElsewhere},
			nameID:     {djangoimport.KindInvalidName},
			md5ID:      {djangoimport.KindPasswordScheme},
		}
		got := problemKinds(r)
		for id, kinds := range wantKinds {
			if strings.Join(got[id], ",") != strings.Join(kinds, ",") {
				t.Errorf("problems of %s = %v, want %v", id, got[id], kinds)
			}
		}
		for id := range got {
			if _, ok := wantKinds[id]; !ok {
				t.Errorf("unexpected problems of %s: %v", id, got[id])
			}
		}
		for _, p := range r.Problems {
			if p.Kind == djangoimport.KindEmailTaken && !strings.Contains(p.Reason, linusTaken) {
				t.Errorf("email_taken does not name the account holding it: %s", p)
			}
			if p.Reason == "" || p.Email == "" && p.RowID != badEmailID {
				t.Errorf("problem without reason or email: %+v", p)
			}
		}

		user := func(id string) *usersvc.User {
			u, err := st.UserByID(ctx, id)
			if err != nil {
				t.Fatalf("UserByID(%s): %v", id, err)
			}
			return u
		}
		for _, id := range []string{badEmailID, badPrefsID, linusID} {
			if _, err := st.UserByID(ctx, id); usersvc.ErrorCode(err) != usersvc.ENotFound {
				t.Errorf("UserByID(%s) = %v, want not found", id, err)
			}
		}

		// The tokens user keeps its valid tokens; the newest is current.
		tok := user(tokensID)
		if deref(tok.PushToken) != "tok-bb" {
			t.Errorf("tokens user push_token = %s, want the newest device's, tok-bb", deref(tok.PushToken))
		}
		devices, err := st.Devices(ctx, tokensID)
		if err != nil || len(devices) != 2 {
			t.Fatalf("tokens user devices = %+v, %v; want 2", devices, err)
		}
		if d := devices[0]; d.ID != tokOdd || d.DeviceID != nil || d.DeviceType != usersvc.DeviceOther || d.Token != "tok-bb" {
			t.Errorf("device with an invalid id and type = %+v", d)
		}
		if d := devices[1]; d.ID != tokValid || deref(d.DeviceID) != "dev-1" || d.DeviceType != usersvc.DeviceAndroid {
			t.Errorf("valid device = %+v", d)
		}
		// Grace registered her token later than the tokens user: she keeps it.
		grace, err := st.Devices(ctx, graceID)
		if err != nil || len(grace) != 2 {
			t.Errorf("grace devices = %+v, %v; want 2", grace, err)
		}

		if u := user(nameID); u.Name != "R2-D2" {
			t.Errorf("name = %q, want the trimmed Django name", u.Name)
		}
		nt := user(noTimesID)
		if want := *date("2024-05-01T10:00:00.123456Z"); !nt.CreatedAt.Equal(want) || !nt.UpdatedAt.Equal(want) {
			t.Errorf("null timestamps = %v, %v; want last_login %v", nt.CreatedAt, nt.UpdatedAt, want)
		}
		if !nt.Preferences.Equal(usersvc.Preferences{Email: false, Push: true, SMS: false, InApp: true}) {
			t.Errorf("preferences from users_notificationpreferences = %+v, want email off", nt.Preferences)
		}
		if p := user(partialID).Preferences; !p.Equal(usersvc.Preferences{Email: false, Push: true, SMS: true, InApp: true}) {
			t.Errorf("partial preferences = %+v, want push defaulting to true", p)
		}
		web := user(webID)
		if deref(web.PushToken) != "web-only-token" {
			t.Errorf("web push_token = %s", deref(web.PushToken))
		}
		wd, err := st.Devices(ctx, webID)
		if err != nil || len(wd) != 1 || wd[0].DeviceID != nil || wd[0].DeviceType != usersvc.DeviceOther ||
			wd[0].Token != "web-only-token" || !wd[0].CreatedAt.Equal(*date("2024-03-01T00:00:00Z")) {
			t.Errorf("web devices = %+v, %v; want the push_token as a device of type other", wd, err)
		}

		before := snapshot(t, st)
		again := run(t, src, st, djangoimport.Options{})
		wantCounts(t, again, counts{Seen: 16, Present: 13, Failed: 3, Problems: 3})
		sameState(t, before, snapshot(t, st))
	})
}

// TestDryRun writes nothing and reports what an import would do.
func TestDryRun(t *testing.T) {
	src := djangoDB(t)
	st := targets[0].open(t)
	r := run(t, src, st, djangoimport.Options{DryRun: true})
	wantCounts(t, r, counts{Seen: 8, Imported: 8, Devices: 2})
	if !r.DryRun {
		t.Error("report of a dry run does not say so")
	}
	if _, total, err := st.ListUsers(t.Context(), 10, 0); err != nil || total != 0 {
		t.Fatalf("a dry run wrote %d users (%v)", total, err)
	}
	run(t, src, st, djangoimport.Options{})
	r = run(t, src, st, djangoimport.Options{DryRun: true})
	wantCounts(t, r, counts{Seen: 8, Present: 8})
}

// TestOptionalTables imports a database with users_user only.
func TestOptionalTables(t *testing.T) {
	src := djangoDB(t)
	if _, err := src.Exec(t.Context(), `DROP TABLE users_pushtoken; DROP TABLE users_notificationpreferences`); err != nil {
		t.Fatal(err)
	}
	st := targets[0].open(t)
	r := run(t, src, st, djangoimport.Options{})
	// Grace's push_token is all that is left of her devices.
	wantCounts(t, r, counts{Seen: 8, Imported: 8, Devices: 1})
	devices, err := st.Devices(t.Context(), graceID)
	if err != nil || len(devices) != 1 || devices[0].Token != "apns_0a1b2c3d4e5f" || devices[0].DeviceID != nil {
		t.Errorf("grace devices = %+v, %v", devices, err)
	}
}

// TestSourceErrors fails when the Django tables cannot be read.
func TestSourceErrors(t *testing.T) {
	conn, err := pgx.Connect(t.Context(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	st := targets[0].open(t)
	if r, err := djangoimport.Run(t.Context(), conn, st, djangoimport.Options{}); err == nil || !strings.Contains(err.Error(), "users_user") {
		t.Errorf("Run on a database without users_user = %+v, %v; want an error naming users_user", r, err)
	}
}

// TestStoreUnavailable stops when the store cannot be written.
func TestStoreUnavailable(t *testing.T) {
	src := djangoDB(t)
	st := targets[0].open(t)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := djangoimport.Run(t.Context(), src, st, djangoimport.Options{})
	if usersvc.ErrorCode(err) != usersvc.EUnavailable {
		t.Fatalf("Run on a closed store = %v, want unavailable", err)
	}
	if r == nil || r.UsersImported != 0 || r.UsersSeen != 8 {
		t.Errorf("partial report = %+v", r)
	}
}
