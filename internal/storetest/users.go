package storetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

func testCreateUser(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := newUser(t, "Ada", at(0))
	u.Preferences = usersvc.Preferences{Email: false, Push: true, SMS: true, InApp: true}
	u.IsAdmin = true
	want := *u
	displaced, err := s.CreateUser(ctx, u, "hash-1")
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	wantIDs(t, "CreateUser without a push token: displaced", displaced)
	sameUser(t, getUser(t, s, u.ID), &want)
	if ds := devicesOf(t, s, u.ID); len(ds) != 0 {
		t.Errorf("user without a push token has devices %+v", ds)
	}

	t.Run("duplicate email", func(t *testing.T) {
		dup := newUser(t, "Other", at(1))
		dup.Email = u.Email
		_, err := s.CreateUser(ctx, dup, "hash-2")
		wantCode(t, err, usersvc.EConflict)
		_, err = s.UserByID(ctx, dup.ID)
		wantCode(t, err, usersvc.ENotFound)
		got, hash, err := s.UserByEmail(ctx, u.Email)
		if err != nil {
			t.Fatalf("UserByEmail: %v", err)
		}
		if got.ID != u.ID || hash.Hash != "hash-1" {
			t.Errorf("email now belongs to %s with hash %q, want %s with %q", got.ID, hash.Hash, u.ID, "hash-1")
		}
	})

	t.Run("duplicate email with push token changes nothing", func(t *testing.T) {
		holder := create(t, s, "Holder", at(2))
		register(t, s, holder.ID, "tok-held", "", at(3))
		dup := newUser(t, "Other", at(4))
		dup.Email = u.Email
		dup.PushToken = ptr("tok-held")
		displaced, err := s.CreateUser(ctx, dup, "hash-3")
		wantCode(t, err, usersvc.EConflict)
		wantIDs(t, "refused CreateUser: displaced", displaced)
		wantTokens(t, s, holder.ID, "tok-held")
		wantPushToken(t, s, holder.ID, ptr("tok-held"))
	})
}

func testCreateUserConcurrentEmail(t *testing.T, s *sqlstore.Store) {
	const n = 20
	email := newUser(t, "Race", at(0)).Email
	ids := make([]string, n)
	errs := concurrently(n, func(i int) error {
		u := newUser(t, "Race", at(i))
		u.Email = email
		ids[i] = u.ID
		_, err := s.CreateUser(t.Context(), u, fmt.Sprintf("hash-%d", i))
		return err
	})
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("registrations %d and %d of one email both succeeded", winner, i)
			}
			winner = i
			continue
		}
		wantCode(t, err, usersvc.EConflict)
	}
	if winner < 0 {
		t.Fatalf("no registration succeeded")
	}
	got, hash, err := s.UserByEmail(t.Context(), email)
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	if got.ID != ids[winner] || hash.Hash != fmt.Sprintf("hash-%d", winner) {
		t.Errorf("email belongs to %s (hash %q), want the winner %s", got.ID, hash.Hash, ids[winner])
	}
	_, total, err := s.ListUsers(t.Context(), 100, 0)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if total != 1 {
		t.Errorf("%d users stored, want 1", total)
	}
}

func testCreateUserWithPushToken(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := newUser(t, "Tok", at(0))
	u.PushToken = ptr("tok-new")
	displaced, err := s.CreateUser(ctx, u, "h")
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	wantIDs(t, "CreateUser with a free token: displaced", displaced)
	wantPushToken(t, s, u.ID, ptr("tok-new"))
	ds := devicesOf(t, s, u.ID)
	if len(ds) != 1 {
		t.Fatalf("devices = %+v, want one record", ds)
	}
	d := ds[0]
	if d.ID == "" || d.UserID != u.ID || d.DeviceID != nil || d.Token != "tok-new" || d.DeviceType != usersvc.DeviceOther {
		t.Errorf("device = %+v, want a record of %s with no device id, token tok-new, type other", d, u.ID)
	}
	sameTime(t, "created_at", d.CreatedAt, at(0))
	sameTime(t, "last_seen_at", d.LastSeenAt, at(0))

	t.Run("moves from another user", func(t *testing.T) {
		old := create(t, s, "Old", at(1))
		register(t, s, old.ID, "tok-moving", "phone", at(2))
		other := register(t, s, old.ID, "tok-kept", "tablet", at(3))
		register(t, s, old.ID, "tok-moving", "phone", at(4)) // current again
		nu := newUser(t, "New", at(5))
		nu.PushToken = ptr("tok-moving")
		displaced, err := s.CreateUser(ctx, nu, "h")
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		wantIDs(t, "CreateUser with a held token: displaced", displaced, old.ID)
		wantPushToken(t, s, old.ID, nil)
		wantTokens(t, s, old.ID, "tok-kept")
		if got := devicesOf(t, s, old.ID); len(got) == 1 {
			sameDevice(t, got[0], other)
		}
		wantPushToken(t, s, nu.ID, ptr("tok-moving"))
		wantTokens(t, s, nu.ID, "tok-moving")
	})
}

