package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/usersvc/usersvc"
)

// maxBodyBytes bounds every request body.
const maxBodyBytes = 1 << 20

// envelope is the shape of every /api/v1 response.
type envelope struct {
	Success bool    `json:"success"`
	Data    any     `json:"data"`
	Error   *string `json:"error"`
	Message string  `json:"message"`
	Meta    any     `json:"meta"`
}

// respond writes a successful envelope.
func respond(w http.ResponseWriter, status int, message string, data, meta any) {
	writeJSON(w, status, envelope{Success: true, Data: data, Message: message, Meta: meta})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"success":false,"data":null,"error":"Internal server error","message":"Internal server error","meta":null}`)
	}
	w.Header()["Content-Type"] = headerJSONType
	w.WriteHeader(status)
	if len(body) < cap(body) { // room for the newline: one write, no copy
		_, _ = w.Write(append(body, '\n'))
		return
	}
	_, _ = w.Write(body)
	_, _ = w.Write(newline)
}

var newline = []byte{'\n'}

// statusOf is the one table from error codes to HTTP statuses.
func statusOf(code string) int {
	switch code {
	case usersvc.EInvalid:
		return http.StatusBadRequest
	case usersvc.EUnauthorized:
		return http.StatusUnauthorized
	case usersvc.EForbidden:
		return http.StatusForbidden
	case usersvc.ENotFound:
		return http.StatusNotFound
	case usersvc.EConflict:
		return http.StatusConflict
	case usersvc.ERateLimited:
		return http.StatusTooManyRequests
	case usersvc.EUnavailable:
		return http.StatusServiceUnavailable
	case usersvc.ETooLarge:
		return http.StatusRequestEntityTooLarge
	case usersvc.EUnsupported:
		return http.StatusUnsupportedMediaType
	case usersvc.EGone:
		return http.StatusGone
	}
	return http.StatusInternalServerError
}

// handlerFunc is the one shape of the API's handlers: it writes its answer,
// or returns an error and writes nothing.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// serve adapts h to an http.Handler: the error h returns is answered in the
// envelope (see fail).
func serve(logger *slog.Logger, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			fail(w, r, logger, err)
		}
	})
}

// fail writes the envelope of err. The text of an internal error is logged,
// never shown.
func fail(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	code := usersvc.ErrorCode(err)
	if code == usersvc.EInternal && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		code = usersvc.EUnavailable
		err = &usersvc.Error{Code: code, Message: "Service temporarily unavailable", Err: err}
	}
	status := statusOf(code)
	msg := usersvc.ErrorMessage(err)
	if code == usersvc.EInternal {
		msg = "Internal server error"
	}
	if status >= 500 {
		logger.ErrorContext(r.Context(), "request failed", slog.String("code", code), slog.Any("error", err))
	}
	env := envelope{Error: &msg, Message: msg}
	var e *usersvc.Error
	if errors.As(err, &e) {
		if len(e.Fields) > 0 {
			env.Data = e.Fields
			env.Message = "Validation failed"
		}
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", itoa(e.RetryAfter))
		}
	}
	writeJSON(w, status, env)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

var errInvalidJSON = usersvc.Errorf(usersvc.EInvalid, "Invalid JSON body")

// decodeObject reads the request body as one strict JSON object: at most
// maxBodyBytes, valid UTF-8, no duplicated key, nothing after it. It returns
// the object's members, undecoded.
func decodeObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return nil, usersvc.Errorf(usersvc.EUnsupported, "Content-Type must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, usersvc.Errorf(usersvc.ETooLarge, "Request body is too large (max 1 MiB)")
		}
		return nil, errInvalidJSON
	}
	return parseObject(body)
}

// parseObject parses b as one strict JSON object.
func parseObject(b []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(b) {
		return nil, errInvalidJSON
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errInvalidJSON
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errInvalidJSON
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errInvalidJSON
		}
		if _, dup := m[key]; dup {
			return nil, usersvc.Errorf(usersvc.EInvalid, "Invalid JSON body: duplicated key %q", usersvc.ClipKey(key))
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errInvalidJSON
		}
		m[key] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errInvalidJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errInvalidJSON
	}
	return m, nil
}

// fields reads typed members out of a decoded object, recording a message
// per bad field, and reports every member nobody asked for as unknown.
type fields struct {
	prefix string
	m      map[string]json.RawMessage
	fe     usersvc.FieldErrors
	asked  map[string]bool
}

func newFields(m map[string]json.RawMessage) *fields {
	return &fields{m: m, fe: usersvc.FieldErrors{}, asked: map[string]bool{}}
}

func (f *fields) add(name, msg string) { f.fe.Add(f.prefix+name, msg) }

// raw returns the member name and whether it is present and not null.
func (f *fields) raw(name string) (json.RawMessage, bool) {
	f.asked[name] = true
	v, ok := f.m[name]
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// present reports whether the member name exists, null or not.
func (f *fields) present(name string) bool {
	f.asked[name] = true
	_, ok := f.m[name]
	return ok
}

// str reads a string member; missing or null records "This field is required" when required.
func (f *fields) str(name string, required bool) (string, bool) {
	v, ok := f.raw(name)
	if !ok {
		if required {
			f.add(name, usersvc.MsgRequired)
		}
		return "", false
	}
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		f.add(name, usersvc.MsgNotString)
		return "", false
	}
	if strings.ContainsRune(s, 0) {
		f.add(name, msgNUL)
		return "", false
	}
	return s, true
}

// strs reads a member that must be a list of strings; notList is the
// message when it is something else.
func (f *fields) strs(name, notList string) []string {
	v, ok := f.raw(name)
	if !ok {
		f.add(name, usersvc.MsgRequired)
		return nil
	}
	var list []string
	if v[0] != '[' || json.Unmarshal(v, &list) != nil {
		f.add(name, notList)
		return nil
	}
	if slices.ContainsFunc(list, func(s string) bool { return strings.ContainsRune(s, 0) }) {
		f.add(name, msgNUL)
		return nil
	}
	return list
}

// nullableStr reads a member that is a string or null: it returns nil for null.
func (f *fields) nullableStr(name string) *string {
	s, ok := f.str(name, false)
	if !ok {
		return nil
	}
	return &s
}

// boolean reads an optional JSON boolean member; anything else (null, "false", 0) is an error.
func (f *fields) boolean(name string) *bool {
	f.asked[name] = true
	v, ok := f.m[name]
	if !ok {
		return nil
	}
	switch string(v) {
	case "true":
		t := true
		return &t
	case "false":
		b := false
		return &b
	}
	f.add(name, usersvc.MsgNotBoolean)
	return nil
}

// object reads an optional nested object member.
func (f *fields) object(name string) *fields {
	v, ok := f.raw(name)
	if !ok {
		return nil
	}
	if v[0] != '{' {
		f.add(name, usersvc.MsgNotObject)
		return nil
	}
	m, err := parseObject(v)
	if err != nil {
		f.add(name, usersvc.MsgNotObject)
		return nil
	}
	return &fields{prefix: f.prefix + name + ".", m: m, fe: f.fe, asked: map[string]bool{}}
}

// msgNUL is the message of a string that holds U+0000, which no field
// accepts (PostgreSQL cannot store it).
const msgNUL = "Must not contain NUL characters"

// maxUnknownEcho is how many unknown keys an answer lists by name (each
// cut to usersvc.MaxKeyEcho characters), so that its size does not grow
// with the client's.
const maxUnknownEcho = 10

// unknown records every member that was not asked for: the first
// maxUnknownEcho by (cut) name in sorted order, then how many more
// under the name "…".
func (f *fields) unknown() {
	var keys []string
	for k := range f.m {
		if !f.asked[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	listed := map[string]bool{}
	for i, k := range keys {
		if len(listed) == maxUnknownEcho {
			more := "unknown fields"
			if len(keys)-i == 1 {
				more = "unknown field"
			}
			f.add("…", fmt.Sprintf("And %d more %s", len(keys)-i, more))
			return
		}
		name := usersvc.ClipKey(k)
		if !listed[name] {
			listed[name] = true
			f.add(name, usersvc.MsgUnknownField)
		}
	}
}

// err returns the recorded problems as an EInvalid error, or nil.
func (f *fields) err() error { return f.fe.Err() }
