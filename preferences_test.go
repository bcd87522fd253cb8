package usersvc_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/usersvc/usersvc"
)

func TestPreferencesPatchApply(t *testing.T) {
	all := func(on bool) usersvc.CategoryChoice { return usersvc.CategoryChoice{All: ptr(on)} }
	per := func(m map[string]bool) usersvc.CategoryChoice { return usersvc.CategoryChoice{Channels: m} }
	type choices = map[string]usersvc.CategoryChoice
	tests := []struct {
		name  string
		prev  choices
		patch map[string]*usersvc.CategoryPatch
		want  choices
	}{
		{"whole-category bool replaces per-channel choices",
			choices{"marketing": per(map[string]bool{"email": false, "sms": true})},
			map[string]*usersvc.CategoryPatch{"marketing": {All: ptr(true)}},
			choices{"marketing": all(true)}},
		{"object merged into a bool expands it to every channel",
			choices{"marketing": all(false)},
			map[string]*usersvc.CategoryPatch{"marketing": {Channels: map[string]*bool{"email": ptr(true)}}},
			choices{"marketing": per(map[string]bool{"email": true, "push": false, "sms": false, "in_app": false})}},
		{"object merged into an object",
			choices{"marketing": per(map[string]bool{"email": false, "sms": true})},
			map[string]*usersvc.CategoryPatch{"marketing": {Channels: map[string]*bool{"email": ptr(true), "push": ptr(false)}}},
			choices{"marketing": per(map[string]bool{"email": true, "push": false, "sms": true})}},
		{"nil channel drops that channel's choice",
			choices{"marketing": per(map[string]bool{"email": false, "sms": true})},
			map[string]*usersvc.CategoryPatch{"marketing": {Channels: map[string]*bool{"email": nil}}},
			choices{"marketing": per(map[string]bool{"sms": true})}},
		{"dropping the last channel drops the override",
			choices{"marketing": per(map[string]bool{"email": false}), "digest": all(true)},
			map[string]*usersvc.CategoryPatch{"marketing": {Channels: map[string]*bool{"email": nil}}},
			choices{"digest": all(true)}},
		{"nil patch drops the override",
			choices{"marketing": all(false), "digest": all(true)},
			map[string]*usersvc.CategoryPatch{"marketing": nil},
			choices{"digest": all(true)}},
		{"nil patch of a category without override",
			choices{"digest": all(true)},
			map[string]*usersvc.CategoryPatch{"marketing": nil},
			choices{"digest": all(true)}},
		{"new category, per channel",
			choices{},
			map[string]*usersvc.CategoryPatch{"marketing": {Channels: map[string]*bool{"push": ptr(false)}}},
			choices{"marketing": per(map[string]bool{"push": false})}},
		{"new category, empty object leaves no override",
			choices{},
			map[string]*usersvc.CategoryPatch{"marketing": {Channels: map[string]*bool{}}},
			choices{}},
		{"other categories untouched",
			choices{"marketing": all(false), "digest": per(map[string]bool{"email": true})},
			map[string]*usersvc.CategoryPatch{"news": {All: ptr(false)}},
			choices{"marketing": all(false), "digest": per(map[string]bool{"email": true}), "news": all(false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := usersvc.DefaultPreferences()
			prev.Categories = tt.prev
			before := cloneChoices(tt.prev)
			got := usersvc.PreferencesPatch{Categories: tt.patch}.Apply(prev)
			if !reflect.DeepEqual(got.Categories, tt.want) {
				t.Errorf("categories = %s, want %s", mustJSON(t, got.Categories), mustJSON(t, tt.want))
			}
			if !reflect.DeepEqual(prev.Categories, before) {
				t.Errorf("Apply changed its argument: %s, was %s", mustJSON(t, prev.Categories), mustJSON(t, before))
			}
			if !got.Email || !got.Push || !got.SMS || !got.InApp || got.QuietHours != nil {
				t.Errorf("a categories patch changed other preferences: %+v", got)
			}
		})
	}
}

func cloneChoices(m map[string]usersvc.CategoryChoice) map[string]usersvc.CategoryChoice {
	out := make(map[string]usersvc.CategoryChoice, len(m))
	for k, c := range m {
		if c.All != nil {
			c.All = ptr(*c.All)
		}
		if c.Channels != nil {
			c.Channels = maps.Clone(c.Channels)
		}
		out[k] = c
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPreferencesPatchApplySwitchesAndQuietHours(t *testing.T) {
	qh := &usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{"push"}, Days: []string{}}
	prev := usersvc.DefaultPreferences()
	prev.QuietHours = qh

	got := usersvc.PreferencesPatch{Email: ptr(false), SMS: ptr(false)}.Apply(prev)
	want := usersvc.Preferences{Email: false, Push: true, SMS: false, InApp: true, Categories: map[string]usersvc.CategoryChoice{}, QuietHours: qh}
	if !got.Equal(want) {
		t.Errorf("switches: %+v, want %+v", got, want)
	}
	if !prev.Email || !prev.SMS {
		t.Errorf("Apply changed its argument: %+v", prev)
	}

	got = usersvc.PreferencesPatch{InApp: ptr(false)}.Apply(prev)
	if got.QuietHours != qh || got.InApp {
		t.Errorf("without SetQuietHours: quiet hours %v, in_app %v", got.QuietHours, got.InApp)
	}
	got = usersvc.PreferencesPatch{SetQuietHours: true}.Apply(prev)
	if got.QuietHours != nil {
		t.Errorf("SetQuietHours with nil kept %+v", got.QuietHours)
	}
	other := &usersvc.QuietHours{Start: hm(1, 0), End: hm(2, 0)}
	got = usersvc.PreferencesPatch{SetQuietHours: true, QuietHours: other}.Apply(prev)
	if got.QuietHours != other {
		t.Errorf("SetQuietHours: %+v, want %+v", got.QuietHours, other)
	}
}

func TestPreferencesPatchEmpty(t *testing.T) {
	tests := []struct {
		name  string
		patch usersvc.PreferencesPatch
		empty bool
	}{
		{"zero", usersvc.PreferencesPatch{}, true},
		{"empty categories", usersvc.PreferencesPatch{Categories: map[string]*usersvc.CategoryPatch{}}, true},
		{"email", usersvc.PreferencesPatch{Email: ptr(true)}, false},
		{"in_app", usersvc.PreferencesPatch{InApp: ptr(false)}, false},
		{"a category dropped", usersvc.PreferencesPatch{Categories: map[string]*usersvc.CategoryPatch{"x": nil}}, false},
		{"quiet hours cleared", usersvc.PreferencesPatch{SetQuietHours: true}, false},
	}
	for _, tt := range tests {
		if got := tt.patch.Empty(); got != tt.empty {
			t.Errorf("%s: Empty() = %v, want %v", tt.name, got, tt.empty)
		}
	}
}

func TestCategoryChoiceJSON(t *testing.T) {
	good := []struct {
		in   string
		want usersvc.CategoryChoice
		out  string
	}{
		{`false`, usersvc.CategoryChoice{All: ptr(false)}, `false`},
		{` true `, usersvc.CategoryChoice{All: ptr(true)}, `true`},
		{`{"sms":true,"email":false}`, usersvc.CategoryChoice{Channels: map[string]bool{"email": false, "sms": true}}, `{"email":false,"sms":true}`},
		{`{"push":true,"in_app":false,"email":true,"sms":false}`,
			usersvc.CategoryChoice{Channels: map[string]bool{"email": true, "push": true, "sms": false, "in_app": false}},
			`{"email":true,"in_app":false,"push":true,"sms":false}`},
		{`{}`, usersvc.CategoryChoice{Channels: map[string]bool{}}, `{}`},
	}
	for _, tt := range good {
		var c usersvc.CategoryChoice
		if err := json.Unmarshal([]byte(tt.in), &c); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(c, tt.want) {
			t.Errorf("%s: read %+v, want %+v", tt.in, c, tt.want)
		}
		b, err := json.Marshal(c)
		if err != nil || string(b) != tt.out {
			t.Errorf("%s: wrote %s, %v; want %s", tt.in, b, err, tt.out)
		}
		var again usersvc.CategoryChoice
		if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, c) {
			t.Errorf("%s: round trip gave %+v, %v", tt.in, again, err)
		}
	}

	bad := []string{`{"fax":true}`, `{"Email":true}`, `{"email":"yes"}`, `{"email":null}`, `"false"`, `0`, `null`, `[]`, `{"email":true,"sms":1}`}
	for _, in := range bad {
		var c usersvc.CategoryChoice
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("%s: accepted as %+v", in, c)
		}
	}
	// In a preferences document too.
	var p usersvc.Preferences
	if err := json.Unmarshal([]byte(`{"categories":{"marketing":null}}`), &p); err == nil {
		t.Errorf("a null category choice was accepted: %+v", p.Categories)
	}

	// Preferences round trip with both forms.
	prefs := usersvc.DefaultPreferences()
	prefs.SMS = false
	prefs.Categories["digest"] = usersvc.CategoryChoice{All: ptr(false)}
	prefs.Categories["marketing"] = usersvc.CategoryChoice{Channels: map[string]bool{"email": false}}
	prefs.QuietHours = &usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 30), Timezone: ptr(berlin), Channels: []string{"push", "sms"}, Days: []string{"fri", "sat"}}
	b, err := json.Marshal(prefs)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"email":true,"push":true,"sms":false,"in_app":true,"categories":{"digest":false,"marketing":{"email":false}},` +
		`"quiet_hours":{"start":"22:00","end":"07:30","timezone":"Europe/Berlin","channels":["push","sms"],"days":["fri","sat"]}}`
	if string(b) != want {
		t.Errorf("preferences JSON:\n got %s\nwant %s", b, want)
	}
	var back usersvc.Preferences
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(prefs) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestCheckCategories(t *testing.T) {
	defined := map[string]*usersvc.Category{
		"marketing": {Key: "marketing", Defaults: map[string]bool{"email": true}, Commercial: true},
		"security":  {Key: "security", Defaults: map[string]bool{"email": true, "sms": true}, Required: true},
	}
	long := strings.Repeat("k", 80)
	tests := []struct {
		name  string
		patch map[string]*usersvc.CategoryPatch
		want  map[string][]string // nil: accepted
	}{
		{"known category off", map[string]*usersvc.CategoryPatch{"marketing": {All: ptr(false)}}, nil},
		{"unknown category", map[string]*usersvc.CategoryPatch{"nope": {All: ptr(true)}},
			map[string][]string{"categories.nope": {"Unknown category"}}},
		{"unknown category, per channel", map[string]*usersvc.CategoryPatch{"nope": {Channels: map[string]*bool{"email": nil}}},
			map[string][]string{"categories.nope": {"Unknown category"}}},
		{"unknown long key is clipped", map[string]*usersvc.CategoryPatch{long: {All: ptr(true)}},
			map[string][]string{"categories." + long[:64] + "…": {"Unknown category"}}},
		{"dropping an unknown category's override", map[string]*usersvc.CategoryPatch{"gone": nil}, nil},
		{"required turned off", map[string]*usersvc.CategoryPatch{"security": {All: ptr(false)}},
			map[string][]string{"categories.security": {"This category is required and cannot be turned off"}}},
		{"required, one channel off", map[string]*usersvc.CategoryPatch{"security": {Channels: map[string]*bool{"email": ptr(true), "sms": ptr(false)}}},
			map[string][]string{"categories.security": {"This category is required and cannot be turned off"}}},
		{"required turned on", map[string]*usersvc.CategoryPatch{"security": {All: ptr(true)}}, nil},
		{"required, a channel on", map[string]*usersvc.CategoryPatch{"security": {Channels: map[string]*bool{"push": ptr(true)}}}, nil},
		{"required, a choice dropped", map[string]*usersvc.CategoryPatch{"security": {Channels: map[string]*bool{"sms": nil}}}, nil},
		{"required, override dropped", map[string]*usersvc.CategoryPatch{"security": nil}, nil},
		{"every problem at once", map[string]*usersvc.CategoryPatch{"security": {All: ptr(false)}, "nope": {All: ptr(false)}, "marketing": {All: ptr(false)}},
			map[string][]string{
				"categories.security": {"This category is required and cannot be turned off"},
				"categories.nope":     {"Unknown category"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := usersvc.FieldErrors{}
			err := usersvc.PreferencesPatch{Categories: tt.patch}.CheckCategories("", defined, fe)
			if tt.want == nil {
				if err != nil || len(fe) != 0 {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if usersvc.ErrorCode(err) != usersvc.EInvalid {
				t.Fatalf("error %v, want %s", err, usersvc.EInvalid)
			}
			if !reflect.DeepEqual(map[string][]string(fe), tt.want) {
				t.Fatalf("field errors %v, want %v", fe, tt.want)
			}
		})
	}
}

func TestQuietHoursNormalize(t *testing.T) {
	tests := []struct {
		name   string
		in     usersvc.QuietHours
		want   usersvc.QuietHours
		errors []string // fields with errors, sorted
	}{
		{"nil channels means every channel, nil days every day",
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0)},
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{"email", "push", "sms", "in_app"}, Days: []string{}},
			nil},
		{"channels and days in fixed order without repeats",
			usersvc.QuietHours{Start: hm(9, 0), End: hm(17, 0), Channels: []string{"sms", "push", "sms"}, Days: []string{"sat", "mon", "sun", "mon"}},
			usersvc.QuietHours{Start: hm(9, 0), End: hm(17, 0), Channels: []string{"push", "sms"}, Days: []string{"sun", "mon", "sat"}},
			nil},
		{"timezone trimmed",
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Timezone: ptr(" Europe/Berlin "), Channels: []string{"push"}},
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Timezone: ptr(berlin), Channels: []string{"push"}, Days: []string{}},
			nil},
		{"start equals end",
			usersvc.QuietHours{Start: hm(7, 0), End: hm(7, 0), Channels: []string{"push"}},
			usersvc.QuietHours{Start: hm(7, 0), End: hm(7, 0), Channels: []string{"push"}, Days: []string{}},
			[]string{"q.end"}},
		{"bad timezone",
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Timezone: ptr("Mars/Olympus"), Channels: []string{"push"}},
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Timezone: ptr("Mars/Olympus"), Channels: []string{"push"}, Days: []string{}},
			[]string{"q.timezone"}},
		{"bad channel",
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{"push", "fax"}},
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{"push"}, Days: []string{}},
			[]string{"q.channels"}},
		{"empty channels",
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{}},
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Days: []string{}},
			[]string{"q.channels"}},
		{"bad day",
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{"push"}, Days: []string{"fri", "Saturday"}},
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{"push"}, Days: []string{"fri"}},
			[]string{"q.days"}},
		{"capitalised day",
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{"push"}, Days: []string{"Mon"}},
			usersvc.QuietHours{Start: hm(22, 0), End: hm(7, 0), Channels: []string{"push"}, Days: []string{}},
			[]string{"q.days"}},
		{"everything wrong at once",
			usersvc.QuietHours{Start: hm(1, 0), End: hm(1, 0), Timezone: ptr("Local"), Channels: []string{}, Days: []string{"someday"}},
			usersvc.QuietHours{Start: hm(1, 0), End: hm(1, 0), Timezone: ptr("Local"), Days: []string{}},
			[]string{"q.channels", "q.days", "q.end", "q.timezone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.in
			fe := usersvc.FieldErrors{}
			q.Normalize("q.", fe)
			if got := slices.Sorted(maps.Keys(fe)); !slices.Equal(got, tt.errors) {
				t.Errorf("errors in %v (%v), want %v", got, fe, tt.errors)
			}
			if !reflect.DeepEqual(q, tt.want) {
				t.Errorf("normalised to %s, want %s", mustJSON(t, q), mustJSON(t, tt.want))
			}
		})
	}
}

func TestPreferencesPatchValidate(t *testing.T) {
	p := usersvc.PreferencesPatch{SetQuietHours: true, QuietHours: &usersvc.QuietHours{Start: hm(22, 0), End: hm(22, 0), Channels: []string{"pager"}}}
	fe := usersvc.FieldErrors{}
	err := p.Validate("", fe)
	if usersvc.ErrorCode(err) != usersvc.EInvalid {
		t.Fatalf("error %v", err)
	}
	if got := slices.Sorted(maps.Keys(fe)); !slices.Equal(got, []string{"quiet_hours.channels", "quiet_hours.end"}) {
		t.Fatalf("errors in %v", got)
	}
	p = usersvc.PreferencesPatch{SetQuietHours: true, QuietHours: &usersvc.QuietHours{Start: hm(22, 0), End: hm(6, 0)}}
	if err := p.Validate("", usersvc.FieldErrors{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.QuietHours.Channels, usersvc.Channels) {
		t.Fatalf("Validate did not normalise: %v", p.QuietHours.Channels)
	}
	if err := (&usersvc.PreferencesPatch{SetQuietHours: true}).Validate("", usersvc.FieldErrors{}); err != nil {
		t.Fatalf("clearing quiet hours: %v", err)
	}
}

func TestParseClockTime(t *testing.T) {
	good := map[string]usersvc.ClockTime{"00:00": 0, "23:59": 1439, "07:30": 450, "12:00": 720, "22:00": 1320}
	for in, want := range good {
		got, err := usersvc.ParseClockTime(in)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, int(got), err, int(want))
		}
		if got.String() != in {
			t.Errorf("%q: String() = %q", in, got.String())
		}
	}
	for _, in := range []string{"24:00", "7:00", "07:60", "", "7:5", "07:00:00", " 07:00", "07:00 ", "aa:bb", "0:000", "-1:00", "07h00", "0700"} {
		if got, err := usersvc.ParseClockTime(in); err == nil {
			t.Errorf("%q accepted as %v", in, got)
		}
	}

	var c usersvc.ClockTime
	if err := json.Unmarshal([]byte(`"06:45"`), &c); err != nil || c != 405 {
		t.Errorf(`"06:45": %v, %v`, int(c), err)
	}
	for _, in := range []string{`"24:00"`, `645`, `null`, `"6:45"`} {
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
	if b, err := json.Marshal(usersvc.ClockTime(65)); err != nil || string(b) != `"01:05"` {
		t.Errorf("marshal 65: %s, %v", b, err)
	}
}
