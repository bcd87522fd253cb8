package sqlstore

import (
	"context"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

const msgResetNotFound = "No such password reset"

// CreatePasswordReset records r and emits password_reset.requested with
// data, in one transaction that also removes the user's expired resets.
// ENotFound when the user does not exist.
func (s *Store) CreatePasswordReset(ctx context.Context, r account.PasswordReset, data usersvc.PasswordResetEventData) error {
	if !isUUID(r.UserID) {
		return notFound(msgUserNotFound)
	}
	if !goodText(r.TokenHash) {
		return badText("token")
	}
	r.CreatedAt = ts(r.CreatedAt)
	return s.inTx(ctx, "create password reset", func(t *tx) error {
		if _, err := one(t, msgUserNotFound, scanID, `SELECT id FROM users WHERE id = ?`+s.d.Lock(false), r.UserID); err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM password_resets WHERE user_id = ? AND expires_at <= ?`, r.UserID, s.d.Time(r.CreatedAt)); err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			r.TokenHash, r.UserID, s.d.Time(r.CreatedAt), s.d.Time(r.ExpiresAt)); err != nil {
			return err
		}
		t.emit(usersvc.EventPasswordResetRequested, r.UserID, r.CreatedAt, data)
		return nil
	})
}

// PasswordReset returns the reset whose token hash is tokenHash, or
// ENotFound.
func (s *Store) PasswordReset(ctx context.Context, tokenHash string) (account.PasswordReset, error) {
	var r account.PasswordReset
	if !goodText(tokenHash) {
		return r, notFound(msgResetNotFound)
	}
	_, err := one(s.reader(ctx, "password reset"), msgResetNotFound,
		scanInto(&r.TokenHash, &r.UserID, timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt}),
		`SELECT token_hash, user_id, created_at, expires_at FROM password_resets WHERE token_hash = ?`, tokenHash)
	return r, s.fail(ctx, "password reset", err)
}

// ResetPassword spends r while it is unspent and unexpired at now (else
// ENotFound, and nothing changes) and, in the same transaction, removes
// the user's other resets and changes the password as ChangePassword does,
// keeping no session. It returns how many sessions it ended.
func (s *Store) ResetPassword(ctx context.Context, r account.PasswordReset, hash string, now time.Time) (revoked int, err error) {
	if !isUUID(r.UserID) || !goodText(r.TokenHash) {
		return 0, notFound(msgResetNotFound)
	}
	err = s.inTx(ctx, "reset password", func(t *tx) error {
		n, err := t.exec(`DELETE FROM password_resets WHERE token_hash = ? AND user_id = ? AND expires_at > ?`,
			r.TokenHash, r.UserID, s.d.Time(now))
		if err == nil && n == 0 {
			err = notFound(msgResetNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM password_resets WHERE user_id = ?`, r.UserID); err != nil {
			return err
		}
		revoked, err = t.changePassword(r.UserID, hash, "", now)
		return err
	})
	return revoked, err
}
