package usersvc_test

import (
	"slices"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
)

func ptr[T any](v T) *T { return &v }

// utc is a UTC instant, to the second.
func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

// hm is a time of day.
func hm(h, m int) usersvc.ClockTime { return usersvc.ClockTime(h*60 + m) }

const (
	berlin  = "Europe/Berlin"
	tokyo   = "Asia/Tokyo"
	newYork = "America/New_York"
)

// Europe/Berlin in 2026: on Sunday 29 March at 01:00 UTC the clocks go from
// 02:00 CET (UTC+1) to 03:00 CEST (UTC+2); on Sunday 25 October at 01:00
// UTC they go from 03:00 CEST back to 02:00 CET. 27 March 2026 is a Friday.
func TestQuiet(t *testing.T) {
	night := func(tz *string, days ...string) usersvc.QuietHours {
		return usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Timezone: tz, Days: days}
	}
	window := func(start, end usersvc.ClockTime, tz *string, days ...string) usersvc.QuietHours {
		return usersvc.QuietHours{Start: start, End: end, Timezone: tz, Days: days}
	}
	tests := []struct {
		name   string
		q      usersvc.QuietHours
		userTZ *string
		at     time.Time
		quiet  bool
		until  time.Time
	}{
		// A window wrapping midnight, in UTC (neither time zone set).
		{"wrap 23:30", night(nil), nil, utc(2026, 6, 10, 23, 30, 0), true, utc(2026, 6, 11, 7, 0, 0)},
		{"wrap 03:00", night(nil), nil, utc(2026, 6, 11, 3, 0, 0), true, utc(2026, 6, 11, 7, 0, 0)},
		{"wrap 06:59:59", night(nil), nil, utc(2026, 6, 11, 6, 59, 59), true, utc(2026, 6, 11, 7, 0, 0)},
		{"wrap 07:00 end exclusive", night(nil), nil, utc(2026, 6, 11, 7, 0, 0), false, time.Time{}},
		{"wrap 21:59", night(nil), nil, utc(2026, 6, 10, 21, 59, 0), false, time.Time{}},
		{"wrap 22:00 start inclusive", night(nil), nil, utc(2026, 6, 10, 22, 0, 0), true, utc(2026, 6, 11, 7, 0, 0)},
		{"wrap 00:00", night(nil), nil, utc(2026, 6, 11, 0, 0, 0), true, utc(2026, 6, 11, 7, 0, 0)},
		{"wrap noon", night(nil), nil, utc(2026, 6, 11, 12, 0, 0), false, time.Time{}},

		// A window within one day.
		{"day 08:59", window(hm(9, 0), hm(17, 0), nil), nil, utc(2026, 6, 10, 8, 59, 0), false, time.Time{}},
		{"day 09:00", window(hm(9, 0), hm(17, 0), nil), nil, utc(2026, 6, 10, 9, 0, 0), true, utc(2026, 6, 10, 17, 0, 0)},
		{"day 17:00", window(hm(9, 0), hm(17, 0), nil), nil, utc(2026, 6, 10, 17, 0, 0), false, time.Time{}},
		{"day 03:00", window(hm(9, 0), hm(17, 0), nil), nil, utc(2026, 6, 10, 3, 0, 0), false, time.Time{}},
		{"start equals end is empty", window(hm(9, 0), hm(9, 0), nil), nil, utc(2026, 6, 10, 9, 0, 0), false, time.Time{}},

		// A zone without DST: Tokyo is UTC+9 all year, including the night
		// Europe changes its clocks.
		{"tokyo 22:30 JST", night(nil), ptr(tokyo), utc(2026, 3, 29, 13, 30, 0), true, utc(2026, 3, 29, 22, 0, 0)},
		{"tokyo 21:59 JST", night(nil), ptr(tokyo), utc(2026, 3, 29, 12, 59, 0), false, time.Time{}},
		{"tokyo 06:59 JST", night(nil), ptr(tokyo), utc(2026, 3, 29, 21, 59, 0), true, utc(2026, 3, 29, 22, 0, 0)},
		{"tokyo 08:30 JST is 23:30 UTC", night(nil), ptr(tokyo), utc(2026, 3, 29, 23, 30, 0), false, time.Time{}},

		// Berlin, spring: the night of 28 to 29 March is an hour shorter.
		{"spring 22:30 CET, ends 07:00 CEST", night(nil), ptr(berlin), utc(2026, 3, 28, 21, 30, 0), true, utc(2026, 3, 29, 5, 0, 0)},
		{"spring 01:59 CET, last minute before the jump", night(nil), ptr(berlin), utc(2026, 3, 29, 0, 59, 0), true, utc(2026, 3, 29, 5, 0, 0)},
		{"spring 03:00 CEST, first minute after", night(nil), ptr(berlin), utc(2026, 3, 29, 1, 0, 0), true, utc(2026, 3, 29, 5, 0, 0)},
		{"spring 06:59 CEST", night(nil), ptr(berlin), utc(2026, 3, 29, 4, 59, 0), true, utc(2026, 3, 29, 5, 0, 0)},
		{"spring 07:00 CEST", night(nil), ptr(berlin), utc(2026, 3, 29, 5, 0, 0), false, time.Time{}},
		{"spring 07:30 CEST (06:30 at the winter offset)", night(nil), ptr(berlin), utc(2026, 3, 29, 5, 30, 0), false, time.Time{}},
		{"spring next night 22:00 CEST", night(nil), ptr(berlin), utc(2026, 3, 29, 20, 0, 0), true, utc(2026, 3, 30, 5, 0, 0)},
		{"spring next night 21:30 CEST", night(nil), ptr(berlin), utc(2026, 3, 29, 19, 30, 0), false, time.Time{}},
		// An end inside the gap (02:30) moves forward to 03:30 CEST.
		{"spring end in gap, 03:15 CEST", window(hm(22, 0), hm(2, 30), nil), ptr(berlin), utc(2026, 3, 29, 1, 15, 0), true, utc(2026, 3, 29, 1, 30, 0)},
		{"spring end in gap, 03:30 CEST", window(hm(22, 0), hm(2, 30), nil), ptr(berlin), utc(2026, 3, 29, 1, 30, 0), false, time.Time{}},
		// A start inside the gap (02:30) moves forward to 03:30 CEST.
		{"spring start in gap, 03:15 CEST", window(hm(2, 30), hm(6, 0), nil), ptr(berlin), utc(2026, 3, 29, 1, 15, 0), false, time.Time{}},
		{"spring start in gap, 03:30 CEST", window(hm(2, 30), hm(6, 0), nil), ptr(berlin), utc(2026, 3, 29, 1, 30, 0), true, utc(2026, 3, 29, 4, 0, 0)},
		{"spring start in gap, 01:45 CET", window(hm(2, 30), hm(6, 0), nil), ptr(berlin), utc(2026, 3, 29, 0, 45, 0), false, time.Time{}},
		// A window that is exactly the skipped hour does not happen that
		// night, and is back the next.
		{"spring skipped hour, 03:00 CEST", window(hm(2, 0), hm(3, 0), nil), ptr(berlin), utc(2026, 3, 29, 1, 0, 0), false, time.Time{}},
		{"spring skipped hour, 01:59 CET", window(hm(2, 0), hm(3, 0), nil), ptr(berlin), utc(2026, 3, 29, 0, 59, 0), false, time.Time{}},
		{"spring skipped hour, next night 02:30 CEST", window(hm(2, 0), hm(3, 0), nil), ptr(berlin), utc(2026, 3, 30, 0, 30, 0), true, utc(2026, 3, 30, 1, 0, 0)},

		// Berlin, autumn: the night of 24 to 25 October is an hour longer.
		{"autumn 22:30 CEST, ends 07:00 CET", night(nil), ptr(berlin), utc(2026, 10, 24, 20, 30, 0), true, utc(2026, 10, 25, 6, 0, 0)},
		{"autumn 02:30 CEST, first pass", night(nil), ptr(berlin), utc(2026, 10, 25, 0, 30, 0), true, utc(2026, 10, 25, 6, 0, 0)},
		{"autumn 06:30 CET (07:30 at the summer offset)", night(nil), ptr(berlin), utc(2026, 10, 25, 5, 30, 0), true, utc(2026, 10, 25, 6, 0, 0)},
		{"autumn 07:00 CET", night(nil), ptr(berlin), utc(2026, 10, 25, 6, 0, 0), false, time.Time{}},
		{"autumn 21:59 CEST the day before", night(nil), ptr(berlin), utc(2026, 10, 24, 19, 59, 0), false, time.Time{}},
		// A wall time the clock shows twice is the second one (CET) in Berlin.
		{"autumn start 02:30, 02:45 CEST first pass", window(hm(2, 30), hm(5, 0), nil), ptr(berlin), utc(2026, 10, 25, 0, 45, 0), false, time.Time{}},
		{"autumn start 02:30, 02:30 CET", window(hm(2, 30), hm(5, 0), nil), ptr(berlin), utc(2026, 10, 25, 1, 30, 0), true, utc(2026, 10, 25, 4, 0, 0)},
		{"autumn end 02:30, 02:45 CEST first pass", window(hm(22, 0), hm(2, 30), nil), ptr(berlin), utc(2026, 10, 25, 0, 45, 0), true, utc(2026, 10, 25, 1, 30, 0)},
		{"autumn end 02:30, 02:30 CET", window(hm(22, 0), hm(2, 30), nil), ptr(berlin), utc(2026, 10, 25, 1, 30, 0), false, time.Time{}},
		// A window starting just after the repeated hour.
		{"autumn start 03:00, 02:30 CET", window(hm(3, 0), hm(4, 0), nil), ptr(berlin), utc(2026, 10, 25, 1, 30, 0), false, time.Time{}},
		{"autumn start 03:00, 03:00 CET", window(hm(3, 0), hm(4, 0), nil), ptr(berlin), utc(2026, 10, 25, 2, 0, 0), true, utc(2026, 10, 25, 3, 0, 0)},
		// A window spanning the whole repeated hour lasts three hours.
		{"autumn 01:00-03:00, 00:59 CEST", window(hm(1, 0), hm(3, 0), nil), ptr(berlin), utc(2026, 10, 24, 22, 59, 0), false, time.Time{}},
		{"autumn 01:00-03:00, 01:00 CEST", window(hm(1, 0), hm(3, 0), nil), ptr(berlin), utc(2026, 10, 24, 23, 0, 0), true, utc(2026, 10, 25, 2, 0, 0)},
		{"autumn 01:00-03:00, 02:59 CET", window(hm(1, 0), hm(3, 0), nil), ptr(berlin), utc(2026, 10, 25, 1, 59, 0), true, utc(2026, 10, 25, 2, 0, 0)},

		// Days of the week: a window starts only on the listed days, and
		// runs into the next day.
		{"friday window, friday 23:00", night(nil, "fri"), nil, utc(2026, 3, 27, 23, 0, 0), true, utc(2026, 3, 28, 7, 0, 0)},
		{"friday window, saturday 02:00", night(nil, "fri"), nil, utc(2026, 3, 28, 2, 0, 0), true, utc(2026, 3, 28, 7, 0, 0)},
		{"friday window, friday 02:00", night(nil, "fri"), nil, utc(2026, 3, 27, 2, 0, 0), false, time.Time{}},
		{"friday window, saturday 23:00", night(nil, "fri"), nil, utc(2026, 3, 28, 23, 0, 0), false, time.Time{}},
		{"friday window, sunday 02:00", night(nil, "fri"), nil, utc(2026, 3, 29, 2, 0, 0), false, time.Time{}},
		{"fri and sat windows, sunday 02:00", night(nil, "fri", "sat"), nil, utc(2026, 3, 29, 2, 0, 0), true, utc(2026, 3, 29, 7, 0, 0)},
		{"weekday window, saturday 10:00", window(hm(9, 0), hm(17, 0), nil, "mon", "tue", "wed", "thu", "fri"), nil, utc(2026, 3, 28, 10, 0, 0), false, time.Time{}},
		{"weekday window, friday 10:00", window(hm(9, 0), hm(17, 0), nil, "mon", "tue", "wed", "thu", "fri"), nil, utc(2026, 3, 27, 10, 0, 0), true, utc(2026, 3, 27, 17, 0, 0)},
		// The day is the local one: Saturday 06:00 in Tokyo is Friday 21:00 UTC.
		{"tokyo saturday window, saturday 06:00 JST", window(hm(5, 0), hm(8, 0), nil, "sat"), ptr(tokyo), utc(2026, 3, 27, 21, 0, 0), true, utc(2026, 3, 27, 23, 0, 0)},
		{"tokyo friday window, saturday 06:00 JST", window(hm(5, 0), hm(8, 0), nil, "fri"), ptr(tokyo), utc(2026, 3, 27, 21, 0, 0), false, time.Time{}},
		{"berlin saturday night across the spring change", night(nil, "sat"), ptr(berlin), utc(2026, 3, 29, 4, 30, 0), true, utc(2026, 3, 29, 5, 0, 0)},

		// Which time zone: the quiet hours' own, else the user's, else UTC.
		// 03:00 UTC on 10 June is 23:00 in New York (9 June) and noon in Tokyo.
		{"quiet hours zone overrides the user's", night(ptr(newYork)), ptr(tokyo), utc(2026, 6, 10, 3, 0, 0), true, utc(2026, 6, 10, 11, 0, 0)},
		{"user's zone when quiet hours have none", night(nil), ptr(tokyo), utc(2026, 6, 10, 3, 0, 0), false, time.Time{}},
		{"user's zone, 23:00 JST", night(nil), ptr(tokyo), utc(2026, 6, 10, 14, 0, 0), true, utc(2026, 6, 10, 22, 0, 0)},
		{"quiet hours zone overrides, 23:00 JST", night(ptr(newYork)), ptr(tokyo), utc(2026, 6, 10, 14, 0, 0), false, time.Time{}},
		{"UTC when neither, 03:00 UTC", night(nil), nil, utc(2026, 6, 10, 3, 0, 0), true, utc(2026, 6, 10, 7, 0, 0)},
		{"UTC when neither, 14:00 UTC", night(nil), nil, utc(2026, 6, 10, 14, 0, 0), false, time.Time{}},
		{"UTC when the user's zone is unknown", night(nil), ptr("Mars/Olympus"), utc(2026, 6, 10, 3, 0, 0), true, utc(2026, 6, 10, 7, 0, 0)},
		{"instant given in another zone", night(nil), ptr(berlin), time.Date(2026, 3, 29, 13, 30, 0, 0, time.FixedZone("JST", 9*3600)), true, utc(2026, 3, 29, 5, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.q
			quiet, until := q.Quiet(tt.at, tt.userTZ)
			if quiet != tt.quiet || !until.Equal(tt.until) {
				t.Fatalf("Quiet(%s) = %v, %s; want %v, %s", tt.at.UTC(), quiet, until.UTC(), tt.quiet, tt.until)
			}
		})
	}
}

