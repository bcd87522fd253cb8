package httpapi

import (
	"net/http"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// sessionView is a live session as GET /api/v1/users/{user_id}/sessions
// shows it.
type sessionView struct {
	ID         string `json:"id"`
	CreatedAt  string `json:"created_at"`
	LastUsedAt string `json:"last_used_at"`
	ExpiresAt  string `json:"expires_at"`
	UserAgent  string `json:"user_agent"`
	ClientAddr string `json:"client_address"`
	Current    bool   `json:"current"`
}

func handleListSessions(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ss, err := accounts.Sessions(r.Context(), principalOf(r), pathUserID(r))
		if err != nil {
			return err
		}
		views := make([]sessionView, len(ss))
		for i, s := range ss {
			views[i] = sessionView{ID: s.ID, CreatedAt: timestamp(s.CreatedAt), LastUsedAt: timestamp(s.LastUsedAt),
				ExpiresAt: timestamp(s.ExpiresAt), UserAgent: s.UserAgent, ClientAddr: s.ClientAddr, Current: s.Current}
		}
		w.Header().Set("Cache-Control", "no-store")
		respond(w, http.StatusOK, "Sessions retrieved successfully", views, nil)
		return nil
	}
}

func handleEndSession(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := accounts.EndSession(r.Context(), principalOf(r), pathUserID(r), r.PathValue("session_id")); err != nil {
			return err
		}
		respond(w, http.StatusOK, "Session ended", nil, nil)
		return nil
	}
}

func handleEndSessions(accounts *account.Service) handlerFunc {
	type data struct {
		SessionsEnded int `json:"sessions_ended"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		include := false
		switch v := r.URL.Query().Get("include_current"); v {
		case "", "false":
		case "true":
			include = true
		default:
			fe := usersvc.FieldErrors{}
			fe.Add("include_current", "Must be true or false")
			return fe.Err()
		}
		n, err := accounts.EndSessions(r.Context(), principalOf(r), pathUserID(r), include)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Sessions ended", data{SessionsEnded: n}, nil)
		return nil
	}
}
