package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors. Every error a method returns for an answer of the user
// service is an *Error, which matches one of these with errors.Is according
// to its status. Failures to reach the service match ErrUnavailable.
var (
	// ErrInvalid: the request failed validation (400, and 413 or 415).
	ErrInvalid = errors.New("usersvc: invalid request")
	// ErrUnauthorized: credentials are missing, wrong or expired (401).
	ErrUnauthorized = errors.New("usersvc: unauthorized")
	// ErrForbidden: the caller may not do that (403), for example a user
	// asking for another user's data.
	ErrForbidden = errors.New("usersvc: forbidden")
	// ErrNotFound: the user or device does not exist (404).
	ErrNotFound = errors.New("usersvc: not found")
	// ErrConflict: the email is taken (409).
	ErrConflict = errors.New("usersvc: conflict")
	// ErrRateLimited: too many attempts (429); *Error.RetryAfter says when
	// to try again.
	ErrRateLimited = errors.New("usersvc: rate limited")
	// ErrUnavailable: the service answered 5xx, could not be reached, did
	// not answer in time, or the client's circuit breaker is open.
	ErrUnavailable = errors.New("usersvc: unavailable")
)

// ErrCircuitOpen is returned without any request being made while the
// circuit breaker is open: the service failed too often lately. It matches
// ErrUnavailable too.
var ErrCircuitOpen error = circuitOpenError{}

type circuitOpenError struct{}

func (circuitOpenError) Error() string {
	return "usersvc: circuit open: the user service failed repeatedly, calls are refused for a while"
}

func (circuitOpenError) Is(target error) bool { return target == ErrUnavailable }

// Error is an answer of the user service that is not a success.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Message is the service's readable sentence (the envelope's "error").
	// For a validation failure it lists every failing field.
	Message string
	// Fields holds the messages per field of a validation failure (400),
	// for example {"email": ["Invalid email format"]}. Nested fields are
	// named with a dot ("preferences.email").
	Fields map[string][]string
	// RetryAfter is the wait the service asked for (Retry-After), if any.
	RetryAfter time.Duration
	// RequestID is the X-Request-ID of the answer, for finding the request
	// in the service's logs.
	RequestID string

	method, path string
	// data is the envelope's member, for the errors that carry more than a
	// message (a 410 of the change feed names its cursors).
	data json.RawMessage
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("usersvc: ")
	if e.method != "" {
		b.WriteString(e.method)
		b.WriteString(" ")
		b.WriteString(e.path)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%d", e.Status)
	if e.Message != "" {
		b.WriteString(" ")
		b.WriteString(e.Message)
	} else if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" ")
		b.WriteString(t)
	}
	return b.String()
}

// Is reports whether the sentinel target matches the error's status.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge || e.Status == http.StatusUnsupportedMediaType
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Status >= 500
	case ErrCursorTooOld:
		return e.Status == http.StatusGone
	}
	return false
}

// callError is a failure of a call that got no answer to show: kind is
// ErrUnavailable or ErrCircuitOpen, cause what happened, if anything.
type callError struct {
	method, path string
	kind, cause  error
}

func (e *callError) Error() string {
	msg := "usersvc: " + e.method + " " + e.path + ": " + strings.TrimPrefix(e.kind.Error(), "usersvc: ")
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *callError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// unavailable reports a failure to get an answer at all (connection refused,
// reset, timed out). It matches ErrUnavailable and the cause.
func unavailable(method, path string, cause error) error {
	return &callError{method: method, path: path, kind: ErrUnavailable, cause: cause}
}

// circuitOpen reports a call refused by the open circuit breaker.
func circuitOpen(method, path string) error {
	return &callError{method: method, path: path, kind: ErrCircuitOpen}
}
