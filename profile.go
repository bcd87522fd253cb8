package usersvc

import (
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/language"
)

// Messages of the profile fields.
const (
	MsgPhone    = "Must be a valid phone number in international format, such as +14155550123"
	MsgLocale   = "Must be a BCP 47 language tag, such as en-US"
	MsgTimezone = "Must be an IANA time zone name, such as Europe/Berlin"
)

// Nullable is the change of an optional field in a partial update: Set
// false leaves it as it is; Set with a nil Value clears it.
type Nullable[T any] struct {
	Set   bool
	Value *T
}

// ProfilePatch is a partial update of a user's profile.
type ProfilePatch struct {
	Name     *string
	Phone    Nullable[string]
	Locale   Nullable[string]
	Timezone Nullable[string]
}

// Empty reports whether the patch changes nothing.
func (p ProfilePatch) Empty() bool {
	return p.Name == nil && !p.Phone.Set && !p.Locale.Set && !p.Timezone.Set
}

// Validate normalises the patch in place and records what it breaks in fe,
// skipping fields that already have an entry. It returns fe.Err().
func (p *ProfilePatch) Validate(fe FieldErrors) error {
	if _, bad := fe["name"]; !bad && p.Name != nil {
		n, msgs := CheckName(*p.Name)
		for _, m := range msgs {
			fe.Add("name", m)
		}
		p.Name = &n
	}
	checkNullable(fe, "phone", &p.Phone, CheckPhone)
	checkNullable(fe, "locale", &p.Locale, CheckLocale)
	checkNullable(fe, "timezone", &p.Timezone, CheckTimezone)
	return fe.Err()
}

func checkNullable(fe FieldErrors, field string, v *Nullable[string], check func(string) (string, []string)) {
	if _, bad := fe[field]; bad || !v.Set || v.Value == nil {
		return
	}
	s, msgs := check(*v.Value)
	for _, m := range msgs {
		fe.Add(field, m)
	}
	v.Value = &s
}

// Apply returns u's profile fields with the patch applied, in place.
func (p ProfilePatch) Apply(u *User) {
	if p.Name != nil {
		u.Name = *p.Name
	}
	for _, f := range []struct {
		v   Nullable[string]
		dst **string
	}{{p.Phone, &u.Phone}, {p.Locale, &u.Locale}, {p.Timezone, &u.Timezone}} {
		if f.v.Set {
			*f.dst = f.v.Value
		}
	}
}

// CheckPhone parses an international phone number ("+" and the country
// code, then digits with spaces, dashes, dots or parentheses between them)
// and returns it in E.164 form. Letters are refused: neither vanity numbers
// ("1-800-FLOWERS") nor extensions, which E.164 cannot hold.
func CheckPhone(s string) (string, []string) {
	const msg = MsgPhone
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") || len(s) > 32 {
		return s, []string{msg}
	}
	for _, r := range s[1:] {
		if (r < '0' || r > '9') && !strings.ContainsRune(" -.()", r) {
			return s, []string{msg}
		}
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return s, []string{msg}
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// CheckLocale parses a BCP 47 language tag and returns its canonical form
// ("en-us" becomes "en-US").
func CheckLocale(s string) (string, []string) {
	const msg = MsgLocale
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 35 {
		return s, []string{msg}
	}
	t, err := language.Parse(s)
	if err != nil || t == language.Und {
		return s, []string{msg}
	}
	return t.String(), nil
}

// CheckTimezone checks an IANA time zone name, such as Europe/Berlin.
func CheckTimezone(s string) (string, []string) {
	const msg = MsgTimezone
	s = strings.TrimSpace(s)
	if s == "" || s == "Local" || len(s) > 64 {
		return s, []string{msg}
	}
	if _, err := time.LoadLocation(s); err != nil {
		return s, []string{msg}
	}
	return s, nil
}

// Location returns the time zone name of the user's quiet hours: theirs
// if set, else the user's, else UTC.
func (q *QuietHours) Location(userTZ *string) *time.Location {
	for _, name := range []*string{q.Timezone, userTZ} {
		if name != nil {
			if loc, err := time.LoadLocation(*name); err == nil {
				return loc
			}
		}
	}
	return time.UTC
}
