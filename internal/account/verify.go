package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/usersvc/usersvc"
)

// DefaultVerificationTTL is how long a verification code (and link) is
// valid when Options.VerificationTTL is zero.
const DefaultVerificationTTL = 15 * time.Minute

// MaxVerificationAttempts is how many codes a verification accepts: the
// last wrong one ends it.
const MaxVerificationAttempts = 5

// FlowVerification is the self-service flow of verifying an address.
const FlowVerification = "verification"

// Messages of verification.
const (
	MsgVerificationChannel = "Must be email or sms"
	MsgNoPhone             = "The user has no phone number to verify"
	MsgCodeFormat          = "Must be 6 digits"
	MsgCodeInvalid         = "Code is invalid or expired"
)

// EventVerificationFailed is the security event of a refused code or link.
const EventVerificationFailed = "verification_failed"

// newCode returns six decimal digits, uniformly from r.
func newCode(r interface{ Read([]byte) (int, error) }) (string, error) {
	n, err := rand.Int(r, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// codeHash is the hash under which the code of the user's verification of
// channel is kept.
func codeHash(userID, channel, code string) string {
	sum := sha256.Sum256([]byte(userID + ":" + channel + ":" + code))
	return hex.EncodeToString(sum[:])
}

func validCode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for _, c := range []byte(code) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// RequestVerification starts a verification of the user's address on
// channel (email or sms): it emits verification.requested with a fresh
// six-digit code (and, for email, a link token), valid for
// Options.VerificationTTL, replacing any verification of that channel
// under way. Only the user may ask. Requests are rate-limited per user.
// It returns when the code expires.
func (s *Service) RequestVerification(ctx context.Context, p Principal, userID, channel string) (time.Time, error) {
	if err := s.authorize(ctx, p, userID, Owner); err != nil {
		return time.Time{}, err
	}
	if channel != usersvc.ChannelEmail && channel != usersvc.ChannelSMS {
		return time.Time{}, fieldError("channel", MsgVerificationChannel)
	}
	u, err := s.user(ctx, userID)
	if err != nil {
		return time.Time{}, err
	}
	address := u.Email
	if channel == usersvc.ChannelSMS {
		if u.Phone == nil || *u.Phone == "" {
			return time.Time{}, fieldError("channel", MsgNoPhone)
		}
		address = *u.Phone
	}
	if err := s.allowed(ctx, s.limits.VerifyUser, "verify_user", userID); err != nil {
		return time.Time{}, err
	}
	code, err := newCode(s.rand)
	if err != nil {
		return time.Time{}, err
	}
	now := s.clock()
	v := Verification{UserID: userID, Channel: channel, Address: address, CodeHash: codeHash(userID, channel, code),
		CreatedAt: now, ExpiresAt: now.Add(s.verifyTTL)}
	data := usersvc.VerificationEventData{UserID: userID, Channel: channel, Address: address, Locale: u.Locale,
		Code: code, ExpiresAt: v.ExpiresAt}
	if channel == usersvc.ChannelEmail {
		token, hash, err := newSecret(s.rand)
		if err != nil {
			return time.Time{}, err
		}
		v.TokenHash, data.Token, data.Link = hash, &token, link(s.verifyURL, token)
	}
	if err := s.verifications.CreateVerification(ctx, v, data); err != nil {
		return time.Time{}, notFound(err)
	}
	s.onSelfService(FlowVerification, OutcomeRequested)
	s.logger.DebugContext(ctx, "verification requested", slog.String("user_id", userID), slog.String("channel", channel),
		slog.String("code", code), slog.Any("link", data.Link))
	return v.ExpiresAt, nil
}

// ConfirmVerification marks the user's address on channel verified with
// the code of RequestVerification. Only the user may confirm. Every code
// presented counts against the verification, before it is checked, so that
// no more than MaxVerificationAttempts are ever checked; the last wrong
// one ends it. A wrong, expired or spent code, or one for an address that
// changed since, is EInvalid on "code" and changes nothing else.
func (s *Service) ConfirmVerification(ctx context.Context, p Principal, userID, channel, code string) (*usersvc.User, error) {
	if err := s.authorize(ctx, p, userID, Owner); err != nil {
		return nil, err
	}
	fe := usersvc.FieldErrors{}
	if channel != usersvc.ChannelEmail && channel != usersvc.ChannelSMS {
		fe.Add("channel", MsgVerificationChannel)
	}
	if !validCode(code) {
		fe.Add("code", MsgCodeFormat)
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	now := s.clock()
	v, err := s.verifications.SpendVerificationAttempt(ctx, userID, channel, MaxVerificationAttempts, now)
	if isNotFound(err) {
		return nil, s.verificationFailed(ctx, "code", "unknown")
	}
	if err != nil {
		return nil, err
	}
	if !sameHash(v.CodeHash, codeHash(userID, channel, code)) {
		if v.Attempts >= MaxVerificationAttempts {
			if err := s.verifications.DeleteVerification(ctx, userID, channel); err != nil {
				return nil, err
			}
		}
		return nil, s.verificationFailed(ctx, "code", "wrong")
	}
	return s.confirm(ctx, v, "code", now)
}

// ConfirmVerificationLink marks an email verified with the token of the
// link of RequestVerification; it needs no credentials. A token that is
// unknown, spent, expired, malformed, or for an address that changed
// since, is EInvalid on "token" and changes nothing.
func (s *Service) ConfirmVerificationLink(ctx context.Context, token string) (*usersvc.User, error) {
	hash, ok := parseSecret(token)
	if !ok {
		return nil, s.verificationFailed(ctx, "token", "malformed")
	}
	now := s.clock()
	v, err := s.verifications.VerificationByToken(ctx, hash)
	switch {
	case isNotFound(err):
		return nil, s.verificationFailed(ctx, "token", "unknown")
	case err != nil:
		return nil, err
	case !sameHash(v.TokenHash, hash) || !now.Before(v.ExpiresAt):
		return nil, s.verificationFailed(ctx, "token", "expired")
	}
	return s.confirm(ctx, v, "token", now)
}

// confirm spends v and marks its address verified.
func (s *Service) confirm(ctx context.Context, v Verification, field string, now time.Time) (*usersvc.User, error) {
	u, err := s.verifications.ConfirmVerification(ctx, v, now)
	if isNotFound(err) {
		return nil, s.verificationFailed(ctx, field, "spent")
	}
	if err != nil {
		return nil, err
	}
	s.onSelfService(FlowVerification, OutcomeConfirmed)
	s.logger.InfoContext(ctx, "address verified", slog.String("user_id", v.UserID), slog.String("channel", v.Channel))
	return u, nil
}

// verificationFailed counts a refused code or token and returns the error
// that answers it, on field.
func (s *Service) verificationFailed(ctx context.Context, field, reason string) error {
	s.onSelfService(FlowVerification, OutcomeFailed)
	s.security(ctx, EventVerificationFailed, slog.String("reason", reason))
	msg := MsgCodeInvalid
	if field == "token" {
		msg = MsgResetTokenInvalid
	}
	return fieldError(field, msg)
}

// fieldError is EInvalid with one message on one field.
func fieldError(field, msg string) error {
	fe := usersvc.FieldErrors{}
	fe.Add(field, msg)
	return fe.Err()
}
