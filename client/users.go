package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/usersvc/usersvc"
)

// Register creates a user: POST /api/v1/users/. The profile's phone,
// locale and time zone are sent when set (reg.Profile.Name is not used);
// preference channels left nil are on, categories follow their defaults
// unless reg.Preferences names them, and there are no quiet hours unless
// it sets some. A validation failure is an *Error with Fields (ErrInvalid,
// for example Fields["phone"] or Fields["categories.marketing"]); a taken
// email is ErrConflict.
func (c *Client) Register(ctx context.Context, reg usersvc.Registration) (*User, error) {
	body := struct {
		Email       string     `json:"email"`
		Password    string     `json:"password"`
		Name        string     `json:"name"`
		PushToken   *string    `json:"push_token,omitempty"`
		Phone       *nullable  `json:"phone,omitempty"`
		Locale      *nullable  `json:"locale,omitempty"`
		Timezone    *nullable  `json:"timezone,omitempty"`
		Preferences *prefsBody `json:"preferences,omitempty"`
	}{Email: reg.Email, Password: string(reg.Password), Name: reg.Name, PushToken: reg.PushToken,
		Phone: optional(reg.Profile.Phone), Locale: optional(reg.Profile.Locale), Timezone: optional(reg.Profile.Timezone)}
	if !reg.Preferences.Empty() {
		body.Preferences = newPrefsBody(reg.Preferences)
	}
	var u User
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users/", body: body, data: &u})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// Login checks a user's credentials and starts a session: POST
// /api/v1/users/login. A wrong password and an unknown email are both
// ErrUnauthorized; a disabled account is ErrForbidden; too many failures are
// ErrRateLimited.
func (c *Client) Login(ctx context.Context, cred usersvc.Credentials) (*Session, error) {
	body := struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}{cred.Email, string(cred.Password)}
	var data struct {
		Access  string `json:"access"`
		Refresh string `json:"refresh"`
		User    User   `json:"user"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users/login", body: body, data: &data})
	if err != nil {
		return nil, err
	}
	return &Session{Tokens: Tokens{Access: data.Access, Refresh: data.Refresh}, User: data.User}, nil
}

// Refresh trades a refresh token for a new pair: POST /api/v1/users/refresh.
// The refresh token presented is spent. Presented again within the
// service's REFRESH_REUSE_INTERVAL, while its successor is unspent, it gets
// that same successor (so a retry after a lost answer is safe); any other
// presentation ends the whole session (ErrUnauthorized for it and for its
// successors).
func (c *Client) Refresh(ctx context.Context, refresh string) (Tokens, error) {
	var data struct {
		Access  string `json:"access"`
		Refresh string `json:"refresh"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users/refresh", body: refreshBody{refresh}, data: &data})
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{Access: data.Access, Refresh: data.Refresh}, nil
}

type refreshBody struct {
	Refresh string `json:"refresh"`
}

// Logout ends the session a refresh token belongs to: POST
// /api/v1/users/logout. It succeeds when the session had already ended.
// The session's access tokens are refused from the next request on.
func (c *Client) Logout(ctx context.Context, refresh string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users/logout", body: refreshBody{refresh}})
}

// User returns a user: GET /api/v1/users/{id}/. A user asking for another
// user is ErrForbidden (whether or not it exists); an admin or a service
// asking for one that does not exist is ErrNotFound.
func (c *Client) User(ctx context.Context, userID string) (*User, error) {
	p, err := path("/api/v1/users/", userID)
	if err != nil {
		return nil, err
	}
	var u User
	if err := c.do(ctx, request{method: http.MethodGet, path: p, auth: true, data: &u}); err != nil {
		return nil, err
	}
	return &u, nil
}

// Preferences returns what a user wants to receive (the switch of each
// channel, the choices per category, the quiet hours): GET
// /api/v1/users/{id}/preferences. With WithPreferencesCache, an answer
// younger than the cache's ttl is returned without a request.
func (c *Client) Preferences(ctx context.Context, userID string) (usersvc.Preferences, error) {
	var version uint64
	if c.prefs != nil {
		p, v, ok := c.prefs.get(userID)
		if ok {
			return p, nil
		}
		version = v
	}
	p, err := path("/api/v1/users/", userID, "/preferences")
	if err != nil {
		return usersvc.Preferences{}, err
	}
	var prefs usersvc.Preferences
	if err := c.do(ctx, request{method: http.MethodGet, path: p, auth: true, data: &prefs}); err != nil {
		return usersvc.Preferences{}, err
	}
	if c.prefs != nil {
		c.prefs.put(userID, prefs, version)
	}
	return prefs, nil
}

// UpdatePreferences changes what the patch names and returns the
// preferences as they now are: PATCH /api/v1/users/{id}/preferences. The
// channel switches it sets change; each category it names changes as its
// CategoryPatch says (All: the whole category on or off; Channels: merged
// into the per-channel choices, a nil value dropping that channel's
// choice; a nil *CategoryPatch drops the user's choice, so the category
// follows its defaults again); with SetQuietHours the quiet hours are
// replaced (QuietHours nil clears them; a nil Channels in them means every
// channel). A user may change its own, an admin anyone's; a service may
// not (ErrForbidden). An empty patch, an unknown category and turning a
// required category off are ErrInvalid.
func (c *Client) UpdatePreferences(ctx context.Context, userID string, patch usersvc.PreferencesPatch) (usersvc.Preferences, error) {
	p, err := path("/api/v1/users/", userID, "/preferences")
	if err != nil {
		return usersvc.Preferences{}, err
	}
	var prefs usersvc.Preferences
	err = c.do(ctx, request{method: http.MethodPatch, path: p, auth: true, body: newPrefsBody(patch), data: &prefs})
	if c.prefs != nil {
		if err == nil {
			c.prefs.set(userID, prefs)
		} else {
			c.prefs.forget(userID)
		}
	}
	if err != nil {
		return usersvc.Preferences{}, err
	}
	return prefs, nil
}

// UpdatePushToken registers the push token of one of the user's devices, or
// with a nil Token clears the user's current token (and the record of
// DeviceID when given): PATCH /api/v1/users/{id}/push_token. DeviceType
// defaults to usersvc.DeviceOther. It returns the user's current token.
func (c *Client) UpdatePushToken(ctx context.Context, userID string, upd usersvc.PushTokenUpdate) (*string, error) {
	p, err := path("/api/v1/users/", userID, "/push_token")
	if err != nil {
		return nil, err
	}
	body := struct {
		PushToken  *string `json:"push_token"`
		DeviceID   *string `json:"device_id,omitempty"`
		DeviceType string  `json:"device_type,omitempty"`
	}{upd.Token, upd.DeviceID, upd.DeviceType}
	var data struct {
		PushToken *string `json:"push_token"`
	}
	if err := c.do(ctx, request{method: http.MethodPatch, path: p, auth: true, body: body, data: &data}); err != nil {
		return nil, err
	}
	return data.PushToken, nil
}

// ListUsers returns one page of the users, newest first: GET
// /api/v1/users/?page=&limit=. page starts at 1; limit is 1 to 100. For
// admins and services.
func (c *Client) ListUsers(ctx context.Context, page, limit int) (*UserPage, error) {
	q := url.Values{"page": {strconv.Itoa(page)}, "limit": {strconv.Itoa(limit)}}
	var out UserPage
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/users/", query: q, auth: true, data: &out.Users, meta: &out.Meta})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// BatchUsers returns many users at once, each with every device record,
// and the ids of no user: POST /api/v1/users/batch, 1 to 1000 ids. For
// admins and services fanning a notification out.
func (c *Client) BatchUsers(ctx context.Context, userIDs []string) (*Batch, error) {
	if userIDs == nil {
		userIDs = []string{}
	}
	body := struct {
		UserIDs []string `json:"user_ids"`
	}{userIDs}
	var out Batch
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users/batch", auth: true, body: body, data: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Devices returns every device record of a user: GET
// /api/v1/users/{id}/push_tokens.
func (c *Client) Devices(ctx context.Context, userID string) ([]Device, error) {
	p, err := path("/api/v1/users/", userID, "/push_tokens")
	if err != nil {
		return nil, err
	}
	var out []Device
	if err := c.do(ctx, request{method: http.MethodGet, path: p, auth: true, data: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteDevice removes one device record of a user, named by its device id
// or by its record id: DELETE /api/v1/users/{id}/push_tokens/{device}. A
// device that does not exist is ErrNotFound, except when a retry finds it
// gone after an attempt whose answer was lost.
func (c *Client) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	p, err := path("/api/v1/users/", userID, "/push_tokens/", deviceID)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p, auth: true, goneIsDone: true})
}

// InvalidatePushTokens drops push tokens the push provider rejected,
// whoever holds them, and returns how many device records went: POST
// /api/v1/push_tokens/invalidate, 1 to 1000 tokens. For services whose key
// has the push_tokens.invalidate scope. reason (for example
// "unregistered") may be empty.
func (c *Client) InvalidatePushTokens(ctx context.Context, tokens []string, reason string) (int, error) {
	if tokens == nil {
		tokens = []string{}
	}
	body := struct {
		PushTokens []string `json:"push_tokens"`
		Reason     string   `json:"reason,omitempty"`
	}{tokens, reason}
	var data struct {
		Invalidated int `json:"invalidated"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/push_tokens/invalidate", auth: true, body: body, data: &data}); err != nil {
		return 0, err
	}
	return data.Invalidated, nil
}

// JWKS returns the service's public signing keys: GET
// /.well-known/jwks.json. The set is empty when the service signs with
// HS256, whose key is a shared secret.
func (c *Client) JWKS(ctx context.Context) ([]JSONWebKey, error) {
	var set struct {
		Keys []JSONWebKey `json:"keys"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/.well-known/jwks.json", bare: true, data: &set}); err != nil {
		return nil, err
	}
	if set.Keys == nil {
		set.Keys = []JSONWebKey{}
	}
	return set.Keys, nil
}

// Health asks the service how it is: GET /health. It makes one attempt,
// whatever the retry policy and the circuit breaker say. When the database
// is down it returns the report (Status "unhealthy") and an *Error with
// status 503 (ErrUnavailable).
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	err := c.do(ctx, request{method: http.MethodGet, path: "/health", bare: true, probe: true, data: &h})
	if err != nil && h.Status == "" {
		return nil, err
	}
	return &h, err
}
