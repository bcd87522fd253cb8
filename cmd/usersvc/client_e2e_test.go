package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
	"github.com/usersvc/usersvc/client/clienttest"
	"github.com/usersvc/usersvc/client/verify"
	"github.com/usersvc/usersvc/internal/token"
)

// The credentials of the end-to-end servers.
const (
	e2eSecret      = "e2e-secret-key-that-is-long-enough-0123456789"
	e2eNotifierKey = "e2e-notifier-key-0123456789abcdef"
	e2ePusherKey   = "e2e-pusher-key-0123456789abcdef"
	e2eServiceKeys = "SERVICE_API_KEYS=notifier:" + e2eNotifierKey + ",pusher:" + e2ePusherKey + ":push_tokens.invalidate"
	e2ePassword    = "Str0ng!Passw0rd"
	e2eAdminPass   = "Adm1n!Passw0rd"
)

// e2eClient returns a client of base that retries quickly.
func e2eClient(t *testing.T, base string, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithRetry(client.RetryPolicy{Attempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second})}, opts...)
	c, err := client.New(base, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func e2ePtr[T any](v T) *T { return &v }

// e2eKID returns the kid in a token's header.
func e2eKID(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h.Kid
}

// e2eLogin logs a user in and returns the session and a client acting as
// that user.
func e2eLogin(t *testing.T, base, email, pw string) (*client.Session, *client.Client) {
	t.Helper()
	sess, err := e2eClient(t, base).Login(t.Context(), usersvc.Credentials{Email: email, Password: usersvc.Password(pw)})
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return sess, e2eClient(t, base, client.WithBearerToken(sess.Tokens.Access))
}

// e2eGuard runs a request carrying tok through mw and returns the status
// and the body.
func e2eGuard(mw http.Handler, tok string) (int, string) {
	req := httptest.NewRequest(http.MethodGet, "/inbox", nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	mw.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// e2eInbox answers with the user id of the verified token.
var e2eInbox = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := verify.ClaimsFrom(r.Context())
	if !ok {
		http.Error(w, "no claims", http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, c.UserID)
})

// TestClientE2EEndpoints drives every endpoint of the contract through the
// client against the real server (SQLite in a temporary directory, HS256
// with SECRET_KEY, two service keys).
func TestClientE2EEndpoints(t *testing.T) {
	dir := t.TempDir()
	makeAdmin(t, dir, "Root@Example.com", "Root Admin", e2eAdminPass)
	srv := startServer(t, "DATA_DIR="+dir, "SECRET_KEY="+e2eSecret, e2eServiceKeys)
	ctx := t.Context()
	anon := e2eClient(t, srv.base)
	svc := e2eClient(t, srv.base, client.WithServiceKey(e2eNotifierKey))
	pusher := e2eClient(t, srv.base, client.WithServiceKey(e2ePusherKey))

	// Health and keys.
	h, err := anon.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != "healthy" || h.Database != "connected" || h.Redis != "not_configured" || h.Version == "" || time.Since(h.Timestamp) > time.Minute {
		t.Errorf("health = %+v", h)
	}
	if keys, err := anon.JWKS(ctx); err != nil || len(keys) != 0 {
		t.Errorf("HS256 key set = %+v, %v; want empty", keys, err)
	}

	// Register.
	ada, err := anon.Register(ctx, usersvc.Registration{
		Email: "  Ada@Example.com ", Password: e2ePassword, Name: "Ada Lovelace",
		PushToken:   e2ePtr("fcm:ada-initial"),
		Preferences: usersvc.PreferencesPatch{Push: e2ePtr(false)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(ada.ID); err != nil || ada.ID != strings.ToLower(ada.ID) {
		t.Errorf("id %q is not a canonical UUID", ada.ID)
	}
	if ada.Email != "ada@example.com" || ada.Name != "Ada Lovelace" || ada.PushToken == nil || *ada.PushToken != "fcm:ada-initial" ||
		!ada.Preferences.Equal(usersvc.Preferences{Email: true, Push: false, SMS: true, InApp: true}) || ada.CreatedAt.Location() != time.UTC || time.Since(ada.CreatedAt) > time.Minute {
		t.Errorf("registered = %+v", ada)
	}
	_, err = anon.Register(ctx, usersvc.Registration{Email: "ADA@example.com", Password: e2ePassword, Name: "Ada"})
	if e := clienttest.WantError(t, err, client.ErrConflict, http.StatusConflict); e.Message != "A user with this email already exists" {
		t.Errorf("conflict message = %q", e.Message)
	}
	_, err = anon.Register(ctx, usersvc.Registration{Email: "not-an-email", Password: "short", Name: "Ada <script>"})
	e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if !slices.Equal(e.Fields["email"], []string{usersvc.MsgEmailInvalid}) ||
		!slices.Contains(e.Fields["password"], usersvc.MsgPasswordShort) || !slices.Contains(e.Fields["password"], usersvc.MsgPasswordDigit) ||
		!slices.Contains(e.Fields["password"], usersvc.MsgPasswordUpper) || !slices.Equal(e.Fields["name"], []string{usersvc.MsgNameInvalid}) {
		t.Errorf("validation fields = %q", e.Fields)
	}
	if !strings.Contains(e.Message, "email: "+usersvc.MsgEmailInvalid) || e.RequestID == "" {
		t.Errorf("validation error = %q, request id %q", e.Message, e.RequestID)
	}
	bob, err := anon.Register(ctx, usersvc.Registration{Email: "bob@example.com", Password: e2ePassword, Name: "Bob O'Brien"})
	if err != nil {
		t.Fatal(err)
	}
	if bob.PushToken != nil || !bob.Preferences.Equal(usersvc.Preferences{Email: true, Push: true, SMS: true, InApp: true}) {
		t.Errorf("bob = %+v", bob)
	}

	// Login.
	adaSess, adaC := e2eLogin(t, srv.base, "ADA@example.COM", e2ePassword)
	if adaSess.User.ID != ada.ID || adaSess.User.Email != "ada@example.com" || adaSess.Tokens.Access == "" || adaSess.Tokens.Refresh == "" {
		t.Fatalf("session user = %+v", adaSess.User)
	}
	_, bobC := e2eLogin(t, srv.base, "bob@example.com", e2ePassword)
	adminSess, adminC := e2eLogin(t, srv.base, "root@example.com", e2eAdminPass)
	_, err = anon.Login(ctx, usersvc.Credentials{Email: "ada@example.com", Password: "Wr0ng!Passw0rd"})
	if e := clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized); e.Message != "Invalid email or password" {
		t.Errorf("wrong password message = %q", e.Message)
	}
	_, err = anon.Login(ctx, usersvc.Credentials{Email: "nobody@example.com", Password: e2ePassword})
	if e := clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized); e.Message != "Invalid email or password" {
		t.Errorf("unknown email message = %q", e.Message)
	}

	// Get a user: the user, an admin, a service; others are refused.
	missing := uuid.NewString()
	for name, c := range map[string]*client.Client{"self": adaC, "admin": adminC, "service": svc} {
		u, err := c.User(ctx, ada.ID)
		if err != nil {
			t.Fatalf("%s reads ada: %v", name, err)
		}
		if u.ID != ada.ID || u.Email != "ada@example.com" || u.PushToken == nil || *u.PushToken != "fcm:ada-initial" || !u.CreatedAt.Equal(ada.CreatedAt) {
			t.Errorf("%s reads ada = %+v", name, u)
		}
	}
	_, err = bobC.User(ctx, ada.ID)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = bobC.User(ctx, missing)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden) // no enumeration
	rctx := client.WithRequestID(ctx, "e2e-req-1")
	_, err = adminC.User(rctx, missing)
	if e := clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound); e.Message != "User not found" || e.RequestID != "e2e-req-1" {
		t.Errorf("admin reads a missing user: %q, request id %q", e.Message, e.RequestID)
	}
	_, err = svc.User(ctx, missing)
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	_, err = anon.User(ctx, ada.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = e2eClient(t, srv.base, client.WithBearerToken(adaSess.Tokens.Refresh)).User(ctx, ada.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized) // a refresh token is no access token
	_, err = adminC.User(ctx, "not-a-uuid")
	if e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest); e.Message != "Invalid UUID format" {
		t.Errorf("bad id message = %q", e.Message)
	}

	// Preferences.
	prefs, err := svc.Preferences(ctx, ada.ID)
	if err != nil || !prefs.Equal(usersvc.Preferences{Email: true, Push: false, SMS: true, InApp: true}) {
		t.Fatalf("ada's preferences = %+v, %v", prefs, err)
	}
	prefs, err = adaC.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Email: e2ePtr(false)})
	if err != nil || !prefs.Equal(usersvc.Preferences{Email: false, Push: false, SMS: true, InApp: true}) {
		t.Fatalf("ada updates her preferences = %+v, %v", prefs, err)
	}
	if prefs, err = svc.Preferences(ctx, ada.ID); err != nil || !prefs.Equal(usersvc.Preferences{Email: false, Push: false, SMS: true, InApp: true}) {
		t.Errorf("preferences read after the update = %+v, %v", prefs, err)
	}
	prefs, err = adminC.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Push: e2ePtr(true)})
	if err != nil || !prefs.Equal(usersvc.Preferences{Email: false, Push: true, SMS: true, InApp: true}) {
		t.Fatalf("admin updates ada's preferences = %+v, %v", prefs, err)
	}
	if u, err := adaC.User(ctx, ada.ID); err != nil || !u.Preferences.Equal(prefs) {
		t.Errorf("ada after the preference updates = %+v, %v", u, err)
	}
	_, err = svc.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Push: e2ePtr(false)})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = bobC.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{Push: e2ePtr(false)})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = adaC.UpdatePreferences(ctx, ada.ID, usersvc.PreferencesPatch{})
	clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	_, err = bobC.Preferences(ctx, ada.ID)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)

	// Push tokens and devices.
	cur, err := adaC.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{Token: e2ePtr("fcm:ada-phone"), DeviceID: e2ePtr("ada-phone"), DeviceType: usersvc.DeviceAndroid})
	if err != nil || cur == nil || *cur != "fcm:ada-phone" {
		t.Fatalf("register the phone: %v, %v", cur, err)
	}
	cur, err = adaC.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{Token: e2ePtr(" web:ada-laptop "), DeviceID: e2ePtr("ada-laptop"), DeviceType: usersvc.DeviceWeb})
	if err != nil || cur == nil || *cur != "web:ada-laptop" {
		t.Fatalf("register the laptop: %v, %v", cur, err)
	}
	devices, err := svc.Devices(ctx, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range devices {
		got = append(got, d.PushToken+"/"+d.DeviceType)
	}
	if want := []string{"web:ada-laptop/web", "fcm:ada-phone/android", "fcm:ada-initial/other"}; !slices.Equal(got, want) {
		t.Fatalf("ada's devices = %q, want %q (most recently seen first)", got, want)
	}
	initial := devices[2]
	if initial.DeviceID != nil || devices[0].DeviceID == nil || *devices[0].DeviceID != "ada-laptop" || devices[0].LastSeenAt.IsZero() {
		t.Errorf("device records = %+v", devices)
	}
	if u, err := svc.User(ctx, ada.ID); err != nil || u.PushToken == nil || *u.PushToken != "web:ada-laptop" {
		t.Errorf("ada's current token = %+v, %v", u, err)
	}
	_, err = adaC.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{Token: e2ePtr("bad token!")})
	if e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest); !slices.Equal(e.Fields["push_token"], []string{usersvc.MsgTokenInvalid}) {
		t.Errorf("bad token fields = %q", e.Fields)
	}
	_, err = svc.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{Token: e2ePtr("fcm:svc")})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	// A token moves to whoever registers it last.
	if cur, err := bobC.UpdatePushToken(ctx, bob.ID, usersvc.PushTokenUpdate{Token: e2ePtr("fcm:ada-phone")}); err != nil || *cur != "fcm:ada-phone" {
		t.Fatalf("bob takes the phone's token: %v, %v", cur, err)
	}
	if devices, err = adaC.Devices(ctx, ada.ID); err != nil || len(devices) != 2 {
		t.Fatalf("ada's devices after the move = %+v, %v", devices, err)
	}
	_, err = bobC.Devices(ctx, ada.ID)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	// Delete a device by its record id, then by its device id.
	if err := adaC.DeleteDevice(ctx, ada.ID, initial.ID); err != nil {
		t.Fatalf("delete by record id: %v", err)
	}
	err = adaC.DeleteDevice(ctx, ada.ID, initial.ID)
	if e := clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound); e.Message != "Device not found" {
		t.Errorf("second delete: %q", e.Message)
	}
	err = bobC.DeleteDevice(ctx, ada.ID, "ada-laptop")
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	err = svc.DeleteDevice(ctx, ada.ID, "ada-laptop")
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	if err := adminC.DeleteDevice(ctx, ada.ID, "ada-laptop"); err != nil {
		t.Fatalf("admin deletes ada's laptop: %v", err)
	}
	if devices, err = adaC.Devices(ctx, ada.ID); err != nil || len(devices) != 0 {
		t.Fatalf("ada's devices after the deletes = %+v, %v", devices, err)
	}
	// Clearing: the current token goes.
	if _, err := adaC.UpdatePushToken(ctx, ada.ID, usersvc.PushTokenUpdate{Token: e2ePtr("fcm:ada-phone-2"), DeviceID: e2ePtr("ada-phone"), DeviceType: usersvc.DeviceAndroid}); err != nil {
		t.Fatal(err)
	}
	if cur, err := bobC.UpdatePushToken(ctx, bob.ID, usersvc.PushTokenUpdate{Token: nil}); err != nil || cur != nil {
		t.Fatalf("bob clears his token: %v, %v", cur, err)
	}
	if u, err := svc.User(ctx, bob.ID); err != nil || u.PushToken != nil {
		t.Errorf("bob after clearing = %+v, %v", u, err)
	}
	if _, err := bobC.UpdatePushToken(ctx, bob.ID, usersvc.PushTokenUpdate{Token: e2ePtr("apns:bob-ipad"), DeviceID: e2ePtr("bob-ipad"), DeviceType: usersvc.DeviceIOS}); err != nil {
		t.Fatal(err)
	}

	// The list, for admins and services.
	page, err := adminC.ListUsers(ctx, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := (client.PageMeta{Total: 3, Limit: 2, Page: 1, TotalPages: 2, HasNext: true}); page.Meta != want || len(page.Users) != 2 || page.Users[0].ID != bob.ID || page.Users[1].ID != ada.ID {
		t.Errorf("page 1 = %+v %+v", page.Meta, page.Users)
	}
	page, err = svc.ListUsers(ctx, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := (client.PageMeta{Total: 3, Limit: 2, Page: 2, TotalPages: 2, HasPrevious: true}); page.Meta != want || len(page.Users) != 1 || page.Users[0].ID != adminSess.User.ID {
		t.Errorf("page 2 = %+v %+v", page.Meta, page.Users)
	}
	_, err = adaC.ListUsers(ctx, 1, 20)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = svc.ListUsers(ctx, 1, 101)
	if e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest); len(e.Fields["limit"]) != 1 {
		t.Errorf("limit fields = %q", e.Fields)
	}

	// The batch: found users in the order asked, each once, with their
	// devices; the ids of no user apart.
	batch, err := svc.BatchUsers(ctx, []string{ada.ID, missing, bob.ID, strings.ToUpper(ada.ID), ada.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Users) != 2 || batch.Users[0].ID != ada.ID || batch.Users[1].ID != bob.ID || !slices.Equal(batch.NotFound, []string{missing}) {
		t.Fatalf("batch = %+v, not found %q", batch.Users, batch.NotFound)
	}
	if d := batch.Users[0].PushTokens; len(d) != 1 || d[0].PushToken != "fcm:ada-phone-2" || batch.Users[0].Email != "ada@example.com" || !batch.Users[0].Preferences.Equal(prefs) {
		t.Errorf("ada in the batch = %+v", batch.Users[0])
	}
	if d := batch.Users[1].PushTokens; len(d) != 1 || d[0].PushToken != "apns:bob-ipad" || d[0].DeviceType != usersvc.DeviceIOS {
		t.Errorf("bob's devices in the batch = %+v", d)
	}
	many := make([]string, 1000)
	for i := range many {
		many[i] = uuid.NewString()
	}
	many[500] = bob.ID
	if batch, err = adminC.BatchUsers(ctx, many); err != nil || len(batch.Users) != 1 || len(batch.NotFound) != 999 {
		t.Fatalf("batch of 1000: %v", err)
	}
	_, err = svc.BatchUsers(ctx, append(many, uuid.NewString()))
	if e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest); len(e.Fields["user_ids"]) == 0 {
		t.Errorf("1001 ids: fields = %q", e.Fields)
	}
	_, err = svc.BatchUsers(ctx, nil)
	clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	_, err = svc.BatchUsers(ctx, []string{ada.ID, "nope"})
	if e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest); !slices.Contains(e.Fields["user_ids"], "Invalid UUID format at index 1") {
		t.Errorf("bad id fields = %q", e.Fields)
	}
	_, err = adaC.BatchUsers(ctx, []string{ada.ID})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)

	// Invalidation, by a service with the scope only.
	n, err := pusher.InvalidatePushTokens(ctx, []string{"fcm:ada-phone-2", "fcm:nobody"}, "unregistered")
	if err != nil || n != 1 {
		t.Fatalf("invalidated %d, %v", n, err)
	}
	if u, err := svc.User(ctx, ada.ID); err != nil || u.PushToken != nil {
		t.Errorf("ada after the invalidation = %+v, %v", u, err)
	}
	if devices, err := svc.Devices(ctx, ada.ID); err != nil || len(devices) != 0 {
		t.Errorf("ada's devices after the invalidation = %+v, %v", devices, err)
	}
	_, err = svc.InvalidatePushTokens(ctx, []string{"apns:bob-ipad"}, "unregistered")
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = adminC.InvalidatePushTokens(ctx, []string{"apns:bob-ipad"}, "unregistered")
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = pusher.InvalidatePushTokens(ctx, nil, "")
	clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	_, err = pusher.User(ctx, bob.ID)
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)

	// Local verification with the shared secret.
	v, err := verify.NewHS256([]byte(e2eSecret))
	if err != nil {
		t.Fatal(err)
	}
	mw := v.Middleware(e2eInbox)
	if st, body := e2eGuard(mw, adaSess.Tokens.Access); st != http.StatusOK || body != ada.ID {
		t.Errorf("ada's token through the middleware: %d %q", st, body)
	}
	if c, err := v.Verify(ctx, adminSess.Tokens.Access); err != nil || !c.IsAdmin || c.UserID != adminSess.User.ID || c.Email != "root@example.com" {
		t.Errorf("admin claims = %+v, %v", c, err)
	}
	if c, err := v.Verify(ctx, adaSess.Tokens.Access); err != nil || c.IsAdmin || c.Name != "Ada Lovelace" || c.TokenID == "" ||
		c.ExpiresAt.Sub(c.IssuedAt) != 15*time.Minute {
		t.Errorf("ada's claims = %+v, %v", c, err)
	}
	for name, tok := range map[string]string{"refresh": adaSess.Tokens.Refresh, "tampered": adaSess.Tokens.Access[:len(adaSess.Tokens.Access)-2] + "xx"} {
		if st, body := e2eGuard(mw, tok); st != http.StatusUnauthorized || !strings.Contains(body, "Token is invalid or expired") {
			t.Errorf("%s token through the middleware: %d %s", name, st, body)
		}
	}
	if st, _ := e2eGuard(mw, ""); st != http.StatusUnauthorized {
		t.Errorf("no token through the middleware: %d", st)
	}
	other, err := verify.NewHS256([]byte(strings.Repeat("x", 40)))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := e2eGuard(other.Middleware(e2eInbox), adaSess.Tokens.Access); st != http.StatusUnauthorized {
		t.Errorf("a token under another secret: %d", st)
	}

	// Refresh: a new pair; the spent token is reuse and ends the family.
	pair, err := anon.Refresh(ctx, adaSess.Tokens.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Access == "" || pair.Refresh == "" || pair.Refresh == adaSess.Tokens.Refresh {
		t.Fatal("refresh gave no new pair")
	}
	if c, err := v.Verify(ctx, pair.Access); err != nil || c.UserID != ada.ID {
		t.Errorf("refreshed access token: %+v, %v", c, err)
	}
	if u, err := e2eClient(t, srv.base, client.WithBearerToken(pair.Access)).User(ctx, ada.ID); err != nil || u.ID != ada.ID {
		t.Errorf("a call with the refreshed token: %v", err)
	}
	// A retry of the spent token within REFRESH_REUSE_INTERVAL gets the same
	// successor; once the successor is spent, the spent token is reuse and
	// ends the session.
	again, err := anon.Refresh(ctx, adaSess.Tokens.Refresh)
	if err != nil || again.Refresh != pair.Refresh {
		t.Fatalf("retry of a spent refresh token: %v; same successor %v", err, err == nil && again.Refresh == pair.Refresh)
	}
	next, err := anon.Refresh(ctx, pair.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	_, err = anon.Refresh(ctx, adaSess.Tokens.Refresh)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = anon.Refresh(ctx, next.Refresh)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = anon.Refresh(ctx, pair.Access)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)

	// Logout: twice is fine; the refresh token is dead after it.
	sess, _ := e2eLogin(t, srv.base, "bob@example.com", e2ePassword)
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

	// Repeated failures are rate limited, and a POST is not retried.
	for range 5 {
		_, err = anon.Login(ctx, usersvc.Credentials{Email: "bob@example.com", Password: "Wr0ng!Passw0rd"})
		clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	}
	_, err = anon.Login(ctx, usersvc.Credentials{Email: "bob@example.com", Password: e2ePassword})
	if e := clienttest.WantError(t, err, client.ErrRateLimited, http.StatusTooManyRequests); e.RetryAfter <= 0 {
		t.Errorf("no Retry-After: %+v", e)
	}

	srv.stop(t)
	logs := srv.logs.String()
	for _, secret := range []string{e2ePassword, e2eAdminPass, e2eSecret, e2eNotifierKey, e2ePusherKey, adaSess.Tokens.Access, adaSess.Tokens.Refresh} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds a secret (%d characters)", len(secret))
		}
	}
	if !strings.Contains(logs, "e2e-req-1") {
		t.Error("the request id sent by the client is not in the log")
	}
}

