package sqlstore

import (
	"context"
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
		found, err := all(t, scanID, `SELECT id FROM users WHERE id = ? AND cred_version = ? AND is_active = ?`+
			s.d.Lock(true), f.UserID, credVersion, true)
		if err == nil && len(found) == 0 {
			err = account.ErrCredentialChanged
		}
		if err == nil {
			_, err = t.exec(`INSERT INTO refresh_families (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
				f.ID, f.UserID, s.d.Time(f.CreatedAt), s.d.Time(f.ExpiresAt))
		}
		if err != nil {
			return err
		}
		return t.insertRefreshToken(first)
	})
}

// AddRefreshToken records a successor in an existing family. ENotFound when
// the family does not exist (any more).
func (s *Store) AddRefreshToken(ctx context.Context, rt account.RefreshToken) error {
	err := s.inTx(ctx, "add refresh token", func(t *tx) error { return t.insertRefreshToken(rt) })
	if usersvc.ErrorCode(err) == usersvc.ENotFound || !isUUID(rt.UserID) { // the family's foreign key
		return notFound(msgFamilyNotFound)
	}
	return err
}

func (t *tx) insertRefreshToken(rt account.RefreshToken) error {
	_, err := t.exec(`INSERT INTO refresh_tokens (jti, family_id, user_id, parent_jti, issued_at, expires_at)
		VALUES (?, ?, ?, NULLIF(?, ''), ?, ?)`,
		rt.JTI, rt.FamilyID, rt.UserID, rt.ParentJTI, t.s.d.Time(rt.IssuedAt), t.s.d.Time(rt.ExpiresAt))
	return err
}

const refreshStateQuery = `SELECT t.jti, t.family_id, t.user_id, COALESCE(t.parent_jti, ''),
		t.issued_at, t.expires_at, t.spent_at IS NOT NULL, f.expires_at, f.revoked_at IS NOT NULL
	FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
	WHERE t.jti = ?`

func scanRefreshState(r rowScanner) (st account.RefreshState, err error) {
	return st, r.Scan(&st.Token.JTI, &st.Token.FamilyID, &st.Token.UserID, &st.Token.ParentJTI,
		timeCol{&st.Token.IssuedAt}, timeCol{&st.Token.ExpiresAt}, &st.AlreadySpent,
		timeCol{&st.FamilyExpiresAt}, &st.FamilyRevoked)
}

// SpendRefreshToken marks the token spent at now. The conditional update
// locks the token's row, so of concurrent calls for one jti exactly one
// sees AlreadySpent false. ENotFound when the jti is unknown.
func (s *Store) SpendRefreshToken(ctx context.Context, jti string, now time.Time) (st account.RefreshState, err error) {
	if !goodText(jti) {
		return st, notFound(msgRefreshNotFound)
	}
	err = s.inTx(ctx, "spend refresh token", func(t *tx) error {
		n, err := t.exec(`UPDATE refresh_tokens SET spent_at = ? WHERE jti = ? AND spent_at IS NULL`, s.d.Time(now), jti)
		if err == nil {
			st, err = one(t, msgRefreshNotFound, scanRefreshState, refreshStateQuery, jti)
		}
		st.AlreadySpent = n == 0
		return err
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
	st, err := one(s.reader(ctx, "refresh token state"), msgRefreshNotFound, scanRefreshState, refreshStateQuery, jti)
	return st, s.fail(ctx, "refresh token state", err)
}

// RevokeRefreshFamily marks the family revoked. A family revoked before
// keeps its first revocation time; an unknown family (one that expired and
// was deleted) is already as good as revoked, so neither is an error.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error {
	if !goodText(familyID) {
		return nil
	}
	_, err := s.execTx(ctx, "revoke refresh family", "",
		`UPDATE refresh_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, s.d.Time(now), familyID)
	return err
}

// DeleteExpiredRefreshTokens removes the families that expired before t,
// with their tokens, and returns how many families went.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int, error) {
	n, err := s.execTx(ctx, "delete expired refresh tokens", "", `DELETE FROM refresh_families WHERE expires_at < ?`, s.d.Time(before))
	return int(n), err
}

func (t *tx) revokeFamilies(userID, exceptFamilyID string, now time.Time) (int, error) {
	n, err := t.exec(`UPDATE refresh_families SET revoked_at = ?
		WHERE user_id = ? AND id <> ? AND revoked_at IS NULL`, t.s.d.Time(now), userID, exceptFamilyID)
	return int(n), err
}
