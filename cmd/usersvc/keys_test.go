package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
	"github.com/usersvc/usersvc/client/clienttest"
	"github.com/usersvc/usersvc/client/verify"
)

// The secrets of the HS256 rotation tests.
const (
	rotOldSecret   = "rotation-old-secret-that-is-long-enough-0123"
	rotNewSecret   = "rotation-new-secret-that-is-long-enough-4567"
	rotOtherSecret = "rotation-other-secret-that-is-long-enough-89"
)

func TestSecretKeyPreviousConfig(t *testing.T) {
	dir := t.TempDir()
	for _, c := range [][]string{
		{"SECRET_KEY=" + rotNewSecret, "SECRET_KEY_PREVIOUS=too-short"},
		{"SECRET_KEY=" + rotNewSecret, "SECRET_KEY_PREVIOUS=" + rotOldSecret + ",too-short"},
		{"SECRET_KEY_PREVIOUS=" + rotOldSecret},
		{"SECRET_KEY=" + rotNewSecret, "SECRET_KEY_PREVIOUS=" + rotNewSecret},
		{"SECRET_KEY=" + rotNewSecret, "SECRET_KEY_PREVIOUS=" + rotOldSecret + "," + rotOldSecret},
		{"SECRET_KEY=" + rotNewSecret, "JWT_ALGORITHM=EdDSA", "SECRET_KEY_PREVIOUS=" + rotOldSecret},
	} {
		t.Run(strings.Join(c, " "), func(t *testing.T) {
			err := run(t.Context(), []string{"migrate"}, env(append(c, "DATA_DIR="+dir)...), nil, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("started with a bad SECRET_KEY_PREVIOUS")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: SECRET_KEY_PREVIOUS: ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q does not name SECRET_KEY_PREVIOUS on one line", msg)
			}
			if strings.Contains(msg, rotOldSecret) || strings.Contains(msg, rotNewSecret) {
				t.Errorf("error %q shows a secret", msg)
			}
		})
	}

	cfg, err := loadConfig(env("SECRET_KEY="+rotNewSecret, "SECRET_KEY_PREVIOUS= "+rotOldSecret+" ,, "+rotOtherSecret+","))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.SecretKeyPrevious) != 2 || string(cfg.SecretKeyPrevious[0]) != rotOldSecret || string(cfg.SecretKeyPrevious[1]) != rotOtherSecret {
		t.Errorf("previous secrets: %d", len(cfg.SecretKeyPrevious))
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		if s := fmt.Sprintf(verb, cfg.SecretKeyPrevious); strings.Contains(s, rotOldSecret) || strings.Contains(s, fmt.Sprintf("%x", rotOldSecret)) {
			t.Errorf("%s shows a previous secret", verb)
		}
	}
}

// TestSecretKeyPreviousRotation moves the real server from one HS256
// secret to another without ending its sessions: tokens of the old secret
// keep working while it is listed in SECRET_KEY_PREVIOUS, and new tokens
// are signed with the new one.
func TestSecretKeyPreviousRotation(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	srv := startServer(t, "DATA_DIR="+dir, "SECRET_KEY="+rotOldSecret)
	if _, err := e2eClient(t, srv.base).Register(ctx, usersvc.Registration{Email: "rot@example.com", Password: e2ePassword, Name: "Rotation"}); err != nil {
		t.Fatal(err)
	}
	old, _ := e2eLogin(t, srv.base, "rot@example.com", e2ePassword)
	srv.stop(t)

	// The new secret signs; the old one still verifies.
	srv = startServer(t, "DATA_DIR="+dir, "SECRET_KEY="+rotNewSecret, "SECRET_KEY_PREVIOUS="+rotOldSecret)
	if _, err := e2eClient(t, srv.base, client.WithBearerToken(old.Tokens.Access)).User(ctx, old.User.ID); err != nil {
		t.Errorf("an access token of the old secret: %v", err)
	}
	pair, err := e2eClient(t, srv.base).Refresh(ctx, old.Tokens.Refresh)
	if err != nil {
		t.Fatalf("refreshing a session started under the old secret: %v", err)
	}
	fresh, _ := e2eLogin(t, srv.base, "rot@example.com", e2ePassword)
	byNew, err := verify.NewHS256([]byte(rotNewSecret))
	if err != nil {
		t.Fatal(err)
	}
	byOld, err := verify.NewHS256([]byte(rotOldSecret))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"refreshed": pair.Access, "new login": fresh.Tokens.Access} {
		if _, err := byNew.Verify(ctx, tok); err != nil {
			t.Errorf("%s token under the new secret: %v", name, err)
		}
		if _, err := byOld.Verify(ctx, tok); !errors.Is(err, verify.ErrInvalidToken) {
			t.Errorf("%s token is signed with the old secret", name)
		}
	}
	both, err := verify.NewHS256([]byte(rotNewSecret), verify.WithPreviousSecrets([]byte(rotOldSecret)))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"old": old.Tokens.Access, "new": fresh.Tokens.Access} {
		if st, body := e2eGuard(both.Middleware(e2eInbox), tok); st != http.StatusOK || body != old.User.ID {
			t.Errorf("%s token through a middleware that knows both secrets: %d %s", name, st, body)
		}
	}
	srv.stop(t)

	// The old secret retired: its tokens stop, the new ones go on.
	srv = startServer(t, "DATA_DIR="+dir, "SECRET_KEY="+rotNewSecret)
	_, err = e2eClient(t, srv.base, client.WithBearerToken(old.Tokens.Access)).User(ctx, old.User.ID)
	clienttest.WantError(t, err, client.ErrUnauthorized, http.StatusUnauthorized)
	if _, err := e2eClient(t, srv.base, client.WithBearerToken(fresh.Tokens.Access)).User(ctx, old.User.ID); err != nil {
		t.Errorf("a token of the new secret: %v", err)
	}
	srv.stop(t)
	for _, s := range []string{rotOldSecret, rotNewSecret} {
		if strings.Contains(srv.logs.String(), s) {
			t.Error("the log holds a secret")
		}
	}
}