func TestQuietNil(t *testing.T) {
	var q *usersvc.QuietHours
	if quiet, until := q.Quiet(utc(2026, 6, 10, 3, 0, 0), nil); quiet || !until.IsZero() {
		t.Fatalf("nil quiet hours: %v, %v", quiet, until)
	}
}

// decideCase describes the expected answer per channel, in the order of
// usersvc.Channels (email, push, sms, in_app) unless channels is set:
// "send" or a reason.
type decideCase struct {
	name     string
	user     func(u *usersvc.User)
	devices  []usersvc.Device // nil: the two default devices; use noDevices for none
	cat      *usersvc.Category
	channels []string
	at       time.Time
	want     []string
	after    time.Time // DeliverAfter of every quiet_hours answer
	// requireVerified are the channels that need a verified address.
	requireVerified []string
}

var noDevices = []usersvc.Device{}

func TestDecide(t *testing.T) {
	marketing := &usersvc.Category{
		Key: "marketing", Name: "Marketing", Commercial: true,
		Defaults: map[string]bool{"email": true, "push": true, "sms": false, "in_app": true},
	}
	digest := &usersvc.Category{Key: "digest", Name: "Digest", Defaults: map[string]bool{"email": true}}
	security := &usersvc.Category{
		Key: "security", Name: "Security", Required: true,
		Defaults: map[string]bool{"email": true, "push": true, "sms": true, "in_app": false},
	}
	// Quiet hours in Berlin for push and sms; at is inside them, and they
	// end at 07:00 CEST on 29 March, the morning after the spring change.
	quietPushSMS := func(u *usersvc.User) {
		u.Preferences.QuietHours = &usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{"push", "sms"}, Days: []string{}}
	}
	inQuiet := utc(2026, 3, 28, 23, 0, 0) // 00:00 CET, 29 March
	quietEnd := utc(2026, 3, 29, 5, 0, 0) // 07:00 CEST
	daytime := utc(2026, 3, 29, 10, 0, 0) // 12:00 CEST
	choose := func(key string, c usersvc.CategoryChoice) func(u *usersvc.User) {
		return func(u *usersvc.User) { u.Preferences.Categories[key] = c }
	}
	all := func(on bool) usersvc.CategoryChoice { return usersvc.CategoryChoice{All: ptr(on)} }
	per := func(m map[string]bool) usersvc.CategoryChoice { return usersvc.CategoryChoice{Channels: m} }
	both := func(fs ...func(u *usersvc.User)) func(u *usersvc.User) {
		return func(u *usersvc.User) {
			for _, f := range fs {
				f(u)
			}
		}
	}

	tests := []decideCase{
		// No category: only switches, addresses and quiet hours.
		{name: "no category, defaults", at: daytime, want: []string{"send", "send", "send", "send"}},
		{name: "no category, switches off", at: daytime,
			user: func(u *usersvc.User) { u.Preferences.Push, u.Preferences.SMS = false, false },
			want: []string{"send", "channel_off", "channel_off", "send"}},
		{name: "no category, every switch off", at: daytime,
			user: func(u *usersvc.User) {
				u.Preferences = usersvc.Preferences{Categories: map[string]usersvc.CategoryChoice{}}
			},
			want: []string{"channel_off", "channel_off", "channel_off", "channel_off"}},
		{name: "no category ignores category choices", at: daytime,
			user: choose("marketing", all(false)), want: []string{"send", "send", "send", "send"}},

		// A category's defaults.
		{name: "marketing defaults, sms off by default", cat: marketing, at: daytime,
			want: []string{"send", "send", "category_off", "send"}},
		{name: "digest defaults, email only", cat: digest, at: daytime,
			want: []string{"send", "category_off", "category_off", "category_off"}},
		{name: "digest choice of another category is ignored", cat: digest, at: daytime,
			user: choose("marketing", all(true)), want: []string{"send", "category_off", "category_off", "category_off"}},

		// The user's override of a category.
		{name: "whole category off", cat: marketing, at: daytime,
			user: choose("marketing", all(false)), want: []string{"category_off", "category_off", "category_off", "category_off"}},
		{name: "whole category on turns on a channel off by default", cat: marketing, at: daytime,
			user: choose("marketing", all(true)), want: []string{"send", "send", "send", "send"}},
		{name: "per channel: email off, sms on, others by default", cat: marketing, at: daytime,
			user: choose("marketing", per(map[string]bool{"email": false, "sms": true})),
			want: []string{"category_off", "send", "send", "send"}},
		{name: "category on does not turn on a switched-off channel", cat: marketing, at: daytime,
			user: both(choose("marketing", all(true)), func(u *usersvc.User) { u.Preferences.SMS = false }),
			want: []string{"send", "send", "channel_off", "send"}},
		{name: "channel off is the reason even when the category is off too", cat: marketing, at: daytime,
			user: both(choose("marketing", all(false)), func(u *usersvc.User) { u.Preferences.Email = false }),
			want: []string{"channel_off", "category_off", "category_off", "category_off"}},

		// A required category: its defaults, whatever the user says.
		{name: "required ignores the user's opt-out, switches and quiet hours", cat: security, at: inQuiet,
			user: both(
				choose("security", per(map[string]bool{"email": false, "in_app": true})),
				func(u *usersvc.User) {
					u.Preferences.Email, u.Preferences.Push, u.Preferences.SMS, u.Preferences.InApp = false, false, false, false
				},
				quietPushSMS),
			want: []string{"send", "send", "send", "category_off"}},
		{name: "required, whole category off", cat: security, at: daytime,
			user: choose("security", all(false)), want: []string{"send", "send", "send", "category_off"}},
		{name: "required still needs an address", cat: security, at: daytime, devices: noDevices,
			user: func(u *usersvc.User) { u.Phone = nil }, want: []string{"send", "no_address", "no_address", "category_off"}},

		// A disabled account comes first.
		{name: "disabled, no category", at: daytime,
			user: func(u *usersvc.User) { u.IsActive = false },
			want: []string{"account_disabled", "account_disabled", "account_disabled", "account_disabled"}},
		{name: "disabled, required category", cat: security, at: daytime,
			user: func(u *usersvc.User) { u.IsActive = false },
			want: []string{"account_disabled", "account_disabled", "account_disabled", "account_disabled"}},

		// Addresses.
		{name: "no phone, no devices", at: daytime, devices: noDevices,
			user: func(u *usersvc.User) { u.Phone = nil }, want: []string{"send", "no_address", "no_address", "send"}},
		{name: "no address wins over quiet hours", at: inQuiet, devices: noDevices,
			user: both(quietPushSMS, func(u *usersvc.User) { u.Phone = nil }),
			want: []string{"send", "no_address", "no_address", "send"}},
		{name: "channel off wins over no address", at: daytime, devices: noDevices,
			user: func(u *usersvc.User) { u.Preferences.Push = false }, want: []string{"send", "channel_off", "send", "send"}},

		// Quiet hours, in the user's time zone (Europe/Berlin).
		{name: "quiet hours hold back the listed channels", at: inQuiet, user: quietPushSMS, cat: marketing,
			want: []string{"send", "quiet_hours", "category_off", "send"}, after: quietEnd},
		{name: "quiet hours, no category", at: inQuiet, user: quietPushSMS,
			want: []string{"send", "quiet_hours", "quiet_hours", "send"}, after: quietEnd},
		{name: "quiet hours after they end", at: quietEnd, user: quietPushSMS,
			want: []string{"send", "send", "send", "send"}},
		{name: "channel off wins over quiet hours", at: inQuiet,
			user: both(quietPushSMS, func(u *usersvc.User) { u.Preferences.Push = false }),
			want: []string{"send", "channel_off", "quiet_hours", "send"}, after: quietEnd},
		{name: "category off wins over quiet hours", at: inQuiet, cat: marketing,
			user: both(quietPushSMS, choose("marketing", per(map[string]bool{"push": false}))),
			want: []string{"send", "category_off", "category_off", "send"}},
		{name: "quiet hours without channels cover every channel", at: inQuiet,
			user: func(u *usersvc.User) {
				u.Preferences.QuietHours = &usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0)}
			},
			want: []string{"quiet_hours", "quiet_hours", "quiet_hours", "quiet_hours"}, after: quietEnd},
		{name: "quiet hours across the autumn change", at: utc(2026, 10, 25, 5, 30, 0), user: quietPushSMS,
			want: []string{"send", "quiet_hours", "quiet_hours", "send"}, after: utc(2026, 10, 25, 6, 0, 0)},
		{name: "quiet hours in their own zone", at: utc(2026, 6, 10, 3, 0, 0), // 23:00 EDT, 05:00 CEST
			user: func(u *usersvc.User) {
				u.Preferences.QuietHours = &usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Timezone: ptr(newYork), Channels: []string{"push"}}
			},
			want: []string{"send", "quiet_hours", "send", "send"}, after: utc(2026, 6, 10, 11, 0, 0)},
		{name: "quiet hours in UTC without any zone", at: utc(2026, 6, 10, 6, 30, 0), // 08:30 CEST
			user: both(quietPushSMS, func(u *usersvc.User) { u.Timezone = nil }),
			want: []string{"send", "quiet_hours", "quiet_hours", "send"}, after: utc(2026, 6, 10, 7, 0, 0)},
		{name: "quiet hours on other days only", at: inQuiet, // a Saturday night
			user: func(u *usersvc.User) {
				u.Preferences.QuietHours = &usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{"push"}, Days: []string{"fri"}}
			},
			want: []string{"send", "send", "send", "send"}},

		// The channels asked for, in their order; an unknown one is off.
		{name: "subset in the order asked", at: inQuiet, user: quietPushSMS, channels: []string{"sms", "email"},
			want: []string{"quiet_hours", "send"}, after: quietEnd},
		{name: "unknown channel", at: daytime, channels: []string{"fax", "email"}, want: []string{"channel_off", "send"}},
		{name: "unknown channel, required category", cat: security, at: daytime, channels: []string{"fax"}, want: []string{"category_off"}},
		{name: "no channels", at: daytime, channels: []string{}, want: []string{}},

		// REQUIRE_VERIFIED: email and sms only to verified addresses, after
		// every other reason but quiet hours.
		{name: "unverified addresses", at: daytime, requireVerified: []string{"email", "sms"},
			want: []string{"unverified", "send", "unverified", "send"}},
		{name: "verified email, unverified phone", at: daytime, requireVerified: []string{"email", "sms"},
			user: func(u *usersvc.User) { u.EmailVerifiedAt = ptr(daytime) },
			want: []string{"send", "send", "unverified", "send"}},
		{name: "verified phone, email not required", at: daytime, requireVerified: []string{"sms"},
			user: func(u *usersvc.User) { u.PhoneVerifiedAt = ptr(daytime) },
			want: []string{"send", "send", "send", "send"}},
		{name: "a required category needs a verified address too", cat: security, at: daytime, requireVerified: []string{"sms"},
			want: []string{"send", "send", "unverified", "category_off"}},
		{name: "no phone is no_address, not unverified", at: daytime, requireVerified: []string{"sms"},
			user: func(u *usersvc.User) { u.Phone = nil }, want: []string{"send", "send", "no_address", "send"}},
		{name: "disabled before unverified", at: daytime, requireVerified: []string{"email"},
			user: func(u *usersvc.User) { u.IsActive = false },
			want: []string{"account_disabled", "account_disabled", "account_disabled", "account_disabled"}},
		{name: "unverified before quiet hours", at: inQuiet, user: quietPushSMS, requireVerified: []string{"sms"},
			want: []string{"send", "quiet_hours", "unverified", "send"}, after: quietEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkDecide(t, tt) })
	}
}

