package usersvc_test

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/usersvc/usersvc"
)

// emailSeeds are addresses in the forms clients send: cases, compositions,
// spaces, look-alike and invalid ones.
var emailSeeds = []string{
	"", " ", "alice@example.com", "  Alice@Example.COM\t", "jos\u00e9@example.com", "jose\u0301@example.com",
	"JOS\u00c9@EXAMPLE.COM", "\uff21lice@example.com", "alice\uff20example.com", "Stra\u00dfe@x.de",
	"K\u212aLVIN@example.com", "\u0130stanbul@example.com", "\u0131@example.com", "\ufb01le@example.com",
	"a@b", "a@@b.co", ".a@b.co", "a.@b.co", "a@-b.co", "a@b.123", "\xff@example.com", "a\x00b@example.com",
	"\u00e9\u0301@example.com", "\u1e9e@example.com", "\u03a3\u03c3\u03c2@example.gr", "x@\u00fcnicode.de",
	strings.Repeat("x", 64) + "@" + strings.Repeat("d", 63) + ".com", "\u00a0a@b.co\u3000",
}

// FuzzCanonicalEmail checks the properties the account lookup relies on:
// the canonical form is a fixed point, NFC, trimmed and case-folded, and an
// address that is valid stays valid, under the same canonical form.
func FuzzCanonicalEmail(f *testing.F) {
	for _, s := range emailSeeds {
		f.Add(s)
	}
	fold := cases.Fold()
	f.Fuzz(func(t *testing.T, s string) {
		c := usersvc.CanonicalEmail(s)
		if again := usersvc.CanonicalEmail(c); again != c {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, c, again)
		}
		if strings.TrimSpace(c) != c {
			t.Fatalf("%q -> %q keeps surrounding space", s, c)
		}
		if utf8.ValidString(s) {
			if !norm.NFC.IsNormalString(c) {
				t.Fatalf("%q -> %q is not NFC", s, c)
			}
			if f := norm.NFC.String(unicodeFold(fold, c)); f != c {
				t.Fatalf("%q -> %q is not case-folded (%q)", s, c, f)
			}
			if usersvc.CanonicalEmail(norm.NFD.String(s)) != c {
				t.Fatalf("the NFD form of %q has another canonical form", s)
			}
		}
		if isASCII(s) {
			for _, form := range []string{strings.ToUpper(s), strings.ToLower(s)} {
				if got := usersvc.CanonicalEmail(form); got != c {
					t.Fatalf("%q -> %q but %q -> %q", s, c, form, got)
				}
			}
		}
		got, msgs := usersvc.CheckEmail(s)
		if got != c {
			t.Fatalf("CheckEmail(%q) returned %q, CanonicalEmail %q", s, got, c)
		}
		if len(msgs) == 0 {
			if again, msgs := usersvc.CheckEmail(c); again != c || len(msgs) != 0 {
				t.Fatalf("%q is valid but its canonical form %q is not: %q %v", s, c, again, msgs)
			}
			if c == "" || strings.Count(c, "@") != 1 || utf8.RuneCountInString(c) > usersvc.MaxEmailLength {
				t.Fatalf("accepted %q", c)
			}
		}
	})
}

// unicodeFold is the full case folding of Unicode's CaseFolding.txt: the
// folding of x/text, except for Cherokee letters, which it swaps between
// cases where Unicode folds them to capitals.
func unicodeFold(fold cases.Caser, s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cherokee, r) {
			return unicode.ToUpper(r)
		}
		return r
	}, fold.String(s))
}

