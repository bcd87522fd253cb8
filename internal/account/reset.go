package account

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"time"

	"github.com/usersvc/usersvc"
)

// DefaultPasswordResetTTL is how long a password reset token is valid
// when Options.PasswordResetTTL is zero.
const DefaultPasswordResetTTL = 30 * time.Minute

// Self-service flows and their outcomes, as Options.OnSelfService is told
// of them.
const (
	FlowPasswordReset = "password_reset"

	// OutcomeRequested is a request the service accepted (for a password
	// reset, whether or not the email has an account).
	OutcomeRequested = "requested"
	// OutcomeConfirmed is a token or code that did what it was for.
	OutcomeConfirmed = "confirmed"
	// OutcomeFailed is a token or code refused (unknown, spent, expired,
	// malformed or wrong).
	OutcomeFailed = "failed"
)

// Messages of the self-service flows.
const (
	MsgResetTokenInvalid = "Token is invalid or expired"
)

// EventPasswordResetFailed is the security event of a refused reset token.
const EventPasswordResetFailed = "password_reset_failed"

// secretLen is the number of random bytes of a token.
const secretLen = 32

// newSecret returns a fresh token (secretLen random bytes, base64url
// without padding) and its hash as the store keeps it.
func newSecret(r io.Reader) (token, hash string, err error) {
	b := make([]byte, secretLen)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", "", err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashSecret(b), nil
}

// hashSecret is the hex SHA-256 of a token's bytes.
func hashSecret(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// parseSecret returns the hash of token, or false when token is not the
// encoding of secretLen bytes (a truncated or mangled token).
func parseSecret(token string) (string, bool) {
	if len(token) != base64.RawURLEncoding.EncodedLen(secretLen) {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != secretLen {
		return "", false
	}
	return hashSecret(b), true
}

// sameHash compares two hashes in constant time.
func sameHash(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// link returns base (a page of the operator) with token in its query, or
// nil when there is no such page.
func link(base, token string) *string {
	if base == "" {
		return nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil
	}
	q := u.Query()
	q.Set("token", token)
	u.RawQuery = q.Encode()
	s := u.String()
	return &s
}

// ForgotPassword asks, for the account of email, that the system deliver
// a single-use password reset token (event password_reset.requested). Its
// answer and its duration do not depend on whether the email has an
// account, or an active one: both make the same token, and the call lasts
// at least Options.ForgotPasswordFloor, which covers the one write that
// only a real account makes. Requests are rate-limited per email and per
// client address, which is the only refusal besides a malformed email.
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	email, msgs := usersvc.CheckEmail(email)
	if len(msgs) > 0 {
		fe := usersvc.FieldErrors{}
		for _, m := range msgs {
			fe.Add("email", m)
		}
		return fe.Err()
	}
	if err := s.allowed(ctx, s.limits.ForgotEmail, "forgot_email", email); err != nil {
		return err
	}
	if err := s.allowed(ctx, s.limits.ForgotAddr, "forgot_addr", clientAddr(ctx)); err != nil {
		return err
	}
	if s.resetFloor > 0 {
		floor := time.NewTimer(s.resetFloor)
		defer func() {
			select {
			case <-floor.C:
			case <-ctx.Done():
				floor.Stop()
			}
		}()
	}
	s.onSelfService(FlowPasswordReset, OutcomeRequested)
	token, hash, err := newSecret(s.rand)
	if err != nil {
		return err
	}
	u, _, err := s.users.UserByEmail(ctx, email)
	if isNotFound(err) {
		s.logger.DebugContext(ctx, "password reset for an unknown email: nothing sent")
		return nil
	}
	if err != nil {
		return err
	}
	if !u.IsActive {
		s.logger.DebugContext(ctx, "password reset for a disabled account: nothing sent", slog.String("user_id", u.ID))
		return nil
	}
	now := s.clock()
	r := PasswordReset{TokenHash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.resetTTL)}
	data := usersvc.PasswordResetEventData{UserID: u.ID, Email: u.Email, Locale: u.Locale, Token: token,
		Link: link(s.resetURL, token), ExpiresAt: r.ExpiresAt}
	if err := s.resets.CreatePasswordReset(ctx, r, data); err != nil {
		if isNotFound(err) { // deleted meanwhile
			return nil
		}
		return err
	}
	s.logger.DebugContext(ctx, "password reset requested", slog.String("user_id", u.ID),
		slog.String("token", token), slog.Any("link", data.Link))
	return nil
}

// ResetPassword sets a new password with a token of ForgotPassword: the
// new password follows the rules of registration; every session of the
// user ends and the token is spent, in the transaction that changes the
// password. A token that is unknown, spent, expired, truncated or altered
// is EInvalid on the field "token", and changes nothing. It returns the
// number of sessions ended.
func (s *Service) ResetPassword(ctx context.Context, token string, newPassword usersvc.Password) (int, error) {
	fe := usersvc.FieldErrors{}
	hash, ok := "", false
	switch {
	case token == "":
		fe.Add("token", usersvc.MsgRequired)
	default:
		if hash, ok = parseSecret(token); !ok {
			fe.Add("token", MsgResetTokenInvalid)
		}
	}
	for _, m := range usersvc.CheckPassword(string(newPassword)) {
		fe.Add("new_password", m)
	}
	if _, bad := fe["token"]; bad {
		s.countResetFailure(ctx, "malformed")
	}
	if err := fe.Err(); err != nil {
		return 0, err
	}
	now := s.clock()
	r, err := s.resets.PasswordReset(ctx, hash)
	switch {
	case isNotFound(err):
		return 0, s.resetFailed(ctx, "unknown")
	case err != nil:
		return 0, err
	case !sameHash(r.TokenHash, hash):
		return 0, s.resetFailed(ctx, "unknown")
	case !now.Before(r.ExpiresAt):
		return 0, s.resetFailed(ctx, "expired")
	}
	u, err := s.user(ctx, r.UserID)
	switch {
	case isNotFound(err) || (err == nil && !u.IsActive):
		return 0, s.resetFailed(ctx, "account")
	case err != nil:
		return 0, err
	}
	fresh, err := s.hasher.Hash(ctx, string(newPassword))
	if err != nil {
		return 0, err
	}
	n, err := s.resets.ResetPassword(ctx, r, fresh, now)
	if isNotFound(err) { // spent by a concurrent reset, or expired meanwhile
		return 0, s.resetFailed(ctx, "spent")
	}
	if err != nil {
		return 0, err
	}
	s.loginSucceeded(ctx, u.Email)
	s.onSelfService(FlowPasswordReset, OutcomeConfirmed)
	s.logger.InfoContext(ctx, "password reset", slog.String("user_id", u.ID), slog.Int("sessions_ended", n))
	return n, nil
}

// resetFailed records a refused reset token and returns the error that
// answers it.
func (s *Service) resetFailed(ctx context.Context, reason string) error {
	s.countResetFailure(ctx, reason)
	return fieldError("token", MsgResetTokenInvalid)
}

// countResetFailure counts a refused reset token as a failure of the flow
// and a security event.
func (s *Service) countResetFailure(ctx context.Context, reason string) {
	s.onSelfService(FlowPasswordReset, OutcomeFailed)
	s.security(ctx, EventPasswordResetFailed, slog.String("reason", reason))
}
