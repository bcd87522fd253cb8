package client_test

import (
	"errors"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
	"github.com/usersvc/usersvc/client/clienttest"
	"github.com/usersvc/usersvc/client/verify"
)

func ptr[T any](v T) *T { return &v }

func TestRegisterLoginRefreshLogout(t *testing.T) {
	s := newTestServer(t)
	anon := s.client(t)
	ctx := t.Context()

	u, err := anon.Register(ctx, usersvc.Registration{
		Email: "  Grace@Example.com ", Password: "Cobol#1959rocks", Name: "Grace Hopper",
		PushToken:   ptr("fcm:abc123"),
		Preferences: usersvc.PreferencesPatch{Push: ptr(false)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(u.ID); err != nil {
		t.Errorf("id %q is not a UUID", u.ID)
	}
	if u.Email != "grace@example.com" || u.Name != "Grace Hopper" {
		t.Errorf("user = %+v", u)
	}
	if u.PushToken == nil || *u.PushToken != "fcm:abc123" {
		t.Errorf("push token = %v", u.PushToken)
	}
	if !u.Preferences.Equal(usersvc.Preferences{Email: true, Push: false, SMS: true, InApp: true}) {
		t.Errorf("preferences = %+v", u.Preferences)
	}
	if u.CreatedAt.IsZero() || time.Since(u.CreatedAt) > time.Minute || u.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at = %v", u.CreatedAt)
	}

	_, err = anon.Register(ctx, usersvc.Registration{Email: "GRACE@example.com", Password: "Cobol#1959rocks", Name: "Grace"})
	e := clienttest.WantError(t, err, client.ErrConflict, http.StatusConflict)
	if e.Message != "A user with this email already exists" {
		t.Errorf("message = %q", e.Message)
	}

	_, err = anon.Register(ctx, usersvc.Registration{Email: "not-an-email", Password: "short", Name: "Grace"})
	e = clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if !slices.Contains(e.Fields["email"], usersvc.MsgEmailInvalid) {
		t.Errorf("email messages = %q", e.Fields["email"])
	}
	if !slices.Contains(e.Fields["password"], usersvc.MsgPasswordShort) || !slices.Contains(e.Fields["password"], usersvc.MsgPasswordDigit) {
		t.Errorf("password messages = %q", e.Fields["password"])
	}
	if _, ok := e.Fields["name"]; ok {
		t.Errorf("a valid name has messages: %q", e.Fields["name"])
	}
	if e.RequestID == "" {
		t.Error("no request id in the error")
	}

	sess, err := anon.Login(ctx, usersvc.Credentials{Email: "grace@EXAMPLE.com", Password: "Cobol#1959rocks"})
	if err != nil {
		t.Fatal(err)
	}
	if sess.User.ID != u.ID || sess.Tokens.Access == "" || sess.Tokens.Refresh == "" {
		t.Fatalf("session = %+v %+v", sess.User, sess.Tokens)
	}
	_, err = anon.Login(ctx, usersvc.Credentials{Email: "grace@example.com", Password: "Wrong#1959rocks"})
	e = clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if e.Message != "Invalid email or password" {
		t.Errorf("message = %q", e.Message)
	}

	// The access token verifies locally with the shared secret.
	v, err := verify.NewHS256([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(ctx, sess.Tokens.Access)
	if err != nil {
		t.Fatal(err)
	}
	if claims.UserID != u.ID || claims.Email != "grace@example.com" || claims.Name != "Grace Hopper" || claims.IsAdmin {
		t.Errorf("claims = %+v", claims)
	}
	if _, err := v.Verify(ctx, sess.Tokens.Refresh); !errors.Is(err, verify.ErrInvalidToken) {
		t.Errorf("a refresh token verified as access: %v", err)
	}

	pair, err := anon.Refresh(ctx, sess.Tokens.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Access == "" || pair.Refresh == "" || pair.Refresh == sess.Tokens.Refresh {
		t.Fatal("refresh gave no new pair")
	}
	// The spent token is reuse: the whole family ends.
	_, err = anon.Refresh(ctx, sess.Tokens.Refresh)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = anon.Refresh(ctx, pair.Refresh)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)

	// Logout ends a session; twice is fine; a refresh after it fails.
	sess, err = anon.Login(ctx, usersvc.Credentials{Email: "grace@example.com", Password: "Cobol#1959rocks"})
	if err != nil {
		t.Fatal(err)
	}
	if err := anon.Logout(ctx, sess.Tokens.Refresh); err != nil {
		t.Fatal(err)
	}
	if err := anon.Logout(ctx, sess.Tokens.Refresh); err != nil {
		t.Fatalf("second logout: %v", err)
	}
	_, err = anon.Refresh(ctx, sess.Tokens.Refresh)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	err = anon.Logout(ctx, sess.Tokens.Access)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
}

func TestUserAndPreferences(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	ada := s.register(t, "ada@example.com", "Ada Lovelace")
	alan := s.register(t, "alan@example.com", "Alan Turing")
	admin := s.admin(t, "root@example.com")
	svc := s.client(t, client.WithServiceKey(serviceKey))

	for name, c := range map[string]*client.Client{"self": ada.Client, "admin": admin.Client, "service": svc} {
		u, err := c.User(ctx, ada.ID)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if u.ID != ada.ID || u.Email != "ada@example.com" || u.Name != "Ada Lovelace" || u.PushToken != nil || !u.Preferences.Equal(usersvc.DefaultPreferences()) {
			t.Errorf("%s: user = %+v", name, u)
		}
	}

	// Another user's id, existing or not, is forbidden to a user; a
	// missing id is not found for an admin and a service.
	_, err := ada.Client.User(ctx, alan.ID)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	missing := uuid.NewString()
	_, err = ada.Client.User(ctx, missing)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = admin.Client.User(ctx, missing)
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	_, err = svc.Preferences(ctx, missing)
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	_, err = admin.Client.User(ctx, "not-a-uuid")
	e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if e.Message != "Invalid UUID format" {
		t.Errorf("message = %q", e.Message)
	}
	_, err = s.client(t).User(ctx, ada.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = s.client(t, client.WithServiceKey("wrong-key-0123456789abcdef")).User(ctx, ada.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if _, err := admin.Client.User(ctx, ".."); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("a dot segment as id: %v", err)
	}

	prefs, err := ada.Client.Preferences(ctx, ada.ID)
	if err != nil || !prefs.Equal(usersvc.DefaultPreferences()) {
		t.Fatalf("preferences = %+v, %v", prefs, err)
	}
	prefs, err = ada.Client.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Push: ptr(false)})
	if err != nil || !prefs.Equal(usersvc.Preferences{Email: true, Push: false, SMS: true, InApp: true}) {
		t.Fatalf("after the patch = %+v, %v", prefs, err)
	}
	prefs, err = admin.Client.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Email: ptr(false)})
	if err != nil || !prefs.Equal(usersvc.Preferences{Email: false, Push: false, SMS: true, InApp: true}) {
		t.Fatalf("after the admin's patch = %+v, %v", prefs, err)
	}
	prefs, err = svc.Preferences(ctx, ada.ID)
	if err != nil || !prefs.Equal(usersvc.Preferences{SMS: true, InApp: true}) {
		t.Fatalf("the service reads %+v, %v", prefs, err)
	}
	_, err = svc.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Email: ptr(true)})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = alan.Client.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Email: ptr(true)})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = ada.Client.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{})
	clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
}

