package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// A load run closes its keep-alive connections when it ends: none is left
// open at the server for the service's idle timeout to close.
func TestAttackClosesItsConnections(t *testing.T) {
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	srv.Start()
	defer srv.Close()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(open)
	}
	res := attack([]vegeta.Target{{Method: "GET", URL: srv.URL}}, 0, 8, 300*time.Millisecond, status200)
	if res.requests == 0 || res.errors != 0 {
		t.Fatalf("the run answered %d requests, %d errors (%s)", res.requests, res.errors, res.firstErr)
	}
	deadline := time.Now().Add(2 * time.Second)
	for count() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open at the server 2s after a run of %d requests", count(), res.requests)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
