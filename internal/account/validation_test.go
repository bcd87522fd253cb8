package account_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// A password longer than any account can have is refused by Login itself,
// as a field error, whether or not the email exists.
func TestLoginRefusesLongPasswords(t *testing.T) {
	e := newRulesService(t)
	a := e.register(t, "long@example.com", false)
	for _, email := range []string{a.email, "nobody@example.com"} {
		_, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: email, Password: usersvc.Password(strings.Repeat("p", usersvc.MaxPasswordLength+1))})
		var ue *usersvc.Error
		if usersvc.ErrorCode(err) != usersvc.EInvalid || !errors.As(err, &ue) || len(ue.Fields["password"]) == 0 {
			t.Errorf("login of %s with a long password: %v, want a password field error", email, err)
		}
	}
	// One character less is a wrong password, no more.
	_, err := e.svc.Login(t.Context(), usersvc.Credentials{Email: a.email, Password: usersvc.Password(strings.Repeat("p", usersvc.MaxPasswordLength))})
	wantCode(t, "login with a wrong password of the longest length", err, usersvc.EUnauthorized)
}

// ListUsers authorizes before it validates, and refuses a page whose
// offset would overflow instead of wrapping round to the first page.
func TestListUsersPageBounds(t *testing.T) {
	e := newRulesService(t)
	admin := e.register(t, "pages@example.com", true)
	_, err := e.svc.ListUsers(t.Context(), account.Principal{}, math.MaxInt, 20)
	wantCode(t, "an anonymous caller with an overflowing page", err, usersvc.EUnauthorized)
	_, err = e.svc.ListUsers(t.Context(), admin.p, math.MaxInt, 20)
	wantCode(t, "page MaxInt", err, usersvc.EInvalid)
	last := math.MaxInt/20 + 1
	pg, err := e.svc.ListUsers(t.Context(), admin.p, last, 20)
	wantCode(t, "the last page whose offset fits", err, "")
	if len(pg.Users) != 0 {
		t.Errorf("page %d holds %d users, want none", last, len(pg.Users))
	}
	_, err = e.svc.ListUsers(t.Context(), admin.p, last+1, 20)
	wantCode(t, "one page past it", err, usersvc.EInvalid)
	if pg, err := e.svc.ListUsers(t.Context(), admin.p, math.MaxInt, 1); err != nil || len(pg.Users) != 0 {
		t.Errorf("page MaxInt of one user a page: %v, %v; want an empty page", pg, err)
	}
}
