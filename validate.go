package usersvc

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Validation messages of the contract (section 4).
const (
	MsgRequired          = "This field is required"
	MsgNotString         = "Must be a string"
	MsgNotBoolean        = "Must be a boolean"
	MsgNotObject         = "Must be an object"
	MsgUnknownField      = "Unknown field"
	MsgEmailTooLong      = "Email address is too long (max 254 characters)"
	MsgEmailInvalid      = "Invalid email format"
	MsgPasswordShort     = "Password must be at least 8 characters long"
	MsgPasswordLong      = "Password is too long (max 128 characters)"
	MsgPasswordUpper     = "Password must contain at least one uppercase letter"
	MsgPasswordLower     = "Password must contain at least one lowercase letter"
	MsgPasswordDigit     = "Password must contain at least one number"
	MsgPasswordSpecial   = "Password must contain at least one special character"
	MsgNameTooLong       = "Must not exceed 255 characters"
	MsgNameInvalid       = "Contains invalid characters (only letters, spaces, hyphens, apostrophes and periods allowed)"
	MsgTokenTooLong      = "Token is too long (max 512 characters)"
	MsgTokenInvalid      = "Invalid token format (only alphanumeric characters, hyphens, underscores, and colons allowed)"
	MsgDeviceIDTooLong   = "Device id is too long (max 255 characters)"
	MsgDeviceIDInvalid   = "Invalid device id format (only alphanumeric characters, hyphens, underscores, colons and periods allowed)"
	MaxEmailLength       = 254
	MinPasswordLength    = 8
	MaxPasswordLength    = 128
	MaxNameLength        = 255
	MaxPushTokenLength   = 512
	MaxDeviceIDLength    = 255
	maxEmailLocalLength  = 64
	maxEmailDomainLabel  = 63
	maxEmailDomainLength = 253
)

// CanonicalEmail returns the form under which an email is stored and
// compared: trimmed, Unicode NFKC, case-folded. Two addresses that look the
// same have the same canonical form, compatibility forms included: a
// full-width "Ａ" or "＠" is an "a" or an "@", a ligature "ﬁ" is "fi". Bytes
// that are not UTF-8 become U+FFFD (such an address is not valid anyway).
func CanonicalEmail(s string) string {
	// Invalid UTF-8 is replaced first: case folding stops at a bad byte
	// and would leave what follows for a second pass to fold.
	s = strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
	s = norm.NFKC.String(s)
	s = foldCase(s)
	return strings.TrimSpace(norm.NFKC.String(s))
}

// foldCase applies Unicode full case folding. The folding of x/text swaps
// the case of Cherokee letters, so that folding twice gives back the input
// and an address and its folded form would be two accounts; Unicode folds
// them to capitals (CaseFolding.txt), which is done here. A Caser may keep
// state, so each call makes its own.
func foldCase(s string) string {
	s = cases.Fold().String(s)
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cherokee, r) {
			return unicode.ToUpper(r)
		}
		return r
	}, s)
}

// CheckEmail returns the canonical form of s and the messages of the rules it
// breaks (none when it is valid).
func CheckEmail(s string) (string, []string) {
	c := CanonicalEmail(s)
	if c == "" {
		return c, []string{MsgRequired}
	}
	if !utf8.ValidString(c) {
		return c, []string{MsgEmailInvalid}
	}
	if utf8.RuneCountInString(c) > MaxEmailLength {
		return c, []string{MsgEmailTooLong}
	}
	if !validEmail(c) {
		return c, []string{MsgEmailInvalid}
	}
	return c, nil
}

func validEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || strings.Count(s, "@") != 1 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > maxEmailLocalLength || len(domain) > maxEmailDomainLength {
		return false
	}
	// The local part is a dot-atom: atoms of letters, digits and the RFC
	// 5322 specials, joined by single dots.
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return false
		}
		for _, r := range atom {
			if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || strings.ContainsRune("!#$%&'*+/=?^_`{|}~-", r)) {
				return false
			}
		}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, label := range labels {
		if label == "" || len(label) > maxEmailDomainLabel || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	return strings.IndexFunc(tld, func(r rune) bool { return !unicode.IsDigit(r) }) >= 0
}

// CheckPassword returns the messages of every password rule p breaks. The
// password is checked exactly as sent: no trimming, no truncation.
func CheckPassword(p string) []string {
	var msgs []string
	if !utf8.ValidString(p) {
		return []string{MsgNotString}
	}
	n := utf8.RuneCountInString(p)
	if n < MinPasswordLength {
		msgs = append(msgs, MsgPasswordShort)
	}
	if n > MaxPasswordLength {
		msgs = append(msgs, MsgPasswordLong)
	}
	var upper, lower, digit, special bool
	for _, r := range p {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsLetter(r), unicode.IsSpace(r):
		default:
			special = true
		}
	}
	if !upper {
		msgs = append(msgs, MsgPasswordUpper)
	}
	if !lower {
		msgs = append(msgs, MsgPasswordLower)
	}
	if !digit {
		msgs = append(msgs, MsgPasswordDigit)
	}
	if !special {
		msgs = append(msgs, MsgPasswordSpecial)
	}
	return msgs
}

// CheckName returns the trimmed name and the messages of the rules it breaks.
func CheckName(s string) (string, []string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return s, []string{MsgRequired}
	}
	var msgs []string
	if utf8.RuneCountInString(s) > MaxNameLength {
		msgs = append(msgs, MsgNameTooLong)
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsMark(r) || r == ' ' || r == '-' || r == '\'' || r == '\u2019' || r == '.') {
			msgs = append(msgs, MsgNameInvalid)
			break
		}
	}
	return s, msgs
}

// CheckPushToken returns the trimmed token and the messages of the rules it breaks.
func CheckPushToken(s string) (string, []string) {
	s = strings.TrimSpace(s)
	if len(s) > MaxPushTokenLength {
		return s, []string{MsgTokenTooLong}
	}
	if s == "" || !onlyRunes(s, "_:-") {
		return s, []string{MsgTokenInvalid}
	}
	return s, nil
}

// CheckDeviceID returns the trimmed device id and the messages of the rules it breaks.
func CheckDeviceID(s string) (string, []string) {
	s = strings.TrimSpace(s)
	if len(s) > MaxDeviceIDLength {
		return s, []string{MsgDeviceIDTooLong}
	}
	if s == "" || !onlyRunes(s, "_:-.") {
		return s, []string{MsgDeviceIDInvalid}
	}
	return s, nil
}

// onlyRunes reports whether s holds only ASCII letters, digits and the runes of extra.
func onlyRunes(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}
