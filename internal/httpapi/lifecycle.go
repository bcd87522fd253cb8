package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// handleUpdateUser changes a user's name: PATCH /api/v1/users/{user_id}.
func handleUpdateUser(logger *slog.Logger, accounts *account.Service) http.Handler {
	return onUser(logger, accounts, account.Write, func(w http.ResponseWriter, r *http.Request, p account.Principal, id string) error {
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		name, ok := f.str("name", true)
		f.unknown()
		if ok && len(f.fe) > 0 {
			// Report the name's own problems with the others.
			_, msgs := usersvc.CheckName(name)
			for _, msg := range msgs {
				f.add("name", msg)
			}
		}
		if err := f.err(); err != nil {
			return err
		}
		u, err := accounts.UpdateName(r.Context(), p, id, name)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "User updated successfully", viewUser(u), nil)
		return nil
	})
}

// handleChangePassword replaces the caller's password: POST
// /api/v1/users/{user_id}/password.
func handleChangePassword(logger *slog.Logger, accounts *account.Service) http.Handler {
	type data struct {
		SessionsEnded int `json:"sessions_ended"`
	}
	return onUser(logger, accounts, account.Owner, func(w http.ResponseWriter, r *http.Request, p account.Principal, id string) error {
		w.Header().Set("Cache-Control", "no-store")
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		cur, _ := f.str("current_password", true)
		nw, _ := f.str("new_password", true)
		keep, _ := f.str("refresh", false)
		f.unknown()
		pc := account.PasswordChange{Current: usersvc.Password(cur), New: usersvc.Password(nw), Keep: keep}
		if len(f.fe) > 0 {
			return pc.Validate(f.fe)
		}
		n, err := accounts.ChangePassword(r.Context(), p, id, pc)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Password changed successfully", data{SessionsEnded: n}, nil)
		return nil
	})
}

// handleSetStatus enables or disables a user: PATCH
// /api/v1/users/{user_id}/status (admins).
func handleSetStatus(logger *slog.Logger, accounts *account.Service) http.Handler {
	type data struct {
		ID       string `json:"id"`
		IsActive bool   `json:"is_active"`
	}
	return onUser(logger, accounts, account.Admin, func(w http.ResponseWriter, r *http.Request, p account.Principal, id string) error {
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		if !f.present("is_active") {
			f.add("is_active", usersvc.MsgRequired)
		}
		active := f.boolean("is_active")
		f.unknown()
		if err := f.err(); err != nil {
			return err
		}
		u, err := accounts.SetActive(r.Context(), p, id, *active)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "User status updated successfully", data{ID: u.ID, IsActive: u.IsActive}, nil)
		return nil
	})
}

// handleDeleteUser removes a user: DELETE /api/v1/users/{user_id}.
func handleDeleteUser(logger *slog.Logger, accounts *account.Service) http.Handler {
	return onUser(logger, accounts, account.Write, func(w http.ResponseWriter, r *http.Request, p account.Principal, id string) error {
		if err := accounts.DeleteUser(r.Context(), p, id); err != nil {
			return err
		}
		respond(w, http.StatusOK, "User deleted successfully", nil, nil)
		return nil
	})
}
