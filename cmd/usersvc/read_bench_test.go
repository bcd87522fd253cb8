package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRead serves the authenticated reads of the harness (bench/)
// through the whole handler of the API port as serve builds it: request
// id, access log (JSON, to io.Discard), metrics, authentication of a
// bearer token, the in-process cache on SQLite, the envelope. No network:
// what it counts is the service's own work, allocations above all.
func BenchmarkRead(b *testing.B) {
	cfg, err := loadConfig(env("DATA_DIR="+b.TempDir(), "SECRET_KEY=bench-secret-key-that-is-long-enough-0123"))
	if err != nil {
		b.Fatal(err)
	}
	a, err := newApp(b.Context(), cfg, io.Discard, true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.close)
	h := a.handler(nil, "")
	do := func(method, path, token string, body any) *httptest.ResponseRecorder {
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req := httptest.NewRequest(method, path, rd)
		req.RemoteAddr = "192.0.2.1:1234"
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	creds := map[string]any{"email": "bench@example.com", "password": "Bench-password-1234"}
	if w := do("POST", "/api/v1/users", "", map[string]any{"email": creds["email"], "password": creds["password"], "name": "Bench User"}); w.Code != http.StatusCreated {
		b.Fatalf("register: %d %s", w.Code, w.Body)
	}
	w := do("POST", "/api/v1/users/login", "", creds)
	var login struct {
		Data struct {
			Access string `json:"access"`
			User   struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"data"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &login); err != nil || w.Code != http.StatusOK {
		b.Fatalf("login: %d %s", w.Code, w.Body)
	}
	for _, path := range []string{"/preferences", "/"} {
		b.Run("GET "+path, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/api/v1/users/"+login.Data.User.ID+path, nil)
			req.RemoteAddr = "192.0.2.1:1234"
			req.Header.Set("Authorization", "Bearer "+login.Data.Access)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
