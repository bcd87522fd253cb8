package account_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// Principals of the authorization matrix.
const (
	anonymous   = "anonymous"
	self        = "the user"
	otherUser   = "another user"
	admin       = "admin"
	reader      = "service users.read"
	invalidator = "service push_tokens.invalidate"
	bare        = "service without scopes"
)

var principals = []string{anonymous, self, otherUser, admin, reader, invalidator, bare}

// Outcomes: allowed, or the code of the error.
const (
	allowed      = ""
	unauthorized = usersvc.EUnauthorized
	forbidden    = usersvc.EForbidden
	notFound     = usersvc.ENotFound
)

// target is the user a use case acts on, with one device.
type target struct {
	id, deviceID, pushToken string
}

// useCase runs one use case as p on t; it returns an error without a code
// when the use case was allowed but did not do what it should.
type useCase func(ctx context.Context, s *account.Service, p account.Principal, t target) error

var useCases = []struct {
	name string
	run  useCase
}{
	{"get user", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		u, err := s.User(ctx, p, t.id)
		if err == nil && u.ID != t.id {
			return fmt.Errorf("got user %s", u.ID)
		}
		return err
	}},
	{"list users", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		page, err := s.ListUsers(ctx, p, 1, account.MaxPageLimit)
		if err == nil && !slices.ContainsFunc(page.Users, func(u usersvc.User) bool { return u.ID == t.id }) {
			return fmt.Errorf("the newest user is not on the first page")
		}
		return err
	}},
	{"batch lookup", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		found, missing, err := s.BatchUsers(ctx, p, []string{t.id})
		if err == nil && (len(found) != 1 || found[0].ID != t.id || len(found[0].Devices) != 1 || len(missing) != 0) {
			return fmt.Errorf("found %v, missing %v", found, missing)
		}
		return err
	}},
	{"get preferences", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		prefs, err := s.Preferences(ctx, p, t.id)
		if err == nil && !prefs.Equal(usersvc.DefaultPreferences()) {
			return fmt.Errorf("preferences %+v", prefs)
		}
		return err
	}},
	{"patch preferences", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		off := false
		prefs, err := s.UpdatePreferences(ctx, p, t.id, usersvc.PreferencesPatch{Email: &off})
		if err == nil && prefs.Email {
			return fmt.Errorf("preferences %+v after turning email off", prefs)
		}
		return err
	}},
	{"register push token", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		tok, dev := t.pushToken+"-new", "tablet"
		got, err := s.UpdatePushToken(ctx, p, t.id, usersvc.PushTokenUpdate{Token: &tok, DeviceID: &dev})
		if err == nil && (got == nil || *got != tok) {
			return fmt.Errorf("current token %v", got)
		}
		return err
	}},
	{"clear push token", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		got, err := s.UpdatePushToken(ctx, p, t.id, usersvc.PushTokenUpdate{DeviceID: &t.deviceID})
		if err == nil && got != nil {
			return fmt.Errorf("current token %v after clearing", *got)
		}
		return err
	}},
	{"delete device", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		return s.DeleteDevice(ctx, p, t.id, t.deviceID)
	}},
	{"list devices", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		d, err := s.Devices(ctx, p, t.id)
		if err == nil && (len(d) != 1 || d[0].Token != t.pushToken) {
			return fmt.Errorf("devices %v", d)
		}
		return err
	}},
	{"invalidate push tokens", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		n, err := s.InvalidatePushTokens(ctx, p, []string{t.pushToken}, "unregistered")
		if err == nil && n != 1 {
			return fmt.Errorf("%d records invalidated", n)
		}
		return err
	}},
	{"change name", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		u, err := s.UpdateProfile(ctx, p, t.id, usersvc.ProfilePatch{Name: new("Renamed Tester")})
		if err == nil && u.Name != "Renamed Tester" {
			return fmt.Errorf("name %q", u.Name)
		}
		return err
	}},
	{"change password", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		_, err := s.ChangePassword(ctx, p, t.id, account.PasswordChange{Current: rulesPassword, New: "N3w!Passw0rd"})
		return err
	}},
	{"disable", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		u, err := s.SetActive(ctx, p, t.id, false)
		if err == nil && u.IsActive {
			return fmt.Errorf("still active")
		}
		return err
	}},
	{"enable", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		u, err := s.SetActive(ctx, p, t.id, true)
		if err == nil && !u.IsActive {
			return fmt.Errorf("not active")
		}
		return err
	}},
	{"delete", func(ctx context.Context, s *account.Service, p account.Principal, t target) error {
		return s.DeleteUser(ctx, p, t.id)
	}},
}

