package httpapi

import (
	"net/http"
	"strconv"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// deviceView is a device record as the API shows it.
type deviceView struct {
	ID         string  `json:"id"`
	DeviceID   *string `json:"device_id"`
	PushToken  string  `json:"push_token"`
	DeviceType string  `json:"device_type"`
	CreatedAt  string  `json:"created_at"`
	UpdatedAt  string  `json:"updated_at"`
	LastSeenAt string  `json:"last_seen_at"`
}

func viewDevices(ds []usersvc.Device) []deviceView {
	out := make([]deviceView, len(ds))
	for i, d := range ds {
		out[i] = deviceView{
			ID: d.ID, DeviceID: d.DeviceID, PushToken: d.Token, DeviceType: d.DeviceType,
			CreatedAt: timestamp(d.CreatedAt), UpdatedAt: timestamp(d.UpdatedAt), LastSeenAt: timestamp(d.LastSeenAt),
		}
	}
	return out
}

// pageMeta is the meta of a paginated list.
type pageMeta struct {
	Total       int  `json:"total"`
	Limit       int  `json:"limit"`
	Page        int  `json:"page"`
	TotalPages  int  `json:"total_pages"`
	HasNext     bool `json:"has_next"`
	HasPrevious bool `json:"has_previous"`
}

// queryInt reads a whole-number query parameter, def when absent.
func queryInt(r *http.Request, name string, def int, fe usersvc.FieldErrors) int {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		fe.Add(name, "Must be a whole number")
		return def
	}
	return n
}

func handleListUsers(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p := principalOf(r)
		fe := usersvc.FieldErrors{}
		page := queryInt(r, "page", 1, fe)
		limit := queryInt(r, "limit", 20, fe)
		if err := fe.Err(); err != nil {
			return err
		}
		pg, err := accounts.ListUsers(r.Context(), p, page, limit)
		if err != nil {
			return err
		}
		views := make([]userView, len(pg.Users))
		for i := range pg.Users {
			views[i] = viewUser(&pg.Users[i])
		}
		pages := (pg.Total + pg.Limit - 1) / pg.Limit
		meta := pageMeta{Total: pg.Total, Limit: pg.Limit, Page: pg.Page, TotalPages: pages, HasNext: pg.Page < pages, HasPrevious: pg.Page > 1}
		respond(w, http.StatusOK, "Users retrieved successfully", views, meta)
		return nil
	}
}

func handleBatchUsers(accounts *account.Service) handlerFunc {
	type batchUser struct {
		userView
		PushTokens []deviceView `json:"push_tokens"`
	}
	type data struct {
		Users    []batchUser `json:"users"`
		NotFound []string    `json:"not_found"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		p := principalOf(r)
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		ids := f.strs("user_ids", "Must be a list of ids")
		f.unknown()
		if err := f.err(); err != nil {
			return err
		}
		users, missing, err := accounts.BatchUsers(r.Context(), p, ids)
		if err != nil {
			return err
		}
		out := data{Users: make([]batchUser, len(users)), NotFound: missing}
		if out.NotFound == nil {
			out.NotFound = []string{}
		}
		for i := range users {
			out.Users[i] = batchUser{userView: viewUser(&users[i].User), PushTokens: viewDevices(users[i].Devices)}
		}
		respond(w, http.StatusOK, "Users retrieved successfully", out, nil)
		return nil
	}
}

func handleListDevices(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, id := principalOf(r), pathUserID(r)
		ds, err := accounts.Devices(r.Context(), p, id)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Push tokens retrieved successfully", viewDevices(ds), nil)
		return nil
	}
}

func handleDeleteDevice(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, id := principalOf(r), pathUserID(r)
		if err := accounts.DeleteDevice(r.Context(), p, id, r.PathValue("device_id")); err != nil {
			return err
		}
		respond(w, http.StatusOK, "Device removed successfully", nil, nil)
		return nil
	}
}

func handleInvalidatePushTokens(accounts *account.Service) handlerFunc {
	type data struct {
		Invalidated int `json:"invalidated"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		p := principalOf(r)
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		tokens := f.strs("push_tokens", "Must be a list of strings")
		reason, ok := f.str("reason", false)
		if ok && reason == "" {
			f.add("reason", "Must not be empty")
		}
		f.unknown()
		if err := f.err(); err != nil {
			return err
		}
		n, err := accounts.InvalidatePushTokens(r.Context(), p, tokens, reason)
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Push tokens invalidated successfully", data{Invalidated: n}, nil)
		return nil
	}
}

func handleJWKS(jwks func() []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(jwks())
	})
}
