package unsubscribe_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/unsubscribe"
)

var (
	keyA     = []byte("unsubscribe-key-a-0123456789abcdef")
	keyB     = []byte("unsubscribe-key-b-0123456789abcdef")
	keyOther = []byte("unsubscribe-key-other-0123456789ab")

	alice = unsubscribe.Claims{UserID: "3f0e5e2a-7f43-4c1a-9d55-0b8a1c2d3e4f", Category: "marketing", Channel: "email"}
	bob   = unsubscribe.Claims{UserID: "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d", Category: "marketing", Channel: "email"}
)

var urlSafe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func newSigner(t testing.TB, key []byte, previous ...[]byte) *unsubscribe.Signer {
	t.Helper()
	s, err := unsubscribe.New(key, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawToken builds a token by hand from the format in the package
// documentation, so that a change of format (which would break every link
// already sent) fails the tests.
func rawToken(key []byte, purpose string, payload []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(payload)
	return base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), payload...), h.Sum(nil)...))
}

// payload is version 1 and the fields, each after its length as one byte
// (every field here is shorter than 128 bytes, where a varint is one byte).
func payload(version byte, fields ...string) []byte {
	b := []byte{version}
	for _, f := range fields {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	return b
}

// wantInvalid fails unless Verify refuses tok with ErrInvalid itself.
func wantInvalid(t *testing.T, s *unsubscribe.Signer, tok, what string) {
	t.Helper()
	c, err := s.Verify(tok)
	if err != unsubscribe.ErrInvalid {
		t.Errorf("%s: Verify = %+v, %v; want ErrInvalid", what, c, err)
	}
	if c != (unsubscribe.Claims{}) {
		t.Errorf("%s: Verify returned claims %+v with its error", what, c)
	}
}

func TestRoundTrip(t *testing.T) {
	s := newSigner(t, keyA)
	for _, c := range []unsubscribe.Claims{
		alice,
		{UserID: alice.UserID, Category: "marketing"},
		{UserID: "u", Category: "c", Channel: "sms"},
		{UserID: "a|b", Category: "c:d", Channel: "in_app"},
		{UserID: "nul\x00inside", Category: "\xff\xfe", Channel: "ü"},
		{UserID: strings.Repeat("x", 300), Category: strings.Repeat("y", 200), Channel: "push"},
		{},
	} {
		tok := s.Token(c)
		if !urlSafe.MatchString(tok) {
			t.Errorf("token %q is not base64url without padding", tok)
		}
		if again := s.Token(c); again != tok {
			t.Errorf("Token(%+v) is not deterministic", c)
		}
		got, err := s.Verify(tok)
		if err != nil || got != c {
			t.Errorf("Verify(Token(%+v)) = %+v, %v", c, got, err)
		}
	}
}

// TestFormat pins the format of the package documentation: a token built
// by hand from it verifies, and Token makes exactly that token.
func TestFormat(t *testing.T) {
	s := newSigner(t, keyA)
	want := rawToken(keyA, "usersvc unsubscribe v1", payload(1, alice.UserID, alice.Category, alice.Channel))
	if got := s.Token(alice); got != want {
		t.Fatalf("Token = %s\nthe documented format gives %s", got, want)
	}
	if c, err := s.Verify(want); err != nil || c != alice {
		t.Fatalf("Verify of the documented format = %+v, %v", c, err)
	}
	// A typical link stays short.
	if n := len(want); n > 130 {
		t.Errorf("a token for a UUID, a category and a channel is %d characters", n)
	}
}

// TestFieldsCannotSpill: the same bytes split differently between the
// fields are different claims with different tokens.
func TestFieldsCannotSpill(t *testing.T) {
	s := newSigner(t, keyA)
	splits := []unsubscribe.Claims{
		{UserID: "ab", Category: "c"},
		{UserID: "a", Category: "bc"},
		{UserID: "a", Category: "b", Channel: "c"},
		{UserID: "", Category: "abc"},
		{UserID: "abc", Category: ""},
	}
	seen := map[string]unsubscribe.Claims{}
	for _, c := range splits {
		tok := s.Token(c)
		if prev, dup := seen[tok]; dup {
			t.Errorf("%+v and %+v share a token", prev, c)
		}
		seen[tok] = c
		if got, err := s.Verify(tok); err != nil || got != c {
			t.Errorf("Verify(Token(%+v)) = %+v, %v", c, got, err)
		}
	}
}

func TestForgedTag(t *testing.T) {
	s := newSigner(t, keyA)
	p := payload(1, alice.UserID, alice.Category, alice.Channel)
	for i := range 200 {
		tag := make([]byte, sha256.Size)
		if i > 0 { // the first one is all zeros
			rand.Read(tag)
		}
		wantInvalid(t, s, base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), p...), tag...)), "random tag")
	}
	// No MAC at all, a short one, one too long.
	raw, _ := base64.RawURLEncoding.DecodeString(s.Token(alice))
	wantInvalid(t, s, base64.RawURLEncoding.EncodeToString(p), "no tag")
	wantInvalid(t, s, base64.RawURLEncoding.EncodeToString(raw[:len(raw)-16]), "half a tag")
	wantInvalid(t, s, base64.RawURLEncoding.EncodeToString(append(raw, 0)), "a byte after the tag")
}

