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
		v, err := readStrings(w, r, "email", "password")
		if err != nil {
			return err
		}
		sess, err := accounts.Login(r.Context(), usersvc.Credentials{Email: v[0], Password: usersvc.Password(v[1])})
		if err != nil {
			return err
		}
		setUser(r, sess.User.ID, "")
		respond(w, http.StatusOK, "Login successful", data{Access: sess.Access, Refresh: sess.Refresh, User: viewUser(sess.User)}, nil)
		return nil
	}
}

// readStrings decodes a body that is an object of exactly the required
// string members names, and returns their values in that order.
func readStrings(w http.ResponseWriter, r *http.Request, names ...string) ([]string, error) {
	m, err := decodeObject(w, r)
	if err != nil {
		return nil, err
	}
	f := newFields(m)
	values := make([]string, len(names))
	for i, name := range names {
		values[i], _ = f.str(name, true)
	}
	f.unknown()
	return values, f.err()
}

// readRefresh decodes a body of the form {"refresh": "…"}.
func readRefresh(w http.ResponseWriter, r *http.Request) (string, error) {
	v, err := readStrings(w, r, "refresh")
	if err != nil {
		return "", err
	}
	return v[0], nil
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
