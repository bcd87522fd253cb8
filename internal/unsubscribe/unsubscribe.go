// Package unsubscribe signs and verifies the tokens of one-click unsubscribe
// links (RFC 8058).
//
// A token names a user, a category and optionally one channel, and lets
// whoever holds it turn that off without signing in. It is
//
//	base64url(version ‖ claims ‖ tag)   (no padding)
//
// where version is one byte (1), claims are the user id, the category and
// the channel, each preceded by its length as an unsigned varint (so that
// no field can spill into its neighbour), and tag is
//
//	HMAC-SHA256(key, "usersvc unsubscribe v1" ‖ 0x00 ‖ version ‖ claims)
//
// The purpose string bound into the MAC keeps a token made for anything
// else with the same key from passing here.
//
// Why HMAC-SHA256 from the standard library, and not a JWT: the link sits in
// every bulk email, so it should be short (a JWT header and JSON claims
// double its length), and there is nothing to negotiate: one algorithm, no
// header naming it, no "alg" to trick into "none" or into a public key used
// as an HMAC secret. The service is both the only signer and the only
// verifier, so a public format buys nothing.
//
// Tokens do not expire: an unsubscribe link must keep working for as long
// as the email that carries it can be read. Changing the key invalidates
// every link signed with the old one unless the old key is passed to New
// among the previous keys, which verify and never sign.
package unsubscribe

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
)

// Claims are what a token lets its holder unsubscribe from.
type Claims struct {
	UserID   string
	Category string
	Channel  string // "": the whole category
}

// MinKeyLen is the shortest key accepted, in bytes: as long as the hash.
const MinKeyLen = 32

// MaxClaimsLen is the longest the three fields of Claims may be together, in
// bytes. Verify refuses a token whose claims are longer; a user id, a
// category key and a channel name are far shorter.
const MaxClaimsLen = 1024

// ErrInvalid is the one error of Verify: malformed, truncated, tampered
// with, of another version or purpose, or signed with an unknown key. It
// says nothing about which.
var ErrInvalid = errors.New("unsubscribe: invalid token")

const (
	version = 1
	purpose = "usersvc unsubscribe v1"
	tagLen  = sha256.Size
	// maxVarintLen is the most bytes a field length up to MaxClaimsLen
	// takes as a varint.
	maxVarintLen = 2
	maxRawLen    = 1 + 3*maxVarintLen + MaxClaimsLen + tagLen
	// maxTokenLen is base64url without padding of maxRawLen bytes.
	maxTokenLen = (maxRawLen*8 + 5) / 6
)

var encoding = base64.RawURLEncoding.Strict()

// Signer makes and checks tokens. It holds one key that signs and verifies
// and any number of previous keys that only verify. It never prints its
// keys, and is safe for concurrent use. Make it with New; the zero Signer
// has no key.
type Signer struct {
	keys [][]byte // keys[0] signs
}

const redacted = "unsubscribe.Signer{[REDACTED]}"

// String keeps the keys out of formatted output.
func (Signer) String() string { return redacted }

// GoString keeps the keys out of %#v output.
func (Signer) GoString() string { return redacted }

// Format keeps the keys out of every fmt verb, %x included.
func (Signer) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue keeps the keys out of structured logs.
func (Signer) LogValue() slog.Value { return slog.StringValue(redacted) }

// New returns a Signer that signs with k and also accepts the tokens
// signed with any of previous. Every key must be at least MinKeyLen bytes;
// the error then says which key (by position, never by content). The keys
// are copied.
func New(k []byte, previous ...[]byte) (*Signer, error) {
	s := &Signer{keys: make([][]byte, 0, 1+len(previous))}
	for i, b := range append([][]byte{k}, previous...) {
		if len(b) < MinKeyLen {
			if i == 0 {
				return nil, fmt.Errorf("unsubscribe: the key is %d bytes, at least %d are needed", len(b), MinKeyLen)
			}
			return nil, fmt.Errorf("unsubscribe: previous key %d is %d bytes, at least %d are needed", i, len(b), MinKeyLen)
		}
		s.keys = append(s.keys, append([]byte(nil), b...))
	}
	return s, nil
}

// Token returns the URL-safe token of c, signed with the current key. The
// same claims always give the same token. Claims longer than MaxClaimsLen
// together give a token that Verify refuses.
func (s *Signer) Token(c Claims) string {
	payload := encode(c)
	return encoding.EncodeToString(append(payload, mac(s.keys[0], payload)...))
}

// Verify returns the claims of a token that Token made with the current key
// or one of the previous keys. Anything else is ErrInvalid.
func (s *Signer) Verify(token string) (Claims, error) {
	if len(token) > maxTokenLen || !urlSafe(token) {
		return Claims{}, ErrInvalid
	}
	raw, err := encoding.DecodeString(token)
	if err != nil || len(raw) < 1+3+tagLen || raw[0] != version {
		return Claims{}, ErrInvalid
	}
	payload, tag := raw[:len(raw)-tagLen], raw[len(raw)-tagLen:]
	ok := false
	for _, k := range s.keys {
		// Every key is tried, so the time taken does not tell which one
		// matched.
		if hmac.Equal(mac(k, payload), tag) {
			ok = true
		}
	}
	if !ok {
		return Claims{}, ErrInvalid
	}
	c, ok := decode(payload)
	if !ok {
		return Claims{}, ErrInvalid
	}
	return c, nil
}

// mac is the tag of payload under k, with the purpose bound in.
func mac(k, payload []byte) []byte {
	h := hmac.New(sha256.New, k)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)
}

// encode is the version byte and the length-prefixed fields of c.
func encode(c Claims) []byte {
	b := make([]byte, 0, 1+3*maxVarintLen+len(c.UserID)+len(c.Category)+len(c.Channel)+tagLen)
	b = append(b, version)
	for _, f := range []string{c.UserID, c.Category, c.Channel} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// decode reads what encode wrote, and nothing else: no bytes left over, no
// field longer than the rest, no length written in more bytes than needed.
func decode(payload []byte) (Claims, bool) {
	rest := payload[1:]
	var fields [3]string
	total := 0
	for i := range fields {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return Claims{}, false
		}
		rest = rest[w:]
		fields[i], rest = string(rest[:n]), rest[n:]
		total += int(n)
	}
	c := Claims{UserID: fields[0], Category: fields[1], Channel: fields[2]}
	if len(rest) != 0 || total > MaxClaimsLen || string(encode(c)) != string(payload) {
		return Claims{}, false
	}
	return c, true
}

// urlSafe reports whether s holds only the base64url alphabet (the decoder
// would skip line breaks, which would let two strings carry one token).
func urlSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
