package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersvc/usersvc"
)

const userColumns = `id, email, name, push_token, pref_email, pref_push, is_admin, is_active, created_at, updated_at`

// scanUser reads the userColumns of one row, then extra.
func scanUser(r pgx.Row, extra ...any) (*usersvc.User, error) {
	var u usersvc.User
	dest := append([]any{
		&u.ID, &u.Email, &u.Name, &u.PushToken,
		&u.Preferences.Email, &u.Preferences.Push, &u.IsAdmin, &u.IsActive,
		&u.CreatedAt, &u.UpdatedAt,
	}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return &u, nil
}

// collectUsers reads every row of rows as a user.
func collectUsers(rows pgx.Rows) ([]usersvc.User, error) {
	users := []usersvc.User{}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, *u)
	}
	return users, rows.Err()
}

// insertUser inserts u. With ignoreExisting, an existing id leaves the
// table alone and reports false.
func insertUser(ctx context.Context, tx pgx.Tx, u *usersvc.User, passwordHash string, ignoreExisting bool) (bool, error) {
	q := `INSERT INTO users (` + userColumns + `, password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	if ignoreExisting {
		q += ` ON CONFLICT (id) DO NOTHING`
	}
	tag, err := tx.Exec(ctx, q,
		u.ID, u.Email, u.Name, u.PushToken,
		u.Preferences.Email, u.Preferences.Push, u.IsAdmin, u.IsActive,
		ts(u.CreatedAt), ts(u.UpdatedAt), passwordHash)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// CreateUser inserts u. Its timestamps are truncated in place to what the
// store keeps. It returns the ids of the other users who lost u.PushToken.
func (s *Store) CreateUser(ctx context.Context, u *usersvc.User, passwordHash string) ([]string, error) {
	u.CreatedAt, u.UpdatedAt = ts(u.CreatedAt), ts(u.UpdatedAt)
	var displaced []string
	err := s.inTx(ctx, "create user", func(tx pgx.Tx) error {
		displaced = nil
		if u.PushToken != nil {
			if err := lockTokens(ctx, tx, []string{*u.PushToken}); err != nil {
				return err
			}
		}
		if _, err := insertUser(ctx, tx, u, passwordHash, false); err != nil {
			return err
		}
		if u.PushToken == nil {
			return nil
		}
		d := usersvc.Device{UserID: u.ID, Token: *u.PushToken, DeviceType: usersvc.DeviceOther}
		var err error
		displaced, err = saveDevice(ctx, tx, &d, u.CreatedAt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return displaced, nil
}

// UserByID returns the user or ENotFound.
func (s *Store) UserByID(ctx context.Context, id string) (*usersvc.User, error) {
	if !isUUID(id) {
		return nil, notFound(msgUserNotFound)
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(msgUserNotFound)
	}
	if err != nil {
		return nil, s.fail(ctx, "user by id", err)
	}
	return u, nil
}

// UserByEmail returns the user with the canonical email, and its password
// hash, or ENotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (*usersvc.User, string, error) {
	var hash string
	u, err := scanUser(s.pool.QueryRow(ctx,
		`SELECT `+userColumns+`, password_hash FROM users WHERE email = $1`, email), &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", notFound(msgUserNotFound)
	}
	if err != nil {
		return nil, "", s.fail(ctx, "user by email", err)
	}
	return u, hash, nil
}

// SetPasswordHash replaces the user's password hash, or ENotFound.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error {
	if !isUUID(userID) {
		return notFound(msgUserNotFound)
	}
	tag, err := s.pool.Exec(ctx,
		`UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`, hash, ts(now), userID)
	if err != nil {
		return s.fail(ctx, "set password hash", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(msgUserNotFound)
	}
	return nil
}

// UpdatePreferences applies patch in one statement and returns the result,
// or ENotFound. An empty patch changes nothing.
func (s *Store) UpdatePreferences(ctx context.Context, userID string, patch usersvc.PreferencesPatch, now time.Time) (usersvc.Preferences, error) {
	var p usersvc.Preferences
	if !isUUID(userID) {
		return p, notFound(msgUserNotFound)
	}
	var row pgx.Row
	if patch.Empty() {
		row = s.pool.QueryRow(ctx, `SELECT pref_email, pref_push FROM users WHERE id = $1`, userID)
	} else {
		row = s.pool.QueryRow(ctx, `UPDATE users
			SET pref_email = COALESCE($1, pref_email), pref_push = COALESCE($2, pref_push), updated_at = $3
			WHERE id = $4
			RETURNING pref_email, pref_push`,
			patch.Email, patch.Push, ts(now), userID)
	}
	err := row.Scan(&p.Email, &p.Push)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, notFound(msgUserNotFound)
	}
	if err != nil {
		return p, s.fail(ctx, "update preferences", err)
	}
	return p, nil
}

// ListUsers returns one page of users, newest first, and the total count,
// both from one snapshot.
func (s *Store) ListUsers(ctx context.Context, limit, offset int) ([]usersvc.User, int, error) {
	limit, offset = max(limit, 0), max(offset, 0)
	var (
		users []usersvc.User
		total int
	)
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+userColumns+` FROM users
			ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2`, limit, offset)
		if err != nil {
			return err
		}
		users, err = collectUsers(rows)
		return err
	})
	if err != nil {
		return nil, 0, s.fail(ctx, "list users", err)
	}
	return users, total, nil
}

// UsersByIDs returns the users among ids that exist, in one query.
func (s *Store) UsersByIDs(ctx context.Context, ids []string) ([]usersvc.User, error) {
	ids = uuids(ids)
	if len(ids) == 0 {
		return []usersvc.User{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, s.fail(ctx, "users by ids", err)
	}
	users, err := collectUsers(rows)
	if err != nil {
		return nil, s.fail(ctx, "users by ids", err)
	}
	return users, nil
}

// UpdateName changes the user's name, or ENotFound.
func (s *Store) UpdateName(ctx context.Context, userID, name string, now time.Time) (*usersvc.User, error) {
	return s.updateUser(ctx, "update name", userID,
		`UPDATE users SET name = $1, updated_at = $2 WHERE id = $3 RETURNING `+userColumns, name, ts(now), userID)
}

// SetActive enables or disables the user, or ENotFound.
func (s *Store) SetActive(ctx context.Context, userID string, active bool, now time.Time) (*usersvc.User, error) {
	return s.updateUser(ctx, "set active", userID,
		`UPDATE users SET is_active = $1, updated_at = $2 WHERE id = $3 RETURNING `+userColumns, active, ts(now), userID)
}

func (s *Store) updateUser(ctx context.Context, op, userID, q string, args ...any) (*usersvc.User, error) {
	if !isUUID(userID) {
		return nil, notFound(msgUserNotFound)
	}
	u, err := scanUser(s.pool.QueryRow(ctx, q, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(msgUserNotFound)
	}
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return u, nil
}

// DeleteUser removes the user; its devices and refresh tokens go with it
// (ON DELETE CASCADE). ENotFound when there is no such user.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	if !isUUID(userID) {
		return notFound(msgUserNotFound)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, userID)
	if err != nil {
		return s.fail(ctx, "delete user", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(msgUserNotFound)
	}
	return nil
}

// ImportUser inserts u as it is (id, timestamps, flags) with its password
// hash and devices, unless a user with u.ID exists: then it changes nothing
// and returns false. The tokens u brings (its current token and those of
// its devices) move to it from any other user, as on registration. Devices
// without an ID get one, written back into devices; their user is u.
func (s *Store) ImportUser(ctx context.Context, u *usersvc.User, passwordHash string, devices []usersvc.Device) (bool, error) {
	u.CreatedAt, u.UpdatedAt = ts(u.CreatedAt), ts(u.UpdatedAt)
	prepared, err := prepareImport(u, devices)
	if err != nil {
		return false, err
	}
	tokens := make([]string, 0, len(prepared)+1)
	if u.PushToken != nil {
		tokens = append(tokens, *u.PushToken)
	}
	for _, d := range prepared {
		tokens = append(tokens, d.Token)
	}
	var inserted bool
	err = s.inTx(ctx, "import user", func(tx pgx.Tx) error {
		inserted = false
		if err := lockTokens(ctx, tx, tokens); err != nil {
			return err
		}
		ok, err := insertUser(ctx, tx, u, passwordHash, true)
		if err != nil || !ok {
			return err
		}
		for _, t := range tokens {
			if _, err := releaseToken(ctx, tx, u.ID, t, u.UpdatedAt); err != nil {
				return err
			}
		}
		for _, d := range prepared {
			if _, err := tx.Exec(ctx, `INSERT INTO devices
				(id, user_id, device_id, token, device_type, created_at, updated_at, last_seen_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				d.ID, d.UserID, d.DeviceID, d.Token, d.DeviceType,
				d.CreatedAt, d.UpdatedAt, d.LastSeenAt); err != nil {
				return err
			}
		}
		inserted = true
		return nil
	})
	if err != nil {
		return false, err
	}
	if inserted {
		copy(devices, prepared)
	}
	return inserted, nil
}
