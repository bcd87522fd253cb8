package usersvc_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/usersvc/usersvc"
)

func TestCanonicalEmail(t *testing.T) {
	cases := map[string]string{
		"  Grace@Example.COM ":    "grace@example.com",
		"ALAN.TURING@EXAMPLE.ORG": "alan.turing@example.org",
		"e\u0301mile@example.com": "\u00e9mile@example.com", // decomposed é composes
		"\u00c9MILE@example.com":  "\u00e9mile@example.com", // upper-case É folds
		"K\u212aLVIN@example.com": "kklvin@example.com",     // Kelvin sign folds to k
	}
	for in, want := range cases {
		if got := usersvc.CanonicalEmail(in); got != want {
			t.Errorf("CanonicalEmail(%q) = %q, want %q", in, got, want)
		}
	}
	// Visually identical forms collapse to one.
	if usersvc.CanonicalEmail("Jos\u00e9@example.com") != usersvc.CanonicalEmail("JOSE\u0301@EXAMPLE.COM") {
		t.Error("NFC and NFD forms differ after canonicalisation")
	}
}

func TestCheckEmail(t *testing.T) {
	valid := []string{"a@b.co", "first.last+tag@sub.example.org", "o'neil@example.ie", "\u00fc@m\u00fcnchen.de"}
	for _, e := range valid {
		if _, msgs := usersvc.CheckEmail(e); len(msgs) != 0 {
			t.Errorf("%q rejected: %v", e, msgs)
		}
	}
	invalid := map[string]string{
		"":                                usersvc.MsgRequired,
		"plain":                           usersvc.MsgEmailInvalid,
		"a@b":                             usersvc.MsgEmailInvalid,
		"a@@b.co":                         usersvc.MsgEmailInvalid,
		".a@b.co":                         usersvc.MsgEmailInvalid,
		"a.@b.co":                         usersvc.MsgEmailInvalid,
		"a@-b.co":                         usersvc.MsgEmailInvalid,
		"a@b.123":                         usersvc.MsgEmailInvalid,
		"a<b>@c.co":                       usersvc.MsgEmailInvalid,
		strings.Repeat("x", 65) + "@b.co": usersvc.MsgEmailInvalid,
		strings.Repeat("x", 64) + "@" + strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 63) + ".com": usersvc.MsgEmailTooLong,
	}
	for e, want := range invalid {
		if _, msgs := usersvc.CheckEmail(e); !slices.Equal(msgs, []string{want}) {
			t.Errorf("CheckEmail(%q) = %v, want [%s]", e, msgs, want)
		}
	}
}

func TestCheckPasswordAndName(t *testing.T) {
	if msgs := usersvc.CheckPassword("Ünïcode1€"); len(msgs) != 0 {
		t.Errorf("unicode password rejected: %v", msgs)
	}
	if msgs := usersvc.CheckPassword(strings.Repeat("Aa1!", 32)); len(msgs) != 0 {
		t.Errorf("128 characters rejected: %v", msgs)
	}
	if msgs := usersvc.CheckPassword(strings.Repeat("Aa1!", 32) + "x"); !slices.Equal(msgs, []string{usersvc.MsgPasswordLong}) {
		t.Errorf("129 characters: %v", msgs)
	}
	for _, n := range []string{"Zoë O'Brien-Smith", "J. R. R. Tolkien", "李小龙", "Ренат", "नमस्ते"} {
		if got, msgs := usersvc.CheckName(" " + n + " "); len(msgs) != 0 || got != n {
			t.Errorf("CheckName(%q) = %q %v", n, got, msgs)
		}
	}
	for _, n := range []string{"Bob1", "a_b", "x@y", "tab\tname", "new\nline"} {
		if _, msgs := usersvc.CheckName(n); !slices.Equal(msgs, []string{usersvc.MsgNameInvalid}) {
			t.Errorf("CheckName(%q) = %v", n, msgs)
		}
	}
}
