package httpapi

import (
	"net/http"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// msgResetAccepted is the one answer to a forgotten-password request,
// whether or not the email has an account.
const msgResetAccepted = "If an account has this email, a password reset link is on its way"

// handleForgotPassword asks for a password reset link: POST
// /api/v1/users/password/forgot (public). The answer (202) is the same
// for every well-formed email.
func handleForgotPassword(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		v, err := readStrings(w, r, "email")
		if err != nil {
			return err
		}
		if err := accounts.ForgotPassword(r.Context(), v[0]); err != nil {
			return err
		}
		respond(w, http.StatusAccepted, msgResetAccepted, nil, nil)
		return nil
	}
}

// handleResetPassword sets a new password with a reset token: POST
// /api/v1/users/password/reset (public).
func handleResetPassword(accounts *account.Service) handlerFunc {
	type data struct {
		SessionsEnded int `json:"sessions_ended"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		v, err := readStrings(w, r, "token", "new_password")
		if err != nil {
			return err
		}
		n, err := accounts.ResetPassword(r.Context(), v[0], usersvc.Password(v[1]))
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Password reset successfully", data{SessionsEnded: n}, nil)
		return nil
	}
}
