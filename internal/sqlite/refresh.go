package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/usersvc/usersvc/internal/account"
)

// CreateRefreshFamily starts a family with its first token. ENotFound when
// the user does not exist.
func (s *Store) CreateRefreshFamily(ctx context.Context, f account.RefreshFamily, first account.RefreshToken) error {
	if first.FamilyID != f.ID {
		return fmt.Errorf("sqlite: create refresh family: first token names family %q, not %q", first.FamilyID, f.ID)
	}
	return s.writeTx(ctx, "create refresh family", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO refresh_families (id, user_id, created_at, expires_at)
			VALUES (?, ?, ?, ?)`, f.ID, f.UserID, micros(f.CreatedAt), micros(f.ExpiresAt))
		if isForeignKey(err) {
			return notFound(msgUserNotFound)
		}
		if err != nil {
			return err
		}
		return insertRefreshToken(ctx, tx, first)
	})
}

// AddRefreshToken records a successor in an existing family. ENotFound when
// the family does not exist (any more).
func (s *Store) AddRefreshToken(ctx context.Context, t account.RefreshToken) error {
	return s.writeTx(ctx, "add refresh token", func(tx *sql.Tx) error {
		err := insertRefreshToken(ctx, tx, t)
		if isForeignKey(err) {
			return notFound(msgFamilyNotFound)
		}
		return err
	})
}

func insertRefreshToken(ctx context.Context, tx *sql.Tx, t account.RefreshToken) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens
		(jti, family_id, user_id, parent_jti, issued_at, expires_at)
		VALUES (?, ?, ?, NULLIF(?, ''), ?, ?)`,
		t.JTI, t.FamilyID, t.UserID, t.ParentJTI, micros(t.IssuedAt), micros(t.ExpiresAt))
	return err
}

const refreshStateQuery = `SELECT t.jti, t.family_id, t.user_id, COALESCE(t.parent_jti, ''),
		t.issued_at, t.expires_at, t.spent_at IS NOT NULL, f.expires_at, f.revoked_at IS NOT NULL
	FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
	WHERE t.jti = ?`

func scanRefreshState(r rowScanner) (account.RefreshState, error) {
	var (
		st                          account.RefreshState
		issued, expires, famExpires int64
	)
	err := r.Scan(&st.Token.JTI, &st.Token.FamilyID, &st.Token.UserID, &st.Token.ParentJTI,
		&issued, &expires, &st.AlreadySpent, &famExpires, &st.FamilyRevoked)
	if errors.Is(err, sql.ErrNoRows) {
		return st, notFound(msgRefreshNotFound)
	}
	if err != nil {
		return st, err
	}
	st.Token.IssuedAt, st.Token.ExpiresAt, st.FamilyExpiresAt = fromMicros(issued), fromMicros(expires), fromMicros(famExpires)
	return st, nil
}

// SpendRefreshToken marks the token spent at now. The conditional update
// runs under the write lock, so of concurrent calls for one jti exactly one
// sees AlreadySpent false. ENotFound when the jti is unknown.
func (s *Store) SpendRefreshToken(ctx context.Context, jti string, now time.Time) (account.RefreshState, error) {
	var st account.RefreshState
	err := s.writeTx(ctx, "spend refresh token", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE refresh_tokens SET spent_at = ? WHERE jti = ? AND spent_at IS NULL`, micros(now), jti)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if st, err = scanRefreshState(tx.QueryRowContext(ctx, refreshStateQuery, jti)); err != nil {
			return err
		}
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
	st, err := scanRefreshState(s.read.QueryRowContext(ctx, refreshStateQuery, jti))
	if err != nil {
		return account.RefreshState{}, s.fail(ctx, "refresh token state", err)
	}
	return st, nil
}

// RevokeRefreshFamily marks the family revoked. A family revoked before
// keeps its first revocation time; an unknown family (one that expired and
// was deleted) is already as good as revoked, so neither is an error.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error {
	_, err := s.write.ExecContext(ctx,
		`UPDATE refresh_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, micros(now), familyID)
	return s.fail(ctx, "revoke refresh family", err)
}

// DeleteExpiredRefreshTokens removes the families that expired before t,
// with their tokens, and returns how many families went.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, t time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM refresh_families WHERE expires_at < ?`, micros(t))
	if err != nil {
		return 0, s.fail(ctx, "delete expired refresh tokens", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.fail(ctx, "delete expired refresh tokens", err)
	}
	return int(n), nil
}

// RevokeUserRefreshFamilies revokes every unrevoked family of the user except
// exceptFamilyID (which may be empty), and returns how many it revoked.
func (s *Store) RevokeUserRefreshFamilies(ctx context.Context, userID, exceptFamilyID string, now time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, `UPDATE refresh_families SET revoked_at = ?
		WHERE user_id = ? AND id <> ? AND revoked_at IS NULL`, micros(now), userID, exceptFamilyID)
	if err != nil {
		return 0, s.fail(ctx, "revoke user refresh families", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.fail(ctx, "revoke user refresh families", err)
	}
	return int(n), nil
}
