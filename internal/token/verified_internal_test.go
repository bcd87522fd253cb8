package token

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// The cache of verified tokens never holds more than two generations, and a
// token in use survives any number of new ones.
func TestVerifiedBounded(t *testing.T) {
	const size = 8
	v := newVerified(size)
	key := func(i int) [sha256.Size]byte {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		return sha256.Sum256(b[:])
	}
	v.put(key(-1), verifiedToken{})
	for i := range 10 * size {
		v.put(key(i), verifiedToken{})
		if _, ok := v.get(key(-1)); !ok {
			t.Fatalf("the token in use was dropped after %d others", i+1)
		}
		if n := v.len(); n > 2*size {
			t.Fatalf("%d tokens held, more than two generations of %d", n, size)
		}
	}
	if _, ok := v.get(key(0)); ok {
		t.Error("a token not used since nine generations ago is still held")
	}
}
