package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

func testCategories(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	if cs, err := s.Categories(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("Categories of an empty store = %v, %v", cs, err)
	}
	mk := &usersvc.Category{Key: "marketing", Name: "Marketing", Description: "Offers",
		Defaults:   map[string]bool{"email": true, "push": false, "sms": false, "in_app": true},
		Commercial: true}
	created, err := s.PutCategory(ctx, mk, at(1))
	if err != nil || !created {
		t.Fatalf("PutCategory(new) = %v, %v", created, err)
	}
	sameTime(t, "created_at", mk.CreatedAt, at(1))
	sec := &usersvc.Category{Key: "security", Name: "Security", Required: true,
		Defaults: map[string]bool{"email": true, "push": true, "sms": true, "in_app": true}}
	if _, err := s.PutCategory(ctx, sec, at(2)); err != nil {
		t.Fatal(err)
	}
	// Replacing keeps the creation time and reports no creation.
	mk.Name, mk.Defaults["push"] = "Marketing news", true
	created, err = s.PutCategory(ctx, mk, at(3))
	if err != nil || created {
		t.Fatalf("PutCategory(existing) = %v, %v", created, err)
	}
	got, err := s.Category(ctx, "marketing")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Marketing news" || got.Description != "Offers" || !got.Commercial || got.Required ||
		!got.Defaults["email"] || !got.Defaults["push"] || got.Defaults["sms"] || !got.Defaults["in_app"] {
		t.Errorf("Category = %+v", got)
	}
	sameTime(t, "created_at after a replace", got.CreatedAt, at(1))
	sameTime(t, "updated_at after a replace", got.UpdatedAt, at(3))
	cs, err := s.Categories(ctx)
	if err != nil || len(cs) != 2 || cs[0].Key != "marketing" || cs[1].Key != "security" || !cs[1].Required {
		t.Fatalf("Categories = %+v, %v", cs, err)
	}
	if err := s.DeleteCategory(ctx, "marketing", at(9)); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"marketing", "nope", "bad\x00key", "\xff"} {
		if _, err := s.Category(ctx, key); usersvc.ErrorCode(err) != usersvc.ENotFound {
			t.Errorf("Category(%q) = %v, want ENotFound", key, err)
		}
		if err := s.DeleteCategory(ctx, key, at(9)); usersvc.ErrorCode(err) != usersvc.ENotFound {
			t.Errorf("DeleteCategory(%q) = %v, want ENotFound", key, err)
		}
	}
	if _, err := s.PutCategory(ctx, &usersvc.Category{Key: "x", Name: "Bad\x00"}, at(4)); usersvc.ErrorCode(err) != usersvc.EInvalid {
		t.Errorf("PutCategory with NUL = %v, want EInvalid", err)
	}
}

func testRichPreferences(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Rich", at(0))
	other := create(t, s, "Other", at(0))
	off, on := false, true
	qh := &usersvc.QuietHours{Start: 22 * 60, End: 7 * 60, Timezone: ptr("Europe/Berlin"),
		Channels: []string{"push", "sms"}, Days: []string{}}
	steps := []struct {
		patch usersvc.PreferencesPatch
		want  usersvc.Preferences
	}{
		{usersvc.PreferencesPatch{SMS: &off, InApp: &off},
			usersvc.Preferences{Email: true, Push: true}},
		{usersvc.PreferencesPatch{Categories: map[string]*usersvc.CategoryPatch{"marketing": {Channels: map[string]*bool{"email": &off}}, "digest": {All: &off}}},
			usersvc.Preferences{Email: true, Push: true, Categories: map[string]usersvc.CategoryChoice{
				"marketing": {Channels: map[string]bool{"email": false}}, "digest": {All: &off}}}},
		// An object merged into a whole-category choice expands it.
		{usersvc.PreferencesPatch{Categories: map[string]*usersvc.CategoryPatch{"digest": {Channels: map[string]*bool{"push": &on}}}},
			usersvc.Preferences{Email: true, Push: true, Categories: map[string]usersvc.CategoryChoice{
				"marketing": {Channels: map[string]bool{"email": false}},
				"digest":    {Channels: map[string]bool{"email": false, "push": true, "sms": false, "in_app": false}}}}},
		{usersvc.PreferencesPatch{SetQuietHours: true, QuietHours: qh, Categories: map[string]*usersvc.CategoryPatch{"marketing": nil}},
			usersvc.Preferences{Email: true, Push: true, QuietHours: qh, Categories: map[string]usersvc.CategoryChoice{
				"digest": {Channels: map[string]bool{"email": false, "push": true, "sms": false, "in_app": false}}}}},
		// A switch-only patch keeps the rest.
		{usersvc.PreferencesPatch{Email: &off},
			usersvc.Preferences{Push: true, QuietHours: qh, Categories: map[string]usersvc.CategoryChoice{
				"digest": {Channels: map[string]bool{"email": false, "push": true, "sms": false, "in_app": false}}}}},
		{usersvc.PreferencesPatch{SetQuietHours: true},
			usersvc.Preferences{Push: true, Categories: map[string]usersvc.CategoryChoice{
				"digest": {Channels: map[string]bool{"email": false, "push": true, "sms": false, "in_app": false}}}}},
	}
	for i, st := range steps {
		got, err := s.UpdatePreferences(ctx, u.ID, st.patch, at(i+1))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !got.Equal(st.want) {
			t.Errorf("step %d: UpdatePreferences = %+v, want %+v", i, got, st.want)
		}
		if stored := getUser(t, s, u.ID); !stored.Preferences.Equal(st.want) {
			t.Errorf("step %d: stored = %+v, want %+v", i, stored.Preferences, st.want)
		}
		us, err := s.UsersByIDs(ctx, []string{u.ID})
		if err != nil || len(us) != 1 || !us[0].Preferences.Equal(st.want) {
			t.Errorf("step %d: UsersByIDs = %+v, %v", i, us, err)
		}
	}
	sameUser(t, getUser(t, s, other.ID), other)
	if _, err := s.UpdatePreferences(ctx, u.ID, usersvc.PreferencesPatch{SetQuietHours: true,
		QuietHours: &usersvc.QuietHours{Start: 1, End: 2, Timezone: ptr("Bad\x00")}}, at(20)); usersvc.ErrorCode(err) != usersvc.EInvalid {
		t.Errorf("quiet hours with NUL = %v, want EInvalid", err)
	}
	if _, err := s.UpdatePreferences(ctx, newID(t), usersvc.PreferencesPatch{SetQuietHours: true}, at(20)); usersvc.ErrorCode(err) != usersvc.ENotFound {
		t.Errorf("unknown user = %v, want ENotFound", err)
	}
}