// TestCanonicalEmailCherokee: the two cases of a Cherokee letter are one
// address, and its canonical form is a fixed point (found by fuzzing).
func TestCanonicalEmailCherokee(t *testing.T) {
	small, capital := "ꮣꭰ@example.com", "ᏓᎠ@example.com"
	for _, s := range []string{small, capital, "ꮣᎠ@EXAMPLE.com"} {
		if c := usersvc.CanonicalEmail(s); c != capital || usersvc.CanonicalEmail(c) != c {
			t.Errorf("CanonicalEmail(%q) = %q (again %q), want %q", s, c, usersvc.CanonicalEmail(c), capital)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// FuzzValidators runs every validator on one input: none panics, every
// message is one of its rule's messages, and what they return is trimmed.
func FuzzValidators(f *testing.F) {
	for _, s := range emailSeeds {
		f.Add(s)
	}
	for _, s := range []string{
		"Str0ng!Passw0rd", "short", strings.Repeat("Aa1!", 32), strings.Repeat("Aa1!", 32) + "x", "\u00dcn\u00efcode1\u20ac",
		"Zo\u00eb O'Brien-Smith", "J. R. R. Tolkien", "\u674e\u5c0f\u9f99", "tab\tname", " ", "fcm:abc-123_x", "apns:" + strings.Repeat("f", 600),
		"device.01", "bad token!", "\xc3\x28", "\u2019", "e\u0301",
	} {
		f.Add(s)
	}
	emailMsgs := []string{usersvc.MsgRequired, usersvc.MsgEmailTooLong, usersvc.MsgEmailInvalid}
	passwordMsgs := []string{usersvc.MsgNotString, usersvc.MsgPasswordShort, usersvc.MsgPasswordLong, usersvc.MsgPasswordUpper,
		usersvc.MsgPasswordLower, usersvc.MsgPasswordDigit, usersvc.MsgPasswordSpecial}
	nameMsgs := []string{usersvc.MsgRequired, usersvc.MsgNameTooLong, usersvc.MsgNameInvalid}
	tokenMsgs := []string{usersvc.MsgTokenTooLong, usersvc.MsgTokenInvalid}
	deviceMsgs := []string{usersvc.MsgDeviceIDTooLong, usersvc.MsgDeviceIDInvalid}
	known := func(t *testing.T, what, in string, msgs, set []string) {
		t.Helper()
		for i, m := range msgs {
			if !slices.Contains(set, m) {
				t.Fatalf("%s(%q): unknown message %q", what, in, m)
			}
			if slices.Contains(msgs[:i], m) {
				t.Fatalf("%s(%q): message %q twice", what, in, m)
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, msgs := usersvc.CheckEmail(s)
		known(t, "CheckEmail", s, msgs, emailMsgs)
		if len(msgs) > 1 {
			t.Fatalf("CheckEmail(%q): %v, want one message at most", s, msgs)
		}

		msgs = usersvc.CheckPassword(s)
		known(t, "CheckPassword", s, msgs, passwordMsgs)
		if n := utf8.RuneCountInString(s); utf8.ValidString(s) && (n < usersvc.MinPasswordLength || n > usersvc.MaxPasswordLength) &&
			!slices.ContainsFunc(msgs, func(m string) bool { return m == usersvc.MsgPasswordShort || m == usersvc.MsgPasswordLong }) {
			t.Fatalf("CheckPassword accepted the length of %q (%d)", s, n)
		}

		name, msgs := usersvc.CheckName(s)
		known(t, "CheckName", s, msgs, nameMsgs)
		if strings.TrimSpace(name) != name {
			t.Fatalf("CheckName(%q) = %q, not trimmed", s, name)
		}
		if len(msgs) == 0 && (name == "" || utf8.RuneCountInString(name) > usersvc.MaxNameLength || strings.ContainsAny(name, "<>\"\n\r\x00;")) {
			t.Fatalf("CheckName accepted %q", name)
		}

		tok, msgs := usersvc.CheckPushToken(s)
		known(t, "CheckPushToken", s, msgs, tokenMsgs)
		if len(msgs) == 0 && (tok == "" || len(tok) > usersvc.MaxPushTokenLength || strings.TrimLeft(tok, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-") != "") {
			t.Fatalf("CheckPushToken accepted %q", tok)
		}

		dev, msgs := usersvc.CheckDeviceID(s)
		known(t, "CheckDeviceID", s, msgs, deviceMsgs)
		if len(msgs) == 0 && (dev == "" || len(dev) > usersvc.MaxDeviceIDLength || strings.TrimLeft(dev, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-.") != "") {
			t.Fatalf("CheckDeviceID accepted %q", dev)
		}

		// A whole registration reports only its fields, with their messages.
		reg := usersvc.Registration{Email: s, Password: usersvc.Password(s), Name: s, PushToken: &s}
		fe := usersvc.FieldErrors{}
		err := reg.Validate(fe)
		if (err == nil) != (len(fe) == 0) {
			t.Fatalf("Validate returned %v with %d fields", err, len(fe))
		}
		if err != nil && usersvc.ErrorCode(err) != usersvc.EInvalid {
			t.Fatalf("Validate: code %q", usersvc.ErrorCode(err))
		}
		sets := map[string][]string{"email": emailMsgs, "password": passwordMsgs, "name": nameMsgs, "push_token": tokenMsgs}
		for field, msgs := range fe {
			set, ok := sets[field]
			if !ok {
				t.Fatalf("Validate reported field %q", field)
			}
			known(t, "Validate "+field, s, msgs, set)
		}
	})
}