// TestAuthorizationMatrix runs every use case as every kind of principal on
// an existing user, and checks who is allowed and what the others get.
func TestAuthorizationMatrix(t *testing.T) {
	want := map[string]map[string]string{
		"get user": {anonymous: unauthorized, self: allowed, otherUser: forbidden, admin: allowed,
			reader: allowed, invalidator: forbidden, bare: forbidden},
		"list users": {anonymous: unauthorized, self: forbidden, otherUser: forbidden, admin: allowed,
			reader: allowed, invalidator: forbidden, bare: forbidden},
		"batch lookup": {anonymous: unauthorized, self: forbidden, otherUser: forbidden, admin: allowed,
			reader: allowed, invalidator: forbidden, bare: forbidden},
		"get preferences": {anonymous: unauthorized, self: allowed, otherUser: forbidden, admin: allowed,
			reader: allowed, invalidator: forbidden, bare: forbidden},
		"patch preferences": {anonymous: unauthorized, self: allowed, otherUser: forbidden, admin: allowed,
			reader: forbidden, invalidator: forbidden, bare: forbidden},
		"register push token": {anonymous: unauthorized, self: allowed, otherUser: forbidden, admin: allowed,
			reader: forbidden, invalidator: forbidden, bare: forbidden},
		"clear push token": {anonymous: unauthorized, self: allowed, otherUser: forbidden, admin: allowed,
			reader: forbidden, invalidator: forbidden, bare: forbidden},
		"delete device": {anonymous: unauthorized, self: allowed, otherUser: forbidden, admin: allowed,
			reader: forbidden, invalidator: forbidden, bare: forbidden},
		"list devices": {anonymous: unauthorized, self: allowed, otherUser: forbidden, admin: allowed,
			reader: allowed, invalidator: forbidden, bare: forbidden},
		// Services alone, by scope: admins included, nobody else drops
		// another user's tokens.
		"invalidate push tokens": {anonymous: unauthorized, self: forbidden, otherUser: forbidden, admin: forbidden,
			reader: forbidden, invalidator: allowed, bare: forbidden},
		"change name": {anonymous: unauthorized, self: allowed, otherUser: forbidden, admin: allowed,
			reader: forbidden, invalidator: forbidden, bare: forbidden},
		// The user alone: it needs the current password.
		"change password": {anonymous: unauthorized, self: allowed, otherUser: forbidden, admin: forbidden,
			reader: forbidden, invalidator: forbidden, bare: forbidden},
		// Admins alone, not the user themselves.
		"disable": {anonymous: unauthorized, self: forbidden, otherUser: forbidden, admin: allowed,
			reader: forbidden, invalidator: forbidden, bare: forbidden},
		"enable": {anonymous: unauthorized, self: forbidden, otherUser: forbidden, admin: allowed,
			reader: forbidden, invalidator: forbidden, bare: forbidden},
		"delete": {anonymous: unauthorized, self: allowed, otherUser: forbidden, admin: allowed,
			reader: forbidden, invalidator: forbidden, bare: forbidden},
	}
	e := newRulesService(t)
	others := map[string]account.Principal{
		anonymous:   {},
		otherUser:   e.register(t, "other@example.com", false).p,
		admin:       e.register(t, "admin@example.com", true).p,
		reader:      e.service(t, readerKey),
		invalidator: e.service(t, invalidatorKey),
		bare:        e.service(t, bareKey),
	}
	n := 0
	for _, uc := range useCases {
		outcomes, ok := want[uc.name]
		if !ok || len(outcomes) != len(principals) {
			t.Fatalf("%s: outcomes %v do not name every principal", uc.name, outcomes)
		}
		for _, who := range principals {
			t.Run(uc.name+"/"+who, func(t *testing.T) {
				n++
				// A fresh user with one device for each case, as some
				// use cases change or delete it.
				owner := e.register(t, fmt.Sprintf("target%d@example.com", n), false)
				tg := target{id: owner.id, deviceID: "phone", pushToken: fmt.Sprintf("fcm:target-%d", n)}
				if _, err := e.svc.UpdatePushToken(t.Context(), owner.p, tg.id, usersvc.PushTokenUpdate{Token: &tg.pushToken, DeviceID: &tg.deviceID}); err != nil {
					t.Fatal(err)
				}
				p := owner.p
				if who != self {
					p = others[who]
				}
				wantCode(t, who, uc.run(t.Context(), e.svc, p, tg), outcomes[who])
			})
		}
	}
	if len(want) != len(useCases) {
		t.Errorf("%d rows of outcomes for %d use cases", len(want), len(useCases))
	}
}

