package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/sqlite"
	"github.com/usersvc/usersvc/internal/token"
)

const serviceKey = "notifier-key-0123456789abcdef"

// userService is the user service on SQLite in a temporary directory.
type userService struct {
	url      string
	accounts *account.Service
	// feed, when set, answers GET /api/v1/events in place of the service.
	feed http.Handler
}

func newUserService(t *testing.T) *userService {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "usersvc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	hasher, err := password.New(password.WithParams(password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.NewHMACKeySet(token.Secret("test-secret-key-that-is-long-enough-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Config{Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := account.ParseServiceKeys("notifier:" + serviceKey + ":users.read,events.read")
	if err != nil {
		t.Fatal(err)
	}
	accounts := account.New(st, hasher, tokens, account.Options{ServiceKeys: keys})
	api := httpapi.NewServer(slog.New(slog.DiscardHandler), httpapi.Config{Version: "test"}, accounts, httpapi.Health{Database: st.Ping})
	s := &userService{accounts: accounts}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.feed != nil && r.URL.Path == "/api/v1/events" {
			s.feed.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// add registers a user with prefs and one device per token.
func (s *userService) add(t *testing.T, email, name string, prefs usersvc.Preferences, tokens ...string) string {
	t.Helper()
	ctx := t.Context()
	u, err := s.accounts.Register(ctx, usersvc.Registration{Email: email, Name: name, Password: "Str0ng!Passw0rd",
		Preferences: usersvc.PreferencesPatch{Email: &prefs.Email, Push: &prefs.Push}})
	if err != nil {
		t.Fatal(err)
	}
	types := []string{usersvc.DeviceAndroid, usersvc.DeviceIOS}
	for i, tok := range tokens {
		_, err := s.accounts.UpdatePushToken(ctx, account.Principal{UserID: u.ID}, u.ID, usersvc.PushTokenUpdate{Token: &tok, DeviceType: types[i%2]})
		if err != nil {
			t.Fatal(err)
		}
	}
	return u.ID
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestRun(t *testing.T) {
	s := newUserService(t)
	grace := s.add(t, "grace@example.com", "Grace Hopper", usersvc.Preferences{Email: true, Push: false}, "fcm:grace-phone")
	ada := s.add(t, "ada@example.com", "Ada Lovelace", usersvc.Preferences{Email: false, Push: true}, "fcm:ada-phone", "apns:ada-tablet")
	alan := s.add(t, "alan@example.com", "Alan Turing", usersvc.Preferences{Email: true, Push: true})
	nobody := uuid.NewString()

	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"-subject", "Dinner is ready", grace, ada, alan, nobody, "not-a-uuid"},
		env(map[string]string{"USERSVC_URL": s.url, "USERSVC_SERVICE_KEY": serviceKey}), strings.NewReader(""), &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	want := strings.Join([]string{
		"user " + grace,
		"  email to Grace Hopper <grace@example.com>: Dinner is ready",
		"  push: not sent (channel_off)",
		"user " + ada,
		"  email: not sent (channel_off)",
		"  push to apns:ada-tablet (ios): Dinner is ready",
		"  push to fcm:ada-phone (android): Dinner is ready",
		"user " + alan,
		"  email to Alan Turing <alan@example.com>: Dinner is ready",
		"  push: not sent (no_address)",
		"user " + nobody,
		"  no such user: nothing sent",
		"user not-a-uuid",
		"  no such user: nothing sent",
		"",
	}, "\n")
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

// The decision is the service's: the category of the notification, every
// channel, quiet hours in the user's time zone, a disabled account.
func TestRunCategoryChannelsAndQuietHours(t *testing.T) {
	s := newUserService(t)
	ctx := t.Context()
	root, err := s.accounts.CreateAdmin(ctx, usersvc.Registration{Email: "root@example.com", Name: "Root", Password: "Adm1n!Passw0rd"})
	if err != nil {
		t.Fatal(err)
	}
	admin := account.Principal{UserID: root.ID, IsAdmin: true}
	for _, c := range []usersvc.Category{
		{Key: "marketing", Name: "Marketing", Commercial: true, Defaults: map[string]bool{usersvc.ChannelSMS: false}},
		{Key: "security", Name: "Security", Required: true},
	} {
		if _, err := s.accounts.PutCategory(ctx, admin, &c); err != nil {
			t.Fatal(err)
		}
	}
	grace := s.add(t, "grace@example.com", "Grace Hopper", usersvc.DefaultPreferences(), "fcm:grace-phone")
	phone, tz := "+14155550123", "Pacific/Kiritimati" // UTC+14 all year: its quiet hours always cover now
	if _, err := s.accounts.UpdateProfile(ctx, admin, grace, usersvc.ProfilePatch{Phone: usersvc.Nullable[string]{Set: true, Value: &phone},
		Timezone: usersvc.Nullable[string]{Set: true, Value: &tz}}); err != nil {
		t.Fatal(err)
	}
	off := false
	if _, err := s.accounts.UpdatePreferences(ctx, admin, grace, usersvc.PreferencesPatch{
		Categories:    map[string]*usersvc.CategoryPatch{"marketing": {Channels: map[string]*bool{usersvc.ChannelEmail: &off}}},
		SetQuietHours: true,
		QuietHours:    quietAllDay(t, tz, []string{usersvc.ChannelPush}),
	}); err != nil {
		t.Fatal(err)
	}
	ada := s.add(t, "ada@example.com", "Ada Lovelace", usersvc.DefaultPreferences())
	if _, err := s.accounts.SetActive(ctx, admin, ada, false); err != nil {
		t.Fatal(err)
	}

	notify := func(category string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(ctx, []string{"-category", category, "-channels", "email,push,sms,in_app", "-subject", "hi", grace, ada},
			env(map[string]string{"USERSVC_URL": s.url, "USERSVC_SERVICE_KEY": serviceKey}), strings.NewReader(""), &out, &errOut)
		if err != nil {
			t.Fatalf("run: %v (%s)", err, errOut.String())
		}
		return out.String()
	}
	got := notify("marketing")
	for _, want := range []string{
		"user " + grace + "\n  email: not sent (category_off)\n  push: quiet hours, to send after ",
		"\n  sms: not sent (category_off)\n  in_app: hi\nuser " + ada + "\n  account disabled: nothing sent\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("marketing:\n%s\nwant it to hold:\n%s", got, want)
		}
	}
	// A required category ignores her choices and her quiet hours.
	got = notify("security")
	want := "user " + grace + "\n  email to Grace Hopper <grace@example.com>: hi\n  push to fcm:grace-phone (android): hi\n" +
		"  sms to +14155550123: hi\n  in_app: hi\nuser " + ada + "\n  account disabled: nothing sent\n"
	if got != want {
		t.Errorf("security:\n%s\nwant:\n%s", got, want)
	}
}

// quietAllDay returns quiet hours on channels that end two minutes after
// the present minute in zone tz and start a minute later: they cover now,
// and the minute or two a test takes.
func quietAllDay(t *testing.T, tz string, channels []string) *usersvc.QuietHours {
	t.Helper()
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(loc)
	minute := now.Hour()*60 + now.Minute()
	return &usersvc.QuietHours{Start: usersvc.ClockTime((minute + 3) % (24 * 60)), End: usersvc.ClockTime((minute + 2) % (24 * 60)), Channels: channels}
}

func TestRunFlagsOverTheEnvironment(t *testing.T) {
	s := newUserService(t)
	id := s.add(t, "grace@example.com", "Grace Hopper", usersvc.Preferences{Email: true})
	var out bytes.Buffer
	err := run(t.Context(), []string{"-url", s.url, "-service-key", serviceKey, id},
		env(map[string]string{"USERSVC_URL": "http://127.0.0.1:1", "USERSVC_SERVICE_KEY": "wrong"}), strings.NewReader(""), &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "email to Grace Hopper <grace@example.com>") {
		t.Errorf("output = %q", out.String())
	}
}

func TestRunFailures(t *testing.T) {
	s := newUserService(t)
	id := s.add(t, "grace@example.com", "Grace Hopper", usersvc.DefaultPreferences())
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want error
	}{
		{"no user id", nil, map[string]string{"USERSVC_SERVICE_KEY": serviceKey}, errUsage},
		{"no service key", []string{id}, map[string]string{"USERSVC_URL": s.url}, errUsage},
		{"unknown flag", []string{"-nope", id}, nil, errUsage},
		{"wrong key", []string{id}, map[string]string{"USERSVC_URL": s.url, "USERSVC_SERVICE_KEY": "wrong-key-0123456789"}, client.ErrUnauthorized},
		{"unknown source", []string{"-follow", "kafka://localhost", id}, map[string]string{"USERSVC_URL": s.url, "USERSVC_SERVICE_KEY": serviceKey}, errUsage},
		{"unknown channel", []string{"-channels", "email,fax", id}, map[string]string{"USERSVC_URL": s.url, "USERSVC_SERVICE_KEY": serviceKey}, errUsage},
		{"unknown category", []string{"-category", "nope", id}, map[string]string{"USERSVC_URL": s.url, "USERSVC_SERVICE_KEY": serviceKey}, client.ErrInvalid},
	} {
		err := run(ctx, tc.args, env(tc.env), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestRunStopsWhenTheServiceIsDown(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	for _, follow := range []string{"", "feed"} {
		err := run(context.Background(), []string{"-follow", follow, uuid.NewString()},
			env(map[string]string{"USERSVC_URL": url, "USERSVC_SERVICE_KEY": serviceKey}), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, client.ErrUnavailable) {
			t.Errorf("-follow %q: error = %v, want ErrUnavailable", follow, err)
		}
	}
}