func testLookups(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	a := create(t, s, "Alice", at(0))
	b := create(t, s, "Bob", at(1))
	for _, u := range []*usersvc.User{a, b} {
		sameUser(t, getUser(t, s, u.ID), u)
		got, hash, err := s.UserByEmail(ctx, u.Email)
		if err != nil {
			t.Fatalf("UserByEmail(%s): %v", u.Email, err)
		}
		sameUser(t, got, u)
		if hash.Hash != "hash:"+u.ID {
			t.Errorf("hash of %s = %q, want %q", u.Email, hash.Hash, "hash:"+u.ID)
		}
	}
}

func testNotFound(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	known := create(t, s, "Known", at(0))
	missing := newID(t)
	for _, id := range []string{missing, "not-a-uuid", ""} {
		_, err := s.UserByID(ctx, id)
		wantCode(t, err, usersvc.ENotFound)
	}
	_, _, err := s.UserByEmail(ctx, "nobody@example.com")
	wantCode(t, err, usersvc.ENotFound)
	wantCode(t, s.SetPasswordHash(ctx, missing, "h", at(1)), usersvc.ENotFound)
	_, err = s.UpdatePreferences(ctx, missing, usersvc.PreferencesPatch{Email: ptr(false)}, at(1))
	wantCode(t, err, usersvc.ENotFound)
	_, err = s.UpdatePreferences(ctx, missing, usersvc.PreferencesPatch{}, at(1))
	wantCode(t, err, usersvc.ENotFound)
	_, err = s.RegisterPushToken(ctx, &usersvc.Device{UserID: missing, Token: "tok", DeviceType: usersvc.DeviceOther}, at(1))
	wantCode(t, err, usersvc.ENotFound)
	wantCode(t, s.ClearPushToken(ctx, missing, nil, at(1)), usersvc.ENotFound)
	wantCode(t, s.DeleteDevice(ctx, known.ID, "nothing", at(1)), usersvc.ENotFound)
	wantCode(t, s.DeleteDevice(ctx, known.ID, newID(t), at(1)), usersvc.ENotFound)
	_, err = s.UpdateProfile(ctx, missing, usersvc.ProfilePatch{Name: ptr("Name")}, at(1))
	wantCode(t, err, usersvc.ENotFound)
	_, err = s.SetActive(ctx, missing, false, at(1))
	wantCode(t, err, usersvc.ENotFound)
	wantCode(t, s.DeleteUser(ctx, missing, at(50)), usersvc.ENotFound)
	_, err = s.RefreshTokenState(ctx, "no-such-jti")
	wantCode(t, err, usersvc.ENotFound)
	_, err = spend(t, s, "no-such-jti", at(1))
	wantCode(t, err, usersvc.ENotFound)
	if ds := devicesOf(t, s, missing); len(ds) != 0 {
		t.Errorf("Devices of a missing user = %+v", ds)
	}
	// The failed register did not leave a record behind.
	if affected, got, err := s.InvalidatePushTokens(ctx, []string{"tok"}, "unregistered", at(2)); err != nil || got != 0 || len(affected) != 0 {
		t.Errorf("InvalidatePushTokens(tok) = %q, %d, %v; want no user, 0 records", affected, got, err)
	}
}

func testSetPasswordHash(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Pw", at(0))
	if err := s.SetPasswordHash(ctx, u.ID, "new-hash", at(10)); err != nil {
		t.Fatalf("SetPasswordHash: %v", err)
	}
	got, hash, err := s.UserByEmail(ctx, u.Email)
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	if hash.Hash != "new-hash" {
		t.Errorf("hash = %q, want new-hash", hash.Hash)
	}
	sameTime(t, "updated_at", got.UpdatedAt, at(10))
	sameTime(t, "created_at", got.CreatedAt, at(0))
}

