package usersvc_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
)

func TestCheckPhone(t *testing.T) {
	good := map[string]string{
		"+49 30 12345678":    "+493012345678",
		"+49 30 1234567":     "+49301234567",
		"+1 415 555 0123":    "+14155550123",
		"+1 (415) 555-0123":  "+14155550123",
		"+14155550123":       "+14155550123",
		" +44 20 7946 0958 ": "+442079460958",
		"+33 1 23 45 67 89":  "+33123456789",
		"+81 3-1234-5678":    "+81312345678",
		"+49.30.12345678":    "+493012345678",
	}
	for in, want := range good {
		got, msgs := usersvc.CheckPhone(in)
		if len(msgs) != 0 || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, msgs, want)
		}
	}
	bad := []string{
		"",
		"030 12345678",     // no country code
		"4930123456",       // no '+'
		"+49 30 ABCDEFG",   // letters
		"+49abc",           // letters
		"+49 30",           // too short
		"+1 415",           // too short
		"+1 415 555 01234", // too long for the US
		"+999 123456",      // no such country code
		"+" + strings.Repeat("1", 40),
		"+49 30 12345678 ext. 9999999999999999",
		"+1 415 555 0123 ext 12", // an extension E.164 cannot hold
		"+1-800-FLOWERS",         // vanity letters
		"++49 30 12345678",
		"+49 30 1234567/8",
	}
	for _, in := range bad {
		if got, msgs := usersvc.CheckPhone(in); len(msgs) == 0 {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

func TestCheckLocale(t *testing.T) {
	good := map[string]string{
		"en-us":      "en-US",
		"EN-gb":      "en-GB",
		"en_US":      "en-US",
		" fr ":       "fr",
		"de":         "de",
		"zh-hant-tw": "zh-Hant-TW",
		"pt-BR":      "pt-BR",
	}
	for in, want := range good {
		got, msgs := usersvc.CheckLocale(in)
		if len(msgs) != 0 || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, msgs, want)
		}
	}
	for _, in := range []string{"", "  ", "und", "x", "not a locale", "en-", "abcdefghi", "en-US-" + strings.Repeat("x", 40), "<script>"} {
		if got, msgs := usersvc.CheckLocale(in); len(msgs) == 0 {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

func TestCheckTimezone(t *testing.T) {
	good := map[string]string{
		"Europe/Berlin":    "Europe/Berlin",
		" Asia/Tokyo ":     "Asia/Tokyo",
		"UTC":              "UTC",
		"America/New_York": "America/New_York",
	}
	for in, want := range good {
		got, msgs := usersvc.CheckTimezone(in)
		if len(msgs) != 0 || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, msgs, want)
		}
	}
	for _, in := range []string{"Local", "", " ", "Mars/Olympus", "../etc", "../../etc/passwd", "Europe/../etc/passwd", "/etc/localtime", "Europe/" + strings.Repeat("x", 70)} {
		if got, msgs := usersvc.CheckTimezone(in); len(msgs) == 0 {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

func TestQuietHoursLocation(t *testing.T) {
	tests := []struct {
		name   string
		own    *string
		userTZ *string
		want   string
	}{
		{"own zone first", ptr(newYork), ptr(tokyo), newYork},
		{"user's zone", nil, ptr(tokyo), tokyo},
		{"UTC when neither", nil, nil, "UTC"},
		{"unknown own zone falls back to the user's", ptr("Mars/Olympus"), ptr(tokyo), tokyo},
		{"unknown zones fall back to UTC", ptr("Mars/Olympus"), ptr("Venus/Maxwell"), "UTC"},
	}
	for _, tt := range tests {
		q := usersvc.QuietHours{Timezone: tt.own}
		if got := q.Location(tt.userTZ).String(); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	if q := (usersvc.QuietHours{}); q.Location(nil) != time.UTC {
		t.Errorf("not time.UTC")
	}
}

func TestProfilePatch(t *testing.T) {
	p := usersvc.ProfilePatch{
		Name:     ptr("  Ann  "),
		Phone:    usersvc.Nullable[string]{Set: true, Value: ptr("+49 30 12345678")},
		Locale:   usersvc.Nullable[string]{Set: true, Value: ptr("de-de")},
		Timezone: usersvc.Nullable[string]{Set: true}, // clears
	}
	if p.Empty() {
		t.Fatal("Empty() with every field set")
	}
	if err := p.Validate(usersvc.FieldErrors{}); err != nil {
		t.Fatal(err)
	}
	u := &usersvc.User{Name: "Old", Timezone: ptr(berlin), Phone: ptr("+14155550123")}
	p.Apply(u)
	if u.Name != "Ann" || deref(u.Phone) != "+493012345678" || deref(u.Locale) != "de-DE" || u.Timezone != nil {
		t.Fatalf("applied: name %q, phone %v, locale %v, timezone %v", u.Name, deref(u.Phone), deref(u.Locale), deref(u.Timezone))
	}

	// Unset fields stay as they are.
	u = &usersvc.User{Name: "Ann", Phone: ptr("+14155550123"), Locale: ptr("en-US"), Timezone: ptr(tokyo)}
	usersvc.ProfilePatch{}.Apply(u)
	if u.Name != "Ann" || deref(u.Phone) != "+14155550123" || deref(u.Locale) != "en-US" || deref(u.Timezone) != tokyo {
		t.Fatalf("an empty patch changed the profile: %+v", u)
	}
	if !(usersvc.ProfilePatch{}).Empty() {
		t.Fatal("zero patch not Empty()")
	}

	// Every bad field is named; a field that already failed is not checked again.
	bad := usersvc.ProfilePatch{
		Phone:    usersvc.Nullable[string]{Set: true, Value: ptr("030 1234567")},
		Locale:   usersvc.Nullable[string]{Set: true, Value: ptr("und")},
		Timezone: usersvc.Nullable[string]{Set: true, Value: ptr("Mars/Olympus")},
	}
	fe := usersvc.FieldErrors{"timezone": {"Must be a string"}}
	if err := bad.Validate(fe); usersvc.ErrorCode(err) != usersvc.EInvalid {
		t.Fatalf("error %v", err)
	}
	if got := slices.Sorted(maps.Keys(fe)); !slices.Equal(got, []string{"locale", "phone", "timezone"}) {
		t.Fatalf("errors in %v", got)
	}
	if len(fe["timezone"]) != 1 || len(fe["phone"]) != 1 {
		t.Fatalf("messages: %v", fe)
	}
}
