package httpapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/usersvc/usersvc"
)

// bodySeeds are request bodies of the shapes clients send, good and bad.
var bodySeeds = []string{
	`{}`, ` { } `, `{"email":"a@b.co","password":"Str0ng!pass","name":"A"}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`,
	`{"a":1} {"b":2}`, `{"a":1}x`, `[]`, `null`, `"str"`, `{"a":}`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, "{\"a\":\"\xff\"}",
	`{"preferences":{"email":true,"push":false}}`, `{"preferences":{"email":true,"email":false}}`, `{"preferences":[]}`,
	`{"preferences":null,"push_token":null}`, `{"email":123,"password":true,"name":{}}`, `{"Email":"a@b.co"}`,
	`{"refresh":"a.b.c"}`, `{"a":"\ud800"}`, `{"a":1e999}`, `{"a":-0.0e-0}`, `{"a":[[[[[[[[]]]]]]]]}`,
	"\ufeff{}", `{"is_admin":true,"id":"x"}`, `{"email":"a\u0000b"}`, `{"preferences":{"name":"\u0000"}}`,
	`{"` + strings.Repeat("k", 70) + `":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12}`, `{"email":"a@b.co"}` + strings.Repeat(" ", 100), `{"a":"` + strings.Repeat("\\\\", 50) + `"}`,
}

// fieldMessages is every message a field may get from the decoding helpers,
// but the count of unknown fields left unnamed (moreUnknown).
var fieldMessages = []string{usersvc.MsgRequired, usersvc.MsgNotString, usersvc.MsgNotBoolean, usersvc.MsgNotObject, usersvc.MsgUnknownField, msgNUL}

var moreUnknown = regexp.MustCompile(`^And [0-9]+ more unknown fields?$`)

// FuzzParseObject checks the strict object decoder: it never panics, what
// it accepts is one valid JSON object with unique keys that survives a
// round trip, what it refuses gets a client error that names no Go type,
// and the field helpers report only the known messages.
func FuzzParseObject(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseObject(b)
		if err != nil {
			if m != nil {
				t.Fatal("a refused body returned members")
			}
			if code := usersvc.ErrorCode(err); code != usersvc.EInvalid {
				t.Fatalf("refused with code %q: %v", code, err)
			}
			msg := usersvc.ErrorMessage(err)
			if !strings.HasPrefix(msg, "Invalid JSON body") {
				t.Fatalf("message %q", msg)
			}
			for _, leak := range []string{"json:", "RawMessage", "map[", "Go ", "unmarshal", "struct"} {
				if strings.Contains(msg, leak) {
					t.Fatalf("message %q shows %q", msg, leak)
				}
			}
			// A valid object is refused only for a duplicated key.
			if utf8.Valid(b) && json.Valid(b) && bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{")) &&
				!strings.Contains(msg, "duplicated key") {
				t.Fatalf("valid object %q refused: %v", b, err)
			}
			return
		}
		if !utf8.Valid(b) || !json.Valid(b) {
			t.Fatalf("accepted %q, which is not valid JSON in UTF-8", b)
		}
		var generic map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&generic); err != nil || generic == nil {
			t.Fatalf("accepted %q, which is not an object: %v", b, err)
		}
		if len(generic) != len(m) {
			t.Fatalf("accepted %q with %d members, encoding/json sees %d", b, len(m), len(generic))
		}
		// Round trip: the members, encoded again, decode to the same.
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("members of %q do not encode: %v", b, err)
		}
		m2, err := parseObject(again)
		if err != nil {
			t.Fatalf("re-encoded %q refused: %v", again, err)
		}
		if len(m2) != len(m) {
			t.Fatalf("round trip changed the members: %q -> %q", b, again)
		}
		for k, v := range m {
			// Equal as JSON values: the encoder may escape differently ("&" is "\u0026").
			if a, b := jsonValue(t, v), jsonValue(t, m2[k]); !reflect.DeepEqual(a, b) {
				t.Fatalf("round trip changed %q: %s -> %s", k, v, m2[k])
			}
		}

		// The field helpers on whatever members arrived.
		fs := newFields(m)
		s, ok := fs.str("email", true)
		if ok {
			var want string
			if json.Unmarshal(m["email"], &want) != nil || want != s {
				t.Fatalf("str(email) = %q from %s", s, m["email"])
			}
		}
		fs.nullableStr("push_token")
		fs.boolean("push")
		if p := fs.object("preferences"); p != nil {
			p.boolean("email")
			p.str("name", false)
			p.unknown()
		}
		fs.present("id")
		fs.unknown()
		err = fs.err()
		if (err == nil) != (len(fs.fe) == 0) {
			t.Fatalf("err() = %v with %d problems", err, len(fs.fe))
		}
		if err != nil && statusOf(usersvc.ErrorCode(err)) != http.StatusBadRequest {
			t.Fatalf("field problems give %d", statusOf(usersvc.ErrorCode(err)))
		}
		top := 0
		for name, msgs := range fs.fe {
			if strings.HasPrefix(name, "preferences.") {
				continue
			}
			top++
			_, member := m[name]
			if clipped, ok := strings.CutSuffix(name, "…"); ok && !member && clipped != "" {
				// A key cut to 64 characters.
				if utf8.RuneCountInString(clipped) != 64 || !slices.ContainsFunc(slices.Collect(maps.Keys(m)), func(k string) bool { return strings.HasPrefix(k, clipped) }) {
					t.Fatalf("problem reported for %q, which is not a key of %q cut short", name, b)
				}
				member = true
			}
			if !member && name != "email" && name != "…" {
				t.Fatalf("problem reported for %q, which is not in %q", name, b)
			}
			for _, msg := range msgs {
				if !slices.Contains(fieldMessages, msg) && !(name == "…" && moreUnknown.MatchString(msg)) {
					t.Fatalf("field %q: unknown message %q", name, msg)
				}
			}
		}
		// The four members asked for, at most 10 unknown keys and the count of the others.
		if top > 15 {
			t.Fatalf("%d top-level problems reported for %q", top, b)
		}
		if _, ok := m["email"]; !ok && !slices.Contains(fs.fe["email"], usersvc.MsgRequired) {
			t.Fatal("a missing required field is not reported")
		}
	})
}

// jsonValue decodes one JSON value, numbers kept as written.
func jsonValue(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("member %s does not decode: %v", raw, err)
	}
	return v
}

// FuzzDecodeObject drives the whole decoding of a request: media type,
// size limit and strict parsing. Every refusal is a 4xx.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add("application/json", []byte(s))
	}
	for _, ct := range []string{"", "application/json; charset=utf-8", "application/merge-patch+json", "text/plain",
		"application/x-www-form-urlencoded", "application/json; charset", "multipart/form-data; boundary=x", "APPLICATION/JSON", ";;"} {
		f.Add(ct, []byte(`{"a":1}`))
	}
	f.Fuzz(func(t *testing.T, ct string, b []byte) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/users/", bytes.NewReader(b))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		m, err := decodeObject(w, r)
		if err != nil {
			status := statusOf(usersvc.ErrorCode(err))
			if status < 400 || status >= 500 {
				t.Fatalf("refused with status %d: %v", status, err)
			}
			return
		}
		if len(b) > maxBodyBytes {
			t.Fatalf("accepted a body of %d bytes", len(b))
		}
		if _, err := parseObject(b); err != nil {
			t.Fatalf("decodeObject accepted what parseObject refuses: %v", err)
		}
		if m == nil {
			t.Fatal("accepted with no members")
		}
	})
}