func testUpdatePreferences(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Prefs", at(0))
	other := create(t, s, "Other", at(0))
	steps := []struct {
		patch usersvc.PreferencesPatch
		want  usersvc.Preferences
	}{
		{usersvc.PreferencesPatch{Email: ptr(false)}, usersvc.Preferences{Email: false, Push: true, SMS: true, InApp: true}},
		{usersvc.PreferencesPatch{Push: ptr(false)}, usersvc.Preferences{Email: false, Push: false, SMS: true, InApp: true}},
		{usersvc.PreferencesPatch{Email: ptr(true)}, usersvc.Preferences{Email: true, Push: false, SMS: true, InApp: true}},
		{usersvc.PreferencesPatch{Email: ptr(false), Push: ptr(true)}, usersvc.Preferences{Email: false, Push: true, SMS: true, InApp: true}},
		{usersvc.PreferencesPatch{Email: ptr(false), Push: ptr(true)}, usersvc.Preferences{Email: false, Push: true, SMS: true, InApp: true}},
	}
	for i, st := range steps {
		now := at(i + 1)
		got, err := s.UpdatePreferences(ctx, u.ID, st.patch, now)
		if err != nil {
			t.Fatalf("step %d: UpdatePreferences: %v", i, err)
		}
		if !got.Equal(st.want) {
			t.Errorf("step %d: UpdatePreferences = %+v, want %+v", i, got, st.want)
		}
		stored := getUser(t, s, u.ID)
		if !stored.Preferences.Equal(st.want) {
			t.Errorf("step %d: stored preferences = %+v, want %+v", i, stored.Preferences, st.want)
		}
		sameTime(t, "updated_at", stored.UpdatedAt, now)
	}
	// An empty patch reads and changes nothing.
	got, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{}, at(100))
	if err != nil {
		t.Fatalf("empty patch: %v", err)
	}
	if want := steps[len(steps)-1].want; !got.Equal(want) {
		t.Errorf("empty patch = %+v, want %+v", got, want)
	}
	sameTime(t, "updated_at after an empty patch", getUser(t, s, u.ID).UpdatedAt, at(len(steps)))
	// Nobody else changed.
	sameUser(t, getUser(t, s, other.ID), other)
}

func testListUsers(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	users, total, err := s.ListUsers(ctx, 10, 0)
	if err != nil || total != 0 || len(users) != 0 {
		t.Fatalf("ListUsers on an empty store = %d users, total %d, %v", len(users), total, err)
	}
	// Seven users; three share a creation time, so the id decides.
	var all []*usersvc.User
	for i, sec := range []int{5, 1, 3, 3, 3, 7, 0} {
		all = append(all, create(t, s, fmt.Sprintf("List%c", 'A'+i), at(sec)))
	}
	want := slices.Clone(all)
	sort.Slice(want, func(i, j int) bool {
		if !want[i].CreatedAt.Equal(want[j].CreatedAt) {
			return want[i].CreatedAt.After(want[j].CreatedAt)
		}
		return want[i].ID > want[j].ID
	})
	for _, page := range []struct{ limit, offset int }{{3, 0}, {3, 3}, {3, 6}, {3, 9}, {100, 0}, {1, 4}} {
		got, total, err := s.ListUsers(ctx, page.limit, page.offset)
		if err != nil {
			t.Fatalf("ListUsers(%d, %d): %v", page.limit, page.offset, err)
		}
		if total != len(all) {
			t.Errorf("ListUsers(%d, %d) total = %d, want %d", page.limit, page.offset, total, len(all))
		}
		end := min(page.offset+page.limit, len(want))
		var exp []*usersvc.User
		if page.offset < len(want) {
			exp = want[page.offset:end]
		}
		if len(got) != len(exp) {
			t.Fatalf("ListUsers(%d, %d) returned %d users, want %d", page.limit, page.offset, len(got), len(exp))
		}
		for i := range got {
			sameUser(t, &got[i], exp[i])
		}
	}
}

