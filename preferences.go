package usersvc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Notification channels.
const (
	ChannelEmail = "email"
	ChannelPush  = "push"
	ChannelSMS   = "sms"
	ChannelInApp = "in_app"
)

// Channels lists every channel, in the order answers list them.
var Channels = []string{ChannelEmail, ChannelPush, ChannelSMS, ChannelInApp}

// ValidChannel reports whether c names a channel.
func ValidChannel(c string) bool { return slices.Contains(Channels, c) }

// MsgChannels is the message of a channel name that is none of Channels.
const MsgChannels = "Must be one of: email, push, sms, in_app"

// Preferences says what a user wants to receive: a switch per channel, the
// user's choices per category, and quiet hours.
type Preferences struct {
	Email bool `json:"email"`
	Push  bool `json:"push"`
	SMS   bool `json:"sms"`
	InApp bool `json:"in_app"`
	// Categories holds the user's overrides of the categories' defaults, by
	// category key. It is never nil in a user the store returns.
	Categories map[string]CategoryChoice `json:"categories"`
	// QuietHours is nil when the user set none.
	QuietHours *QuietHours `json:"quiet_hours"`
}

// DefaultPreferences are what a new user gets: every channel on, no
// category overrides, no quiet hours.
func DefaultPreferences() Preferences {
	return Preferences{Email: true, Push: true, SMS: true, InApp: true, Categories: map[string]CategoryChoice{}}
}

// Channel reports whether the user's switch of channel c is on.
func (p Preferences) Channel(c string) bool {
	switch c {
	case ChannelEmail:
		return p.Email
	case ChannelPush:
		return p.Push
	case ChannelSMS:
		return p.SMS
	case ChannelInApp:
		return p.InApp
	}
	return false
}

// CategoryChoice is a user's override of one category: either the whole
// category on or off (All), or a choice per channel (Channels; a channel
// not in it follows the category's default). JSON: a boolean, or an
// object of channel to boolean.
type CategoryChoice struct {
	All      *bool
	Channels map[string]bool
}

// Wants returns the user's choice of channel c in this category and
// whether there is one.
func (c CategoryChoice) Wants(channel string) (on, set bool) {
	if c.All != nil {
		return *c.All, true
	}
	on, set = c.Channels[channel]
	return on, set
}

// MarshalJSON writes a boolean or an object.
func (c CategoryChoice) MarshalJSON() ([]byte, error) {
	if c.All != nil {
		return json.Marshal(*c.All)
	}
	if c.Channels == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(c.Channels)
}

// UnmarshalJSON reads a boolean or an object of channel to boolean. A null,
// in place of the choice or of a channel's boolean, is refused rather than
// read as false.
func (c *CategoryChoice) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] != '{' {
		var all *bool
		if err := json.Unmarshal(b, &all); err != nil {
			return err
		}
		if all == nil {
			return errors.New("must be a boolean or an object of channel to boolean")
		}
		*c = CategoryChoice{All: all}
		return nil
	}
	var m map[string]*bool
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	chans := make(map[string]bool, len(m))
	for k, v := range m {
		if !ValidChannel(k) {
			return fmt.Errorf("unknown channel %q", k)
		}
		if v == nil {
			return fmt.Errorf("channel %q must be true or false", k)
		}
		chans[k] = *v
	}
	*c = CategoryChoice{Channels: chans}
	return nil
}

// CategoryPatch is a change of a user's override of one category. All set:
// the whole category on or off (replacing any per-channel choice).
// Otherwise Channels is merged into the per-channel choices; a nil value
// drops that channel's choice.
type CategoryPatch struct {
	All      *bool
	Channels map[string]*bool
}

// apply returns the choice after the patch, and false when no choice is
// left (the category follows its defaults again).
func (p CategoryPatch) apply(c CategoryChoice, had bool) (CategoryChoice, bool) {
	if p.All != nil {
		v := *p.All
		return CategoryChoice{All: &v}, true
	}
	chans := map[string]bool{}
	if had && c.All != nil {
		for _, ch := range Channels {
			chans[ch] = *c.All
		}
	} else {
		maps.Copy(chans, c.Channels)
	}
	for ch, v := range p.Channels {
		if v == nil {
			delete(chans, ch)
		} else {
			chans[ch] = *v
		}
	}
	if len(chans) == 0 {
		return CategoryChoice{}, false
	}
	return CategoryChoice{Channels: chans}, true
}

