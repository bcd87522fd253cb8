package client

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/usersvc/usersvc"
)

// UpdateName changes a user's name and returns the user as it now is: it
// is UpdateProfile with only the name.
func (c *Client) UpdateName(ctx context.Context, userID, name string) (*User, error) {
	return c.UpdateProfile(ctx, userID, usersvc.ProfilePatch{Name: &name})
}

// UpdateProfile changes what the patch names of a user's name, phone,
// locale and time zone, and returns the user as it now is: PATCH
// /api/v1/users/{id}/. A field whose Nullable is Set with a nil Value is
// cleared (the name cannot be). The service normalises what it keeps: the
// phone to E.164, the locale to its canonical BCP 47 form. A user may
// change its own profile, an admin anyone's; a service may not
// (ErrForbidden). A value that breaks the rules is ErrInvalid with Fields
// naming it; an empty patch is ErrInvalid.
func (c *Client) UpdateProfile(ctx context.Context, userID string, patch usersvc.ProfilePatch) (*User, error) {
	p, err := path("/api/v1/users/", userID, "/")
	if err != nil {
		return nil, err
	}
	body := struct {
		Name     *string   `json:"name,omitempty"`
		Phone    *nullable `json:"phone,omitempty"`
		Locale   *nullable `json:"locale,omitempty"`
		Timezone *nullable `json:"timezone,omitempty"`
	}{patch.Name, optional(patch.Phone), optional(patch.Locale), optional(patch.Timezone)}
	var u User
	if err := c.do(ctx, request{method: http.MethodPatch, path: p, auth: true, body: body, data: &u}); err != nil {
		return nil, err
	}
	return &u, nil
}

// PasswordChange is the input of ChangePassword. Keep, when set, is a
// refresh token of the caller whose session survives; every other session
// of the user ends.
type PasswordChange struct {
	Current usersvc.Password
	New     usersvc.Password
	Keep    string
}

// LogValue keeps the passwords and the token out of structured logs.
func (PasswordChange) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// String keeps the passwords and the token out of formatted output.
func (PasswordChange) String() string { return "[REDACTED]" }

// GoString keeps the passwords and the token out of %#v output.
func (PasswordChange) GoString() string { return "client.PasswordChange{[REDACTED]}" }

// ChangePassword replaces the caller's own password and returns how many
// of its sessions ended: POST /api/v1/users/{id}/password. Only the user
// may call it (an admin for someone else is ErrForbidden). A wrong current
// password is ErrInvalid with Fields["current_password"]; too many wrong
// ones are ErrRateLimited. The refresh and access tokens of the ended
// sessions are ErrUnauthorized from the next request on.
func (c *Client) ChangePassword(ctx context.Context, userID string, pc PasswordChange) (int, error) {
	p, err := path("/api/v1/users/", userID, "/password")
	if err != nil {
		return 0, err
	}
	body := struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
		Keep    string `json:"refresh,omitempty"`
	}{string(pc.Current), string(pc.New), pc.Keep}
	var data struct {
		SessionsEnded int `json:"sessions_ended"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: p, auth: true, body: body, data: &data}); err != nil {
		return 0, err
	}
	return data.SessionsEnded, nil
}

// SetActive enables or disables a user: PATCH /api/v1/users/{id}/status.
// For admins only (ErrForbidden for anyone else). A disabled user cannot
// log in (ErrForbidden), its sessions end and its access tokens are refused
// (ErrUnauthorized). An admin disabling its own account is ErrConflict.
func (c *Client) SetActive(ctx context.Context, userID string, active bool) error {
	p, err := path("/api/v1/users/", userID, "/status")
	if err != nil {
		return err
	}
	body := struct {
		IsActive bool `json:"is_active"`
	}{active}
	return c.do(ctx, request{method: http.MethodPatch, path: p, auth: true, body: body})
}

// DeleteUser removes a user with its devices and sessions: DELETE
// /api/v1/users/{id}/. A user may delete itself, an admin anyone; a service
// may not (ErrForbidden). The user's tokens are refused afterwards. A user
// that does not exist is ErrNotFound for an admin, except when a retry
// finds it gone after an attempt whose answer was lost; a user deleting
// itself whose first answer was lost gets ErrUnauthorized on the retry, its
// token having gone with it.
func (c *Client) DeleteUser(ctx context.Context, userID string) error {
	p, err := path("/api/v1/users/", userID, "/")
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p, auth: true, goneIsDone: true})
}