func TestTruncated(t *testing.T) {
	s := newSigner(t, keyA)
	tok := s.Token(alice)
	for n := range len(tok) {
		wantInvalid(t, s, tok[:n], fmt.Sprintf("prefix of %d characters", n))
		wantInvalid(t, s, tok[n+1:], fmt.Sprintf("suffix from %d", n+1))
	}
}

func TestEveryBitFlip(t *testing.T) {
	s := newSigner(t, keyA)
	raw, err := base64.RawURLEncoding.DecodeString(s.Token(alice))
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for bit := range 8 {
			flipped := append([]byte(nil), raw...)
			flipped[i] ^= 1 << bit
			wantInvalid(t, s, base64.RawURLEncoding.EncodeToString(flipped), fmt.Sprintf("bit %d of byte %d flipped", bit, i))
		}
	}
	// The same at the level of the text: every character replaced by every
	// other one of the alphabet.
	tok := s.Token(alice)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range tok {
		for _, r := range alphabet {
			if byte(r) == tok[i] {
				continue
			}
			wantInvalid(t, s, tok[:i]+string(r)+tok[i+1:], fmt.Sprintf("character %d replaced by %c", i, r))
		}
	}
}

// TestCrossUser: a token for Alice cannot be edited into one for Bob, nor
// for another category or channel, by splicing claims and tags.
func TestCrossUser(t *testing.T) {
	s := newSigner(t, keyA)
	tokA, tokB := s.Token(alice), s.Token(bob)
	rawA, _ := base64.RawURLEncoding.DecodeString(tokA)
	rawB, _ := base64.RawURLEncoding.DecodeString(tokB)
	tagA := rawA[len(rawA)-sha256.Size:]

	if c, err := s.Verify(tokB); err != nil || c != bob {
		t.Fatalf("Bob's own token: %+v, %v", c, err)
	}
	// Bob's claims under Alice's tag.
	wantInvalid(t, s, base64.RawURLEncoding.EncodeToString(append(rawB[:len(rawB)-sha256.Size:len(rawB)-sha256.Size], tagA...)), "Bob's claims, Alice's tag")
	// Alice's token with the user id rewritten in place (same length).
	edited := bytes.Replace(rawA, []byte(alice.UserID), []byte(bob.UserID), 1)
	if bytes.Equal(edited, rawA) {
		t.Fatal("the user id was not found in the token")
	}
	wantInvalid(t, s, base64.RawURLEncoding.EncodeToString(edited), "user id rewritten")
	// Another category, a whole category instead of one channel, another
	// channel: each edited into Alice's token.
	for _, c := range []unsubscribe.Claims{
		{UserID: alice.UserID, Category: "security", Channel: alice.Channel},
		{UserID: alice.UserID, Category: alice.Category},
		{UserID: alice.UserID, Category: alice.Category, Channel: "sms"},
		{UserID: alice.Category, Category: alice.UserID, Channel: alice.Channel},
	} {
		p := payload(1, c.UserID, c.Category, c.Channel)
		wantInvalid(t, s, base64.RawURLEncoding.EncodeToString(append(p, tagA...)), fmt.Sprintf("%+v under Alice's tag", c))
	}
}

