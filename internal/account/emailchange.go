package account

import (
	"context"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/usersvc/usersvc"
)

// DefaultEmailChangeTTL is how long the confirmation of a change of email
// is valid when Options.EmailChangeTTL is zero.
const DefaultEmailChangeTTL = time.Hour

// FlowEmailChange is the self-service flow of changing one's email.
const FlowEmailChange = "email_change"

// MsgSameEmail is the answer to a change to the email the user has.
const MsgSameEmail = "Must differ from the current email"

// EventEmailChangeFailed is the security event of a refused confirmation.
const EventEmailChangeFailed = "email_change_failed"

// RequestEmailChange asks for the user's email to become newEmail: with
// the current password (checked, and counted, as a password change does),
// it emits email_change.requested (a single-use token, to the new
// address) and email_change.notice (to the current one). Nothing changes
// until ConfirmEmailChange. A newEmail another user has is EConflict.
// Only the user may ask. It returns when the token expires.
func (s *Service) RequestEmailChange(ctx context.Context, p Principal, userID, newEmail string, current usersvc.Password) (time.Time, error) {
	if err := s.authorize(ctx, p, userID, Owner); err != nil {
		return time.Time{}, err
	}
	fe := usersvc.FieldErrors{}
	email, msgs := usersvc.CheckEmail(newEmail)
	for _, m := range msgs {
		fe.Add("new_email", m)
	}
	if current == "" {
		fe.Add("current_password", usersvc.MsgRequired)
	} else if utf8.RuneCountInString(string(current)) > usersvc.MaxPasswordLength {
		fe.Add("current_password", usersvc.MsgPasswordLong)
	}
	if err := fe.Err(); err != nil {
		return time.Time{}, err
	}
	u, err := s.user(ctx, userID)
	if err != nil {
		return time.Time{}, err
	}
	if email == u.Email {
		return time.Time{}, fieldError("new_email", MsgSameEmail)
	}
	if err := s.loginBlocked(ctx, u.Email); err != nil {
		return time.Time{}, err
	}
	_, cred, err := s.users.UserByEmail(ctx, u.Email)
	if err != nil {
		return time.Time{}, notFound(err)
	}
	ok, _, err := s.hasher.Verify(ctx, string(current), cred.Hash)
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		s.loginFailed(ctx, u.Email)
		s.security(ctx, EventPasswordChangeFailed, slog.String("user_id", userID))
		return time.Time{}, fieldError("current_password", MsgWrongPassword)
	}
	s.loginSucceeded(ctx, u.Email)
	if _, _, err := s.users.UserByEmail(ctx, email); err == nil {
		return time.Time{}, &usersvc.Error{Code: usersvc.EConflict, Message: MsgEmailTaken}
	} else if !isNotFound(err) {
		return time.Time{}, err
	}
	token, hash, err := newSecret(s.rand)
	if err != nil {
		return time.Time{}, err
	}
	now := s.clock()
	c := EmailChange{TokenHash: hash, UserID: userID, OldEmail: u.Email, NewEmail: email, CreatedAt: now, ExpiresAt: now.Add(s.emailChangeTTL)}
	req := usersvc.EmailChangeEventData{UserID: userID, OldEmail: u.Email, NewEmail: email, Locale: u.Locale, Token: token,
		Link: link(s.emailChangeURL, token), ExpiresAt: c.ExpiresAt}
	notice := usersvc.EmailChangeNoticeEventData{UserID: userID, Email: u.Email, NewEmail: email, Locale: u.Locale, ExpiresAt: c.ExpiresAt}
	if err := s.emailChanges.CreateEmailChange(ctx, c, req, notice); err != nil {
		return time.Time{}, notFound(err)
	}
	s.onSelfService(FlowEmailChange, OutcomeRequested)
	s.logger.DebugContext(ctx, "email change requested", slog.String("user_id", userID), slog.String("token", token), slog.Any("link", req.Link))
	return c.ExpiresAt, nil
}

// ConfirmEmailChange makes the change of email of token: the user's email
// becomes the new one, verified (the token reached it). A token that is
// unknown, spent, expired, truncated or altered, or whose user changed
// its email since, is EInvalid on "token"; a new email another user took
// meanwhile is EConflict. Either changes nothing.
func (s *Service) ConfirmEmailChange(ctx context.Context, token string) (*usersvc.User, error) {
	hash, ok := parseSecret(token)
	if !ok {
		return nil, s.emailChangeFailed(ctx, "malformed")
	}
	now := s.clock()
	c, err := s.emailChanges.EmailChange(ctx, hash)
	switch {
	case isNotFound(err):
		return nil, s.emailChangeFailed(ctx, "unknown")
	case err != nil:
		return nil, err
	case !sameHash(c.TokenHash, hash) || !now.Before(c.ExpiresAt):
		return nil, s.emailChangeFailed(ctx, "expired")
	}
	u, err := s.emailChanges.ConfirmEmailChange(ctx, c, now)
	switch {
	case isNotFound(err):
		return nil, s.emailChangeFailed(ctx, "spent")
	case usersvc.ErrorCode(err) == usersvc.EConflict:
		s.onSelfService(FlowEmailChange, OutcomeFailed)
		return nil, &usersvc.Error{Code: usersvc.EConflict, Message: MsgEmailTaken, Err: err}
	case err != nil:
		return nil, err
	}
	s.onSelfService(FlowEmailChange, OutcomeConfirmed)
	s.logger.InfoContext(ctx, "email changed", slog.String("user_id", u.ID))
	return u, nil
}

// emailChangeFailed counts a refused token and returns its error.
func (s *Service) emailChangeFailed(ctx context.Context, reason string) error {
	s.onSelfService(FlowEmailChange, OutcomeFailed)
	s.security(ctx, EventEmailChangeFailed, slog.String("reason", reason))
	return fieldError("token", MsgResetTokenInvalid)
}
