package httpapi

import (
	"net/http"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

func handleRegister(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		var reg usersvc.Registration
		reg.Email, _ = f.str("email", true)
		pw, _ := f.str("password", true)
		reg.Password = usersvc.Password(pw)
		reg.Name, _ = f.str("name", true)
		reg.PushToken = f.nullableStr("push_token")
		reg.Profile = f.profile()
		if p := f.object("preferences"); p != nil {
			reg.Preferences = p.preferencesPatch()
			p.unknown()
		}
		f.unknown()
		if len(f.fe) > 0 {
			return reg.Validate(f.fe)
		}
		u, err := accounts.Register(r.Context(), reg)
		if err != nil {
			return err
		}
		setUser(r, u.ID, "")
		respond(w, http.StatusCreated, "User registered successfully", registeredView{UserID: u.ID, userView: viewUser(u)}, nil)
		return nil
	}
}

func handleLogin(accounts *account.Service) handlerFunc {
	type data struct {
		Access  string   `json:"access"`
		Refresh string   `json:"refresh"`
		User    userView `json:"user"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		email, _ := f.str("email", true)
		pw, _ := f.str("password", true)
		f.unknown()
		if err := f.err(); err != nil {
			return err
		}
		sess, err := accounts.Login(r.Context(), usersvc.Credentials{Email: email, Password: usersvc.Password(pw)})
		if err != nil {
			return err
		}
		setUser(r, sess.User.ID, "")
		respond(w, http.StatusOK, "Login successful", data{Access: sess.Access, Refresh: sess.Refresh, User: viewUser(sess.User)}, nil)
		return nil
	}
}

// readRefresh decodes a body of the form {"refresh": "…"}.
func readRefresh(w http.ResponseWriter, r *http.Request) (string, error) {
	m, err := decodeObject(w, r)
	if err != nil {
		return "", err
	}
	f := newFields(m)
	tok, _ := f.str("refresh", true)
	f.unknown()
	return tok, f.err()
}

func handleRefresh(accounts *account.Service) handlerFunc {
	type data struct {
		Access  string `json:"access"`
		Refresh string `json:"refresh"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		tok, err := readRefresh(w, r)
		if err != nil {
			return err
		}
		sess, err := accounts.Refresh(r.Context(), tok)
		if err != nil {
			return err
		}
		setUser(r, sess.User.ID, "")
		respond(w, http.StatusOK, "Request successful", data{Access: sess.Access, Refresh: sess.Refresh}, nil)
		return nil
	}
}

func handleLogout(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok, err := readRefresh(w, r)
		if err != nil {
			return err
		}
		if err := accounts.Logout(r.Context(), tok); err != nil {
			return err
		}
		respond(w, http.StatusOK, "Logged out successfully", nil, nil)
		return nil
	}
}
