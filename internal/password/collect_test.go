package password

import (
	"runtime"
	"testing"
)

// With WithCollectAfterHash, every hash and every verification is followed
// by a collection before it returns.
func TestCollectAfterHash(t *testing.T) {
	h := newHasher(t, WithParams(fastParams), WithCollectAfterHash())
	collections := func() uint32 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.NumGC
	}
	before := collections()
	encoded, err := h.Hash(t.Context(), "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	afterHash := collections()
	if afterHash == before {
		t.Error("no collection after a hash")
	}
	if _, _, err := h.Verify(t.Context(), "correct horse battery", encoded); err != nil {
		t.Fatal(err)
	}
	if collections() == afterHash {
		t.Error("no collection after a verification")
	}
}
