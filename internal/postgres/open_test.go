package postgres_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/postgres"
)

// A server that cannot be reached is EUnavailable, reported in bounded time,
// with a client message that says nothing of the driver.
func TestOpenUnreachable(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	s, err := postgres.Open(ctx, "postgres://postgres:secret@"+addr+"/usersvc?sslmode=disable")
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with no server")
	}
	if code := usersvc.ErrorCode(err); code != usersvc.EUnavailable {
		t.Fatalf("Open: code %q (%v), want %q", code, err, usersvc.EUnavailable)
	}
	if msg := usersvc.ErrorMessage(err); msg != "Service temporarily unavailable" || strings.Contains(msg, "secret") {
		t.Errorf("client message %q", msg)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Open took %s to fail", d)
	}
}

func TestOpenInvalidURL(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://user:pw@host:notaport/db")
	if err == nil {
		t.Fatal("Open accepted a malformed URL")
	}
	if code := usersvc.ErrorCode(err); code == usersvc.EUnavailable {
		t.Errorf("a malformed URL is reported as %q", code)
	}
}
