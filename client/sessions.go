package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// SessionInfo is a live session of a user: the refresh tokens descended
// from one login. Access tokens carry its ID as their sid claim.
type SessionInfo struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	// UserAgent and ClientAddress describe the client of the login.
	UserAgent     string `json:"user_agent"`
	ClientAddress string `json:"client_address"`
	// Current is true for the session of the caller's own access token.
	Current bool `json:"current"`
}

// Sessions lists the live sessions of a user, most recently used first:
// GET /api/v1/users/{id}/sessions. The user or an admin.
func (c *Client) Sessions(ctx context.Context, userID string) ([]SessionInfo, error) {
	p, err := path("/api/v1/users/", userID, "/sessions")
	if err != nil {
		return nil, err
	}
	var out []SessionInfo
	if err := c.do(ctx, request{method: http.MethodGet, path: p, auth: true, data: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// EndSession ends one live session of a user: DELETE
// /api/v1/users/{id}/sessions/{session}. Its refresh and access tokens are
// refused from the next request on. A session that is not live is
// ErrNotFound, except when a retry finds it ended after an attempt whose
// answer was lost.
func (c *Client) EndSession(ctx context.Context, userID, sessionID string) error {
	p, err := path("/api/v1/users/", userID, "/sessions/", sessionID)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p, auth: true, goneIsDone: true})
}

// EndSessions ends every live session of a user but the caller's own, or
// all of them with includeCurrent ("log out everywhere"), and returns how
// many ended: DELETE /api/v1/users/{id}/sessions.
func (c *Client) EndSessions(ctx context.Context, userID string, includeCurrent bool) (int, error) {
	p, err := path("/api/v1/users/", userID, "/sessions")
	if err != nil {
		return 0, err
	}
	var q url.Values
	if includeCurrent {
		q = url.Values{"include_current": {"true"}}
	}
	var data struct {
		SessionsEnded int `json:"sessions_ended"`
	}
	if err := c.do(ctx, request{method: http.MethodDelete, path: p, query: q, auth: true, data: &data}); err != nil {
		return 0, err
	}
	return data.SessionsEnded, nil
}
