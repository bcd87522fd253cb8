package password

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// djangoPBKDF2 returns a checker for the rest of a Django pbkdf2 hash,
// <iterations>$<salt>$<base64 of the derived key>, or nil when it is
// malformed. Django derives a key as long as the digest and uses the salt
// as text.
func djangoPBKDF2(scheme, rest string) func(string) bool {
	parts := strings.Split(rest, "$")
	if len(parts) != 3 || parts[1] == "" {
		return nil
	}
	iter, err := strconv.Atoi(parts[0])
	if err != nil || iter < 1 || iter > maxPBKDF2Iter {
		return nil
	}
	want, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return nil
	}
	salt := []byte(parts[1])
	switch scheme {
	case "pbkdf2_sha256":
		if len(want) != sha256.Size {
			return nil
		}
		return func(password string) bool { return pbkdf2Equal(sha256.New, password, salt, iter, want) }
	case "pbkdf2_sha1":
		if len(want) != sha1.Size {
			return nil
		}
		return func(password string) bool { return pbkdf2Equal(sha1.New, password, salt, iter, want) }
	}
	return nil
}

func pbkdf2Equal[H hash.Hash](h func() H, password string, salt []byte, iter int, want []byte) bool {
	got, err := pbkdf2.Key(h, password, salt, iter, len(want))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, want) == 1
}

// djangoBcrypt returns a checker for the rest of a Django bcrypt hash, which
// is a bcrypt string ($2b$<cost>$…), or nil when it is malformed. With
// sha256, Django hashes the hex SHA-256 of the password rather than the
// password itself.
func djangoBcrypt(rest string, sha256First bool) func(string) bool {
	hashed := []byte(rest)
	if cost, err := bcrypt.Cost(hashed); err != nil || cost > maxBcryptCost {
		return nil
	}
	return func(password string) bool {
		p := []byte(password)
		if sha256First {
			sum := sha256.Sum256(p)
			p = []byte(hex.EncodeToString(sum[:]))
		}
		return bcrypt.CompareHashAndPassword(hashed, p) == nil
	}
}
