// Package storetest is the conformance suite of *sqlstore.Store: every store
// (SQLite, PostgreSQL) passes the same tests, which check each method
// against the rules written on the interface.
package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// Run runs the suite. open must return a fresh, migrated, empty store each
// time it is called, and close it when its test ends (closing a store twice
// must be harmless).
func Run(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *sqlstore.Store)
	}{
		{"CreateUser", testCreateUser},
		{"CreateUserConcurrentEmail", testCreateUserConcurrentEmail},
		{"CreateUserWithPushToken", testCreateUserWithPushToken},
		{"Lookups", testLookups},
		{"NotFound", testNotFound},
		{"SetPasswordHash", testSetPasswordHash},
		{"UpdatePreferences", testUpdatePreferences},
		{"RegisterPushToken", testRegisterPushToken},
		{"RegisterPushTokenMoves", testRegisterPushTokenMoves},
		{"RegisterPushTokenConcurrent", testRegisterPushTokenConcurrent},
		{"ClearPushToken", testClearPushToken},
		{"DevicesOrder", testDevicesOrder},
		{"RefreshFamily", testRefreshFamily},
		{"RotateRefreshTokenConcurrent", testRotateRefreshTokenConcurrent},
		{"RevokeSessions", testRevokeSessions},
		{"DeleteExpiredRefreshTokens", testDeleteExpiredRefreshTokens},
		{"ChangePassword", testChangePassword},
		{"ListUsers", testListUsers},
		{"UsersByIDs", testUsersByIDs},
		{"DevicesOfUsers", testDevicesOfUsers},
		{"DeleteDevice", testDeleteDevice},
		{"InvalidatePushTokens", testInvalidatePushTokens},
		{"UpdateName", testUpdateName},
		{"SetActive", testSetActive},
		{"DeleteUser", testDeleteUser},
		{"ImportUser", testImportUser},
		{"TimestampRoundTrip", testTimestampRoundTrip},
		{"AtomicWrites", testAtomicWrites},
		{"Events", testEvents},
		{"EventOutbox", testEventOutbox},
		{"EventWatermark", testEventWatermark},
		{"EventPruning", testEventPruning},
		{"EventTraceParent", testEventTraceParent},
		{"BadText", testBadText},
		{"PingAndClose", testPingAndClose},
		{"Categories", testCategories},
		{"RichPreferences", testRichPreferences},
		{"ConcurrentCategoryChoices", testConcurrentCategoryChoices},
		{"UpdateProfile", testUpdateProfile},
		{"PasswordResets", testPasswordResets},
		{"Verifications", testVerifications},
		{"EmailChanges", testEmailChanges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// t0 is the suite's clock origin: a time with microseconds, as the account
// use cases hand them to the store.
var t0 = time.Date(2026, time.November, 25, 20, 38, 40, 796148000, time.UTC)

// at is t0 plus d seconds.
func at(d int) time.Time { return t0.Add(time.Duration(d) * time.Second) }

func ptr[T any](v T) *T { return &v }

func newID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("new id: %v", err)
	}
	return id.String()
}

// newUser returns an unsaved active user with a unique canonical email.
func newUser(t testing.TB, name string, created time.Time) *usersvc.User {
	t.Helper()
	id := newID(t)
	return &usersvc.User{
		ID:          id,
		Email:       strings.ToLower(name) + "." + id[len(id)-12:] + "@example.com",
		Name:        name,
		Preferences: usersvc.DefaultPreferences(),
		IsActive:    true,
		CreatedAt:   created,
		UpdatedAt:   created,
	}
}

// create saves a new user named name, created at created.
func create(t testing.TB, s *sqlstore.Store, name string, created time.Time) *usersvc.User {
	t.Helper()
	u := newUser(t, name, created)
	displaced, err := s.CreateUser(t.Context(), u, "hash:"+u.ID)
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", name, err)
	}
	wantIDs(t, "CreateUser("+name+") without a push token: displaced", displaced)
	return u
}

func getUser(t testing.TB, s *sqlstore.Store, id string) *usersvc.User {
	t.Helper()
	u, err := s.UserByID(t.Context(), id)
	if err != nil {
		t.Fatalf("UserByID(%s): %v", id, err)
	}
	return u
}

func devicesOf(t testing.TB, s *sqlstore.Store, userID string) []usersvc.Device {
	t.Helper()
	ds, err := s.Devices(t.Context(), userID)
	if err != nil {
		t.Fatalf("Devices(%s): %v", userID, err)
	}
	return ds
}

// register registers token for userID (with deviceID when not empty) at now.
func register(t testing.TB, s *sqlstore.Store, userID, token, deviceID string, now time.Time) usersvc.Device {
	t.Helper()
	d, _ := registerIDs(t, s, userID, token, deviceID, now)
	return d
}

