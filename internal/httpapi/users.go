package httpapi

import (
	"net/http"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

func handleGetUser(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, id := principalOf(r), pathUserID(r)
		u, err := accounts.User(r.Context(), p, id)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "User retrieved successfully", viewUser(u), nil)
		return nil
	}
}

func handleGetPreferences(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, id := principalOf(r), pathUserID(r)
		prefs, err := accounts.Preferences(r.Context(), p, id)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Notification preferences retrieved successfully", prefs, nil)
		return nil
	}
}

func handlePatchPreferences(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, id := principalOf(r), pathUserID(r)
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		patch := f.preferencesPatch()
		f.unknown()
		if err := f.err(); err != nil {
			return err
		}
		prefs, err := accounts.UpdatePreferences(r.Context(), p, id, patch)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Notification preferences updated successfully", prefs, nil)
		return nil
	}
}

func handlePushToken(accounts *account.Service) handlerFunc {
	type data struct {
		ID        string  `json:"id"`
		PushToken *string `json:"push_token"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		p, id := principalOf(r), pathUserID(r)
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		var upd usersvc.PushTokenUpdate
		if !f.present("push_token") {
			f.add("push_token", usersvc.MsgRequired)
		}
		upd.Token = f.nullableStr("push_token")
		upd.DeviceID = f.nullableStr("device_id")
		upd.DeviceType, _ = f.str("device_type", false)
		f.unknown()
		if len(f.fe) > 0 {
			return upd.Validate(f.fe)
		}
		tok, err := accounts.UpdatePushToken(r.Context(), p, id, upd)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Push token updated successfully", data{ID: id, PushToken: tok}, nil)
		return nil
	}
}