func TestPushTokensAndDevices(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	ada := s.register(t, "ada@example.com", "Ada Lovelace")
	alan := s.register(t, "alan@example.com", "Alan Turing")
	svc := s.client(t, client.WithServiceKey(serviceKey))

	tok, err := ada.Client.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{Token: ptr(" fcm:phone-1 "), DeviceID: ptr("ada-phone"), DeviceType: usersvc.DeviceAndroid})
	if err != nil || tok == nil || *tok != "fcm:phone-1" {
		t.Fatalf("token = %v, %v", tok, err)
	}
	tok, err = ada.Client.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{Token: ptr("apns:tablet-1"), DeviceID: ptr("ada-tablet"), DeviceType: usersvc.DeviceIOS})
	if err != nil || *tok != "apns:tablet-1" {
		t.Fatalf("token = %v, %v", tok, err)
	}
	if _, err := ada.Client.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{Token: ptr("web:laptop-1")}); err != nil {
		t.Fatal(err)
	}
	u, err := svc.User(ctx, ada.ID)
	if err != nil || u.PushToken == nil || *u.PushToken != "web:laptop-1" {
		t.Fatalf("current token = %v, %v", u.PushToken, err)
	}

	_, err = ada.Client.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{Token: ptr("bad token!"), DeviceType: "fridge"})
	e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if !slices.Equal(e.Fields["push_token"], []string{usersvc.MsgTokenInvalid}) || len(e.Fields["device_type"]) != 1 {
		t.Errorf("fields = %q", e.Fields)
	}
	_, err = svc.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{Token: ptr("fcm:x")})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)

	devices, err := svc.Devices(ctx, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	byToken := map[string]client.Device{}
	for _, d := range devices {
		byToken[d.PushToken] = d
	}
	if len(devices) != 3 || byToken["fcm:phone-1"].DeviceType != usersvc.DeviceAndroid || byToken["apns:tablet-1"].DeviceType != usersvc.DeviceIOS {
		t.Fatalf("devices = %+v", devices)
	}
	if d := byToken["fcm:phone-1"]; d.DeviceID == nil || *d.DeviceID != "ada-phone" || d.ID == "" || d.LastSeenAt.IsZero() {
		t.Errorf("phone = %+v", d)
	}
	if d := byToken["web:laptop-1"]; d.DeviceID != nil || d.DeviceType != usersvc.DeviceOther {
		t.Errorf("laptop = %+v", d)
	}
	_, err = alan.Client.Devices(ctx, ada.ID)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)

	// Clearing with a device id removes that record.
	tok, err = ada.Client.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{DeviceID: ptr("ada-tablet")})
	if err != nil || tok != nil {
		t.Fatalf("clear = %v, %v", tok, err)
	}
	// Deleting by device id, and by record id.
	if err := ada.Client.DeleteDevice(ctx, ada.ID, "ada-phone"); err != nil {
		t.Fatal(err)
	}
	if err := ada.Client.DeleteDevice(ctx, ada.ID, byToken["web:laptop-1"].ID); err != nil {
		t.Fatal(err)
	}
	devices, err = ada.Client.Devices(ctx, ada.ID)
	if err != nil || len(devices) != 0 {
		t.Fatalf("devices left = %+v, %v", devices, err)
	}
	err = ada.Client.DeleteDevice(ctx, ada.ID, "ada-phone")
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	err = svc.DeleteDevice(ctx, ada.ID, "ada-phone")
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
}