func testUser() *usersvc.User {
	return &usersvc.User{
		ID: "u1", Email: "ann@example.com", Name: "Ann",
		Phone: ptr("+493012345678"), Locale: ptr("de-DE"), Timezone: ptr(berlin),
		Preferences: usersvc.DefaultPreferences(), IsActive: true,
	}
}

func testDevices() []usersvc.Device {
	return []usersvc.Device{
		{ID: "d1", UserID: "u1", DeviceID: ptr("phone"), Token: "tok-1", DeviceType: usersvc.DeviceIOS},
		{ID: "d2", UserID: "u1", Token: "tok-2", DeviceType: usersvc.DeviceWeb},
	}
}

func checkDecide(t *testing.T, tt decideCase) {
	t.Helper()
	u := testUser()
	if tt.user != nil {
		tt.user(u)
	}
	devices := tt.devices
	if devices == nil {
		devices = testDevices()
	}
	channels := tt.channels
	if channels == nil {
		channels = usersvc.Channels
	}
	d := usersvc.Decide(u, devices, tt.cat, channels, tt.at, tt.requireVerified)

	if d.UserID != u.ID || !equalPtr(d.Locale, u.Locale) || !equalPtr(d.Timezone, u.Timezone) {
		t.Errorf("decision of %q, locale %v, timezone %v; want %q, %v, %v", d.UserID, deref(d.Locale), deref(d.Timezone), u.ID, deref(u.Locale), deref(u.Timezone))
	}
	if len(d.Channels) != len(tt.want) {
		t.Fatalf("%d channel decisions, want %d: %+v", len(d.Channels), len(tt.want), d.Channels)
	}
	for i, cd := range d.Channels {
		want := tt.want[i]
		if cd.Channel != channels[i] {
			t.Errorf("decision %d is for %q, want %q", i, cd.Channel, channels[i])
		}
		got := cd.Reason
		if cd.Send {
			got = "send"
			if cd.Reason != "" {
				t.Errorf("%s: sent with reason %q", cd.Channel, cd.Reason)
			}
		}
		if got != want {
			t.Errorf("%s: %s, want %s", cd.Channel, got, want)
			continue
		}
		if want == usersvc.ReasonQuietHours {
			if cd.DeliverAfter == nil || !cd.DeliverAfter.Equal(tt.after) || cd.DeliverAfter.Location() != time.UTC {
				t.Errorf("%s: deliver after %v, want %v in UTC", cd.Channel, cd.DeliverAfter, tt.after)
			}
		} else if cd.DeliverAfter != nil {
			t.Errorf("%s: deliver after %v, want none", cd.Channel, *cd.DeliverAfter)
		}
		// The address is given when sending and when held back by quiet
		// hours (the sender needs it later); never otherwise.
		addressed := want == "send" || want == usersvc.ReasonQuietHours
		wantEmail, wantPhone, wantDevices := (*string)(nil), (*string)(nil), []usersvc.Device(nil)
		if addressed {
			switch cd.Channel {
			case usersvc.ChannelEmail:
				wantEmail = &u.Email
			case usersvc.ChannelSMS:
				wantPhone = u.Phone
			case usersvc.ChannelPush:
				wantDevices = devices
			}
		}
		if !equalPtr(cd.Email, wantEmail) || !equalPtr(cd.Phone, wantPhone) {
			t.Errorf("%s: email %v, phone %v; want %v, %v", cd.Channel, deref(cd.Email), deref(cd.Phone), deref(wantEmail), deref(wantPhone))
		}
		if !slices.EqualFunc(cd.Devices, wantDevices, func(a, b usersvc.Device) bool { return a.ID == b.ID && a.Token == b.Token }) {
			t.Errorf("%s: devices %+v, want %+v", cd.Channel, cd.Devices, wantDevices)
		}
	}
}

func TestDecideDoesNotAlias(t *testing.T) {
	u := testUser()
	devices := testDevices()
	d := usersvc.Decide(u, devices, nil, []string{"email", "push", "sms"}, utc(2026, 6, 10, 12, 0, 0), nil)
	*d.Channels[0].Email = "changed@example.com"
	d.Channels[1].Devices[0].Token = "changed"
	*d.Channels[2].Phone = "+10000000000"
	if u.Email != "ann@example.com" || devices[0].Token != "tok-1" || *u.Phone != "+493012345678" {
		t.Fatalf("changing the decision changed its inputs: %q, %q, %q", u.Email, devices[0].Token, *u.Phone)
	}
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