// TestClientE2EKeyRotation rotates the signing key of the real server (an
// asymmetric algorithm, keys in JWT_PRIVATE_KEY_FILE) while another service
// verifies its tokens with the published keys, through the middleware.
func TestClientE2EKeyRotation(t *testing.T) {
	for _, alg := range []string{token.EdDSA, token.ES256} {
		t.Run(alg, func(t *testing.T) { e2eRotate(t, alg) })
	}
}

// e2eFetches counts the requests it passes on.
type e2eFetches struct {
	n atomic.Int64
}

func (f *e2eFetches) RoundTrip(r *http.Request) (*http.Response, error) {
	f.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func e2eRotate(t *testing.T, alg string) {
	ctx := t.Context()
	dir := t.TempDir()
	keyA, keyB, keyFile := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem"), filepath.Join(dir, "keys.pem")
	for _, p := range []string{keyA, keyB} {
		if err := token.GenerateKeyFile(p, alg); err != nil {
			t.Fatal(err)
		}
	}
	kid := func(p string) string {
		ks, err := token.LoadKeyFile(p, alg)
		if err != nil {
			t.Fatal(err)
		}
		return ks.KIDs()[0]
	}
	kidA, kidB := kid(keyA), kid(keyB)
	writeKeys := func(files ...string) {
		var pem []byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pem = append(pem, b...)
		}
		if err := os.WriteFile(keyFile, pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	published := func(base string) []string {
		t.Helper()
		keys, err := e2eClient(t, base).JWKS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range keys {
			if k.Alg != alg || k.Use != "sig" {
				t.Errorf("published key %+v", k)
			}
			kids = append(kids, k.Kid)
		}
		return kids
	}
	environ := []string{"DATA_DIR=" + dir, "JWT_ALGORITHM=" + alg, "JWT_PRIVATE_KEY_FILE=" + keyFile}

	// Key A signs.
	writeKeys(keyA)
	srv := startServer(t, environ...)
	if kids := published(srv.base); !slices.Equal(kids, []string{kidA}) {
		t.Fatalf("published %q, want [A]", kids)
	}
	u, err := e2eClient(t, srv.base).Register(ctx, usersvc.Registration{Email: "rot@example.com", Password: e2ePassword, Name: "Rotation"})
	if err != nil {
		t.Fatal(err)
	}
	sessA, _ := e2eLogin(t, srv.base, "rot@example.com", e2ePassword)
	if k := e2eKID(t, sessA.Tokens.Access); k != kidA {
		t.Fatalf("the first token is signed by %s, want A", k)
	}

	// Another service: the verifier follows the service's keys; its clock
	// can be moved on to age the fetched set.
	var (
		skew    atomic.Int64
		fetches e2eFetches
	)
	v, err := verify.NewJWKS(srv.base,
		verify.WithHTTPClient(&http.Client{Transport: &fetches}),
		verify.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }),
		verify.WithMinRefreshInterval(time.Second),
		verify.WithMaxKeyAge(time.Minute),
	)
	if err != nil {
		t.Fatal(err)
	}
	mw := v.Middleware(e2eInbox)
	for range 2 {
		if st, body := e2eGuard(mw, sessA.Tokens.Access); st != http.StatusOK || body != u.ID {
			t.Fatalf("token A with key A published: %d %s", st, body)
		}
	}
	if n := fetches.n.Load(); n != 1 {
		t.Errorf("%d fetches of the key set, want 1 (it is kept)", n)
	}

	// B signs, A still verifies: restart on the same address with [B, A].
	srv.stop(t)
	writeKeys(keyB, keyA)
	srv = startServer(t, append(environ, "PORT="+srv.port)...)
	if kids := published(srv.base); !slices.Equal(kids, []string{kidB, kidA}) {
		t.Fatalf("published %q, want [B A]", kids)
	}
	sessB, userB := e2eLogin(t, srv.base, "rot@example.com", e2ePassword)
	if k := e2eKID(t, sessB.Tokens.Access); k != kidB {
		t.Fatalf("a new token is signed by %s, want B", k)
	}
	if _, err := e2eClient(t, srv.base, client.WithBearerToken(sessA.Tokens.Access)).User(ctx, u.ID); err != nil {
		t.Errorf("the server refuses token A while A is in its file: %v", err)
	}
	if _, err := userB.User(ctx, u.ID); err != nil {
		t.Errorf("the server refuses token B: %v", err)
	}
	if st, _ := e2eGuard(mw, sessA.Tokens.Access); st != http.StatusOK {
		t.Errorf("token A after the switch: %d", st)
	}
	skew.Add(int64(2 * time.Second)) // past the minimum refresh interval
	if st, body := e2eGuard(mw, sessB.Tokens.Access); st != http.StatusOK || body != u.ID {
		t.Errorf("token B (unknown kid, so the set is fetched again): %d %s", st, body)
	}
	if n := fetches.n.Load(); n != 2 {
		t.Errorf("%d fetches, want 2: one more for B's kid", n)
	}
	if st, _ := e2eGuard(mw, sessA.Tokens.Access); st != http.StatusOK {
		t.Errorf("token A from the new set: %d", st)
	}
	// A session started under A goes on under B.
	pair, err := e2eClient(t, srv.base).Refresh(ctx, sessA.Tokens.Refresh)
	if err != nil {
		t.Fatalf("refreshing a session started under A: %v", err)
	}
	if k := e2eKID(t, pair.Access); k != kidB {
		t.Errorf("the refreshed token is signed by %s, want B", k)
	}

	// A retired: restart with [B].
	srv.stop(t)
	writeKeys(keyB)
	srv = startServer(t, append(environ, "PORT="+srv.port)...)
	if kids := published(srv.base); !slices.Equal(kids, []string{kidB}) {
		t.Fatalf("published %q, want [B]", kids)
	}
	_, err = e2eClient(t, srv.base, client.WithBearerToken(sessA.Tokens.Access)).User(ctx, u.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if _, err := userB.User(ctx, u.ID); err != nil {
		t.Errorf("token B after A is retired: %v", err)
	}
	// The verifier holds A until its set is older than the maximum key age.
	if st, _ := e2eGuard(mw, sessA.Tokens.Access); st != http.StatusOK {
		t.Errorf("token A within the key set's age: %d", st)
	}
	skew.Add(int64(2 * time.Minute))
	if st, body := e2eGuard(mw, sessA.Tokens.Access); st != http.StatusUnauthorized || !strings.Contains(body, "Token is invalid or expired") {
		t.Errorf("token A once its key is gone: %d %s", st, body)
	}
	if n := fetches.n.Load(); n != 3 {
		t.Errorf("%d fetches, want 3: one more for the old set", n)
	}
	if st, body := e2eGuard(mw, sessB.Tokens.Access); st != http.StatusOK || body != u.ID {
		t.Errorf("token B after A is retired: %d %s", st, body)
	}
}

// TestClientE2EOutage stops the real server under a client: its calls fail
// as unavailable, the circuit opens, and the first call after the cooldown
// closes it once the server is back.
func TestClientE2EOutage(t *testing.T) {
	dir := t.TempDir()
	environ := []string{"DATA_DIR=" + dir, "SECRET_KEY=" + e2eSecret, e2eServiceKeys}
	srv := startServer(t, environ...)
	ctx := t.Context()
	u, err := e2eClient(t, srv.base).Register(ctx, usersvc.Registration{Email: "out@example.com", Password: e2ePassword, Name: "Outage"})
	if err != nil {
		t.Fatal(err)
	}
	const cooldown = 300 * time.Millisecond
	svc := e2eClient(t, srv.base, client.WithServiceKey(e2eNotifierKey), client.WithCircuitBreaker(3, cooldown))
	if _, err := svc.User(ctx, u.ID); err != nil {
		t.Fatal(err)
	}

	srv.stop(t)
	// Three attempts, refused connections: the circuit opens.
	_, err = svc.User(ctx, u.ID)
	var e *client.Error
	if !errors.Is(err, client.ErrUnavailable) || errors.As(err, &e) || errors.Is(err, client.ErrCircuitOpen) {
		t.Fatalf("with the server down: %v", err)
	}
	start := time.Now()
	_, err = svc.Preferences(ctx, u.ID)
	if !errors.Is(err, client.ErrCircuitOpen) || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("with the circuit open: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("failing fast took %v", d)
	}
	// Health asks anyway.
	if _, err := svc.Health(ctx); !errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrCircuitOpen) {
		t.Errorf("health with the circuit open: %v", err)
	}
	// A verifier that never got the keys answers 503, not 401.
	v, err := verify.NewJWKS(srv.base)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	unchecked := b64([]byte(`{"alg":"EdDSA","kid":"k1","typ":"JWT"}`)) + "." + b64([]byte(`{"token_type":"access"}`)) + "." + b64([]byte("signature"))
	if st, body := e2eGuard(v.Middleware(e2eInbox), unchecked); st != http.StatusServiceUnavailable || !strings.Contains(body, "Service temporarily unavailable") {
		t.Errorf("a token that cannot be checked yet: %d %s", st, body)
	}

	startServer(t, append(environ, "PORT="+srv.port)...) // stopped when the test ends
	time.Sleep(cooldown + 50*time.Millisecond)
	if got, err := svc.User(ctx, u.ID); err != nil || got.Email != "out@example.com" {
		t.Fatalf("after the restart: %+v, %v", got, err)
	}
	if _, err := svc.Preferences(ctx, u.ID); err != nil {
		t.Fatalf("with the circuit closed again: %v", err)
	}
}

