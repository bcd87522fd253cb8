package httpapi

import (
	"net/http"
	"strings"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// routes lists the whole HTTP surface of the service and who may call
// each route: public ones read no credentials; the others run with the
// caller's principal (see authenticate), which the use case authorizes
// before it validates (see onUser for bodies that fail to decode).
func (s *Server) routes() {
	s.handle("POST /api/v1/users", s.public(handleRegister(s.accounts)))
	s.handle("POST /api/v1/users/login", s.public(handleLogin(s.accounts)))
	s.handle("POST /api/v1/users/refresh", s.public(handleRefresh(s.accounts)))
	s.handle("POST /api/v1/users/logout", s.public(handleLogout(s.accounts)))
	s.handle("POST /api/v1/users/password/forgot", s.public(handleForgotPassword(s.accounts)))
	s.handle("POST /api/v1/users/password/reset", s.public(handleResetPassword(s.accounts)))
	s.handle("POST /api/v1/users/verifications/confirm", s.public(handleConfirmVerificationLink(s.accounts)))
	s.handle("POST /api/v1/users/email/confirm", s.public(handleConfirmEmailChange(s.accounts)))
	s.handle("GET /api/v1/users/{user_id}", s.onUser(account.Read, handleGetUser(s.accounts)))
	s.handle("GET /api/v1/users/{user_id}/preferences", s.onUser(account.Read, handleGetPreferences(s.accounts)))
	s.handle("PATCH /api/v1/users/{user_id}/preferences", s.onUser(account.Write, handlePatchPreferences(s.accounts)))
	s.handle("PATCH /api/v1/users/{user_id}/push_token", s.onUser(account.Write, handlePushToken(s.accounts)))

	s.handle("PATCH /api/v1/users/{user_id}", s.onUser(account.Write, handleUpdateUser(s.accounts)))
	s.handle("POST /api/v1/users/{user_id}/password", s.onUser(account.Owner, handleChangePassword(s.accounts)))
	s.handle("POST /api/v1/users/{user_id}/email", s.onUser(account.Owner, handleRequestEmailChange(s.accounts)))
	s.handle("POST /api/v1/users/{user_id}/verifications", s.onUser(account.Owner, handleRequestVerification(s.accounts)))
	s.handle("POST /api/v1/users/{user_id}/verifications/confirm", s.onUser(account.Owner, handleConfirmVerification(s.accounts)))
	s.handle("PATCH /api/v1/users/{user_id}/status", s.onUser(account.Admin, handleSetStatus(s.accounts)))
	s.handle("DELETE /api/v1/users/{user_id}", s.onUser(account.Write, handleDeleteUser(s.accounts)))

	s.handle("GET /api/v1/users", s.authed(handleListUsers(s.accounts)))
	s.handle("POST /api/v1/users/batch", s.authed(handleBatchUsers(s.accounts)))
	s.handle("GET /api/v1/users/{user_id}/push_tokens", s.onUser(account.Read, handleListDevices(s.accounts)))
	s.handle("DELETE /api/v1/users/{user_id}/push_tokens/{device_id}", s.onUser(account.Write, handleDeleteDevice(s.accounts)))
	s.handle("GET /api/v1/users/{user_id}/sessions", s.onUser(account.Write, handleListSessions(s.accounts)))
	s.handle("DELETE /api/v1/users/{user_id}/sessions", s.onUser(account.Write, handleEndSessions(s.accounts)))
	s.handle("DELETE /api/v1/users/{user_id}/sessions/{session_id}", s.onUser(account.Write, handleEndSession(s.accounts)))
	s.handle("GET /api/v1/categories", s.authed(handleListCategories(s.accounts)))
	s.handle("GET /api/v1/categories/{key}", s.authed(handleGetCategory(s.accounts)))
	s.handle("PUT /api/v1/categories/{key}", s.authed(handlePutCategory(s.accounts)))
	s.handle("DELETE /api/v1/categories/{key}", s.authed(handleDeleteCategory(s.accounts)))
	s.handle("POST /api/v1/recipients/resolve", s.authed(handleResolve(s.accounts)))
	s.handle("POST /api/v1/unsubscribe/links", s.authed(handleUnsubscribeLink(s.accounts, s.cfg.PublicURL)))
	s.handle("GET /api/v1/unsubscribe/{token}", handleUnsubscribePage(s.accounts))
	s.handle("POST /api/v1/unsubscribe/{token}", s.public(handleUnsubscribe(s.accounts)))
	s.handle("POST /api/v1/push_tokens/invalidate", s.authed(handleInvalidatePushTokens(s.accounts)))
	s.handle("GET /api/v1/events", s.authed(handleEvents(s.accounts, s.cfg.RequestTimeout)))
	s.handle("GET /.well-known/jwks.json", handleJWKS(s.cfg.JWKS))
	s.handle("GET /api/v1/openapi.json", handleOpenAPI())
	s.handle("GET /docs", handleDocs())
	s.mux.Handle("GET /{$}", http.RedirectHandler("/docs", http.StatusFound))
	s.mux.Handle("GET /docs/assets/{file}", handleDocsAssets())

	if s.cfg.Metrics != nil {
		s.handle("GET /metrics", s.cfg.Metrics)
	}

	s.handle("GET /health", handleHealth(s.health, s.cfg.Version))
	s.handle("GET /health/liveness", handleLiveness())
	s.handle("GET /health/readiness", handleReadiness(s.health))

	s.mux.Handle("/", s.handleUnmatched())
}

// public serves h to anyone, without reading credentials.
func (s *Server) public(h handlerFunc) http.Handler { return serve(s.logger, h) }

// authed serves h with the caller's principal in the request context.
func (s *Server) authed(h handlerFunc) http.Handler {
	return serve(s.logger, authenticate(s.accounts, h))
}

// onUser serves h, a route on the data of the user named by the
// {user_id} path segment, with access a. The use case authorizes before it
// validates, so a caller who may not act on the user learns that first;
// but a body that fails to decode never reaches the use case, so such an
// error is answered only once the access rule has let the caller through.
// The rule is checked once on every other path.
func (s *Server) onUser(a account.Access, h handlerFunc) http.Handler {
	return s.authed(func(w http.ResponseWriter, r *http.Request) error {
		err := h(w, r)
		if usersvc.ErrorCode(err) == usersvc.EInvalid {
			if denied := s.accounts.Authorize(r.Context(), principalOf(r), pathUserID(r), a); denied != nil {
				return denied
			}
		}
		return err
	})
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
