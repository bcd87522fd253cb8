package httpapi

import (
	"net/http"
	"strings"
)

// routes lists the whole HTTP surface of the service.
func (s *Server) routes() {
	s.handle("POST /api/v1/users", handleRegister(s.logger, s.accounts))
	s.handle("POST /api/v1/users/login", handleLogin(s.logger, s.accounts, s.cfg.TrustedProxies))
	s.handle("POST /api/v1/users/refresh", handleRefresh(s.logger, s.accounts))
	s.handle("POST /api/v1/users/logout", handleLogout(s.logger, s.accounts))
	s.handle("GET /api/v1/users/{user_id}", handleGetUser(s.logger, s.accounts))
	s.handle("GET /api/v1/users/{user_id}/preferences", handleGetPreferences(s.logger, s.accounts))
	s.handle("PATCH /api/v1/users/{user_id}/preferences", handlePatchPreferences(s.logger, s.accounts))
	s.handle("PATCH /api/v1/users/{user_id}/push_token", handlePushToken(s.logger, s.accounts))

	s.handle("PATCH /api/v1/users/{user_id}", handleUpdateUser(s.logger, s.accounts))
	s.handle("POST /api/v1/users/{user_id}/password", handleChangePassword(s.logger, s.accounts))
	s.handle("PATCH /api/v1/users/{user_id}/status", handleSetStatus(s.logger, s.accounts))
	s.handle("DELETE /api/v1/users/{user_id}", handleDeleteUser(s.logger, s.accounts))

	s.handle("GET /api/v1/users", handleListUsers(s.logger, s.accounts))
	s.handle("POST /api/v1/users/batch", handleBatchUsers(s.logger, s.accounts))
	s.handle("GET /api/v1/users/{user_id}/push_tokens", handleListDevices(s.logger, s.accounts))
	s.handle("DELETE /api/v1/users/{user_id}/push_tokens/{device_id}", handleDeleteDevice(s.logger, s.accounts))
	s.handle("POST /api/v1/push_tokens/invalidate", handleInvalidatePushTokens(s.logger, s.accounts))
	s.handle("GET /.well-known/jwks.json", handleJWKS(s.cfg.JWKS))
	s.handle("GET /api/v1/openapi.json", handleOpenAPI())
	s.handle("GET /docs", handleDocs())
	s.mux.Handle("GET /docs/assets/", handleDocsAssets())

	if s.cfg.Metrics != nil {
		s.handle("GET /metrics", s.cfg.Metrics)
	}

	s.handle("GET /health", handleHealth(s.health, s.cfg.Version))
	s.handle("GET /health/liveness", handleLiveness())
	s.handle("GET /health/readiness", handleReadiness(s.health))

	s.mux.Handle("/", s.handleUnmatched())
}

// handle registers h for pattern, with and without a trailing slash, both
// answering directly (no redirect).
func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.mux.Handle(strings.TrimSuffix(pattern, "/")+"/{$}", h)
}

// methods a route may answer, for the Allow header of a 405.
var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// handleUnmatched answers requests no route took: 405 with Allow when the
// path exists under another method, else 404, both in the envelope.
func (s *Server) handleUnmatched() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range methods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			if r.Method == http.MethodOptions {
				w.Header().Set("Allow", strings.Join(append(allow, http.MethodOptions), ", "))
				w.WriteHeader(http.StatusNoContent)
				return
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			msg := "Method not allowed"
			writeJSON(w, http.StatusMethodNotAllowed, envelope{Error: &msg, Message: msg})
			return
		}
		msg := "Not found"
		writeJSON(w, http.StatusNotFound, envelope{Error: &msg, Message: msg})
	})
}
