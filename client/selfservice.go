package client

import (
	"context"
	"net/http"
	"time"
)

// The self-service flows. usersvc sends no message itself: each request
// emits an event (usersvc.password_reset.requested,
// usersvc.verification.requested, usersvc.email_change.requested and
// .notice) that the notification system delivers; the token or code the
// user receives comes back through these methods.

// ForgotPassword asks for a password reset link for email: POST
// /api/v1/users/password/forgot. It answers nil for every well-formed
// email, whether or not it has an account; ErrRateLimited past the limits
// per email and per address.
func (c *Client) ForgotPassword(ctx context.Context, email string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users/password/forgot", body: struct {
		Email string `json:"email"`
	}{email}})
}

// ResetPassword sets a new password with the token of a reset link: POST
// /api/v1/users/password/reset. Every session of the user ends; it returns
// how many. A spent, expired or altered token is ErrInvalid (field
// "token"), as is a new password that breaks the rules.
func (c *Client) ResetPassword(ctx context.Context, token, newPassword string) (int, error) {
	var data struct {
		SessionsEnded int `json:"sessions_ended"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users/password/reset", body: struct {
		Token string `json:"token"`
		New   string `json:"new_password"`
	}{token, newPassword}, data: &data})
	return data.SessionsEnded, err
}

// RequestVerification sends the user a code for its email ("email") or
// phone ("sms"): POST /api/v1/users/{id}/verifications, as the user. It
// returns when the code expires.
func (c *Client) RequestVerification(ctx context.Context, userID, channel string) (time.Time, error) {
	p, err := path("/api/v1/users/", userID, "/verifications")
	if err != nil {
		return time.Time{}, err
	}
	var data struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	err = c.do(ctx, request{method: http.MethodPost, path: p, auth: true, body: struct {
		Channel string `json:"channel"`
	}{channel}, data: &data})
	return data.ExpiresAt, err
}

// ConfirmVerification marks the address of channel verified with its
// code: POST /api/v1/users/{id}/verifications/confirm, as the user. A
// wrong or expired code is ErrInvalid; the fifth wrong one ends the
// verification.
func (c *Client) ConfirmVerification(ctx context.Context, userID, channel, code string) (*User, error) {
	p, err := path("/api/v1/users/", userID, "/verifications/confirm")
	if err != nil {
		return nil, err
	}
	var u User
	if err := c.do(ctx, request{method: http.MethodPost, path: p, auth: true, body: struct {
		Channel string `json:"channel"`
		Code    string `json:"code"`
	}{channel, code}, data: &u}); err != nil {
		return nil, err
	}
	return &u, nil
}

// ConfirmVerificationLink marks an email verified with the token of its
// link: POST /api/v1/users/verifications/confirm, with no credentials.
func (c *Client) ConfirmVerificationLink(ctx context.Context, token string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users/verifications/confirm", body: tokenBody{token}})
}

// RequestEmailChange asks for the user's email to become newEmail, with
// its current password: POST /api/v1/users/{id}/email, as the user.
// Nothing changes until ConfirmEmailChange. A taken address is
// ErrConflict. It returns when the confirmation expires.
func (c *Client) RequestEmailChange(ctx context.Context, userID, newEmail, currentPassword string) (time.Time, error) {
	p, err := path("/api/v1/users/", userID, "/email")
	if err != nil {
		return time.Time{}, err
	}
	var data struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	err = c.do(ctx, request{method: http.MethodPost, path: p, auth: true, body: struct {
		NewEmail string `json:"new_email"`
		Current  string `json:"current_password"`
	}{newEmail, currentPassword}, data: &data})
	return data.ExpiresAt, err
}

// ConfirmEmailChange makes a change of email with the token sent to the
// new address: POST /api/v1/users/email/confirm, with no credentials. It
// returns the new email. An address taken meanwhile is ErrConflict.
func (c *Client) ConfirmEmailChange(ctx context.Context, token string) (string, error) {
	var data struct {
		Email string `json:"email"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/users/email/confirm", body: tokenBody{token}, data: &data})
	return data.Email, err
}

// tokenBody is the body {"token": …}.
type tokenBody struct {
	Token string `json:"token"`
}
