package client_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
	"github.com/usersvc/usersvc/client/clienttest"
)

func TestLifecycleUpdateName(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	u := s.register(t, "ada@example.com", "Ada")
	other := s.register(t, "bob@example.com", "Bob")
	admin := s.admin(t, "root@example.com")

	got, err := u.Client.UpdateName(ctx, u.ID, " Ada Lovelace ")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || got.Name != "Ada Lovelace" || got.Email != "ada@example.com" {
		t.Errorf("user = %+v", got)
	}
	if again, err := u.Client.User(ctx, u.ID); err != nil || again.Name != "Ada Lovelace" {
		t.Errorf("read after the change: %+v %v", again, err)
	}
	if got, err := admin.Client.UpdateName(ctx, other.ID, "Robert"); err != nil || got.Name != "Robert" {
		t.Errorf("admin rename: %+v %v", got, err)
	}

	_, err = u.Client.UpdateName(ctx, u.ID, "R2-D2")
	e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if len(e.Fields["name"]) != 1 || e.Fields["name"][0] != usersvc.MsgNameInvalid {
		t.Errorf("fields = %v", e.Fields)
	}
	_, err = u.Client.UpdateName(ctx, other.ID, "Mallory")
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = s.client(t, client.WithServiceKey(serviceKey)).UpdateName(ctx, u.ID, "Service")
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = admin.Client.UpdateName(ctx, "0195f0a2-7c4e-7d4b-9a6f-2f1f2b6c9d10", "Nobody")
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	if _, err := u.Client.UpdateName(ctx, "..", "X"); !strings.Contains(fmt.Sprint(err), "not a usable id") {
		t.Errorf("bad id: %v", err)
	}
}

func TestLifecycleChangePassword(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	u := s.register(t, "ada@example.com", "Ada")
	admin := s.admin(t, "root@example.com")
	anon := s.client(t)
	// A second session, which the change ends.
	second, err := anon.Login(ctx, usersvc.Credentials{Email: u.Email, Password: usersvc.Password(u.Password)})
	if err != nil {
		t.Fatal(err)
	}
	const fresh = "N3w!Passw0rd-x"

	_, err = u.Client.ChangePassword(ctx, u.ID, client.PasswordChange{Current: "Wr0ng!Passw0rd", New: fresh})
	e := clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if len(e.Fields["current_password"]) != 1 || e.Fields["current_password"][0] != "Current password is incorrect" {
		t.Errorf("fields = %v", e.Fields)
	}
	_, err = u.Client.ChangePassword(ctx, u.ID, client.PasswordChange{Current: usersvc.Password(u.Password), New: "weak"})
	e = clienttest.WantError(t, err, client.ErrInvalid, http.StatusBadRequest)
	if len(e.Fields["new_password"]) == 0 {
		t.Errorf("fields = %v", e.Fields)
	}
	_, err = admin.Client.ChangePassword(ctx, u.ID, client.PasswordChange{Current: usersvc.Password(u.Password), New: fresh})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)

	n, err := u.Client.ChangePassword(ctx, u.ID, client.PasswordChange{Current: usersvc.Password(u.Password), New: fresh, Keep: u.Tokens.Refresh})
	if err != nil || n != 1 {
		t.Fatalf("ChangePassword = %d, %v; want 1 session ended", n, err)
	}
	_, err = anon.Refresh(ctx, second.Tokens.Refresh)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if _, err := anon.Refresh(ctx, u.Tokens.Refresh); err != nil {
		t.Errorf("the kept session: %v", err)
	}
	_, err = anon.Login(ctx, usersvc.Credentials{Email: u.Email, Password: usersvc.Password(u.Password)})
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if _, err := anon.Login(ctx, usersvc.Credentials{Email: u.Email, Password: fresh}); err != nil {
		t.Errorf("login with the new password: %v", err)
	}

	// The input keeps its secrets out of logs and formatted output.
	pc := client.PasswordChange{Current: "Secret!Passw0rd", New: "Other!Passw0rd", Keep: "refresh-token-value"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("change", "input", pc)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s", pc, pc, pc, pc)
	for _, secret := range []string{"Secret!Passw0rd", "Other!Passw0rd", "refresh-token-value"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q shows in %q", secret, out)
		}
	}
}

func TestLifecycleSetActiveAndDeleteUser(t *testing.T) {
	s := newTestServer(t)
	ctx := t.Context()
	u := s.register(t, "ada@example.com", "Ada")
	other := s.register(t, "bob@example.com", "Bob")
	admin := s.admin(t, "root@example.com")
	anon := s.client(t)

	clienttest.WantError(t, u.Client.SetActive(ctx, u.ID, false), client.ErrForbidden, http.StatusForbidden)
	clienttest.WantError(t, admin.Client.SetActive(ctx, admin.ID, false), client.ErrConflict, http.StatusConflict)
	if err := admin.Client.SetActive(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err := u.Client.User(ctx, u.ID)
	e := clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if e.Message != "Account is disabled" {
		t.Errorf("message = %q", e.Message)
	}
	_, err = anon.Login(ctx, usersvc.Credentials{Email: u.Email, Password: usersvc.Password(u.Password)})
	clienttest.WantError(t, err, client.ErrForbidden, http.StatusForbidden)
	_, err = anon.Refresh(ctx, u.Tokens.Refresh)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if err := admin.Client.SetActive(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	relog, err := anon.Login(ctx, usersvc.Credentials{Email: u.Email, Password: usersvc.Password(u.Password)})
	if err != nil {
		t.Fatalf("login after enabling: %v", err)
	}
	// The disabling ended the old session: its access token is refused.
	_, err = u.Client.User(ctx, u.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	u.Client = s.client(t, client.WithBearerToken(relog.Tokens.Access))

	clienttest.WantError(t, other.Client.DeleteUser(ctx, u.ID), client.ErrForbidden, http.StatusForbidden)
	clienttest.WantError(t, s.client(t, client.WithServiceKey(serviceKey)).DeleteUser(ctx, u.ID), client.ErrForbidden, http.StatusForbidden)
	if err := u.Client.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err = u.Client.User(ctx, u.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = admin.Client.User(ctx, u.ID)
	clienttest.WantError(t, err, client.ErrNotFound, http.StatusNotFound)
	clienttest.WantError(t, admin.Client.DeleteUser(ctx, u.ID), client.ErrNotFound, http.StatusNotFound)
	if _, err := anon.Register(ctx, usersvc.Registration{Email: u.Email, Name: "Ada Again", Password: usersvc.Password(u.Password)}); err != nil {
		t.Errorf("registering the email again: %v", err)
	}
	if err := admin.Client.DeleteUser(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	_, err = other.Client.User(ctx, other.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if n := s.count("DELETE /api/v1/users/" + other.ID + "/"); n != 1 {
		t.Errorf("DELETE reached the server %d times", n)
	}
}