// turnsOff reports whether the patch turns any channel of the category off.
func (p CategoryPatch) turnsOff() bool {
	if p.All != nil {
		return !*p.All
	}
	for _, v := range p.Channels {
		if v != nil && !*v {
			return true
		}
	}
	return false
}

// PreferencesPatch is a partial update of Preferences: a nil channel leaves
// it as it is; Categories changes only the categories it names (a nil
// patch drops the user's override of that category); QuietHours applies
// when SetQuietHours (nil clears them).
type PreferencesPatch struct {
	Email         *bool
	Push          *bool
	SMS           *bool
	InApp         *bool
	Categories    map[string]*CategoryPatch
	SetQuietHours bool
	QuietHours    *QuietHours
}

// Empty reports whether the patch changes nothing.
func (p PreferencesPatch) Empty() bool {
	return p.Email == nil && p.Push == nil && p.SMS == nil && p.InApp == nil && len(p.Categories) == 0 && !p.SetQuietHours
}

// Apply returns prefs with the patch applied. It does not change prefs.
func (p PreferencesPatch) Apply(prefs Preferences) Preferences {
	set := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	set(&prefs.Email, p.Email)
	set(&prefs.Push, p.Push)
	set(&prefs.SMS, p.SMS)
	set(&prefs.InApp, p.InApp)
	cats := make(map[string]CategoryChoice, len(prefs.Categories)+len(p.Categories))
	maps.Copy(cats, prefs.Categories)
	for key, cp := range p.Categories {
		if cp == nil {
			delete(cats, key)
			continue
		}
		old, had := cats[key]
		if c, keep := cp.apply(old, had); keep {
			cats[key] = c
		} else {
			delete(cats, key)
		}
	}
	prefs.Categories = cats
	if p.SetQuietHours {
		prefs.QuietHours = p.QuietHours
	}
	return prefs
}

// Validate puts the patch's quiet hours in canonical form and records
// what is wrong with them in fe, under prefix ("" for a preferences
// update, "preferences." in a registration). It returns fe.Err().
func (p *PreferencesPatch) Validate(prefix string, fe FieldErrors) error {
	if p.SetQuietHours && p.QuietHours != nil {
		p.QuietHours.Normalize(prefix+"quiet_hours.", fe)
	}
	return fe.Err()
}

// CheckCategories checks the patch's categories against the defined ones:
// each must exist, and a required one cannot be turned off. Dropping the
// override of a category that no longer exists is allowed.
func (p PreferencesPatch) CheckCategories(prefix string, defined map[string]*Category, fe FieldErrors) error {
	for _, key := range slices.Sorted(maps.Keys(p.Categories)) {
		cp := p.Categories[key]
		c, ok := defined[key]
		switch {
		case !ok && cp != nil:
			fe.Add(prefix+"categories."+ClipKey(key), "Unknown category")
		case ok && c.Required && cp != nil && cp.turnsOff():
			fe.Add(prefix+"categories."+key, "This category is required and cannot be turned off")
		}
	}
	return fe.Err()
}

// MaxKeyEcho is how many characters of a client's key an answer repeats,
// so that its size does not grow with theirs.
const MaxKeyEcho = 64

// ClipKey returns key cut to MaxKeyEcho characters and an ellipsis.
func ClipKey(key string) string {
	n := 0
	for i := range key {
		if n == MaxKeyEcho {
			return key[:i] + "…"
		}
		n++
	}
	return key
}

// Days of the week as quiet hours name them, Sunday first as time.Weekday counts.
var weekdays = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// QuietHours is a daily window in which the listed channels stay silent
// except for required categories. The window starts at Start and ends at
// End in the time zone Timezone (nil: the user's, else UTC); End before
// Start wraps past midnight. Days, when not empty, lists the days (sun …
// sat) on which a window starts; empty means every day.
type QuietHours struct {
	Start    ClockTime `json:"start"`
	End      ClockTime `json:"end"`
	Timezone *string   `json:"timezone"`
	Channels []string  `json:"channels"`
	Days     []string  `json:"days"`
}

