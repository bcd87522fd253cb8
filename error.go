// Package usersvc is the domain language of the user service: users, their
// notification preferences and devices, the inputs that change them, their
// validation, and errors with stable codes.
package usersvc

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error codes. They are stable: the HTTP layer maps each to one status, and
// clients may rely on them.
const (
	EInvalid      = "invalid"      // the request is malformed or fails validation
	EUnauthorized = "unauthorized" // missing or bad credentials
	EForbidden    = "forbidden"    // authenticated, but not allowed
	ENotFound     = "not_found"    // the thing does not exist
	EConflict     = "conflict"     // a uniqueness rule would be broken
	ERateLimited  = "rate_limited" // too many attempts
	EUnavailable  = "unavailable"  // a dependency (the database) is down
	ETooLarge     = "too_large"    // the request body is too large
	EUnsupported  = "unsupported"  // the request's media type is not JSON
	EGone         = "gone"         // what was asked for is no longer kept
	EInternal     = "internal"     // anything else; its text is never shown
)

// Error is the error the domain and its use cases return. Message is safe to
// show to a client; Err (if any) is the internal cause and never is.
type Error struct {
	Code    string
	Message string
	// Fields holds per-field validation messages, for EInvalid.
	Fields map[string][]string
	// RetryAfter is a hint in whole seconds, for ERateLimited.
	RetryAfter int
	Err        error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a code and a client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the client-safe message of err: the message of its
// *Error, or a generic sentence for anything else.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "Internal server error"
}

// FieldErrors collects validation messages per field.
type FieldErrors map[string][]string

// Add records msg for field.
func (f FieldErrors) Add(field, msg string) { f[field] = append(f[field], msg) }

// Err returns nil when nothing was recorded, else an EInvalid *Error whose
// message lists every field and message, fields in alphabetical order.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	names := make([]string, 0, len(f))
	for name := range f {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, name := range names {
		parts = append(parts, name+": "+strings.Join(f[name], ", "))
	}
	return &Error{Code: EInvalid, Message: strings.Join(parts, "; "), Fields: f}
}
