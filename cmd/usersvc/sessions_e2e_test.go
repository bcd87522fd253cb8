package main

import (
	"net/http"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
	"github.com/usersvc/usersvc/client/clienttest"
)

// TestClientE2ESessions lists and ends sessions through the client against
// the real server: the caller's own session is marked current, an ended
// session's access token is refused at the next request, and "log out
// everywhere" keeps or ends the caller's own session as asked.
func TestClientE2ESessions(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "DATA_DIR="+dir, "SECRET_KEY="+e2eSecret)
	ctx := t.Context()
	anon := e2eClient(t, srv.base)
	u, err := anon.Register(ctx, usersvc.Registration{Email: "sessions@example.com", Password: e2ePassword, Name: "Sessions"})
	if err != nil {
		t.Fatal(err)
	}
	phone, phoneClient := e2eLogin(t, srv.base, u.Email, string(e2ePassword))
	laptop, laptopClient := e2eLogin(t, srv.base, u.Email, string(e2ePassword))
	_, tabletClient := e2eLogin(t, srv.base, u.Email, string(e2ePassword))

	list, err := laptopClient.Sessions(ctx, u.ID)
	if err != nil || len(list) != 3 {
		t.Fatalf("sessions = %+v, %v; want 3", list, err)
	}
	var current, phoneID int
	for i, s := range list {
		if s.Current {
			current++
		}
		if s.UserAgent == "" || s.ClientAddress == "" || !s.ExpiresAt.After(s.CreatedAt) || s.LastUsedAt.Before(s.CreatedAt) {
			t.Errorf("session %d = %+v", i, s)
		}
	}
	if current != 1 {
		t.Errorf("%d sessions marked current, want 1", current)
	}
	// The phone's session is the oldest: last in the list.
	phoneID = len(list) - 1
	if err := laptopClient.EndSession(ctx, u.ID, list[phoneID].ID); err != nil {
		t.Fatal(err)
	}
	_, err = phoneClient.User(ctx, u.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = anon.Refresh(ctx, phone.Tokens.Refresh)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	clienttest.WantError(t, laptopClient.EndSession(ctx, u.ID, list[phoneID].ID), client.ErrNotFound, http.StatusNotFound)

	// Log out everywhere else: the tablet goes, the laptop stays.
	if n, err := laptopClient.EndSessions(ctx, u.ID, false); err != nil || n != 1 {
		t.Fatalf("EndSessions = %d, %v; want 1", n, err)
	}
	_, err = tabletClient.User(ctx, u.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if _, err := laptopClient.User(ctx, u.ID); err != nil {
		t.Fatalf("the caller's own session: %v", err)
	}
	// Then everywhere.
	if n, err := laptopClient.EndSessions(ctx, u.ID, true); err != nil || n != 1 {
		t.Fatalf("EndSessions(include current) = %d, %v; want 1", n, err)
	}
	_, err = laptopClient.User(ctx, u.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	_, err = anon.Refresh(ctx, laptop.Tokens.Refresh)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
}