// ClockTime is a time of day in minutes since midnight; JSON "HH:MM".
type ClockTime int

// ParseClockTime reads "HH:MM" (00:00 to 23:59).
func ParseClockTime(s string) (ClockTime, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, errors.New("must be a time of day as HH:MM, 00:00 to 23:59")
	}
	return ClockTime(t.Hour()*60 + t.Minute()), nil
}

// String formats the time as HH:MM.
func (c ClockTime) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// MarshalJSON writes "HH:MM".
func (c ClockTime) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// UnmarshalJSON reads "HH:MM".
func (c *ClockTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseClockTime(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Normalize checks the quiet hours and puts them in canonical form
// (channels and days in their fixed order, without repeats; a nil Channels
// means every channel). It records what is wrong in fe under prefix.
func (q *QuietHours) Normalize(prefix string, fe FieldErrors) {
	if q.Start == q.End {
		fe.Add(prefix+"end", "Must differ from start")
	}
	if q.Timezone != nil {
		tz, msgs := CheckTimezone(*q.Timezone)
		for _, m := range msgs {
			fe.Add(prefix+"timezone", m)
		}
		q.Timezone = &tz
	}
	if q.Channels == nil {
		q.Channels = slices.Clone(Channels)
	}
	var chans []string
	for _, c := range Channels {
		if slices.Contains(q.Channels, c) {
			chans = append(chans, c)
		}
	}
	for _, c := range q.Channels {
		if !ValidChannel(c) {
			fe.Add(prefix+"channels", MsgChannels)
			break
		}
	}
	if len(q.Channels) == 0 {
		fe.Add(prefix+"channels", "Must name at least one channel")
	}
	q.Channels = chans
	var days []string
	for _, d := range weekdays {
		if slices.Contains(q.Days, d) {
			days = append(days, d)
		}
	}
	for _, d := range q.Days {
		if !slices.Contains(weekdays[:], d) {
			fe.Add(prefix+"days", "Must be days of the week: sun, mon, tue, wed, thu, fri, sat")
			break
		}
	}
	if days == nil {
		days = []string{}
	}
	q.Days = days
}

// Category is a kind of notification the operator defines, such as
// "marketing" or "security". Defaults says which channels it uses for a
// user who made no choice; a Required category ignores the user's channel
// switches, category choices and quiet hours (it still uses only the
// channels its defaults turn on); a Commercial one can be unsubscribed
// from with one click.
type Category struct {
	Key         string
	Name        string
	Description string
	Defaults    map[string]bool
	Required    bool
	Commercial  bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Default reports whether the category uses channel c by default.
func (c *Category) Default(channel string) bool { return c.Defaults[channel] }

// CheckCategoryName trims a category's display name and checks it: 1 to
// 100 characters, no control characters.
func CheckCategoryName(s string) (string, []string) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return s, []string{MsgRequired}
	case utf8.RuneCountInString(s) > 100:
		return s, []string{"Must be at most 100 characters"}
	case strings.ContainsFunc(s, unicode.IsControl):
		return s, []string{"Must not contain control characters"}
	}
	return s, nil
}

// CheckCategoryKey checks a category key: a slug of 1 to 64 lowercase
// letters, digits, '-' and '_', starting with a letter or digit.
func CheckCategoryKey(key string) []string {
	if key == "" || len(key) > 64 {
		return []string{"Must be 1 to 64 characters"}
	}
	for i, r := range key {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_')
		if !ok {
			return []string{"Must be a slug: lowercase letters, digits, '-' and '_', starting with a letter or digit"}
		}
	}
	return nil
}

// Equal reports whether p and q say the same (a nil and an empty
// Categories are the same).
func (p Preferences) Equal(q Preferences) bool {
	if len(p.Categories) == 0 && len(q.Categories) == 0 {
		p.Categories, q.Categories = nil, nil
	}
	return reflect.DeepEqual(p, q)
}
