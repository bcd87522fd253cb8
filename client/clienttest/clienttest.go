// Package clienttest helps tests of code that calls the user service
// through package client check the errors it gets.
package clienttest

import (
	"errors"
	"testing"

	"github.com/usersvc/usersvc/client"
)

// WantError fails t unless err matches the sentinel kind (client.ErrNotFound,
// client.ErrForbidden, …) with errors.Is and is an answer of the service
// (*client.Error) with the HTTP status; it returns that answer for further
// checks of its Message or Fields.
func WantError(t testing.TB, err, kind error, status int) *client.Error {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want one matching %v", err, kind)
	}
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *client.Error", err)
	}
	if e.Status != status {
		t.Fatalf("status = %d, want %d (%v)", e.Status, status, err)
	}
	return e
}
