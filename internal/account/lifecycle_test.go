package account

import (
	"strings"
	"testing"

	"github.com/usersvc/usersvc"
)

// TestLifecycleAuthorize checks who may do what under the Owner and Admin
// access kinds, and that the answer never depends on whether the target
// exists (authorize does not look).
func TestLifecycleAuthorize(t *testing.T) {
	s := New(nil, nil, nil, Options{})
	const self, target = "0195f0a2-7c4e-7d4b-9a6f-2f1f2b6c9d10", "0195f0a2-7c4e-7d4b-9a6f-2f1f2b6c9d11"
	user := Principal{UserID: self}
	admin := Principal{UserID: self, IsAdmin: true}
	svc := Principal{Service: "notifier", scopes: []string{ScopeUsersRead, ScopePushTokensInvalidate}}
	for _, tc := range []struct {
		name   string
		p      Principal
		target string
		a      Access
		code   string
		msg    string
	}{
		{"owner: the user", user, self, Owner, "", ""},
		{"owner: another user", user, target, Owner, usersvc.EForbidden, MsgForbidden},
		{"owner: an admin for another", admin, target, Owner, usersvc.EForbidden, msgOwnerOnly},
		{"owner: an admin for themselves", admin, self, Owner, "", ""},
		{"owner: a service", svc, target, Owner, usersvc.EForbidden, msgServiceMayNotActAsUser},
		{"owner: anonymous", Principal{}, target, Owner, usersvc.EUnauthorized, msgAuthenticationRequired},
		{"admin: an admin", admin, target, Admin, "", ""},
		{"admin: the user", user, self, Admin, usersvc.EForbidden, msgAdminRequired},
		{"admin: another user", user, target, Admin, usersvc.EForbidden, msgAdminRequired},
		{"admin: a service", svc, target, Admin, usersvc.EForbidden, msgServiceMayNotActAsUser},
		{"admin: anonymous", Principal{}, target, Admin, usersvc.EUnauthorized, msgAuthenticationRequired},
		{"admin: not a UUID", admin, "nope", Admin, usersvc.EInvalid, "Invalid UUID format"},
		{"write: the user", user, self, Write, "", ""},
		{"write: an admin", admin, target, Write, "", ""},
		{"write: a service", svc, target, Write, usersvc.EForbidden, msgServiceMayNotActAsUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.authorize(t.Context(), tc.p, tc.target, tc.a)
			if got := usersvc.ErrorCode(err); got != tc.code {
				t.Fatalf("code = %q, want %q (%v)", got, tc.code, err)
			}
			if err != nil && usersvc.ErrorMessage(err) != tc.msg {
				t.Errorf("message = %q, want %q", usersvc.ErrorMessage(err), tc.msg)
			}
		})
	}
}

func TestLifecyclePasswordChangeValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		pc   PasswordChange
		pre  usersvc.FieldErrors
		want map[string][]string
	}{
		{"fine", PasswordChange{Current: "Old!Passw0rd", New: "N3w!Passw0rd"}, nil, nil},
		{"missing current", PasswordChange{New: "N3w!Passw0rd"}, nil, map[string][]string{"current_password": {usersvc.MsgRequired}}},
		{"same", PasswordChange{Current: "Old!Passw0rd", New: "Old!Passw0rd"}, nil, map[string][]string{"new_password": {MsgSamePassword}}},
		{"129 characters", PasswordChange{Current: "x", New: usersvc.Password("Aa1!" + strings.Repeat("b", 125))}, nil,
			map[string][]string{"new_password": {usersvc.MsgPasswordLong}}},
		{"a field that failed to decode is left alone", PasswordChange{}, usersvc.FieldErrors{"new_password": {usersvc.MsgNotString}},
			map[string][]string{"current_password": {usersvc.MsgRequired}, "new_password": {usersvc.MsgNotString}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe := usersvc.FieldErrors{}
			for k, v := range tc.pre {
				fe[k] = v
			}
			err := tc.pc.Validate(fe)
			if (err == nil) != (tc.want == nil) {
				t.Fatalf("err = %v, want fields %v", err, tc.want)
			}
			if len(fe) != len(tc.want) {
				t.Errorf("fields = %v, want %v", fe, tc.want)
			}
			for k, want := range tc.want {
				if len(fe[k]) != len(want) || (len(want) > 0 && fe[k][0] != want[0]) {
					t.Errorf("%s = %v, want %v", k, fe[k], want)
				}
			}
		})
	}
}
