package verify

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Messages of Middleware's refusals, as the user service words them.
const (
	msgNoCredentials = "Authentication credentials were not provided"
	msgBadHeader     = "Authorization header must be: Bearer <token>"
	msgInvalid       = "Token is invalid or expired"
	msgUnavailable   = "Service temporarily unavailable"
)

// Middleware lets through the requests that carry a valid access token in
// "Authorization: Bearer …", with the token's claims in the request's
// context (ClaimsFrom). It answers the others itself with 401 in the user
// service's JSON envelope, and with 503 while no key set could be fetched
// (the token may well be valid, so its holder is not told it is not).
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			refuse(w, http.StatusUnauthorized, msgNoCredentials)
			return
		}
		scheme, tok, ok := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			refuse(w, http.StatusUnauthorized, msgBadHeader)
			return
		}
		c, err := v.Verify(r.Context(), tok)
		if errors.Is(err, ErrKeysUnavailable) {
			refuse(w, http.StatusServiceUnavailable, msgUnavailable)
			return
		}
		if err != nil {
			refuse(w, http.StatusUnauthorized, msgInvalid)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
	})
}

// refuse writes the envelope of a failure.
func refuse(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Success bool   `json:"success"`
		Data    any    `json:"data"`
		Error   string `json:"error"`
		Message string `json:"message"`
		Meta    any    `json:"meta"`
	}{Error: msg, Message: msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	switch status {
	case http.StatusUnauthorized:
		if msg == msgInvalid {
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		} else {
			h.Set("WWW-Authenticate", "Bearer")
		}
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "5")
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
