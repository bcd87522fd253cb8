package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/usersvc/usersvc"
)

const userColumns = `id, email, name, push_token, pref_email, pref_push, is_admin, is_active, created_at, updated_at`

// scanUser reads the userColumns of one row, then extra.
func scanUser(r rowScanner, extra ...any) (*usersvc.User, error) {
	var (
		u                usersvc.User
		token            sql.NullString
		created, updated int64
	)
	dest := append([]any{
		&u.ID, &u.Email, &u.Name, &token,
		&u.Preferences.Email, &u.Preferences.Push, &u.IsAdmin, &u.IsActive,
		&created, &updated,
	}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	if token.Valid {
		u.PushToken = &token.String
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

// jsonArray encodes values as the JSON array that json_each reads: a list
// of any length is one bound parameter.
func jsonArray(values []string) (string, error) {
	b, err := json.Marshal(values)
	return string(b), err
}

// insertUser inserts u. With ignoreExisting, an existing id leaves the
// table alone and reports false.
func insertUser(ctx context.Context, tx *sql.Tx, u *usersvc.User, passwordHash string, ignoreExisting bool) (bool, error) {
	q := `INSERT INTO users (` + userColumns + `, password_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	if ignoreExisting {
		q += ` ON CONFLICT (id) DO NOTHING`
	}
	res, err := tx.ExecContext(ctx, q,
		u.ID, u.Email, u.Name, u.PushToken,
		u.Preferences.Email, u.Preferences.Push, u.IsAdmin, u.IsActive,
		micros(u.CreatedAt), micros(u.UpdatedAt), passwordHash)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// CreateUser inserts u. Its timestamps are truncated in place to what the
// store keeps. It returns the ids of the other users who lost u.PushToken.
func (s *Store) CreateUser(ctx context.Context, u *usersvc.User, passwordHash string) ([]string, error) {
	u.CreatedAt, u.UpdatedAt = truncate(u.CreatedAt), truncate(u.UpdatedAt)
	var displaced []string
	err := s.writeTx(ctx, "create user", func(tx *sql.Tx) error {
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
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
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
	u, err := scanUser(s.read.QueryRowContext(ctx,
		`SELECT `+userColumns+`, password_hash FROM users WHERE email = ?`, email), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", notFound(msgUserNotFound)
	}
	if err != nil {
		return nil, "", s.fail(ctx, "user by email", err)
	}
	return u, hash, nil
}

// SetPasswordHash replaces the user's password hash, or ENotFound.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error {
	res, err := s.write.ExecContext(ctx,
		`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, micros(now), userID)
	if err != nil {
		return s.fail(ctx, "set password hash", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.fail(ctx, "set password hash", err)
	} else if n == 0 {
		return notFound(msgUserNotFound)
	}
	return nil
}

// UpdatePreferences applies patch in one statement and returns the result,
// or ENotFound. An empty patch changes nothing.
func (s *Store) UpdatePreferences(ctx context.Context, userID string, patch usersvc.PreferencesPatch, now time.Time) (usersvc.Preferences, error) {
	var p usersvc.Preferences
	var row *sql.Row
	if patch.Empty() {
		row = s.read.QueryRowContext(ctx, `SELECT pref_email, pref_push FROM users WHERE id = ?`, userID)
	} else {
		row = s.write.QueryRowContext(ctx, `UPDATE users
			SET pref_email = COALESCE(?, pref_email), pref_push = COALESCE(?, pref_push), updated_at = ?
			WHERE id = ?
			RETURNING pref_email, pref_push`,
			patch.Email, patch.Push, micros(now), userID)
	}
	err := row.Scan(&p.Email, &p.Push)
	if errors.Is(err, sql.ErrNoRows) {
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
	users := []usersvc.User{}
	var total int
	err := s.readTx(ctx, "list users", func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+userColumns+` FROM users
			ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, limit, offset)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				return err
			}
			users = append(users, *u)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, err
	}
	return users, total, nil
}

// UsersByIDs returns the users among ids that exist, in one query.
func (s *Store) UsersByIDs(ctx context.Context, ids []string) ([]usersvc.User, error) {
	users := []usersvc.User{}
	if len(ids) == 0 {
		return users, nil
	}
	arr, err := jsonArray(ids)
	if err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users
		WHERE id IN (SELECT value FROM json_each(?))`, arr)
	if err != nil {
		return nil, s.fail(ctx, "users by ids", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.fail(ctx, "users by ids", err)
		}
		users = append(users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "users by ids", err)
	}
	return users, nil
}

// UpdateName changes the user's name, or ENotFound.
func (s *Store) UpdateName(ctx context.Context, userID, name string, now time.Time) (*usersvc.User, error) {
	return s.updateUser(ctx, "update name",
		`UPDATE users SET name = ?, updated_at = ? WHERE id = ? RETURNING `+userColumns, name, micros(now), userID)
}

// SetActive enables or disables the user, or ENotFound.
func (s *Store) SetActive(ctx context.Context, userID string, active bool, now time.Time) (*usersvc.User, error) {
	return s.updateUser(ctx, "set active",
		`UPDATE users SET is_active = ?, updated_at = ? WHERE id = ? RETURNING `+userColumns, active, micros(now), userID)
}

func (s *Store) updateUser(ctx context.Context, op, q string, args ...any) (*usersvc.User, error) {
	u, err := scanUser(s.write.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
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
	res, err := s.write.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, userID)
	if err != nil {
		return s.fail(ctx, "delete user", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.fail(ctx, "delete user", err)
	} else if n == 0 {
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
	u.CreatedAt, u.UpdatedAt = truncate(u.CreatedAt), truncate(u.UpdatedAt)
	prepared, err := prepareImport(u, devices)
	if err != nil {
		return false, err
	}
	var inserted bool
	err = s.writeTx(ctx, "import user", func(tx *sql.Tx) error {
		ok, err := insertUser(ctx, tx, u, passwordHash, true)
		if err != nil || !ok {
			return err
		}
		if u.PushToken != nil {
			if _, err := releaseToken(ctx, tx, u.ID, *u.PushToken, u.UpdatedAt); err != nil {
				return err
			}
		}
		for _, d := range prepared {
			if _, err := releaseToken(ctx, tx, u.ID, d.Token, u.UpdatedAt); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO devices
				(id, user_id, device_id, token, device_type, created_at, updated_at, last_seen_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				d.ID, d.UserID, d.DeviceID, d.Token, d.DeviceType,
				micros(d.CreatedAt), micros(d.UpdatedAt), micros(d.LastSeenAt)); err != nil {
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
