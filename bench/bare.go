package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Files of the bodies the bare server answers with: the bytes usersvc
// answered to one GET of a user and of its preferences.
const (
	bareUserFile  = "user.json"
	barePrefsFile = "preferences.json"
)

// serveBare is the bare net/http server: it answers every GET with the
// same-sized JSON body usersvc gave for that kind of path, so that the
// difference in throughput is the work of the service. It prints its
// address on its first line of output.
func serveBare(dir string) error {
	user, err := os.ReadFile(filepath.Join(dir, bareUserFile))
	if err != nil {
		return err
	}
	prefs, err := os.ReadFile(filepath.Join(dir, barePrefsFile))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/readiness", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /memstats", func(w http.ResponseWriter, r *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		_ = json.NewEncoder(w).Encode(map[string]uint64{"Mallocs": m.Mallocs})
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		body := user
		if strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/preferences") {
			body = prefs
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return http.Serve(ln, mux)
}
