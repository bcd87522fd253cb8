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
		if err == nil && !goodText(f.UserAgent, f.ClientAddr) {
			err = badText("user_agent")
		}
		if err == nil {
			_, err = t.exec(`INSERT INTO refresh_families (id, user_id, created_at, expires_at, last_used_at, user_agent, client_addr)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, f.ID, f.UserID, s.d.Time(f.CreatedAt), s.d.Time(f.ExpiresAt),
				s.d.Time(f.CreatedAt), f.UserAgent, f.ClientAddr)
		}
		if err != nil {
			return err
		}
		return t.insertRefreshToken(first)
	})
}

func (t *tx) insertRefreshToken(rt account.RefreshToken) error {
	_, err := t.exec(`INSERT INTO refresh_tokens (jti, family_id, user_id, parent_jti, issued_at, expires_at)
		VALUES (?, ?, ?, NULLIF(?, ''), ?, ?)`,
		rt.JTI, rt.FamilyID, rt.UserID, rt.ParentJTI, t.s.d.Time(rt.IssuedAt), t.s.d.Time(rt.ExpiresAt))
	return err
}

const refreshStateQuery = `SELECT t.jti, t.family_id, t.user_id, COALESCE(t.parent_jti, ''),
		t.issued_at, t.expires_at, t.spent_at, f.expires_at, f.revoked_at IS NOT NULL,
		COALESCE(n.jti, ''), n.issued_at, n.expires_at, n.spent_at IS NOT NULL
	FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
	LEFT JOIN refresh_tokens n ON n.jti = t.successor_jti
	WHERE t.jti = ?`

func scanRefreshState(r rowScanner) (st account.RefreshState, err error) {
	var (
		next                    account.RefreshToken
		nextIssued, nextExpires nullTime
		nextSpent               *bool
		spent                   nullTime
	)
	err = r.Scan(&st.Token.JTI, &st.Token.FamilyID, &st.Token.UserID, &st.Token.ParentJTI,
		timeCol{&st.Token.IssuedAt}, timeCol{&st.Token.ExpiresAt}, &spent, timeCol{&st.FamilyExpiresAt},
		&st.FamilyRevoked, &next.JTI, &nextIssued, &nextExpires, &nextSpent)
	st.SpentAt, st.AlreadySpent = spent.t, !spent.t.IsZero()
	if next.JTI != "" {
		next.FamilyID, next.UserID, next.ParentJTI = st.Token.FamilyID, st.Token.UserID, st.Token.JTI
		next.IssuedAt, next.ExpiresAt = nextIssued.t, nextExpires.t
		st.Successor, st.SuccessorSpent = &next, nextSpent != nil && *nextSpent
	}
	return st, err
}

// RotateRefreshToken spends the token jti and applies what decide makes
// of its state, in one transaction; see account.Sessions. The conditional
// update locks the token's row, so of concurrent calls for one jti exactly
// one sees AlreadySpent false, and the others see its successor.
func (s *Store) RotateRefreshToken(ctx context.Context, userID, jti string, now time.Time, decide func(account.RefreshState) account.Rotation) (r account.Rotation, err error) {
	if !goodText(jti) {
		return r, notFound(msgRefreshNotFound)
	}
	err = s.inTx(ctx, "rotate refresh token", func(t *tx) error {
		n, err := t.exec(`UPDATE refresh_tokens SET spent_at = ? WHERE jti = ? AND spent_at IS NULL`, s.d.Time(now), jti)
		if err != nil {
			return err
		}
		st, err := one(t, msgRefreshNotFound, scanRefreshState, refreshStateQuery, jti)
		if err != nil {
			return err
		}
		st.AlreadySpent = n == 0
		if r = decide(st); r.Issue != nil {
			if err := t.insertRefreshToken(*r.Issue); err != nil {
				return err
			}
			if _, err := t.exec(`UPDATE refresh_tokens SET successor_jti = ? WHERE jti = ?`, r.Issue.JTI, jti); err != nil {
				return err
			}
			_, err = t.exec(`UPDATE refresh_families SET last_used_at = ? WHERE id = ?`, s.d.Time(now), st.Token.FamilyID)
			return err
		}
		if r.Revoke {
			_, err = t.revokeSessions(st.Token.UserID, `id = ?`, usersvc.SessionsEndedReuse, now, st.Token.FamilyID)
		}
		return err
	})
	return r, err
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

// RevokeSessions revokes the user's live families among ids (all of the
// user's when ids is nil) but except, and returns how many it revoked.
func (s *Store) RevokeSessions(ctx context.Context, userID string, ids []string, except, reason string, now time.Time) (n int, err error) {
	if !isUUID(userID) {
		return 0, nil
	}
	where, args := `id <> ?`, []any{except}
	if ids != nil {
		if ids = goodTexts(ids); len(ids) == 0 {
			return 0, nil
		}
		where, args = where+` AND `+s.d.InList("id"), append(args, s.d.List(ids))
	}
	err = s.inTx(ctx, "revoke sessions", func(t *tx) error {
		revoked, err := t.revokeSessions(userID, where, reason, now, args...)
		n = len(revoked)
		return err
	})
	return n, err
}

const sessionColumns = `id, user_id, created_at, expires_at, COALESCE(last_used_at, created_at), user_agent, client_addr`

func scanSession(r rowScanner) (f account.RefreshFamily, err error) {
	return f, r.Scan(&f.ID, &f.UserID, timeCol{&f.CreatedAt}, timeCol{&f.ExpiresAt}, timeCol{&f.LastUsedAt}, &f.UserAgent, &f.ClientAddr)
}

// Sessions returns the user's live families at now, most recently used
// first.
func (s *Store) Sessions(ctx context.Context, userID string, now time.Time) ([]account.RefreshFamily, error) {
	if !isUUID(userID) {
		return []account.RefreshFamily{}, nil
	}
	fs, err := all(s.reader(ctx, "sessions"), scanSession, `SELECT `+sessionColumns+` FROM refresh_families
		WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?
		ORDER BY COALESCE(last_used_at, created_at) DESC, id DESC`, userID, s.d.Time(now))
	return fs, s.fail(ctx, "sessions", err)
}

// SessionIDs returns the ids of the user's live families at now.
func (s *Store) SessionIDs(ctx context.Context, userID string, now time.Time) ([]string, error) {
	if !isUUID(userID) {
		return []string{}, nil
	}
	ids, err := all(s.reader(ctx, "session ids"), scanID, `SELECT id FROM refresh_families
		WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?`, userID, s.d.Time(now))
	return ids, s.fail(ctx, "session ids", err)
}

// DeleteExpiredRefreshTokens removes the families that expired before t,
// with their tokens, and returns how many families went.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, before time.Time) (int, error) {
	n, err := s.execTx(ctx, "delete expired refresh tokens", "", `DELETE FROM refresh_families WHERE expires_at < ?`, s.d.Time(before))
	return int(n), err
}

// revokeFamilies revokes the user's live families but exceptFamilyID.
func (t *tx) revokeFamilies(userID, exceptFamilyID, reason string, now time.Time) ([]string, error) {
	return t.revokeSessions(userID, `id <> ?`, reason, now, exceptFamilyID)
}

// revokeSessions revokes the user's unrevoked families where selects,
// emits sessions.revoked when there were any, and returns their ids.
func (t *tx) revokeSessions(userID, where, reason string, now time.Time, args ...any) ([]string, error) {
	ids, err := all(t, scanID, `UPDATE refresh_families SET revoked_at = ?
		WHERE user_id = ? AND revoked_at IS NULL AND `+where+` RETURNING id`, append([]any{t.s.d.Time(now), userID}, args...)...)
	if err == nil && len(ids) > 0 {
		t.emit(usersvc.EventSessionsRevoked, userID, now, usersvc.SessionsRevokedEventData{UserID: userID, SessionIDs: ids, Reason: reason})
	}
	return ids, err
}
