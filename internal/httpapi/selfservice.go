package httpapi

import (
	"context"
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

// handleRequestVerification sends the user a code for one of its
// addresses: POST /api/v1/users/{user_id}/verifications (the user).
func handleRequestVerification(accounts *account.Service) handlerFunc {
	type data struct {
		Channel   string `json:"channel"`
		ExpiresAt string `json:"expires_at"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := readStrings(w, r, "channel")
		if err != nil {
			return err
		}
		exp, err := accounts.RequestVerification(r.Context(), principalOf(r), pathUserID(r), v[0])
		if err != nil {
			return err
		}
		respond(w, http.StatusAccepted, "Verification code sent", data{Channel: v[0], ExpiresAt: timestamp(exp)}, nil)
		return nil
	}
}

// handleConfirmVerification marks an address verified with its code:
// POST /api/v1/users/{user_id}/verifications/confirm (the user).
func handleConfirmVerification(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		v, err := readStrings(w, r, "channel", "code")
		if err != nil {
			return err
		}
		u, err := accounts.ConfirmVerification(r.Context(), principalOf(r), pathUserID(r), v[0], v[1])
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Address verified", viewUser(u), nil)
		return nil
	}
}

// handleConfirmVerificationLink marks an email verified with the token of
// its link: POST /api/v1/users/verifications/confirm (public).
func handleConfirmVerificationLink(accounts *account.Service) handlerFunc {
	type data struct {
		UserID  string `json:"user_id"`
		Channel string `json:"channel"`
	}
	return handleTokenConfirmation("Address verified", func(ctx context.Context, token string) (any, error) {
		u, err := accounts.ConfirmVerificationLink(ctx, token)
		if err != nil {
			return nil, err
		}
		return data{UserID: u.ID, Channel: usersvc.ChannelEmail}, nil
	})
}

// handleTokenConfirmation serves a public confirmation whose body is
// {"token"}: confirm does the work and returns the answer's data.
func handleTokenConfirmation(message string, confirm func(ctx context.Context, token string) (any, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		v, err := readStrings(w, r, "token")
		if err != nil {
			return err
		}
		d, err := confirm(r.Context(), v[0])
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, message, d, nil)
		return nil
	}
}

// handleRequestEmailChange asks for a new email, confirmed from it: POST
// /api/v1/users/{user_id}/email (the user).
func handleRequestEmailChange(accounts *account.Service) handlerFunc {
	type data struct {
		NewEmail  string `json:"new_email"`
		ExpiresAt string `json:"expires_at"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := readStrings(w, r, "new_email", "current_password")
		if err != nil {
			return err
		}
		exp, err := accounts.RequestEmailChange(r.Context(), principalOf(r), pathUserID(r), v[0], usersvc.Password(v[1]))
		if err != nil {
			return err
		}
		respond(w, http.StatusAccepted, "Confirmation sent to the new email", data{NewEmail: usersvc.CanonicalEmail(v[0]), ExpiresAt: timestamp(exp)}, nil)
		return nil
	}
}

// handleConfirmEmailChange makes a change of email with the token sent to
// the new address: POST /api/v1/users/email/confirm (public).
func handleConfirmEmailChange(accounts *account.Service) handlerFunc {
	type data struct {
		UserID string `json:"user_id"`
		Email  string `json:"email"`
	}
	return handleTokenConfirmation("Email changed", func(ctx context.Context, token string) (any, error) {
		u, err := accounts.ConfirmEmailChange(ctx, token)
		if err != nil {
			return nil, err
		}
		return data{UserID: u.ID, Email: u.Email}, nil
	})
}