func TestDirectory(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	admin := s.admin(t, "root@example.com")
	var ids []string
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		id, err := s.addUser(ctx, email, "User", usersvc.DefaultPreferences(), "fcm:"+email[:1]+"-1", "apns:"+email[:1]+"-2")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	svc := s.client(t, client.WithServiceKey(serviceKey))
	pusher := s.client(t, client.WithServiceKey(invalidatorKey))
	user := s.register(t, "d@example.com", "User")

	page, err := admin.Client.ListUsers(ctx, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := client.PageMeta{Total: 5, Limit: 2, Page: 1, TotalPages: 3, HasNext: true}
	if page.Meta != want || len(page.Users) != 2 {
		t.Fatalf("page 1 = %d users, %+v", len(page.Users), page.Meta)
	}
	if page.Users[0].ID != user.ID {
		t.Errorf("the newest user is not first: %s", page.Users[0].Email)
	}
	page, err = svc.ListUsers(ctx, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if page.Meta.HasNext || !page.Meta.HasPrevious || len(page.Users) != 1 {
		t.Fatalf("page 3 = %d users, %+v", len(page.Users), page.Meta)
	}
	_, err = user.Client.ListUsers(ctx, 1, 20)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = admin.Client.ListUsers(ctx, 1, 1000)
	e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if len(e.Fields["limit"]) != 1 {
		t.Errorf("fields = %q", e.Fields)
	}

	missing := uuid.NewString()
	batch, err := svc.BatchUsers(ctx, []string{ids[0], missing, ids[2]})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Users) != 2 || batch.Users[0].ID != ids[0] || batch.Users[1].ID != ids[2] {
		t.Fatalf("batch users = %+v", batch.Users)
	}
	if !reflect.DeepEqual(batch.NotFound, []string{missing}) {
		t.Errorf("not found = %q", batch.NotFound)
	}
	var tokens []string
	for _, d := range batch.Users[0].PushTokens {
		tokens = append(tokens, d.PushToken)
	}
	slices.Sort(tokens)
	if !slices.Equal(tokens, []string{"apns:a-2", "fcm:a-1"}) {
		t.Errorf("push tokens = %q", tokens)
	}
	if batch.Users[0].Email != "a@example.com" || !batch.Users[0].Preferences.Push {
		t.Errorf("batch user = %+v", batch.Users[0].User)
	}
	_, err = svc.BatchUsers(ctx, nil)
	clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	_, err = user.Client.BatchUsers(ctx, ids)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)

	n, err := pusher.InvalidatePushTokens(ctx, []string{"fcm:a-1", "apns:b-2", "fcm:nobody"}, "unregistered")
	if err != nil || n != 2 {
		t.Fatalf("invalidated %d, %v", n, err)
	}
	devices, err := svc.Devices(ctx, ids[0])
	if err != nil || len(devices) != 1 || devices[0].PushToken != "apns:a-2" {
		t.Fatalf("devices of a = %+v, %v", devices, err)
	}
	_, err = svc.InvalidatePushTokens(ctx, []string{"fcm:c-1"}, "")
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = pusher.InvalidatePushTokens(ctx, []string{"bad token!"}, "")
	e = clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if len(e.Fields["push_tokens"]) != 1 {
		t.Errorf("fields = %q", e.Fields)
	}
	// A key that may only invalidate may not read.
	_, err = pusher.User(ctx, ids[0])
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
}