// registerDisplacing registers as register does, and fails unless the call
// reports exactly displaced (in any order) as the other users who lost token.
func registerDisplacing(t testing.TB, s *sqlstore.Store, userID, token, deviceID string, now time.Time, displaced ...string) usersvc.Device {
	t.Helper()
	d, got := registerIDs(t, s, userID, token, deviceID, now)
	wantIDs(t, fmt.Sprintf("RegisterPushToken(%s, %s, %q): displaced", userID, token, deviceID), got, displaced...)
	return d
}

// registerIDs registers as register does, and returns the record and the
// users the call reported displaced.
func registerIDs(t testing.TB, s *sqlstore.Store, userID, token, deviceID string, now time.Time) (usersvc.Device, []string) {
	t.Helper()
	d := usersvc.Device{UserID: userID, Token: token, DeviceType: usersvc.DeviceAndroid}
	if deviceID != "" {
		d.DeviceID = &deviceID
	}
	displaced, err := s.RegisterPushToken(t.Context(), &d, now)
	if err != nil {
		t.Fatalf("RegisterPushToken(%s, %s, %q): %v", userID, token, deviceID, err)
	}
	return d, displaced
}

// wantIDs fails unless ids holds exactly want, each once, in any order
// (nil and empty are alike).
func wantIDs(t testing.TB, what string, ids []string, want ...string) {
	t.Helper()
	got := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("%s = %q, want %q in any order, each once", what, ids, want)
	}
}

// wantCode fails unless err is an *usersvc.Error with code whose message is
// client-safe: non-empty, and free of SQL and driver text.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *usersvc.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *usersvc.Error with code %q", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("error code = %q (%v), want %q", e.Code, err, code)
	}
	if e.Message == "" {
		t.Errorf("error %v has no client message", err)
	}
	lower := strings.ToLower(e.Message)
	for _, leak := range []string{"sql", "constraint", "duplicate key", "violates", "pgx", "pgconn", "users.", "select ", "insert ", "update ", "delete "} {
		if strings.Contains(lower, leak) {
			t.Errorf("client message %q contains %q", e.Message, leak)
		}
	}
}

// sameTime fails unless got is want's instant, in UTC.
func sameTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

func strp(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q", *p)
}

// sameUser fails unless got and want agree on every field.
func sameUser(t testing.TB, got, want *usersvc.User) {
	t.Helper()
	if got.ID != want.ID || got.Email != want.Email || got.Name != want.Name ||
		strp(got.PushToken) != strp(want.PushToken) || !got.Preferences.Equal(want.Preferences) ||
		strp(got.Phone) != strp(want.Phone) || strp(got.Locale) != strp(want.Locale) || strp(got.Timezone) != strp(want.Timezone) ||
		got.IsAdmin != want.IsAdmin || got.IsActive != want.IsActive {
		t.Errorf("user = {%s %s %q token=%s %+v admin=%v active=%v}, want {%s %s %q token=%s %+v admin=%v active=%v}",
			got.ID, got.Email, got.Name, strp(got.PushToken), got.Preferences, got.IsAdmin, got.IsActive,
			want.ID, want.Email, want.Name, strp(want.PushToken), want.Preferences, want.IsAdmin, want.IsActive)
	}
	sameTime(t, "user created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "user updated_at", got.UpdatedAt, want.UpdatedAt)
}

// sameDevice fails unless got and want agree on every field.
func sameDevice(t testing.TB, got, want usersvc.Device) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || strp(got.DeviceID) != strp(want.DeviceID) ||
		got.Token != want.Token || got.DeviceType != want.DeviceType {
		t.Errorf("device = {%s user=%s device_id=%s %q %s}, want {%s user=%s device_id=%s %q %s}",
			got.ID, got.UserID, strp(got.DeviceID), got.Token, got.DeviceType,
			want.ID, want.UserID, strp(want.DeviceID), want.Token, want.DeviceType)
	}
	sameTime(t, "device created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "device updated_at", got.UpdatedAt, want.UpdatedAt)
	sameTime(t, "device last_seen_at", got.LastSeenAt, want.LastSeenAt)
}

// tokens returns the tokens of ds, in order.
func tokens(ds []usersvc.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Token
	}
	return out
}

// wantTokens fails unless the user's records hold exactly want, in order.
func wantTokens(t testing.TB, s *sqlstore.Store, userID string, want ...string) {
	t.Helper()
	got := tokens(devicesOf(t, s, userID))
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("tokens of %s = %q, want %q", userID, got, want)
	}
}

// wantPushToken fails unless the user's current token is want (nil: none).
func wantPushToken(t testing.TB, s *sqlstore.Store, userID string, want *string) {
	t.Helper()
	if got := getUser(t, s, userID).PushToken; strp(got) != strp(want) {
		t.Errorf("push token of %s = %s, want %s", userID, strp(got), strp(want))
	}
}

// concurrently runs fn(i) for i in [0, n) in n goroutines released at once,
// and returns their errors by i.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}
