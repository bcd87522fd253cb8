package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
)

const deviceColumns = `id, user_id, device_id, token, device_type, created_at, updated_at, last_seen_at`

func scanDevice(r rowScanner) (usersvc.Device, error) {
	var (
		d                      usersvc.Device
		deviceID               sql.NullString
		created, updated, seen int64
	)
	if err := r.Scan(&d.ID, &d.UserID, &deviceID, &d.Token, &d.DeviceType, &created, &updated, &seen); err != nil {
		return d, err
	}
	if deviceID.Valid {
		d.DeviceID = &deviceID.String
	}
	d.CreatedAt, d.UpdatedAt, d.LastSeenAt = fromMicros(created), fromMicros(updated), fromMicros(seen)
	return d, nil
}

// newDeviceID returns the id of a new device record.
func newDeviceID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new device id: %w", err)
	}
	return id.String(), nil
}

// userIDs runs q, which returns one user id a row, and returns every id
// it returned, repeats included.
func userIDs(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return ids, rows.Close()
}

// distinctIDs returns ids without repeats and without except (which may be
// empty), in no set order; nil when none remain. It reorders ids.
func distinctIDs(ids []string, except string) []string {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == except })
	if len(ids) == 0 {
		return nil
	}
	return ids
}

// releaseToken takes token away from every user but userID: their records
// holding it go, and it stops being their current token. It returns the ids
// of the users who lost it, each once.
func releaseToken(ctx context.Context, tx *sql.Tx, userID, token string, now time.Time) ([]string, error) {
	lost, err := userIDs(ctx, tx,
		`DELETE FROM devices WHERE token = ? AND user_id <> ? RETURNING user_id`, token, userID)
	if err != nil {
		return nil, err
	}
	cleared, err := userIDs(ctx, tx,
		`UPDATE users SET push_token = NULL, updated_at = ? WHERE push_token = ? AND id <> ? RETURNING id`,
		micros(now), token, userID)
	if err != nil {
		return nil, err
	}
	return distinctIDs(append(lost, cleared...), userID), nil
}

// saveDevice writes the record of d for d.UserID: the one of d.DeviceID
// when it is set, else the one holding d.Token. Every other record holding
// d.Token goes, and the token stops being any other user's current token.
// It fills in d's id, device id and timestamps from the record. It does not
// touch d.UserID's own current token. It returns the ids of the users
// other than d.UserID who lost d.Token, each once.
func saveDevice(ctx context.Context, tx *sql.Tx, d *usersvc.Device, now time.Time) ([]string, error) {
	ts := micros(now)
	id, err := newDeviceID()
	if err != nil {
		return nil, err
	}
	var (
		row       *sql.Row
		displaced []string
	)
	if d.DeviceID != nil {
		lost, err := userIDs(ctx, tx, `DELETE FROM devices
			WHERE token = ? AND (user_id <> ? OR device_id IS NULL OR device_id <> ?)
			RETURNING user_id`,
			d.Token, d.UserID, *d.DeviceID)
		if err != nil {
			return nil, err
		}
		cleared, err := userIDs(ctx, tx,
			`UPDATE users SET push_token = NULL, updated_at = ? WHERE push_token = ? AND id <> ? RETURNING id`,
			ts, d.Token, d.UserID)
		if err != nil {
			return nil, err
		}
		displaced = distinctIDs(append(lost, cleared...), d.UserID)
		row = tx.QueryRowContext(ctx, `INSERT INTO devices (`+deviceColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_id, device_id) WHERE device_id IS NOT NULL DO UPDATE SET
				token = excluded.token, device_type = excluded.device_type,
				updated_at = excluded.updated_at, last_seen_at = excluded.last_seen_at
			RETURNING id, device_id, created_at, updated_at, last_seen_at`,
			id, d.UserID, *d.DeviceID, d.Token, d.DeviceType, ts, ts, ts)
	} else {
		if displaced, err = releaseToken(ctx, tx, d.UserID, d.Token, now); err != nil {
			return nil, err
		}
		row = tx.QueryRowContext(ctx, `INSERT INTO devices (`+deviceColumns+`)
			VALUES (?, ?, NULL, ?, ?, ?, ?, ?)
			ON CONFLICT (token) DO UPDATE SET
				device_type = excluded.device_type,
				updated_at = excluded.updated_at, last_seen_at = excluded.last_seen_at
			RETURNING id, device_id, created_at, updated_at, last_seen_at`,
			id, d.UserID, d.Token, d.DeviceType, ts, ts, ts)
	}
	var (
		deviceID               sql.NullString
		created, updated, seen int64
	)
	if err := row.Scan(&d.ID, &deviceID, &created, &updated, &seen); err != nil {
		return nil, err
	}
	d.DeviceID = nil
	if deviceID.Valid {
		d.DeviceID = &deviceID.String
	}
	d.CreatedAt, d.UpdatedAt, d.LastSeenAt = fromMicros(created), fromMicros(updated), fromMicros(seen)
	return displaced, nil
}

// RegisterPushToken records d for d.UserID and makes d.Token the user's
// current token; see account.Store for the rules. It returns the ids of the
// other users who lost d.Token. ENotFound when the user does not exist.
func (s *Store) RegisterPushToken(ctx context.Context, d *usersvc.Device, now time.Time) ([]string, error) {
	out := *d
	var displaced []string
	err := s.writeTx(ctx, "register push token", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE users SET push_token = ?, updated_at = ? WHERE id = ?`, d.Token, micros(now), d.UserID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound(msgUserNotFound)
		}
		displaced, err = saveDevice(ctx, tx, &out, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	*d = out
	return displaced, nil
}

// ClearPushToken sets the user's current token to null and removes the
// record of deviceID when it is given, else the record holding the token
// that was current. ENotFound when the user does not exist.
func (s *Store) ClearPushToken(ctx context.Context, userID string, deviceID *string, now time.Time) error {
	return s.writeTx(ctx, "clear push token", func(tx *sql.Tx) error {
		var current sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT push_token FROM users WHERE id = ?`, userID).Scan(&current)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(msgUserNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE users SET push_token = NULL, updated_at = ? WHERE id = ?`, micros(now), userID); err != nil {
			return err
		}
		switch {
		case deviceID != nil:
			_, err = tx.ExecContext(ctx, `DELETE FROM devices WHERE user_id = ? AND device_id = ?`, userID, *deviceID)
		case current.Valid:
			_, err = tx.ExecContext(ctx, `DELETE FROM devices WHERE user_id = ? AND token = ?`, userID, current.String)
		}
		return err
	})
}