func testUsersByIDs(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	a := create(t, s, "BatchA", at(0))
	b := create(t, s, "BatchB", at(1))
	c := create(t, s, "BatchC", at(2))
	check := func(ids []string, want ...*usersvc.User) {
		t.Helper()
		got, err := s.UsersByIDs(ctx, ids)
		if err != nil {
			t.Fatalf("UsersByIDs: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("UsersByIDs returned %d users, want %d", len(got), len(want))
		}
		byID := map[string]usersvc.User{}
		for _, u := range got {
			byID[u.ID] = u
		}
		for _, w := range want {
			g, ok := byID[w.ID]
			if !ok {
				t.Errorf("UsersByIDs is missing %s", w.ID)
				continue
			}
			sameUser(t, &g, w)
		}
	}
	check(nil)
	check([]string{a.ID, c.ID, newID(t), "not-a-uuid", a.ID}, a, c)
	// A thousand ids (most unknown) in one call.
	ids := []string{b.ID}
	for len(ids) < 999 {
		ids = append(ids, newID(t))
	}
	ids = append(ids, c.ID)
	check(ids, b, c)
}

func testUpdateName(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Before", at(0))
	got, err := s.UpdateProfile(ctx, u.ID, usersvc.ProfilePatch{Name: ptr("After Name")}, at(5))
	if err != nil {
		t.Fatalf("UpdateName: %v", err)
	}
	want := *u
	want.Name = "After Name"
	want.UpdatedAt = at(5)
	sameUser(t, got, &want)
	sameUser(t, getUser(t, s, u.ID), &want)
}

func testSetActive(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Active", at(0))
	want := *u
	for i, active := range []bool{false, false, true} {
		got, err := s.SetActive(ctx, u.ID, active, at(i+1))
		if err != nil {
			t.Fatalf("SetActive(%v): %v", active, err)
		}
		want.IsActive = active
		want.UpdatedAt = at(i + 1)
		sameUser(t, got, &want)
		sameUser(t, getUser(t, s, u.ID), &want)
	}
}

func testDeleteUser(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Gone", at(0))
	keep := create(t, s, "Kept", at(0))
	register(t, s, u.ID, "tok-gone-1", "", at(1))
	register(t, s, u.ID, "tok-gone-2", "phone", at(2))
	register(t, s, keep.ID, "tok-kept", "", at(2))
	fam := account.RefreshFamily{ID: newID(t), UserID: u.ID, CreatedAt: at(3), ExpiresAt: at(3600)}
	first := account.RefreshToken{JTI: newID(t), FamilyID: fam.ID, UserID: u.ID, IssuedAt: at(3), ExpiresAt: at(3600)}
	if err := s.CreateRefreshFamily(ctx, fam, first, 0); err != nil {
		t.Fatalf("CreateRefreshFamily: %v", err)
	}
	keptFam := account.RefreshFamily{ID: newID(t), UserID: keep.ID, CreatedAt: at(3), ExpiresAt: at(3600)}
	keptFirst := account.RefreshToken{JTI: newID(t), FamilyID: keptFam.ID, UserID: keep.ID, IssuedAt: at(3), ExpiresAt: at(3600)}
	if err := s.CreateRefreshFamily(ctx, keptFam, keptFirst, 0); err != nil {
		t.Fatalf("CreateRefreshFamily: %v", err)
	}

	if err := s.DeleteUser(ctx, u.ID, at(50)); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err := s.UserByID(ctx, u.ID)
	wantCode(t, err, usersvc.ENotFound)
	_, _, err = s.UserByEmail(ctx, u.Email)
	wantCode(t, err, usersvc.ENotFound)
	wantTokens(t, s, u.ID)
	_, err = s.RefreshTokenState(ctx, first.JTI)
	wantCode(t, err, usersvc.ENotFound)
	wantCode(t, s.DeleteUser(ctx, u.ID, at(50)), usersvc.ENotFound)
	// Expired-family cleanup no longer sees the deleted user's family.
	if n, err := s.DeleteExpiredRefreshTokens(ctx, at(7200)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredRefreshTokens = %d, %v; want only the remaining user's family", n, err)
	}

	// The other user is untouched, until the cleanup above took its family.
	wantTokens(t, s, keep.ID, "tok-kept")
	wantPushToken(t, s, keep.ID, ptr("tok-kept"))

	// The email and the tokens are free again.
	again := newUser(t, "Again", at(10))
	again.Email = u.Email
	again.PushToken = ptr("tok-gone-1")
	displaced, err := s.CreateUser(ctx, again, "h")
	if err != nil {
		t.Fatalf("CreateUser with the deleted user's email: %v", err)
	}
	wantIDs(t, "CreateUser with a deleted user's token: displaced", displaced)
	wantTokens(t, s, again.ID, "tok-gone-1")
	register(t, s, again.ID, "tok-gone-2", "phone", at(11))
}

func testImportUser(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := newUser(t, "Imported", at(-86400))
	u.IsAdmin = true
	u.IsActive = false
	u.Preferences = usersvc.Preferences{Email: true, Push: false, SMS: true, InApp: true}
	u.UpdatedAt = at(-3600)
	u.PushToken = ptr("tok-imp-2")
	devices := []usersvc.Device{
		{DeviceID: ptr("phone"), Token: "tok-imp-1", DeviceType: usersvc.DeviceIOS,
			CreatedAt: at(-80000), UpdatedAt: at(-70000), LastSeenAt: at(-7200)},
		{ID: newID(t), Token: "tok-imp-2", DeviceType: usersvc.DeviceWeb,
			CreatedAt: at(-60000), UpdatedAt: at(-50000), LastSeenAt: at(-3600)},
	}
	holder := create(t, s, "Holder", at(0))
	register(t, s, holder.ID, "tok-imp-1", "", at(1))
	register(t, s, holder.ID, "tok-holder", "", at(2))
	register(t, s, holder.ID, "tok-imp-2", "", at(3)) // holder's current token

	want := *u
	devices, err := account.PrepareImport(u, devices)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := s.ImportUser(ctx, u, "imported-hash", devices)
	if err != nil || !ok {
		t.Fatalf("ImportUser = %v, %v; want true", ok, err)
	}
	got, hash, err := s.UserByEmail(ctx, u.Email)
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	sameUser(t, got, &want)
	if hash.Hash != "imported-hash" {
		t.Errorf("hash = %q, want imported-hash", hash.Hash)
	}
	if devices[0].ID == "" || devices[0].UserID != u.ID {
		t.Errorf("ImportUser did not fill in the device record: %+v", devices[0])
	}
	stored := devicesOf(t, s, u.ID)
	if len(stored) != 2 {
		t.Fatalf("imported devices = %+v, want 2", stored)
	}
	// Most recently seen first: tok-imp-2, then tok-imp-1.
	sameDevice(t, stored[0], usersvc.Device{ID: devices[1].ID, UserID: u.ID, Token: "tok-imp-2", DeviceType: usersvc.DeviceWeb,
		CreatedAt: at(-60000), UpdatedAt: at(-50000), LastSeenAt: at(-3600)})
	sameDevice(t, stored[1], usersvc.Device{ID: devices[0].ID, UserID: u.ID, DeviceID: ptr("phone"), Token: "tok-imp-1", DeviceType: usersvc.DeviceIOS,
		CreatedAt: at(-80000), UpdatedAt: at(-70000), LastSeenAt: at(-7200)})
	// The tokens moved from their former holder.
	wantTokens(t, s, holder.ID, "tok-holder")
	wantPushToken(t, s, holder.ID, nil)

	t.Run("again is a no-op", func(t *testing.T) {
		again := *u
		again.Name = "Changed"
		again.Email = "changed@example.com"
		again.PushToken = ptr("tok-holder")
		more, err := account.PrepareImport(&again, []usersvc.Device{{Token: "tok-holder", DeviceType: usersvc.DeviceOther}})
		if err != nil {
			t.Fatal(err)
		}
		ok, err := s.ImportUser(ctx, &again, "other-hash", more)
		if err != nil || ok {
			t.Fatalf("second ImportUser = %v, %v; want false", ok, err)
		}
		got, hash, err := s.UserByEmail(ctx, u.Email)
		if err != nil {
			t.Fatalf("UserByEmail: %v", err)
		}
		sameUser(t, got, &want)
		if hash.Hash != "imported-hash" {
			t.Errorf("hash = %q after a repeated import", hash.Hash)
		}
		if ds := devicesOf(t, s, u.ID); len(ds) != 2 {
			t.Errorf("devices after a repeated import = %+v", ds)
		}
		wantTokens(t, s, holder.ID, "tok-holder")
		_, _, err = s.UserByEmail(ctx, "changed@example.com")
		wantCode(t, err, usersvc.ENotFound)
	})

	t.Run("existing id with another user's email is a no-op", func(t *testing.T) {
		again := *u
		again.Email = holder.Email
		ok, err := s.ImportUser(ctx, &again, "other-hash", nil)
		if err != nil || ok {
			t.Fatalf("ImportUser = %v, %v; want false", ok, err)
		}
		sameUser(t, getUser(t, s, u.ID), &want)
	})

	t.Run("email taken under another id", func(t *testing.T) {
		other := newUser(t, "Clash", at(5))
		other.Email = u.Email
		clash, err := account.PrepareImport(other, []usersvc.Device{{Token: "tok-clash", DeviceType: usersvc.DeviceOther}})
		if err != nil {
			t.Fatal(err)
		}
		ok, err := s.ImportUser(ctx, other, "h", clash)
		wantCode(t, err, usersvc.EConflict)
		if ok {
			t.Errorf("ImportUser reported an insert along with the conflict")
		}
		_, err = s.UserByID(ctx, other.ID)
		wantCode(t, err, usersvc.ENotFound)
		if affected, n, err := s.InvalidatePushTokens(ctx, []string{"tok-clash"}, "unregistered", at(6)); err != nil || n != 0 || len(affected) != 0 {
			t.Errorf("a device of the refused import was stored (%q, %d, %v)", affected, n, err)
		}
	})
}

func testTimestampRoundTrip(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	kolkata := time.FixedZone("IST", 5*3600+1800)
	cases := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"microseconds", t0, t0},
		{"nanoseconds are truncated", t0.Add(999 * time.Nanosecond), t0},
		{"another zone", t0.In(kolkata), t0},
		{"before the epoch", time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"far future", time.Date(2199, 1, 2, 3, 4, 5, 600007000, time.UTC), time.Date(2199, 1, 2, 3, 4, 5, 600007000, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser(t, "Clock", tc.in)
			u.PushToken = ptr("tok-" + u.ID)
			if _, err := s.CreateUser(ctx, u, "h"); err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			got := getUser(t, s, u.ID)
			sameTime(t, "created_at", got.CreatedAt, tc.want)
			sameTime(t, "updated_at", got.UpdatedAt, tc.want)
			// What the caller holds after the call is what a reload gives.
			if !u.CreatedAt.Equal(got.CreatedAt) {
				t.Errorf("caller's created_at = %s, stored %s", u.CreatedAt, got.CreatedAt)
			}
			ds := devicesOf(t, s, u.ID)
			if len(ds) != 1 {
				t.Fatalf("devices = %+v", ds)
			}
			sameTime(t, "device last_seen_at", ds[0].LastSeenAt, tc.want)

			d := register(t, s, u.ID, "tok2-"+u.ID, "dev", tc.in)
			sameTime(t, "registered last_seen_at", d.LastSeenAt, tc.want)
			sameTime(t, "reloaded last_seen_at", devicesOf(t, s, u.ID)[0].LastSeenAt, d.LastSeenAt)

			fam := account.RefreshFamily{ID: newID(t), UserID: u.ID, CreatedAt: tc.in, ExpiresAt: tc.in.Add(time.Hour)}
			first := account.RefreshToken{JTI: newID(t), FamilyID: fam.ID, UserID: u.ID, IssuedAt: tc.in, ExpiresAt: tc.in.Add(time.Hour)}
			if err := s.CreateRefreshFamily(ctx, fam, first, 0); err != nil {
				t.Fatalf("CreateRefreshFamily: %v", err)
			}
			st, err := s.RefreshTokenState(ctx, first.JTI)
			if err != nil {
				t.Fatalf("RefreshTokenState: %v", err)
			}
			sameTime(t, "issued_at", st.Token.IssuedAt, tc.want)
			sameTime(t, "expires_at", st.Token.ExpiresAt, tc.want.Add(time.Hour))
			sameTime(t, "family expires_at", st.FamilyExpiresAt, tc.want.Add(time.Hour))
		})
	}
}

func testPingAndClose(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	u := create(t, s, "Closing", at(0))
	// A call whose deadline has passed is answered as unavailable.
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	_, err := s.UserByID(expired, u.ID)
	wantCode(t, err, usersvc.EUnavailable)
	wantCode(t, s.SetPasswordHash(expired, u.ID, "h", at(1)), usersvc.EUnavailable)
	getUser(t, s, u.ID)

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantCode(t, s.Ping(ctx), usersvc.EUnavailable)
	_, err = s.UserByID(ctx, u.ID)
	wantCode(t, err, usersvc.EUnavailable)
	_, err = s.CreateUser(ctx, newUser(t, "Late", at(1)), "h")
	wantCode(t, err, usersvc.EUnavailable)
	_, err = spend(t, s, "jti", at(1))
	wantCode(t, err, usersvc.EUnavailable)
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