// testConcurrentCategoryChoices has many writers change different
// categories of one user at once, in rounds: no choice may be lost.
func testConcurrentCategoryChoices(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	const writers, rounds = 8, 3
	for round := range rounds {
		u := create(t, s, fmt.Sprintf("Racer %d", round), at(0))
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				off := false
				key := fmt.Sprintf("cat-%d", w)
				patch := usersvc.PreferencesPatch{Categories: map[string]*usersvc.CategoryPatch{key: {All: &off}}}
				if w%2 == 0 {
					patch.SMS = &off
				}
				if _, err := s.UpdatePreferences(ctx, u.ID, patch, at(round+1)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		got := getUser(t, s, u.ID).Preferences
		if len(got.Categories) != writers || got.SMS {
			t.Errorf("round %d: %d of %d choices kept (sms %v): %+v", round, len(got.Categories), writers, got.SMS, got.Categories)
		}
	}
}

func testUpdateProfile(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Profile", at(0))
	set := func(v string) usersvc.Nullable[string] { return usersvc.Nullable[string]{Set: true, Value: &v} }
	got, err := s.UpdateProfile(ctx, u.ID, usersvc.ProfilePatch{Phone: set("+4930123456"), Locale: set("de-DE"), Timezone: set("Europe/Berlin")}, at(1))
	if err != nil {
		t.Fatal(err)
	}
	if strp(got.Phone) != `"+4930123456"` || strp(got.Locale) != `"de-DE"` || strp(got.Timezone) != `"Europe/Berlin"` || got.Name != "Profile" {
		t.Errorf("after setting = %+v", got)
	}
	sameUser(t, getUser(t, s, u.ID), got)
	// Only what the patch names changes; a set nil clears.
	got, err = s.UpdateProfile(ctx, u.ID, usersvc.ProfilePatch{Name: ptr("Renamed"), Phone: usersvc.Nullable[string]{Set: true}}, at(2))
	if err != nil {
		t.Fatal(err)
	}
	if got.Phone != nil || strp(got.Locale) != `"de-DE"` || strp(got.Timezone) != `"Europe/Berlin"` || got.Name != "Renamed" {
		t.Errorf("after clearing the phone = %+v", got)
	}
	sameTime(t, "updated_at", got.UpdatedAt, at(2))
	// A registration with a profile keeps it.
	v := newUser(t, "With Profile", at(3))
	v.Phone, v.Locale, v.Timezone = ptr("+14155550123"), ptr("en-US"), ptr("America/New_York")
	if _, err := s.CreateUser(ctx, v, "hash"); err != nil {
		t.Fatal(err)
	}
	sameUser(t, getUser(t, s, v.ID), v)
	if _, err := s.UpdateProfile(ctx, u.ID, usersvc.ProfilePatch{Locale: set("de\x00")}, at(4)); usersvc.ErrorCode(err) != usersvc.EInvalid {
		t.Errorf("locale with NUL = %v, want EInvalid", err)
	}
}
