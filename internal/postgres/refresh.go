package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// CreateRefreshFamily starts a family with its first token. ENotFound when
// the user does not exist.
func (s *Store) CreateRefreshFamily(ctx context.Context, f account.RefreshFamily, first account.RefreshToken) error {
	if first.FamilyID != f.ID {
		return fmt.Errorf("postgres: create refresh family: first token names family %q, not %q", first.FamilyID, f.ID)
	}
	if !isUUID(f.UserID) {
		return notFound(msgUserNotFound)
	}
	return s.inTx(ctx, "create refresh family", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO refresh_families (id, user_id, created_at, expires_at)
			VALUES ($1, $2, $3, $4)`, f.ID, f.UserID, ts(f.CreatedAt), ts(f.ExpiresAt))
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
	if !isUUID(t.UserID) {
		return notFound(msgUserNotFound)
	}
	return s.inTx(ctx, "add refresh token", func(tx pgx.Tx) error {
		err := insertRefreshToken(ctx, tx, t)
		if isForeignKey(err) {
			return notFound(msgFamilyNotFound)
		}
		return err
	})
}

func insertRefreshToken(ctx context.Context, tx pgx.Tx, t account.RefreshToken) error {
	_, err := tx.Exec(ctx, `INSERT INTO refresh_tokens
		(jti, family_id, user_id, parent_jti, issued_at, expires_at)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6)`,
		t.JTI, t.FamilyID, t.UserID, t.ParentJTI, ts(t.IssuedAt), ts(t.ExpiresAt))
	return err
}

func scanRefreshState(r pgx.Row) (account.RefreshState, error) {
	var st account.RefreshState
	err := r.Scan(&st.Token.JTI, &st.Token.FamilyID, &st.Token.UserID, &st.Token.ParentJTI,
		&st.Token.IssuedAt, &st.Token.ExpiresAt, &st.AlreadySpent, &st.FamilyExpiresAt, &st.FamilyRevoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, notFound(msgRefreshNotFound)
	}
	if err != nil {
		return st, err
	}
	st.Token.IssuedAt, st.Token.ExpiresAt, st.FamilyExpiresAt = st.Token.IssuedAt.UTC(), st.Token.ExpiresAt.UTC(), st.FamilyExpiresAt.UTC()
	return st, nil
}

// SpendRefreshToken marks the token spent at now. The update is
// conditional on the token being unspent; PostgreSQL re-checks that
// condition after waiting for a concurrent update of the row, so of
// concurrent calls for one jti exactly one sees AlreadySpent false.
// ENotFound when the jti is unknown.
func (s *Store) SpendRefreshToken(ctx context.Context, jti string, now time.Time) (account.RefreshState, error) {
	st, err := scanRefreshState(s.pool.QueryRow(ctx, `UPDATE refresh_tokens t SET spent_at = $2
		FROM refresh_families f
		WHERE t.jti = $1 AND t.spent_at IS NULL AND f.id = t.family_id
		RETURNING t.jti, t.family_id, t.user_id, COALESCE(t.parent_jti, ''),
			t.issued_at, t.expires_at, false, f.expires_at, f.revoked_at IS NOT NULL`, jti, ts(now)))
	if err == nil {
		return st, nil
	}
	if usersvc.ErrorCode(err) != usersvc.ENotFound {
		return account.RefreshState{}, s.fail(ctx, "spend refresh token", err)
	}
	// Unknown, or spent before: tell which.
	st, err = s.RefreshTokenState(ctx, jti)
	if err != nil {
		return account.RefreshState{}, err
	}
	st.AlreadySpent = true
	return st, nil
}

const refreshStateQuery = `SELECT t.jti, t.family_id, t.user_id, COALESCE(t.parent_jti, ''),
		t.issued_at, t.expires_at, t.spent_at IS NOT NULL, f.expires_at, f.revoked_at IS NOT NULL
	FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
	WHERE t.jti = $1`

// RefreshTokenState returns what is known of a token without changing it,
// or ENotFound. AlreadySpent tells whether it has been spent.
func (s *Store) RefreshTokenState(ctx context.Context, jti string) (account.RefreshState, error) {
	st, err := scanRefreshState(s.pool.QueryRow(ctx, refreshStateQuery, jti))
	if err != nil {
		return account.RefreshState{}, s.fail(ctx, "refresh token state", err)
	}
	return st, nil
}

// RevokeRefreshFamily marks the family revoked. A family revoked before
// keeps its first revocation time; an unknown family (one that expired and
// was deleted) is already as good as revoked, so neither is an error.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error {
	_, err := s.pool.Exec(ctx,
		`UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ts(now), familyID)
	return s.fail(ctx, "revoke refresh family", err)
}

// DeleteExpiredRefreshTokens removes the families that expired before t,
// with their tokens, and returns how many families went.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, t time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM refresh_families WHERE expires_at < $1`, ts(t))
	if err != nil {
		return 0, s.fail(ctx, "delete expired refresh tokens", err)
	}
	return int(tag.RowsAffected()), nil
}

// RevokeUserRefreshFamilies revokes every unrevoked family of the user
// except exceptFamilyID (which may be empty), and returns how many it
// revoked.
func (s *Store) RevokeUserRefreshFamilies(ctx context.Context, userID, exceptFamilyID string, now time.Time) (int, error) {
	if !isUUID(userID) {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE refresh_families SET revoked_at = $1
		WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL`, ts(now), userID, exceptFamilyID)
	if err != nil {
		return 0, s.fail(ctx, "revoke user refresh families", err)
	}
	return int(tag.RowsAffected()), nil
}