// TestAuthorizationUnknownUser runs the use cases that name a user on an id
// that no user has: a user learns nothing (403, as for someone else's data),
// admins and services that may read learn that it does not exist (404).
func TestAuthorizationUnknownUser(t *testing.T) {
	// Who acts, here: nobody is "the user" of an id that does not exist.
	actors := []string{anonymous, otherUser, admin, reader, invalidator, bare}
	read := map[string]string{anonymous: unauthorized, otherUser: forbidden, admin: notFound,
		reader: notFound, invalidator: forbidden, bare: forbidden}
	write := map[string]string{anonymous: unauthorized, otherUser: forbidden, admin: notFound,
		reader: forbidden, invalidator: forbidden, bare: forbidden}
	want := map[string]map[string]string{
		"get user":            read,
		"get preferences":     read,
		"list devices":        read,
		"patch preferences":   write,
		"register push token": write,
		"clear push token":    write,
		"delete device":       write,
		"change name":         write,
		"change password": {anonymous: unauthorized, otherUser: forbidden, admin: forbidden,
			reader: forbidden, invalidator: forbidden, bare: forbidden},
		"disable": write,
		"enable":  write,
		"delete":  write,
	}
	e := newRulesService(t)
	ps := map[string]account.Principal{
		anonymous:   {},
		otherUser:   e.register(t, "someone@example.com", false).p,
		admin:       e.register(t, "admin@example.com", true).p,
		reader:      e.service(t, readerKey),
		invalidator: e.service(t, invalidatorKey),
		bare:        e.service(t, bareKey),
	}
	missing := target{id: "0195f0a2-7c4e-7d4b-9a6f-2f1f2b6c9d10", deviceID: "phone", pushToken: "fcm:nobody"}
	ran := 0
	for _, uc := range useCases {
		outcomes, ok := want[uc.name]
		if !ok {
			continue // it names no user
		}
		ran++
		for _, who := range actors {
			t.Run(uc.name+"/"+who, func(t *testing.T) {
				wantCode(t, who, uc.run(t.Context(), e.svc, ps[who], missing), outcomes[who])
			})
		}
	}
	if ran != len(want) {
		t.Errorf("ran %d use cases of %d", ran, len(want))
	}
	// An id that is not a UUID is invalid, whoever asks.
	for _, who := range []string{otherUser, admin, reader} {
		_, err := e.svc.User(t.Context(), ps[who], "not-a-uuid")
		wantCode(t, who+" reading not-a-uuid", err, usersvc.EInvalid)
	}
}
