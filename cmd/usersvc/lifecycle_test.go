package main

import (
	"net/http"
	"strings"
	"testing"
)

// lcServiceKey is the key of the service account of the lifecycle server.
const lcServiceKey = "lifecycle-service-key-0123456789"

// lcServer is run() serving on a free port of 127.0.0.1 with its own data
// directory, an admin made beforehand with create-admin.
type lcServer struct{ *server }

func lcStart(t *testing.T, adminEmail, adminPassword string) *lcServer {
	t.Helper()
	dir := t.TempDir()
	makeAdmin(t, dir, adminEmail, "Lifecycle Admin", adminPassword)
	return &lcServer{startServer(t, "DATA_DIR="+dir, "SERVICE_API_KEYS=lifecycle:"+lcServiceKey)}
}

// do sends a request with a JSON body (when body is not nil) and headers
// given as name, value pairs.
func (s *lcServer) do(t *testing.T, method, path string, body any, headers ...string) (int, map[string]any) {
	t.Helper()
	return send(t, jsonRequest(t, method, s.base+path, body, headers...))
}

// want asserts the status of an answer and, when errText is not empty, its error.
func (s *lcServer) want(t *testing.T, what string, status int, body map[string]any, wantStatus int, errText string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d: %v", what, status, wantStatus, body)
	}
	if errText != "" && body["error"] != errText {
		t.Errorf("%s: error %v, want %q", what, body["error"], errText)
	}
}

// lcSession is one login.
type lcSession struct {
	id, access, refresh string
}

func (s *lcServer) login(t *testing.T, email, password string) lcSession {
	t.Helper()
	st, body := s.do(t, "POST", "/api/v1/users/login", map[string]any{"email": email, "password": password})
	s.want(t, "login "+email, st, body, http.StatusOK, "")
	d := body["data"].(map[string]any)
	return lcSession{id: d["user"].(map[string]any)["id"].(string), access: d["access"].(string), refresh: d["refresh"].(string)}
}

func lcBearer(sess lcSession) []string { return []string{"Authorization", "Bearer " + sess.access} }

func lcData(body map[string]any) map[string]any {
	d, _ := body["data"].(map[string]any)
	return d
}

