package token

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/usersvc/usersvc/internal/account"
)

// verifiedGeneration is how many access tokens one generation of the
// verified cache holds; the cache holds at most two generations.
const verifiedGeneration = 4096

// verified remembers the access tokens whose signature, header and claims
// have been checked, by the SHA-256 of the whole token, so that a token
// presented again skips the JWT parse (the largest cost of an
// authenticated read). What depends on the time is checked again on every
// hit: exp, nbf and iat against the leeway. Nothing else of a verification
// can change for the same bytes under the same key set: the signature,
// the algorithm, the kid, the header, the issuer, the type and the claims
// are all in them. Whether the user still exists and is active, and whether
// the session is still live, is not the token's to say: the caller checks
// that on every request.
//
// It is bounded by two generations: a new token goes into the current one;
// when that is full it becomes the previous one (the one before is
// dropped), and a hit in the previous one is carried into the current.
// So tokens in use stay, and the memory is at most 2 × verifiedGeneration
// entries (about a megabyte).
type verified struct {
	mu        sync.Mutex
	cur, prev map[[sha256.Size]byte]verifiedToken
	size      int // entries per generation
}

// verifiedToken is what a verification of an access token found.
type verifiedToken struct {
	claims    account.AccessClaims
	notBefore time.Time // zero when the token has no nbf
}

func newVerified(size int) *verified {
	return &verified{cur: make(map[[sha256.Size]byte]verifiedToken), size: size}
}

// get returns what the verification of the token with hash key found.
func (v *verified) get(key [sha256.Size]byte) (verifiedToken, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t, ok := v.cur[key]; ok {
		return t, true
	}
	t, ok := v.prev[key]
	if ok {
		v.putLocked(key, t)
	}
	return t, ok
}

// put records a verified token.
func (v *verified) put(key [sha256.Size]byte, t verifiedToken) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.putLocked(key, t)
}

func (v *verified) putLocked(key [sha256.Size]byte, t verifiedToken) {
	if len(v.cur) >= v.size {
		v.prev, v.cur = v.cur, make(map[[sha256.Size]byte]verifiedToken, v.size)
	}
	v.cur[key] = t
}

// len returns how many tokens are remembered.
func (v *verified) len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cur) + len(v.prev)
}

// recheck applies to a remembered token the checks that depend on now,
// with the outcome and order a full parse would give: exp first, then nbf,
// then iat.
func (s *Service) recheck(t verifiedToken, now time.Time) error {
	switch {
	case !now.Before(t.claims.ExpiresAt):
		return invalid(ErrExpired)
	case !t.notBefore.IsZero() && now.Before(t.notBefore):
		return invalid(errNotYetValid)
	case t.claims.IssuedAt.After(now.Add(s.leeway)):
		return invalid(errIssuedAhead)
	}
	return nil
}
