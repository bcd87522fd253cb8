// Package tokentest reads JWTs in tests without verifying them, so that a
// test can tamper with a token the service issued.
package tokentest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// Decode returns the header and the claims of a JWT, numbers kept exactly
// as written. It fails t when tok is not three base64url segments of JSON.
func Decode(t testing.TB, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d segments", len(parts))
	}
	out := make([]map[string]any, 2)
	for i := range out {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out[0], out[1]
}

// With returns a copy of m (a token's header or claims) with changes
// applied; a nil value deletes the key.
func With(m, changes map[string]any) map[string]any {
	c := make(map[string]any, len(m)+len(changes))
	for k, v := range m {
		c[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}
