package redistest_test

import (
	"context"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/redistest"
)

func TestStopPauseRestart(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ping := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err()
	}
	if err := ping(); err != nil {
		t.Fatalf("PING a started server: %v", err)
	}
	if _, err := srv.Do(t, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do(t, "SAVE"); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	start := time.Now()
	if err := ping(); err == nil {
		t.Fatal("PING answered by a paused server")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("PING of a paused server took %v", d)
	}
	srv.Resume()
	if err := ping(); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}

	srv.Stop()
	if err := ping(); err == nil {
		t.Fatal("PING answered by a stopped server")
	}
	srv.Restart()
	var err error
	for range 20 {
		if err = ping(); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if v, err := srv.Do(t, "GET", "k"); err != nil || v != "v" {
		t.Fatalf("GET k after Restart = %v, %v; want the saved value", v, err)
	}
}
