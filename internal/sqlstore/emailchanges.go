package sqlstore

import (
	"context"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

const msgEmailChangeNotFound = "No such email change"

// CreateEmailChange records c, drops the user's expired changes and emits
// email_change.requested and email_change.notice, in one transaction.
// ENotFound when the user does not exist.
func (s *Store) CreateEmailChange(ctx context.Context, c account.EmailChange, request usersvc.EmailChangeEventData, notice usersvc.EmailChangeNoticeEventData) error {
	if !isUUID(c.UserID) {
		return notFound(msgUserNotFound)
	}
	if !goodText(c.TokenHash, c.OldEmail, c.NewEmail) {
		return badText("new_email")
	}
	c.CreatedAt = ts(c.CreatedAt)
	return s.inTx(ctx, "create email change", func(t *tx) error {
		if _, err := one(t, msgUserNotFound, scanID, `SELECT id FROM users WHERE id = ?`+s.d.Lock(false), c.UserID); err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM email_changes WHERE user_id = ? AND expires_at <= ?`, c.UserID, s.d.Time(c.CreatedAt)); err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO email_changes (token_hash, user_id, old_email, new_email, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, c.TokenHash, c.UserID, c.OldEmail, c.NewEmail, s.d.Time(c.CreatedAt), s.d.Time(c.ExpiresAt)); err != nil {
			return err
		}
		t.emit(usersvc.EventEmailChangeRequested, c.UserID, c.CreatedAt, request)
		t.emit(usersvc.EventEmailChangeNotice, c.UserID, c.CreatedAt, notice)
		return nil
	})
}

// EmailChange returns the change of tokenHash, or ENotFound.
func (s *Store) EmailChange(ctx context.Context, tokenHash string) (account.EmailChange, error) {
	var c account.EmailChange
	if !goodText(tokenHash) {
		return c, notFound(msgEmailChangeNotFound)
	}
	_, err := one(s.reader(ctx, "email change"), msgEmailChangeNotFound,
		scanInto(&c.TokenHash, &c.UserID, &c.OldEmail, &c.NewEmail, timeCol{&c.CreatedAt}, timeCol{&c.ExpiresAt}),
		`SELECT token_hash, user_id, old_email, new_email, created_at, expires_at FROM email_changes WHERE token_hash = ?`, tokenHash)
	return c, s.fail(ctx, "email change", err)
}

// ConfirmEmailChange spends c and sets the user's email to c.NewEmail,
// verified at now, in one transaction; ENotFound when c is spent, expired
// or the email changed since; EConflict (nothing changes) when another
// user has c.NewEmail.
func (s *Store) ConfirmEmailChange(ctx context.Context, c account.EmailChange, now time.Time) (*usersvc.User, error) {
	if !isUUID(c.UserID) || !goodText(c.TokenHash, c.OldEmail, c.NewEmail) {
		return nil, notFound(msgEmailChangeNotFound)
	}
	var u usersvc.User
	err := s.inTx(ctx, "confirm email change", func(t *tx) (err error) {
		n, err := t.exec(`DELETE FROM email_changes WHERE token_hash = ? AND user_id = ? AND expires_at > ?`,
			c.TokenHash, c.UserID, s.d.Time(now))
		if err == nil && n == 0 {
			err = notFound(msgEmailChangeNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM email_changes WHERE user_id = ?`, c.UserID); err != nil {
			return err
		}
		if u, err = one(t, msgEmailChangeNotFound, scanUser, `UPDATE users SET email = ?, email_verified_at = ?, updated_at = ?
			WHERE id = ? AND email = ? RETURNING `+userColumns, c.NewEmail, s.d.Time(now), s.d.Time(now), c.UserID, c.OldEmail); err != nil {
			return err
		}
		t.emit(usersvc.EventUserUpdated, c.UserID, u.UpdatedAt, usersvc.NewUserEventData(&u))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}