func TestOtherKey(t *testing.T) {
	s := newSigner(t, keyA)
	other := newSigner(t, keyOther)
	wantInvalid(t, s, other.Token(alice), "signed with another key")
	wantInvalid(t, other, s.Token(alice), "signed with another key, the other way")
}

// TestOtherPurpose: a MAC over the same bytes with the same key but for
// another purpose (or none) does not pass, nor does another version.
func TestOtherPurpose(t *testing.T) {
	s := newSigner(t, keyA)
	p := payload(1, alice.UserID, alice.Category, alice.Channel)
	wantInvalid(t, s, rawToken(keyA, "usersvc email-verification v1", p), "another purpose")
	wantInvalid(t, s, rawToken(keyA, "usersvc unsubscribe v2", p), "another purpose version")
	wantInvalid(t, s, rawToken(keyA, "", p), "empty purpose")

	h := hmac.New(sha256.New, keyA) // no purpose at all
	h.Write(p)
	wantInvalid(t, s, base64.RawURLEncoding.EncodeToString(append(p, h.Sum(nil)...)), "no purpose")

	for _, v := range []byte{0, 2, 255} {
		wantInvalid(t, s, rawToken(keyA, "usersvc unsubscribe v1", payload(v, alice.UserID, alice.Category, alice.Channel)), fmt.Sprintf("version %d", v))
	}
}

// TestCanonical: only the one encoding that Token makes is accepted, even
// under a valid MAC, so that one set of claims has one token.
func TestCanonical(t *testing.T) {
	s := newSigner(t, keyA)
	const purpose = "usersvc unsubscribe v1"
	good := payload(1, "u", "marketing", "")
	for name, p := range map[string][]byte{
		"length in two bytes":       {1, 0x81, 0x00, 'u', 9, 'm', 'a', 'r', 'k', 'e', 't', 'i', 'n', 'g', 0},
		"a byte after the channel":  append(append([]byte(nil), good...), 'x'),
		"a field missing":           payload(1, "u", "marketing"),
		"length beyond the end":     {1, 1, 'u', 9, 'm', 'a', 'r', 'k', 'e', 't', 'i', 'n', 'g', 5},
		"length of 2^63":            {1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		"varint overflow":           {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"only the version":          {1},
		"fields beyond the version": {1, 0, 0},
	} {
		wantInvalid(t, s, rawToken(keyA, purpose, p), name)
	}

	tok := s.Token(alice)
	wantInvalid(t, s, tok+"=", "padding")
	wantInvalid(t, s, tok[:20]+"\n"+tok[20:], "a line break inside")
	wantInvalid(t, s, tok+"\r\n", "a line break after")
	wantInvalid(t, s, " "+tok, "a space before")
	std := base64.RawStdEncoding.EncodeToString([]byte(mustDecode(t, tok)))
	if std != tok {
		wantInvalid(t, s, std, "standard alphabet")
	}
	// The last character carries bits beyond the data: any other value of
	// them is another string for the same bytes, and is refused.
	raw := mustDecode(t, tok)
	if len(raw)%3 != 0 {
		last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok[len(tok)-1])
		wantInvalid(t, s, tok[:len(tok)-1]+string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^1]), "padding bits set")
	}
}

func mustDecode(t *testing.T, tok string) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestClaimsLength(t *testing.T) {
	s := newSigner(t, keyA)
	longest := unsubscribe.Claims{UserID: strings.Repeat("u", unsubscribe.MaxClaimsLen-10), Category: strings.Repeat("c", 5), Channel: "email"}
	if c, err := s.Verify(s.Token(longest)); err != nil || c != longest {
		t.Errorf("claims of MaxClaimsLen bytes: %v", err)
	}
	spread := unsubscribe.Claims{UserID: strings.Repeat("u", 400), Category: strings.Repeat("c", 400), Channel: strings.Repeat("h", unsubscribe.MaxClaimsLen-800)}
	if c, err := s.Verify(s.Token(spread)); err != nil || c != spread {
		t.Errorf("claims of MaxClaimsLen bytes over three long fields: %v", err)
	}
	longest.Channel += "x"
	wantInvalid(t, s, s.Token(longest), "claims one byte over MaxClaimsLen")
	wantInvalid(t, s, strings.Repeat("A", 1<<20), "a megabyte")
}

