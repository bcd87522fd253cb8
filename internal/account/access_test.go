package account

import (
	"slices"
	"testing"
)

func TestParseServiceKeys(t *testing.T) {
	keys, err := ParseServiceKeys("analytics:key-aaaaaaaaaaaaaaaa, notifier:key-bbbbbbbbbbbbbbbb:users.read,push_tokens.invalidate,admin:key-cccccccccccccccc:push_tokens.invalidate")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"analytics": {ScopeUsersRead},
		"notifier":  {ScopeUsersRead, ScopePushTokensInvalidate},
		"admin":     {ScopePushTokensInvalidate},
	}
	if len(keys) != 3 {
		t.Fatalf("keys = %v", keys)
	}
	for _, k := range keys {
		if !slices.Equal(k.Scopes, want[k.Name]) {
			t.Errorf("%s scopes = %v, want %v", k.Name, k.Scopes, want[k.Name])
		}
	}
	if k, ok := keys.match("key-bbbbbbbbbbbbbbbb"); !ok || k.Name != "notifier" {
		t.Errorf("match = %v %v", k, ok)
	}
	if _, ok := keys.match("key-bbbbbbbbbbbbbbbX"); ok {
		t.Error("a wrong key matched")
	}
	for _, bad := range []string{"nokey", "a:short", "a:key-aaaaaaaaaaaaaaaa:users.write", "a:key-aaaaaaaaaaaaaaaa,a:key-bbbbbbbbbbbbbbbb", ":key-aaaaaaaaaaaaaaaa"} {
		if _, err := ParseServiceKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if k, err := ParseServiceKeys(""); err != nil || len(k) != 0 {
		t.Errorf("empty: %v %v", k, err)
	}
}
