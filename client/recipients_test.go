package client_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
	"github.com/usersvc/usersvc/client/clienttest"
)

// set is a Nullable that sets v.
func set(v string) usersvc.Nullable[string] { return usersvc.Nullable[string]{Set: true, Value: &v} }

// clear is a Nullable that clears the field.
var clear = usersvc.Nullable[string]{Set: true}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestProfile(t *testing.T) {
	s := newTestServer(t)
	anon := s.client(t)
	ctx := t.Context()

	u, err := anon.Register(ctx, usersvc.Registration{Email: "ada@example.com", Password: "Str0ng!Passw0rd", Name: "Ada",
		Profile: usersvc.ProfilePatch{Phone: set("+44 20 7946 0958"), Locale: set("en-gb"), Timezone: set("Europe/London")}})
	if err != nil {
		t.Fatal(err)
	}
	if deref(u.Phone) != "+442079460958" || deref(u.Locale) != "en-GB" || deref(u.Timezone) != "Europe/London" {
		t.Errorf("registered with phone %s, locale %s, time zone %s", deref(u.Phone), deref(u.Locale), deref(u.Timezone))
	}
	sess, err := anon.Login(ctx, usersvc.Credentials{Email: "ada@example.com", Password: "Str0ng!Passw0rd"})
	if err != nil {
		t.Fatal(err)
	}
	ada := s.client(t, client.WithBearerToken(sess.Tokens.Access))

	// Only what the patch names changes; a Set with no value clears.
	got, err := ada.UpdateProfile(ctx, u.ID, usersvc.ProfilePatch{Phone: clear, Timezone: set("America/New_York")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Phone != nil || deref(got.Locale) != "en-GB" || deref(got.Timezone) != "America/New_York" || got.Name != "Ada" {
		t.Errorf("after the patch: name %q, phone %s, locale %s, time zone %s", got.Name, deref(got.Phone), deref(got.Locale), deref(got.Timezone))
	}
	read, err := s.client(t, client.WithServiceKey(serviceKey)).User(ctx, u.ID)
	if err != nil || read.Phone != nil || deref(read.Timezone) != "America/New_York" {
		t.Fatalf("read back: %+v, %v", read, err)
	}
	// UpdateName is the patch of the name alone: the rest stays.
	got, err = ada.UpdateName(ctx, u.ID, "Ada Lovelace")
	if err != nil || got.Name != "Ada Lovelace" || deref(got.Locale) != "en-GB" || deref(got.Timezone) != "America/New_York" {
		t.Fatalf("after UpdateName: %+v, %v", got, err)
	}

	_, err = ada.UpdateProfile(ctx, u.ID, usersvc.ProfilePatch{Phone: set("555-0123"), Locale: set("not a locale!"), Timezone: set("Mars/Olympus")})
	e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	for field, msg := range map[string]string{"phone": usersvc.MsgPhone, "locale": usersvc.MsgLocale, "timezone": usersvc.MsgTimezone} {
		if !slices.Contains(e.Fields[field], msg) {
			t.Errorf("%s: messages %q, want %q", field, e.Fields[field], msg)
		}
	}
	_, err = ada.UpdateProfile(ctx, u.ID, usersvc.ProfilePatch{})
	clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	_, err = s.client(t, client.WithServiceKey(serviceKey)).UpdateProfile(ctx, u.ID, usersvc.ProfilePatch{Locale: set("fr")})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
}

// Marketing (commercial, no SMS by default), security (required, email
// and push only) and digest (in-app off by default).
var (
	marketing = usersvc.Category{Key: "marketing", Name: "Marketing", Description: "Offers and news", Commercial: true,
		Defaults: map[string]bool{usersvc.ChannelSMS: false}}
	security = usersvc.Category{Key: "security", Name: "Security alerts", Required: true,
		Defaults: map[string]bool{usersvc.ChannelSMS: false, usersvc.ChannelInApp: false}}
	digest = usersvc.Category{Key: "digest", Name: "Weekly digest", Defaults: map[string]bool{usersvc.ChannelInApp: false}}
)

// defineCategories defines marketing, security and digest through the client.
func defineCategories(t *testing.T, s *testServer) {
	t.Helper()
	curator := s.client(t, client.WithServiceKey(curatorKey))
	for _, c := range []usersvc.Category{marketing, security, digest} {
		if _, _, err := curator.PutCategory(t.Context(), c); err != nil {
			t.Fatalf("put %s: %v", c.Key, err)
		}
	}
}

func TestCategories(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	curator := s.client(t, client.WithServiceKey(curatorKey))
	notifier := s.client(t, client.WithServiceKey(serviceKey))
	admin := s.admin(t, "admin@example.com")
	user := s.register(t, "ada@example.com", "Ada")

	got, created, err := curator.PutCategory(ctx, marketing)
	if err != nil || !created {
		t.Fatalf("create: created %t, %v", created, err)
	}
	wantDefaults := map[string]bool{"email": true, "push": true, "sms": false, "in_app": true}
	if got.Key != "marketing" || got.Name != "Marketing" || got.Description != "Offers and news" || !got.Commercial || got.Required ||
		!reflect.DeepEqual(got.Defaults, wantDefaults) || got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
		t.Errorf("created = %+v", got)
	}
	changed := marketing
	changed.Name = "Marketing and offers"
	got, created, err = admin.Client.PutCategory(ctx, changed)
	if err != nil || created || got.Name != "Marketing and offers" {
		t.Fatalf("replace: %+v, created %t, %v", got, created, err)
	}
	if _, _, err := curator.PutCategory(ctx, security); err != nil {
		t.Fatal(err)
	}

	// Anyone authenticated lists them; one is read by admins and services
	// that read users.
	list, err := user.Client.Categories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range list {
		keys = append(keys, c.Key)
	}
	if !reflect.DeepEqual(keys, []string{"marketing", "security"}) {
		t.Errorf("categories = %q", keys)
	}
	if c, err := notifier.Category(ctx, "security"); err != nil || !c.Required || c.Defaults["sms"] || !c.Defaults["email"] {
		t.Errorf("security = %+v, %v", c, err)
	}
	_, err = user.Client.Category(ctx, "security")
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = s.client(t).Categories(ctx)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = notifier.Category(ctx, "nope")
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)

	// Writing takes categories.write (or an admin).
	_, _, err = notifier.PutCategory(ctx, digest)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, _, err = user.Client.PutCategory(ctx, digest)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	bad := usersvc.Category{Key: "Bad_Key", Name: " ", Required: true, Commercial: true}
	_, _, err = curator.PutCategory(ctx, bad)
	e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	for _, f := range []string{"key", "name", "commercial"} {
		if len(e.Fields[f]) == 0 {
			t.Errorf("no message for %s: %v", f, e.Fields)
		}
	}
	_, _, err = curator.PutCategory(ctx, usersvc.Category{Key: "fax", Name: "Fax", Defaults: map[string]bool{"fax": true}})
	if e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest); len(e.Fields["defaults.fax"]) == 0 {
		t.Errorf("fields = %v", e.Fields)
	}

	if err := curator.DeleteCategory(ctx, "marketing"); err != nil {
		t.Fatal(err)
	}
	err = curator.DeleteCategory(ctx, "marketing")
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	_, err = notifier.Category(ctx, "marketing")
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
}

