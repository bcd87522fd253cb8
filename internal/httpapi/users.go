package httpapi

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// principal authenticates the request: a bearer token in Authorization or
// a service key in X-Service-API-Key. Tokens are never read from the URL.
func principal(r *http.Request, accounts *account.Service) (account.Principal, error) {
	var bearer string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return account.Principal{}, usersvc.Errorf(usersvc.EUnauthorized, "Authorization header must be: Bearer <token>")
		}
		bearer = strings.TrimSpace(tok)
	}
	p, err := accounts.Authenticate(r.Context(), bearer, r.Header.Get("X-Service-API-Key"))
	if err == nil {
		setUser(r, p.UserID, p.Service)
	}
	return p, err
}

// userHandler is a handler of a /users/{user_id} route, called once the
// caller is authenticated.
type userHandler func(w http.ResponseWriter, r *http.Request, p account.Principal, userID string) error

// onUser adapts a userHandler: it authenticates, applies the access rule
// before reading any body, and reports any error in the envelope.
func onUser(logger *slog.Logger, accounts *account.Service, a account.Access, h userHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := canonicalID(r.PathValue("user_id"))
		p, err := principal(r, accounts)
		if err == nil {
			err = accounts.Authorize(r.Context(), p, id, a)
		}
		if err == nil {
			err = h(w, r, p, id)
		}
		if err != nil {
			fail(w, r, logger, err)
		}
	})
}

func handleGetUser(logger *slog.Logger, accounts *account.Service) http.Handler {
	return onUser(logger, accounts, account.Read, func(w http.ResponseWriter, r *http.Request, p account.Principal, id string) error {
		u, err := accounts.User(r.Context(), p, id)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "User retrieved successfully", viewUser(u), nil)
		return nil
	})
}

func handleGetPreferences(logger *slog.Logger, accounts *account.Service) http.Handler {
	return onUser(logger, accounts, account.Read, func(w http.ResponseWriter, r *http.Request, p account.Principal, id string) error {
		prefs, err := accounts.Preferences(r.Context(), p, id)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Notification preferences retrieved successfully", prefs, nil)
		return nil
	})
}

func handlePatchPreferences(logger *slog.Logger, accounts *account.Service) http.Handler {
	return onUser(logger, accounts, account.Write, func(w http.ResponseWriter, r *http.Request, p account.Principal, id string) error {
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		patch := usersvc.PreferencesPatch{Email: f.boolean("email"), Push: f.boolean("push")}
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
	})
}

func handlePushToken(logger *slog.Logger, accounts *account.Service) http.Handler {
	type data struct {
		ID        string  `json:"id"`
		PushToken *string `json:"push_token"`
	}
	return onUser(logger, accounts, account.Write, func(w http.ResponseWriter, r *http.Request, p account.Principal, id string) error {
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
	})
}

// canonicalID returns the lowercase form of a UUID path value; anything
// that is not a UUID is returned as it is, for the access rule to refuse.
func canonicalID(s string) string {
	if len(s) != 36 {
		return s
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return s
	}
	return id.String()
}
