package clienttest_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/usersvc/usersvc/client"
	"github.com/usersvc/usersvc/client/clienttest"
)

// recorder is a testing.TB that records a failure instead of stopping the
// test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

// check runs WantError on a recorder and returns its failure, if any.
func check(t *testing.T, err, kind error, status int) (failure string) {
	r := &recorder{TB: t}
	defer func() {
		if v := recover(); v != nil && v != r {
			panic(v)
		}
		failure = r.failed
	}()
	clienttest.WantError(r, err, kind, status)
	return ""
}

func TestWantError(t *testing.T) {
	notFound := fmt.Errorf("get user: %w", &client.Error{Status: 404, Message: "User not found"})
	if !errors.Is(notFound, client.ErrNotFound) {
		t.Fatal("the client's error does not match ErrNotFound; the cases below assume it does")
	}
	if f := check(t, notFound, client.ErrNotFound, 404); f != "" {
		t.Errorf("a matching error failed: %s", f)
	}
	for name, c := range map[string]struct {
		err    error
		kind   error
		status int
	}{
		"other kind":    {notFound, client.ErrForbidden, 404},
		"other status":  {notFound, client.ErrNotFound, 410},
		"not an answer": {errors.New("dial tcp: refused"), client.ErrNotFound, 404},
		"no error":      {nil, client.ErrNotFound, 404},
	} {
		if f := check(t, c.err, c.kind, c.status); f == "" {
			t.Errorf("%s: passed", name)
		}
	}
}
