package httpapi

import (
	"net/http"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// handleUpdateUser changes a user's name, phone, locale and time zone:
// PATCH /api/v1/users/{user_id}.
func handleUpdateUser(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, id := principalOf(r), pathUserID(r)
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		patch := f.profile()
		if name, ok := f.str("name", false); ok {
			patch.Name = &name
		} else if v, present := f.m["name"]; present && string(v) == "null" {
			f.add("name", usersvc.MsgRequired) // a name cannot be cleared
		}
		f.unknown()
		if len(f.fe) > 0 {
			// Report the fields' own problems with the others.
			return patch.Validate(f.fe)
		}
		u, err := accounts.UpdateProfile(r.Context(), p, id, patch)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "User updated successfully", viewUser(u), nil)
		return nil
	}
}

// handleChangePassword replaces the caller's password: POST
// /api/v1/users/{user_id}/password.
func handleChangePassword(accounts *account.Service) handlerFunc {
	type data struct {
		SessionsEnded int `json:"sessions_ended"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		p, id := principalOf(r), pathUserID(r)
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
	}
}

// handleSetStatus enables or disables a user: PATCH
// /api/v1/users/{user_id}/status (admins).
func handleSetStatus(accounts *account.Service) handlerFunc {
	type data struct {
		ID       string `json:"id"`
		IsActive bool   `json:"is_active"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		p, id := principalOf(r), pathUserID(r)
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
	}
}

// handleDeleteUser removes a user: DELETE /api/v1/users/{user_id}.
func handleDeleteUser(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, id := principalOf(r), pathUserID(r)
		if err := accounts.DeleteUser(r.Context(), p, id); err != nil {
			return err
		}
		respond(w, http.StatusOK, "User deleted successfully", nil, nil)
		return nil
	}
}