func TestHealthAndJWKS(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	c := s.client(t)
	h, err := c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != "healthy" || h.Database != "connected" || h.Redis != "not_configured" || h.Version != "test" || time.Since(h.Timestamp) > time.Minute {
		t.Errorf("health = %+v", h)
	}
	keys, err := c.JWKS(ctx)
	if err != nil || len(keys) != 0 {
		t.Fatalf("HS256 keys = %+v, %v", keys, err)
	}

	// With EdDSA, the key is published, and tokens verify by the JWKS.
	ks := newEdDSAKeys(t)
	s = newTestServerWith(t, ks)
	c = s.client(t)
	keys, err = c.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Kid != ks.KIDs()[0] || keys[0].Alg != "EdDSA" || keys[0].Kty != "OKP" || keys[0].X == "" {
		t.Fatalf("EdDSA keys = %+v", keys)
	}
	u := s.register(t, "ada@example.com", "Ada Lovelace")
	v, err := verify.NewJWKS(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(ctx, u.Tokens.Access)
	if err != nil {
		t.Fatal(err)
	}
	if claims.UserID != u.ID || claims.Email != u.Email {
		t.Errorf("claims = %+v", claims)
	}
	if _, err := v.Verify(ctx, u.Tokens.Refresh); !errors.Is(err, verify.ErrInvalidToken) {
		t.Errorf("refresh token: %v", err)
	}
}

func TestHealthReportsADownDatabase(t *testing.T) {
	s := newTestServer(t)
	c := s.client(t, client.WithCircuitBreaker(1, time.Hour))
	s.store.Close()
	h, err := c.Health(t.Context())
	clienttest.WantError(t, err, client.ErrUnavailable, http.StatusServiceUnavailable)
	if h == nil || h.Status != "unhealthy" || h.Database != "disconnected" {
		t.Fatalf("health = %+v", h)
	}
	// Health is a probe: it neither feeds nor obeys the breaker.
	if _, err := c.Health(t.Context()); errors.Is(err, client.ErrCircuitOpen) {
		t.Fatal("health was refused by the breaker")
	}
}

func TestPreferencesCache(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	ada := s.register(t, "ada@example.com", "Ada Lovelace")
	const ttl = 300 * time.Millisecond
	c := s.client(t, client.WithBearerToken(ada.Tokens.Access), client.WithPreferencesCache(ttl))
	path := "GET /api/v1/users/" + ada.ID + "/preferences"

	read := func(want usersvc.Preferences) {
		t.Helper()
		got, err := c.Preferences(ctx, ada.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Fatalf("preferences = %+v, want %+v", got, want)
		}
	}
	start := time.Now()
	read(usersvc.DefaultPreferences())
	read(usersvc.DefaultPreferences())
	if n := s.count(path); n != 1 {
		t.Fatalf("%d requests for two reads within the ttl", n)
	}

	// The client's own change replaces the cached value.
	off := usersvc.Preferences{Email: true, Push: false, SMS: true, InApp: true}
	if _, err := c.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Push: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	read(off)
	// A change made elsewhere is seen once the entry expires.
	if _, err := ada.Client.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Email: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < ttl {
		read(off)
	}
	if n := s.count(path); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	time.Sleep(ttl)
	read(usersvc.Preferences{SMS: true, InApp: true})
	if n := s.count(path); n != 2 {
		t.Fatalf("%d requests after the ttl, want 2", n)
	}

	// A failed change forgets the entry.
	_, err := c.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{})
	clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	read(usersvc.Preferences{SMS: true, InApp: true})
	if n := s.count(path); n != 3 {
		t.Fatalf("%d requests after a failed change, want 3", n)
	}
	// Without the option, every read is a request.
	for range 2 {
		if _, err := ada.Client.Preferences(ctx, ada.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.count(path); n != 5 {
		t.Fatalf("%d requests, want 5", n)
	}
}
