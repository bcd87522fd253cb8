package sqlstore

import (
	"context"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

const msgVerificationNotFound = "No such verification"

const verificationColumns = `user_id, channel, address, code_hash, COALESCE(token_hash, ''), attempts, created_at, expires_at`

func scanVerification(r rowScanner) (account.Verification, error) {
	var v account.Verification
	return v, r.Scan(&v.UserID, &v.Channel, &v.Address, &v.CodeHash, &v.TokenHash, &v.Attempts, timeCol{&v.CreatedAt}, timeCol{&v.ExpiresAt})
}

// nullText is s, or NULL when it is empty.
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateVerification replaces the user's verification of v.Channel by v
// and emits verification.requested with data, in one transaction.
// ENotFound when the user does not exist.
func (s *Store) CreateVerification(ctx context.Context, v account.Verification, data usersvc.VerificationEventData) error {
	if !isUUID(v.UserID) {
		return notFound(msgUserNotFound)
	}
	if !goodText(v.Channel, v.Address, v.CodeHash, v.TokenHash) {
		return badText("verification")
	}
	v.CreatedAt = ts(v.CreatedAt)
	return s.inTx(ctx, "create verification", func(t *tx) error {
		if _, err := one(t, msgUserNotFound, scanID, `SELECT id FROM users WHERE id = ?`+s.d.Lock(false), v.UserID); err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM verifications WHERE user_id = ? AND channel = ?`, v.UserID, v.Channel); err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO verifications (user_id, channel, address, code_hash, token_hash, attempts, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, 0, ?, ?)`, v.UserID, v.Channel, v.Address, v.CodeHash, nullText(v.TokenHash),
			s.d.Time(v.CreatedAt), s.d.Time(v.ExpiresAt)); err != nil {
			return err
		}
		t.emit(usersvc.EventVerificationRequested, v.UserID, v.CreatedAt, data)
		return nil
	})
}

// SpendVerificationAttempt counts one attempt at the user's live
// verification of channel (unexpired at now, with fewer than max
// attempts) and returns it as it now is; ENotFound when there is none.
// Counting before the check bounds the guesses, however many run at once.
func (s *Store) SpendVerificationAttempt(ctx context.Context, userID, channel string, max int, now time.Time) (v account.Verification, err error) {
	if !isUUID(userID) || !goodText(channel) {
		return v, notFound(msgVerificationNotFound)
	}
	err = s.inTx(ctx, "spend verification attempt", func(t *tx) (err error) {
		v, err = one(t, msgVerificationNotFound, scanVerification, `UPDATE verifications SET attempts = attempts + 1
			WHERE user_id = ? AND channel = ? AND attempts < ? AND expires_at > ? RETURNING `+verificationColumns,
			userID, channel, max, s.d.Time(now))
		return err
	})
	return v, err
}

// VerificationByToken returns the verification of the link token hash,
// or ENotFound.
func (s *Store) VerificationByToken(ctx context.Context, tokenHash string) (account.Verification, error) {
	if !goodText(tokenHash) || tokenHash == "" {
		return account.Verification{}, notFound(msgVerificationNotFound)
	}
	v, err := one(s.reader(ctx, "verification by token"), msgVerificationNotFound, scanVerification,
		`SELECT `+verificationColumns+` FROM verifications WHERE token_hash = ?`, tokenHash)
	return v, s.fail(ctx, "verification by token", err)
}

// DeleteVerification ends the user's verification of channel, if any.
func (s *Store) DeleteVerification(ctx context.Context, userID, channel string) error {
	if !isUUID(userID) || !goodText(channel) {
		return nil
	}
	_, err := s.execTx(ctx, "delete verification", "", `DELETE FROM verifications WHERE user_id = ? AND channel = ?`, userID, channel)
	return err
}

// ConfirmVerification spends v (which must still be the user's
// verification of its channel, with the same code) and marks v.Address
// verified at now, while it is still the user's address of the channel,
// and emits user.updated, in one transaction. ENotFound, changing
// nothing, when v is gone or the address changed since.
func (s *Store) ConfirmVerification(ctx context.Context, v account.Verification, now time.Time) (*usersvc.User, error) {
	col, addr := "email_verified_at", "email"
	if v.Channel == usersvc.ChannelSMS {
		col, addr = "phone_verified_at", "phone"
	}
	if !isUUID(v.UserID) || !goodText(v.Address, v.CodeHash) {
		return nil, notFound(msgVerificationNotFound)
	}
	var u usersvc.User
	err := s.inTx(ctx, "confirm verification", func(t *tx) (err error) {
		n, err := t.exec(`DELETE FROM verifications WHERE user_id = ? AND channel = ? AND code_hash = ?`, v.UserID, v.Channel, v.CodeHash)
		if err == nil && n == 0 {
			err = notFound(msgVerificationNotFound)
		}
		if err != nil {
			return err
		}
		if u, err = one(t, msgVerificationNotFound, scanUser, `UPDATE users SET `+col+` = ?, updated_at = ?
			WHERE id = ? AND `+addr+` = ? RETURNING `+userColumns, s.d.Time(now), s.d.Time(now), v.UserID, v.Address); err != nil {
			return err
		}
		t.emit(usersvc.EventUserUpdated, v.UserID, u.UpdatedAt, usersvc.NewUserEventData(&u))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}
