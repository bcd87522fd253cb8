package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// CreateRefreshFamily starts a family with its first token, only while the
// user is active and its credential version is still credVersion (the one
// read with the password hash that the login checked). It reads the
// user's row under a share lock, so a password change, a disable or a
// delete either runs wholly before it (and the login gets
// account.ErrCredentialChanged) or wholly after it (and revokes or
// removes the new family).
func (s *Store) CreateRefreshFamily(ctx context.Context, f account.RefreshFamily, first account.RefreshToken, credVersion int64) error {
	if first.FamilyID != f.ID {
		return fmt.Errorf("%s: create refresh family: first token names family %q, not %q", s.d.Name(), first.FamilyID, f.ID)
	}
	if !isUUID(f.UserID) {
		return account.ErrCredentialChanged
	}
	return s.inTx(ctx, "create refresh family", func(t *tx) error {
		var one int
		err := t.row(`SELECT 1 FROM users WHERE id = ? AND cred_version = ? AND is_active = ?`+s.d.LockForShare(),
			[]any{f.UserID, credVersion, true}, &one)
		if errors.Is(err, sql.ErrNoRows) {
			return account.ErrCredentialChanged
		}
		if err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO refresh_families (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			f.ID, f.UserID, s.d.Time(f.CreatedAt), s.d.Time(f.ExpiresAt)); err != nil {
			return err
		}
		return t.insertRefreshToken(first)
	})
}

// AddRefreshToken records a successor in an existing family. ENotFound when
// the family does not exist (any more).
func (s *Store) AddRefreshToken(ctx context.Context, rt account.RefreshToken) error {
	if !isUUID(rt.UserID) {
		return notFound(msgFamilyNotFound)
	}
	err := s.inTx(ctx, "add refresh token", func(t *tx) error { return t.insertRefreshToken(rt) })
	if usersvc.ErrorCode(err) == usersvc.ENotFound { // the family's foreign key
		return notFound(msgFamilyNotFound)
	}
	return err
}

func (t *tx) insertRefreshToken(rt account.RefreshToken) error {
	d := t.s.d
	_, err := t.exec(`INSERT INTO refresh_tokens (jti, family_id, user_id, parent_jti, issued_at, expires_at)
		VALUES (?, ?, ?, NULLIF(?, ''), ?, ?)`,
		rt.JTI, rt.FamilyID, rt.UserID, rt.ParentJTI, d.Time(rt.IssuedAt), d.Time(rt.ExpiresAt))
	return err
}

const refreshStateQuery = `SELECT t.jti, t.family_id, t.user_id, COALESCE(t.parent_jti, ''),
		t.issued_at, t.expires_at, t.spent_at IS NOT NULL, f.expires_at, f.revoked_at IS NOT NULL
	FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
	WHERE t.jti = ?`

func scanRefreshState(r rowScanner) (account.RefreshState, error) {
	var st account.RefreshState
	err := r.Scan(&st.Token.JTI, &st.Token.FamilyID, &st.Token.UserID, &st.Token.ParentJTI,
		timeCol{&st.Token.IssuedAt}, timeCol{&st.Token.ExpiresAt}, &st.AlreadySpent,
		timeCol{&st.FamilyExpiresAt}, &st.FamilyRevoked)
	if errors.Is(err, sql.ErrNoRows) {
		return st, notFound(msgRefreshNotFound)
	}
	return st, err
}

// SpendRefreshToken marks the token spent at now. The conditional update
// locks the token's row, so of concurrent calls for one jti exactly one
// sees AlreadySpent false. ENotFound when the jti is unknown.
func (s *Store) SpendRefreshToken(ctx context.Context, jti string, now time.Time) (account.RefreshState, error) {
	var st account.RefreshState
	if !goodText(jti) {
		return st, notFound(msgRefreshNotFound)
	}
	err := s.inTx(ctx, "spend refresh token", func(t *tx) error {
		n, err := t.exec(`UPDATE refresh_tokens SET spent_at = ? WHERE jti = ? AND spent_at IS NULL`, s.d.Time(now), jti)
		if err != nil {
			return err
		}
		rows, err := t.query(refreshStateQuery, jti)
		if err != nil {
			return err
		}
		states, err := collect(rows, func(r *sql.Rows) (account.RefreshState, error) { return scanRefreshState(r) })
		if err != nil {
			return err
		}
		if len(states) == 0 {
			return notFound(msgRefreshNotFound)
		}
		st = states[0]
		st.AlreadySpent = n == 0
		return nil
	})
	if err != nil {
		return account.RefreshState{}, err
	}
	return st, nil
}

// RefreshTokenState returns what is known of a token without changing it,
// or ENotFound. AlreadySpent tells whether it has been spent.
func (s *Store) RefreshTokenState(ctx context.Context, jti string) (account.RefreshState, error) {
	if !goodText(jti) {
		return account.RefreshState{}, notFound(msgRefreshNotFound)
	}
	st, err := scanRefreshState(s.read.QueryRowContext(ctx, s.q(refreshStateQuery), jti))
	if err != nil {
		return account.RefreshState{}, s.fail(ctx, "refresh token state", err)
	}
	return st, nil
}

// RevokeRefreshFamily marks the family revoked. A family revoked before
// keeps its first revocation time; an unknown family (one that expired and
// was deleted) is already as good as revoked, so neither is an error.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error {
	if !goodText(familyID) {
		return nil
	}
	return s.inTx(ctx, "revoke refresh family", func(t *tx) error {
		_, err := t.exec(`UPDATE refresh_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
			s.d.Time(now), familyID)
		return err
	})
}

// DeleteExpiredRefreshTokens removes the families that expired before t,
// with their tokens, and returns how many families went.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, "delete expired refresh tokens", func(t *tx) error {
		var err error
		n, err = t.exec(`DELETE FROM refresh_families WHERE expires_at < ?`, s.d.Time(before))
		return err
	})
	return int(n), err
}

// RevokeUserRefreshFamilies revokes every unrevoked family of the user
// except exceptFamilyID (which may be empty), and returns how many it
// revoked.
func (s *Store) RevokeUserRefreshFamilies(ctx context.Context, userID, exceptFamilyID string, now time.Time) (int, error) {
	if !isUUID(userID) {
		return 0, nil
	}
	var n int
	err := s.inTx(ctx, "revoke user refresh families", func(t *tx) error {
		var err error
		n, err = t.revokeFamilies(userID, exceptFamilyID, now)
		return err
	})
	return n, err
}

func (t *tx) revokeFamilies(userID, exceptFamilyID string, now time.Time) (int, error) {
	n, err := t.exec(`UPDATE refresh_families SET revoked_at = ?
		WHERE user_id = ? AND id <> ? AND revoked_at IS NULL`, t.s.d.Time(now), userID, exceptFamilyID)
	return int(n), err
}