// The preferences patch carries every kind of change the API knows, and
// the answer round-trips through GET.
func TestPreferencesCategoriesAndQuietHours(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	defineCategories(t, s)
	ada := s.register(t, "ada@example.com", "Ada")
	berlin := "Europe/Berlin"

	prefs, err := ada.Client.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{
		SMS: ptr(false),
		Categories: map[string]*usersvc.CategoryPatch{
			"marketing": {Channels: map[string]*bool{"email": ptr(false), "push": ptr(true)}},
			"digest":    {All: ptr(false)},
		},
		SetQuietHours: true,
		QuietHours: &usersvc.QuietHours{Start: 22 * 60, End: 7*60 + 30, Timezone: &berlin,
			Channels: []string{"sms", "push", "push"}, Days: []string{"sat", "fri"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := usersvc.Preferences{Email: true, Push: true, SMS: false, InApp: true,
		Categories: map[string]usersvc.CategoryChoice{
			"marketing": {Channels: map[string]bool{"email": false, "push": true}},
			"digest":    {All: ptr(false)},
		},
		// In canonical form: channels and days in their fixed order, once each.
		QuietHours: &usersvc.QuietHours{Start: 22 * 60, End: 7*60 + 30, Timezone: &berlin,
			Channels: []string{"push", "sms"}, Days: []string{"fri", "sat"}},
	}
	if !prefs.Equal(want) {
		t.Errorf("after the patch:\n%+v\nwant\n%+v", prefs, want)
	}
	if read, err := ada.Client.Preferences(ctx, ada.ID); err != nil || !read.Equal(want) {
		t.Errorf("read back:\n%+v, %v\nwant\n%+v", read, err, want)
	}

	// A nil channel drops that choice, a nil category drops the whole
	// choice, quiet hours set to nil clear them; the rest stays.
	prefs, err = ada.Client.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{
		Categories: map[string]*usersvc.CategoryPatch{
			"marketing": {Channels: map[string]*bool{"email": nil}},
			"digest":    nil,
		},
		SetQuietHours: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	want = usersvc.Preferences{Email: true, Push: true, SMS: false, InApp: true,
		Categories: map[string]usersvc.CategoryChoice{"marketing": {Channels: map[string]bool{"push": true}}}}
	if !prefs.Equal(want) {
		t.Errorf("after the second patch:\n%+v\nwant\n%+v", prefs, want)
	}
	// Quiet hours without channels cover every channel.
	prefs, err = ada.Client.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{SetQuietHours: true,
		QuietHours: &usersvc.QuietHours{Start: 23 * 60, End: 6 * 60}})
	if err != nil {
		t.Fatal(err)
	}
	if q := prefs.QuietHours; q == nil || !slices.Equal(q.Channels, usersvc.Channels) || q.Timezone != nil || len(q.Days) != 0 {
		t.Errorf("quiet hours = %+v", q)
	}

	// Unknown categories, required ones turned off and bad quiet hours are
	// refused, naming the field, and change nothing.
	_, err = ada.Client.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Categories: map[string]*usersvc.CategoryPatch{
		"nope":     {All: ptr(true)},
		"security": {Channels: map[string]*bool{"email": ptr(false)}},
	}})
	e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if len(e.Fields["categories.nope"]) == 0 || len(e.Fields["categories.security"]) == 0 {
		t.Errorf("fields = %v", e.Fields)
	}
	tokyo := "Asia/Nowhere"
	_, err = ada.Client.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{SetQuietHours: true,
		QuietHours: &usersvc.QuietHours{Start: 60, End: 60, Timezone: &tokyo, Channels: []string{"fax"}}})
	e = clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	for _, f := range []string{"quiet_hours.end", "quiet_hours.timezone", "quiet_hours.channels"} {
		if len(e.Fields[f]) == 0 {
			t.Errorf("no message for %s: %v", f, e.Fields)
		}
	}
	if read, err := ada.Client.Preferences(ctx, ada.ID); err != nil || read.QuietHours == nil || read.QuietHours.Start != 23*60 || len(read.Categories) != 1 {
		t.Errorf("a refused patch changed the preferences: %+v, %v", read, err)
	}

	// Registration takes the same preferences.
	u, err := s.client(t).Register(ctx, usersvc.Registration{Email: "grace@example.com", Password: "Str0ng!Passw0rd", Name: "Grace",
		Preferences: usersvc.PreferencesPatch{InApp: ptr(false), Categories: map[string]*usersvc.CategoryPatch{"marketing": {All: ptr(false)}}}})
	if err != nil {
		t.Fatal(err)
	}
	want = usersvc.Preferences{Email: true, Push: true, SMS: true, InApp: false,
		Categories: map[string]usersvc.CategoryChoice{"marketing": {All: ptr(false)}}}
	if !u.Preferences.Equal(want) {
		t.Errorf("registered with %+v, want %+v", u.Preferences, want)
	}
}