// TestLifecycleOverHTTP drives the account lifecycle through the real
// server: renaming, changing a password, disabling and enabling, deleting,
// and the refusals around each.
func TestLifecycleOverHTTP(t *testing.T) {
	const (
		adminEmail = "lc-root@example.com"
		adminPass  = "Adm1n!Lifecycle"
		adaEmail   = "lc-ada@example.com"
		adaPass    = "Ada!Lovelace1815"
		adaNewPass = "Ada!Engine1843"
		bobEmail   = "lc-bob@example.com"
		bobPass    = "Bob!Builder2024"
	)
	s := lcStart(t, adminEmail, adminPass)
	svc := []string{"X-Service-API-Key", lcServiceKey}
	for _, u := range [][3]string{{adaEmail, adaPass, "Ada"}, {bobEmail, bobPass, "Bob"}} {
		st, body := s.do(t, "POST", "/api/v1/users/", map[string]any{"email": u[0], "password": u[1], "name": u[2]})
		s.want(t, "register "+u[0], st, body, http.StatusCreated, "")
	}
	ada := s.login(t, adaEmail, adaPass)
	adaOther := s.login(t, adaEmail, adaPass) // a second session of Ada's
	bob := s.login(t, bobEmail, bobPass)
	admin := s.login(t, adminEmail, adminPass)
	adaPath := "/api/v1/users/" + ada.id

	t.Run("name", func(t *testing.T) {
		st, body := s.do(t, "PATCH", adaPath+"/", map[string]any{"name": "Ada Lovelace"}, lcBearer(ada)...)
		s.want(t, "rename", st, body, http.StatusOK, "")
		if lcData(body)["name"] != "Ada Lovelace" || body["message"] != "User updated successfully" {
			t.Errorf("rename: %v", body)
		}
		st, body = s.do(t, "GET", adaPath, nil, svc...)
		if st != http.StatusOK || lcData(body)["name"] != "Ada Lovelace" {
			t.Errorf("read after rename: %d %v", st, body)
		}
		st, body = s.do(t, "PATCH", adaPath, map[string]any{"name": "<script>"}, lcBearer(ada)...)
		s.want(t, "invalid name", st, body, http.StatusBadRequest, "name: Contains invalid characters (only letters, spaces, hyphens, apostrophes and periods allowed)")
		st, body = s.do(t, "PATCH", adaPath, map[string]any{"name": "Mallory"}, lcBearer(bob)...)
		s.want(t, "another user renames", st, body, http.StatusForbidden, "")
		st, body = s.do(t, "PATCH", adaPath, map[string]any{"name": "Service"}, svc...)
		s.want(t, "a service renames", st, body, http.StatusForbidden, "")
		st, body = s.do(t, "PATCH", adaPath, map[string]any{"name": "Anonymous"})
		s.want(t, "anonymous rename", st, body, http.StatusUnauthorized, "")
		st, body = s.do(t, "PATCH", "/api/v1/users/"+bob.id, map[string]any{"name": "Robert"}, lcBearer(admin)...)
		s.want(t, "admin renames", st, body, http.StatusOK, "")
	})

	t.Run("password", func(t *testing.T) {
		pwPath := adaPath + "/password"
		change := map[string]any{"current_password": adaPass, "new_password": adaNewPass, "refresh": ada.refresh}
		st, body := s.do(t, "POST", pwPath, map[string]any{"current_password": "Wr0ng!Password", "new_password": adaNewPass}, lcBearer(ada)...)
		s.want(t, "wrong current password", st, body, http.StatusBadRequest, "current_password: Current password is incorrect")
		st, body = s.do(t, "POST", pwPath, map[string]any{"current_password": adaPass, "new_password": strings.Repeat("Aa1!", 33)}, lcBearer(ada)...)
		s.want(t, "129 characters", st, body, http.StatusBadRequest, "new_password: Password is too long (max 128 characters)")
		st, body = s.do(t, "POST", pwPath, change, lcBearer(bob)...)
		s.want(t, "another user", st, body, http.StatusForbidden, "")
		st, body = s.do(t, "POST", pwPath, change, lcBearer(admin)...)
		s.want(t, "an admin for someone else", st, body, http.StatusForbidden, "")
		st, body = s.do(t, "POST", pwPath, change, svc...)
		s.want(t, "a service", st, body, http.StatusForbidden, "")
		st, body = s.do(t, "POST", pwPath, change)
		s.want(t, "anonymous", st, body, http.StatusUnauthorized, "")
		if st, _ := s.do(t, "POST", "/api/v1/users/login", map[string]any{"email": adaEmail, "password": adaPass}); st != http.StatusOK {
			t.Fatalf("the refused changes changed the password: login %d", st)
		}

		st, body = s.do(t, "POST", pwPath, change, lcBearer(ada)...)
		s.want(t, "change", st, body, http.StatusOK, "")
		if body["message"] != "Password changed successfully" {
			t.Errorf("change: %v", body)
		}
		st, body = s.do(t, "POST", "/api/v1/users/login", map[string]any{"email": adaEmail, "password": adaPass})
		s.want(t, "login with the old password", st, body, http.StatusUnauthorized, "Invalid email or password")
		s.login(t, adaEmail, adaNewPass)
		st, body = s.do(t, "POST", "/api/v1/users/refresh", map[string]any{"refresh": adaOther.refresh})
		s.want(t, "refresh of another session", st, body, http.StatusUnauthorized, "")
		st, body = s.do(t, "POST", "/api/v1/users/refresh", map[string]any{"refresh": ada.refresh})
		s.want(t, "refresh of the kept session", st, body, http.StatusOK, "")
		ada.refresh = lcData(body)["refresh"].(string)
		ada.access = lcData(body)["access"].(string)
		st, body = s.do(t, "POST", "/api/v1/users/refresh", map[string]any{"refresh": bob.refresh})
		s.want(t, "another user's session", st, body, http.StatusOK, "")
		bob.refresh = lcData(body)["refresh"].(string)
	})

	t.Run("disable", func(t *testing.T) {
		statusPath := adaPath + "/status"
		st, body := s.do(t, "PATCH", statusPath, map[string]any{"is_active": false}, lcBearer(bob)...)
		s.want(t, "a user disables another", st, body, http.StatusForbidden, "Admin access required")
		st, body = s.do(t, "PATCH", statusPath, map[string]any{"is_active": false}, lcBearer(ada)...)
		s.want(t, "a user disables themselves", st, body, http.StatusForbidden, "Admin access required")
		st, body = s.do(t, "PATCH", statusPath, map[string]any{"is_active": false}, svc...)
		s.want(t, "a service disables", st, body, http.StatusForbidden, "")
		st, body = s.do(t, "PATCH", statusPath, map[string]any{"is_active": false})
		s.want(t, "anonymous disables", st, body, http.StatusUnauthorized, "")
		st, body = s.do(t, "PATCH", "/api/v1/users/"+admin.id+"/status", map[string]any{"is_active": false}, lcBearer(admin)...)
		s.want(t, "an admin disables themselves", st, body, http.StatusConflict, "An admin may not disable their own account")
		// A read that fills the cache, then the change.
		if st, _ := s.do(t, "GET", adaPath, nil, lcBearer(ada)...); st != http.StatusOK {
			t.Fatalf("read before disabling: %d", st)
		}

		st, body = s.do(t, "PATCH", statusPath, map[string]any{"is_active": false}, lcBearer(admin)...)
		s.want(t, "disable", st, body, http.StatusOK, "")
		if lcData(body)["is_active"] != false || lcData(body)["id"] != ada.id {
			t.Errorf("disable: %v", body)
		}
		st, body = s.do(t, "POST", "/api/v1/users/login", map[string]any{"email": adaEmail, "password": adaNewPass})
		s.want(t, "login while disabled", st, body, http.StatusForbidden, "Account is disabled")
		st, body = s.do(t, "POST", "/api/v1/users/refresh", map[string]any{"refresh": ada.refresh})
		s.want(t, "refresh while disabled", st, body, http.StatusUnauthorized, "")
		st, body = s.do(t, "GET", adaPath, nil, lcBearer(ada)...)
		s.want(t, "access token while disabled", st, body, http.StatusUnauthorized, "")
		if st, _ := s.do(t, "GET", adaPath, nil, svc...); st != http.StatusOK {
			t.Errorf("a service reading a disabled user: %d", st)
		}

		st, body = s.do(t, "PATCH", statusPath, map[string]any{"is_active": true}, lcBearer(admin)...)
		s.want(t, "enable", st, body, http.StatusOK, "")
		ada = s.login(t, adaEmail, adaNewPass)
		if st, _ := s.do(t, "GET", adaPath, nil, lcBearer(ada)...); st != http.StatusOK {
			t.Errorf("read after enabling: %d", st)
		}
	})

	t.Run("delete", func(t *testing.T) {
		st, body := s.do(t, "DELETE", adaPath, nil, lcBearer(bob)...)
		s.want(t, "another user deletes", st, body, http.StatusForbidden, "")
		st, body = s.do(t, "DELETE", adaPath, nil, svc...)
		s.want(t, "a service deletes", st, body, http.StatusForbidden, "")
		st, body = s.do(t, "DELETE", adaPath, nil)
		s.want(t, "anonymous deletes", st, body, http.StatusUnauthorized, "")

		st, body = s.do(t, "DELETE", adaPath+"/", nil, lcBearer(ada)...)
		s.want(t, "delete oneself", st, body, http.StatusOK, "")
		if body["message"] != "User deleted successfully" {
			t.Errorf("delete: %v", body)
		}
		st, body = s.do(t, "GET", adaPath, nil, lcBearer(ada)...)
		s.want(t, "token after deletion", st, body, http.StatusUnauthorized, "")
		st, body = s.do(t, "POST", "/api/v1/users/refresh", map[string]any{"refresh": ada.refresh})
		s.want(t, "refresh after deletion", st, body, http.StatusUnauthorized, "")
		st, body = s.do(t, "GET", adaPath, nil, lcBearer(admin)...)
		s.want(t, "admin reads the deleted user", st, body, http.StatusNotFound, "User not found")
		st, body = s.do(t, "POST", "/api/v1/users/", map[string]any{"email": adaEmail, "password": adaPass, "name": "Ada Again"})
		s.want(t, "register the email again", st, body, http.StatusCreated, "")
		s.login(t, adaEmail, adaPass)

		st, body = s.do(t, "DELETE", "/api/v1/users/"+bob.id, nil, lcBearer(admin)...)
		s.want(t, "admin deletes", st, body, http.StatusOK, "")
		st, body = s.do(t, "GET", "/api/v1/users/"+bob.id, nil, lcBearer(bob)...)
		s.want(t, "the deleted user's token", st, body, http.StatusUnauthorized, "")
		st, body = s.do(t, "POST", "/api/v1/users/refresh", map[string]any{"refresh": bob.refresh})
		s.want(t, "the deleted user's refresh", st, body, http.StatusUnauthorized, "")
	})

	logs := s.logs.String()
	for _, secret := range []string{adaPass, adaNewPass, bobPass, adminPass, ada.access, ada.refresh, bob.refresh, lcServiceKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret is in the log: %.12s…", secret)
		}
	}
}