// TestClientE2ELifecycle drives the account lifecycle through client/
// against the real server: rename, password change, disable and enable,
// delete, each with the error kinds a caller inspects.
func TestClientE2ELifecycle(t *testing.T) {
	dir := t.TempDir()
	makeAdmin(t, dir, "root@example.com", "Root Admin", e2eAdminPass)
	srv := startServer(t, "DATA_DIR="+dir, "SECRET_KEY="+e2eSecret, e2eServiceKeys)
	ctx := t.Context()
	anon := e2eClient(t, srv.base)
	svc := e2eClient(t, srv.base, client.WithServiceKey(e2eNotifierKey))
	_, admin := e2eLogin(t, srv.base, "root@example.com", e2eAdminPass)

	grace, err := anon.Register(ctx, usersvc.Registration{Email: "grace@example.com", Password: e2ePassword, Name: "Grace Hopper"})
	if err != nil {
		t.Fatal(err)
	}
	sess, graceC := e2eLogin(t, srv.base, "grace@example.com", e2ePassword)
	other, _ := e2eLogin(t, srv.base, "grace@example.com", e2ePassword)

	// Rename: the user and admins; a service may not.
	if u, err := graceC.UpdateName(ctx, grace.ID, "Grace B. Hopper"); err != nil || u.Name != "Grace B. Hopper" {
		t.Fatalf("rename = %+v, %v", u, err)
	}
	if _, err := svc.UpdateName(ctx, grace.ID, "Service Name"); err == nil {
		t.Fatal("a service renamed a user")
	} else {
		clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	}
	e := clienttest.WantError(t, func() error { _, err := graceC.UpdateName(ctx, grace.ID, "R2-D2"); return err }(), client.ErrInvalid, http.StatusBadRequest)
	if len(e.Fields["name"]) == 0 {
		t.Errorf("no message for name: %+v", e.Fields)
	}
	if u, err := admin.UpdateName(ctx, grace.ID, "Grace Hopper"); err != nil || u.Name != "Grace Hopper" {
		t.Fatalf("admin rename = %+v, %v", u, err)
	}

	// Password change: the wrong current password is a field error; the
	// kept session survives, the other one ends, the new password logs in.
	const newPassword = "N3w!Passw0rd-e2e"
	_, err = graceC.ChangePassword(ctx, grace.ID, client.PasswordChange{Current: "Wr0ng!Passw0rd", New: newPassword})
	e = clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if len(e.Fields["current_password"]) == 0 {
		t.Errorf("no message for current_password: %+v", e.Fields)
	}
	ended, err := graceC.ChangePassword(ctx, grace.ID, client.PasswordChange{Current: e2ePassword, New: newPassword, Keep: sess.Tokens.Refresh})
	if err != nil || ended != 1 {
		t.Fatalf("change password = %d, %v; want 1 session ended", ended, err)
	}
	if _, err := anon.Refresh(ctx, other.Tokens.Refresh); err == nil {
		t.Fatal("the other session still refreshes")
	} else {
		clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	}
	kept, err := anon.Refresh(ctx, sess.Tokens.Refresh)
	if err != nil {
		t.Fatalf("the kept session: %v", err)
	}
	if _, err := anon.Login(ctx, usersvc.Credentials{Email: "grace@example.com", Password: e2ePassword}); err == nil {
		t.Fatal("the old password still logs in")
	}
	e2eLogin(t, srv.base, "grace@example.com", newPassword)

	// Disable: admins only; login 403, refresh and the live token 401.
	if err := graceC.SetActive(ctx, grace.ID, false); err == nil {
		t.Fatal("a user disabled their own account")
	} else {
		clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	}
	if err := admin.SetActive(ctx, grace.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err = anon.Login(ctx, usersvc.Credentials{Email: "grace@example.com", Password: newPassword})
	if e := clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden); e.Message != "Account is disabled" {
		t.Errorf("disabled login message = %q", e.Message)
	}
	_, err = anon.Refresh(ctx, kept.Refresh)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = graceC.User(ctx, grace.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if err := admin.SetActive(ctx, grace.ID, true); err != nil {
		t.Fatal(err)
	}
	_, graceC = e2eLogin(t, srv.base, "grace@example.com", newPassword)

	// Delete: the user's own; afterwards the token is refused, the user is
	// gone for admins, and the email registers again.
	if err := graceC.DeleteUser(ctx, grace.ID); err != nil {
		t.Fatal(err)
	}
	_, err = graceC.User(ctx, grace.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = admin.User(ctx, grace.ID)
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	err = admin.DeleteUser(ctx, grace.ID)
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	again, err := anon.Register(ctx, usersvc.Registration{Email: "Grace@Example.com", Password: e2ePassword, Name: "Grace Again"})
	if err != nil || again.ID == grace.ID {
		t.Fatalf("register again = %+v, %v", again, err)
	}
}