// channelSummary writes a decision as "channel:send:address" or
// "channel:reason", for comparison.
func channelSummary(d usersvc.Decision) []string {
	var out []string
	for _, c := range d.Channels {
		if !c.Send {
			s := c.Channel + ":" + c.Reason
			if c.DeliverAfter != nil {
				s += "@" + c.DeliverAfter.Format(time.RFC3339)
			}
			out = append(out, s)
			continue
		}
		s := c.Channel + ":send"
		switch {
		case c.Email != nil:
			s += ":" + *c.Email
		case c.Phone != nil:
			s += ":" + *c.Phone
		case len(c.Devices) > 0:
			for _, d := range c.Devices {
				s += ":" + d.Token
			}
		}
		out = append(out, s)
	}
	return out
}

func TestResolve(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	defineCategories(t, s)
	notifier := s.client(t, client.WithServiceKey(serviceKey))

	// Ada: a phone, a push device, Berlin, quiet hours 22:00–07:00 on push
	// and sms, no marketing by email.
	ada, err := s.addUser(ctx, "ada@example.com", "Ada", usersvc.DefaultPreferences(), "fcm:ada-phone")
	if err != nil {
		t.Fatal(err)
	}
	admin := s.admin(t, "admin@example.com")
	if _, err := admin.Client.UpdateProfile(ctx, ada, usersvc.ProfilePatch{Phone: set("+14155550123"), Locale: set("de-DE"), Timezone: set("Europe/Berlin")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Client.UpdatePreferences(ctx, ada, usersvc.PreferencesPatch{
		Categories:    map[string]*usersvc.CategoryPatch{"marketing": {Channels: map[string]*bool{"email": ptr(false)}}},
		SetQuietHours: true,
		QuietHours:    &usersvc.QuietHours{Start: 22 * 60, End: 7 * 60, Channels: []string{"push", "sms"}},
	}); err != nil {
		t.Fatal(err)
	}
	// Bob: email off, no device, no phone; disabled Carol.
	bob, err := s.addUser(ctx, "bob@example.com", "Bob", usersvc.Preferences{Email: false, Push: true})
	if err != nil {
		t.Fatal(err)
	}
	carol, err := s.addUser(ctx, "carol@example.com", "Carol", usersvc.DefaultPreferences())
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Client.SetActive(ctx, carol, false); err != nil {
		t.Fatal(err)
	}
	nobody := uuid.NewString()

	// 23:30 in Berlin (CEST, UTC+2) on a summer night: Ada's quiet hours
	// end at 07:00 Berlin, 05:00 UTC.
	at := time.Date(2026, 7, 14, 21, 30, 0, 0, time.UTC)
	all := []string{"email", "push", "sms", "in_app"}
	for _, tc := range []struct {
		category string
		want     map[string][]string
	}{
		{"marketing", map[string][]string{
			ada:   {"email:category_off", "push:quiet_hours@2026-07-15T05:00:00Z", "sms:category_off", "in_app:send"},
			bob:   {"email:channel_off", "push:no_address", "sms:category_off", "in_app:send"},
			carol: {"email:account_disabled", "push:account_disabled", "sms:account_disabled", "in_app:account_disabled"},
		}},
		// Required: the user's switches, choices and quiet hours do not
		// apply, the category's defaults do.
		{"security", map[string][]string{
			ada:   {"email:send:ada@example.com", "push:send:fcm:ada-phone", "sms:category_off", "in_app:category_off"},
			bob:   {"email:send:bob@example.com", "push:no_address", "sms:category_off", "in_app:category_off"},
			carol: {"email:account_disabled", "push:account_disabled", "sms:account_disabled", "in_app:account_disabled"},
		}},
		{"", map[string][]string{
			ada:   {"email:send:ada@example.com", "push:quiet_hours@2026-07-15T05:00:00Z", "sms:quiet_hours@2026-07-15T05:00:00Z", "in_app:send"},
			bob:   {"email:channel_off", "push:no_address", "sms:no_address", "in_app:send"},
			carol: {"email:account_disabled", "push:account_disabled", "sms:account_disabled", "in_app:account_disabled"},
		}},
	} {
		res, err := notifier.Resolve(ctx, client.ResolveRequest{Category: tc.category, Channels: all, UserIDs: []string{carol, nobody, ada, bob, ada}, At: at})
		if err != nil {
			t.Fatalf("%q: %v", tc.category, err)
		}
		if !res.At.Equal(at) || res.Category != tc.category || !slices.Equal(res.NotFound, []string{nobody}) {
			t.Errorf("%q: at %v, category %q, not found %q", tc.category, res.At, res.Category, res.NotFound)
		}
		var order []string
		for _, d := range res.Recipients {
			order = append(order, d.UserID)
			if got := channelSummary(d); !slices.Equal(got, tc.want[d.UserID]) {
				t.Errorf("%q, user %s:\n got %q\nwant %q", tc.category, d.UserID, got, tc.want[d.UserID])
			}
		}
		if !slices.Equal(order, []string{carol, ada, bob}) {
			t.Errorf("%q: recipients in the order %q", tc.category, order)
		}
	}

	// The addresses and the profile that come with a decision.
	res, err := notifier.Resolve(ctx, client.ResolveRequest{Channels: []string{"sms", "push"}, UserIDs: []string{ada},
		At: time.Date(2026, 7, 14, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Recipients[0]
	if deref(d.Locale) != "de-DE" || deref(d.Timezone) != "Europe/Berlin" || len(d.Channels) != 2 {
		t.Fatalf("decision = %+v", d)
	}
	if sms := d.Channels[0]; sms.Channel != "sms" || !sms.Send || deref(sms.Phone) != "+14155550123" {
		t.Errorf("sms = %+v", sms)
	}
	push := d.Channels[1]
	if push.Channel != "push" || !push.Send || len(push.Devices) != 1 {
		t.Fatalf("push = %+v", push)
	}
	if dev := push.Devices[0]; dev.Token != "fcm:ada-phone" || dev.UserID != ada || dev.ID == "" || deref(dev.DeviceID) != "phone" ||
		dev.DeviceType != usersvc.DeviceAndroid || dev.LastSeenAt.IsZero() {
		t.Errorf("device = %+v", dev)
	}

	// Bad requests name the field; users and services without users.read
	// may not ask.
	_, err = notifier.Resolve(ctx, client.ResolveRequest{Category: "nope", Channels: []string{"fax"}, UserIDs: []string{"x"}})
	e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if len(e.Fields["channels"]) == 0 || len(e.Fields["user_ids"]) == 0 {
		t.Errorf("fields = %v", e.Fields)
	}
	_, err = notifier.Resolve(ctx, client.ResolveRequest{Category: "nope", Channels: []string{"email"}, UserIDs: []string{ada}})
	if e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest); len(e.Fields["category"]) == 0 {
		t.Errorf("fields = %v", e.Fields)
	}
	_, err = s.client(t, client.WithServiceKey(invalidatorKey)).Resolve(ctx, client.ResolveRequest{Channels: []string{"email"}, UserIDs: []string{ada}})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
}

// More than 1000 ids go in batches of 1000, merged in the order of the
// request, decided for one moment.
func TestResolveBatches(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	notifier := s.client(t, client.WithServiceKey(serviceKey))
	const n = 2500
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	// Users at the start, the end and either side of each batch boundary.
	at := map[int]bool{0: true, 999: true, 1000: true, 1999: true, 2000: true, n - 1: true}
	var users []string
	for i := range n {
		if at[i] {
			id, err := s.addUser(ctx, fmt.Sprintf("u%d@example.com", i), "U", usersvc.Preferences{Email: true, Push: false})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = id
			users = append(users, id)
		}
	}
	// A repeat, in upper case, of a user of the first batch: once in the answer.
	req := append(slices.Clone(ids), strings.ToUpper(users[0]))

	const path = "POST /api/v1/recipients/resolve"
	before := s.count(path)
	res, err := notifier.Resolve(ctx, client.ResolveRequest{Channels: []string{"email", "push"}, UserIDs: req})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.count(path) - before; got != 3 {
		t.Errorf("%d requests, want 3", got)
	}
	var got []string
	for _, d := range res.Recipients {
		got = append(got, d.UserID)
		if len(d.Channels) != 2 || !d.Channels[0].Send || d.Channels[1].Reason != usersvc.ReasonChannelOff {
			t.Errorf("decision of %s = %q", d.UserID, channelSummary(d))
		}
	}
	if !slices.Equal(got, users) {
		t.Errorf("recipients %q, want %q", got, users)
	}
	var wantMissing []string
	for i, id := range ids {
		if !at[i] {
			wantMissing = append(wantMissing, id)
		}
	}
	if !slices.Equal(res.NotFound, wantMissing) {
		t.Errorf("%d not found (first %q), want %d in the order of the request", len(res.NotFound), res.NotFound[:min(3, len(res.NotFound))], len(wantMissing))
	}
	if res.At.IsZero() || time.Since(res.At) > time.Minute || res.At.Location() != time.UTC {
		t.Errorf("at = %v", res.At)
	}

	// A bad id in the second batch fails the call, naming the batch.
	bad := slices.Clone(ids[:1500])
	bad[1200] = "not-a-uuid"
	_, err = notifier.Resolve(ctx, client.ResolveRequest{Channels: []string{"email"}, UserIDs: bad})
	clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if !strings.Contains(err.Error(), "batch 2 of 2") {
		t.Errorf("error %q does not name the batch", err)
	}

	// Up to 1000 ids are one request, sent as they are.
	before = s.count(path)
	res, err = notifier.Resolve(ctx, client.ResolveRequest{Channels: []string{"email"}, UserIDs: ids[:1000]})
	if err != nil || s.count(path)-before != 1 || len(res.Recipients) != 2 || len(res.NotFound) != 998 {
		t.Errorf("1000 ids: %d requests, %v", s.count(path)-before, err)
	}
}

// The batches of one call are decided for the same moment, the one the
// service gave the first.
func TestResolveBatchesShareTheMoment(t *testing.T) {
	var ats []string
	srv := newScriptedResolve(t, func(at string) { ats = append(ats, at) })
	c, err := client.New(srv, client.WithServiceKey(serviceKey))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 2001)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	res, err := c.Resolve(t.Context(), client.ResolveRequest{Channels: []string{"email"}, UserIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ats)
	if !slices.Equal(ats, []string{"", "2026-03-29T00:30:00Z", "2026-03-29T00:30:00Z"}) {
		t.Errorf("the batches asked for the moments %q", ats)
	}
	if want := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC); !res.At.Equal(want) || len(res.NotFound) != 2001 {
		t.Errorf("at %v, %d not found", res.At, len(res.NotFound))
	}
}

// newScriptedResolve serves the resolve endpoint: every id is not found,
// and the moment is the one asked for, else 2026-03-29T00:30:00Z. It tells
// seen the "at" of each request.
func newScriptedResolve(t *testing.T, seen func(at string)) string {
	t.Helper()
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			UserIDs []string `json:"user_ids"`
			At      string   `json:"at"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen(body.At)
		mu.Unlock()
		at := body.At
		if at == "" {
			at = "2026-03-29T00:30:00Z"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"success": true, "message": "", "error": nil,
			"data": map[string]any{"at": at, "category": nil, "recipients": []any{}, "not_found": body.UserIDs}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// One-click unsubscribe end to end: the link, a GET that changes nothing,
// the POST a mail client makes, and what resolve says afterwards.
func TestUnsubscribeLink(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	defineCategories(t, s)
	notifier := s.client(t, client.WithServiceKey(serviceKey))
	ada := s.register(t, "ada@example.com", "Ada")
	grace := s.register(t, "grace@example.com", "Grace")

	link, err := notifier.UnsubscribeLink(ctx, ada.ID, "marketing", "email")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link.URL, s.URL+"/api/v1/unsubscribe/") {
		t.Errorf("url = %q", link.URL)
	}
	if link.Headers["List-Unsubscribe"] != "<"+link.URL+">" || link.Headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Errorf("headers = %q", link.Headers)
	}

	resolve := func() map[string][]string {
		t.Helper()
		res, err := notifier.Resolve(ctx, client.ResolveRequest{Category: "marketing", Channels: []string{"email", "push"}, UserIDs: []string{ada.ID, grace.ID}})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, d := range res.Recipients {
			out[d.UserID] = channelSummary(d)
		}
		return out
	}
	before := resolve()
	if !slices.Equal(before[ada.ID], []string{"email:send:ada@example.com", "push:no_address"}) {
		t.Fatalf("before: %q", before[ada.ID])
	}

	// A GET shows the page and changes nothing.
	resp, err := http.Get(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<form method=\"post\">") || !strings.Contains(string(page), "marketing") {
		t.Errorf("GET: %d %s", resp.StatusCode, page)
	}
	if got := resolve(); !reflect.DeepEqual(got, before) {
		t.Errorf("a GET changed the decisions: %q", got)
	}

	// A tampered token is a 400 and changes nothing.
	tampered := link.URL[:len(link.URL)-2] + flip(link.URL[len(link.URL)-2:])
	for _, u := range []string{tampered, link.URL[:len(link.URL)-10]} {
		status := postOneClick(t, u)
		if status != http.StatusBadRequest {
			t.Errorf("POST %s: %d, want 400", u, status)
		}
	}
	if got := resolve(); !reflect.DeepEqual(got, before) {
		t.Errorf("a bad token changed the decisions: %q", got)
	}

	// The POST of a mail client, without credentials, twice.
	for range 2 {
		if status := postOneClick(t, link.URL); status != http.StatusOK {
			t.Fatalf("POST: %d", status)
		}
	}
	after := resolve()
	if !slices.Equal(after[ada.ID], []string{"email:category_off", "push:no_address"}) {
		t.Errorf("ada after: %q", after[ada.ID])
	}
	if !slices.Equal(after[grace.ID], before[grace.ID]) {
		t.Errorf("grace changed: %q, was %q", after[grace.ID], before[grace.ID])
	}
	prefs, err := ada.Client.Preferences(ctx, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := prefs.Categories["marketing"]; !ok || !reflect.DeepEqual(c.Channels, map[string]bool{"email": false}) {
		t.Errorf("ada's marketing choice = %+v", prefs.Categories)
	}

	// Only commercial categories, known channels and existing users.
	_, err = notifier.UnsubscribeLink(ctx, ada.ID, "security", "")
	clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	_, err = notifier.UnsubscribeLink(ctx, ada.ID, "marketing", "fax")
	clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	_, err = notifier.UnsubscribeLink(ctx, uuid.NewString(), "marketing", "")
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	_, err = ada.Client.UnsubscribeLink(ctx, ada.ID, "marketing", "")
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
}

// flip changes the first character of s to another URL-safe one.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// postOneClick posts the RFC 8058 body to u, as a mail client does, and
// returns the status.
func postOneClick(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.PostForm(u, url.Values{"List-Unsubscribe": {"One-Click"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