// Devices returns the user's device records, most recently seen first.
func (s *Store) Devices(ctx context.Context, userID string) ([]usersvc.Device, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE user_id = ? ORDER BY last_seen_at DESC, id DESC`, userID)
	if err != nil {
		return nil, s.fail(ctx, "devices", err)
	}
	defer rows.Close()
	devices := []usersvc.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, s.fail(ctx, "devices", err)
		}
		devices = append(devices, d)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "devices", err)
	}
	return devices, nil
}

// DevicesOfUsers returns the device records of each of ids that has any,
// most recently seen first, in one query.
func (s *Store) DevicesOfUsers(ctx context.Context, ids []string) (map[string][]usersvc.Device, error) {
	out := map[string][]usersvc.Device{}
	if len(ids) == 0 {
		return out, nil
	}
	arr, err := jsonArray(ids)
	if err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE user_id IN (SELECT value FROM json_each(?))
		ORDER BY user_id, last_seen_at DESC, id DESC`, arr)
	if err != nil {
		return nil, s.fail(ctx, "devices of users", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, s.fail(ctx, "devices of users", err)
		}
		out[d.UserID] = append(out[d.UserID], d)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "devices of users", err)
	}
	return out, nil
}

// DeleteDevice removes the user's record whose device id, or failing that
// record id, is deviceID, and clears the user's current token when it was
// that record's token. ENotFound when there is no such record.
func (s *Store) DeleteDevice(ctx context.Context, userID, deviceID string, now time.Time) error {
	return s.writeTx(ctx, "delete device", func(tx *sql.Tx) error {
		var token string
		err := tx.QueryRowContext(ctx,
			`DELETE FROM devices WHERE user_id = ? AND device_id = ? RETURNING token`, userID, deviceID).Scan(&token)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx,
				`DELETE FROM devices WHERE user_id = ? AND id = ? RETURNING token`, userID, deviceID).Scan(&token)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(msgDeviceNotFound)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`UPDATE users SET push_token = NULL, updated_at = ? WHERE id = ? AND push_token = ?`,
			micros(now), userID, token)
		return err
	})
}

// InvalidatePushTokens removes every record holding one of tokens, whoever
// holds it, clears them as any user's current token, and returns the ids of
// the users who lost a record or their current token (each once) and the
// number of records removed.
func (s *Store) InvalidatePushTokens(ctx context.Context, tokens []string, now time.Time) ([]string, int, error) {
	if len(tokens) == 0 {
		return nil, 0, nil
	}
	arr, err := jsonArray(tokens)
	if err != nil {
		return nil, 0, err
	}
	var (
		affected []string
		removed  int
	)
	err = s.writeTx(ctx, "invalidate push tokens", func(tx *sql.Tx) error {
		lost, err := userIDs(ctx, tx,
			`DELETE FROM devices WHERE token IN (SELECT value FROM json_each(?)) RETURNING user_id`, arr)
		if err != nil {
			return err
		}
		cleared, err := userIDs(ctx, tx, `UPDATE users SET push_token = NULL, updated_at = ?
			WHERE push_token IN (SELECT value FROM json_each(?)) RETURNING id`, micros(now), arr)
		if err != nil {
			return err
		}
		removed = len(lost)
		affected = distinctIDs(append(lost, cleared...), "")
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return affected, removed, nil
}

// prepareImport returns the devices of an imported user as they will be
// stored: owned by u, with an id, and with timestamps defaulting to the
// user's creation time and truncated.
func prepareImport(u *usersvc.User, devices []usersvc.Device) ([]usersvc.Device, error) {
	out := make([]usersvc.Device, len(devices))
	for i, d := range devices {
		if d.ID == "" {
			id, err := newDeviceID()
			if err != nil {
				return nil, err
			}
			d.ID = id
		}
		d.UserID = u.ID
		if d.CreatedAt.IsZero() {
			d.CreatedAt = u.CreatedAt
		}
		if d.UpdatedAt.IsZero() {
			d.UpdatedAt = d.CreatedAt
		}
		if d.LastSeenAt.IsZero() {
			d.LastSeenAt = d.UpdatedAt
		}
		d.CreatedAt, d.UpdatedAt, d.LastSeenAt = truncate(d.CreatedAt), truncate(d.UpdatedAt), truncate(d.LastSeenAt)
		out[i] = d
	}
	return out, nil
}