// TestPreviousKeys walks a rotation: links of the old key keep working
// while it is listed as previous, new links use the new key, and once the
// old key is dropped its links stop.
func TestPreviousKeys(t *testing.T) {
	before := newSigner(t, keyA)
	old := before.Token(alice)

	during := newSigner(t, keyB, keyOther, keyA)
	if c, err := during.Verify(old); err != nil || c != alice {
		t.Fatalf("a link of the previous key: %+v, %v", c, err)
	}
	fresh := during.Token(alice)
	if fresh == old {
		t.Fatal("the previous key still signs")
	}
	if c, err := newSigner(t, keyB).Verify(fresh); err != nil || c != alice {
		t.Errorf("a new link under the current key alone: %+v, %v", c, err)
	}
	wantInvalid(t, before, fresh, "a new link under the old key")

	after := newSigner(t, keyB)
	wantInvalid(t, after, old, "a link of a retired key")
	wantInvalid(t, newSigner(t, keyB, keyOther), old, "a link of a key that is not among the previous ones")
}

func TestNew(t *testing.T) {
	short := []byte("short-key-0123456789-0123456789") // 31 bytes
	for name, keys := range map[string][][]byte{
		"short key":          {short},
		"nil key":            {nil},
		"short previous key": {keyA, keyB, short},
		"empty previous key": {keyA, {}},
	} {
		s, err := unsubscribe.New(keys[0], keys[1:]...)
		if err == nil || s != nil {
			t.Errorf("%s: New = %v, %v", name, s, err)
			continue
		}
		if strings.Contains(err.Error(), string(short)) || strings.Contains(err.Error(), string(keyA)) {
			t.Errorf("%s: the error %q shows a key", name, err)
		}
	}

	// The keys are copied: changing the caller's slice changes nothing.
	k := append([]byte(nil), keyA...)
	s := newSigner(t, k)
	tok := s.Token(alice)
	k[0] ^= 1
	if s.Token(alice) != tok {
		t.Error("the signer shares its key with the caller")
	}
}

func TestSignerNeverPrints(t *testing.T) {
	s := newSigner(t, keyA, keyB)
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, *s), fmt.Sprintf(verb, struct{ S *unsubscribe.Signer }{s}))
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("signer", "signer", s, "value", *s)
	out = append(out, logs.String())
	for _, o := range out {
		for _, k := range [][]byte{keyA, keyB} {
			if strings.Contains(o, string(k)) || strings.Contains(o, fmt.Sprintf("%x", k)) || strings.Contains(o, base64.StdEncoding.EncodeToString(k)) {
				t.Errorf("a key shows in %q", o)
			}
		}
	}
}

func FuzzVerify(f *testing.F) {
	s := newSigner(f, keyA)
	for _, c := range []unsubscribe.Claims{alice, bob, {UserID: "u", Category: "c"}, {}} {
		tok := s.Token(c)
		f.Add(tok)
		f.Add(tok[:len(tok)-1])
		f.Add(tok + "A")
	}
	f.Add("")
	f.Add("AQ")
	f.Add(base64.RawURLEncoding.EncodeToString(payload(1, "u", "c", "")))
	f.Add(strings.Repeat("_", 200))
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := s.Verify(tok)
		if err != nil {
			if err != unsubscribe.ErrInvalid || c != (unsubscribe.Claims{}) {
				t.Fatalf("Verify(%q) = %+v, %v; want only ErrInvalid", tok, c, err)
			}
			return
		}
		if again := s.Token(c); again != tok {
			t.Fatalf("Verify(%q) = %+v, which signs to %q", tok, c, again)
		}
	})
}
