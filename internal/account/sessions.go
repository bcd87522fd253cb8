package account

import (
	"context"
	"log/slog"

	"github.com/usersvc/usersvc"
)

// MsgSessionNotFound is the answer to ending a session that is not a live
// session of the user.
const MsgSessionNotFound = "Session not found"

// SessionInfo is a live session as its user sees it.
type SessionInfo struct {
	RefreshFamily
	// Current is true for the session of the caller's own access token.
	Current bool
}

// Sessions lists the user's live sessions (the user, or an admin), most
// recently used first.
func (s *Service) Sessions(ctx context.Context, p Principal, userID string) ([]SessionInfo, error) {
	if err := s.authorize(ctx, p, userID, Write); err != nil {
		return nil, err
	}
	if _, err := s.userOf(ctx, p, userID); err != nil {
		return nil, err
	}
	fs, err := s.sessions.Sessions(ctx, userID, s.clock())
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, len(fs))
	for i, f := range fs {
		out[i] = SessionInfo{RefreshFamily: f, Current: p.UserID == userID && f.ID == p.SessionID}
	}
	return out, nil
}

// EndSession ends one live session of the user (the user, or an admin):
// its refresh tokens and its access tokens are refused from the next
// request on. ENotFound when it is not a live session of the user.
func (s *Service) EndSession(ctx context.Context, p Principal, userID, sessionID string) error {
	if err := s.authorize(ctx, p, userID, Write); err != nil {
		return err
	}
	n, err := s.sessions.RevokeSessions(ctx, userID, []string{sessionID}, "", usersvc.SessionsEndedByUser, s.clock())
	if err != nil {
		return err
	}
	if n == 0 {
		return usersvc.Errorf(usersvc.ENotFound, MsgSessionNotFound)
	}
	s.logger.InfoContext(ctx, "session ended", slog.String("user_id", userID), slog.String("by_user_id", p.UserID))
	return nil
}

// EndSessions ends every live session of the user but the caller's own
// (the user, or an admin; an admin's own session is not one of another
// user's), or all of them with includeCurrent, and returns how many ended.
func (s *Service) EndSessions(ctx context.Context, p Principal, userID string, includeCurrent bool) (int, error) {
	if err := s.authorize(ctx, p, userID, Write); err != nil {
		return 0, err
	}
	except := ""
	if !includeCurrent && p.UserID == userID {
		except = p.SessionID
	}
	n, err := s.sessions.RevokeSessions(ctx, userID, nil, except, usersvc.SessionsEndedByUser, s.clock())
	if err != nil {
		return 0, err
	}
	s.logger.InfoContext(ctx, "sessions ended", slog.String("user_id", userID), slog.Int("sessions_ended", n),
		slog.String("by_user_id", p.UserID))
	return n, nil
}
