package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
)

const deviceColumns = `id, user_id, device_id, token, device_type, created_at, updated_at, last_seen_at`

func scanDevice(r rowScanner) (usersvc.Device, error) {
	var d usersvc.Device
	err := r.Scan(&d.ID, &d.UserID, &d.DeviceID, &d.Token, &d.DeviceType,
		timeCol{&d.CreatedAt}, timeCol{&d.UpdatedAt}, timeCol{&d.LastSeenAt})
	return d, err
}

func scanDevices(rows *sql.Rows) ([]usersvc.Device, error) {
	return collect(rows, func(r *sql.Rows) (usersvc.Device, error) { return scanDevice(r) })
}

// newDeviceID returns the id of a new device record.
func newDeviceID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new device id: %w", err)
	}
	return id.String(), nil
}

// releaseToken takes token away from every user but userID: their records
// holding it go, and it stops being their current token. It returns the ids
// of the users who lost it, each once. The caller holds the token's lock.
func (t *tx) releaseToken(userID, token string, now time.Time) ([]string, error) {
	lost, err := t.ids(`DELETE FROM devices WHERE token = ? AND user_id <> ? RETURNING user_id`, token, userID)
	if err != nil {
		return nil, err
	}
	cleared, err := t.ids(`UPDATE users SET push_token = NULL, updated_at = ?
		WHERE push_token = ? AND id <> ? RETURNING id`, t.s.d.Time(now), token, userID)
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
// other than d.UserID who lost d.Token, each once. The caller holds the
// token's lock.
func (t *tx) saveDevice(d *usersvc.Device, now time.Time) ([]string, error) {
	at := t.s.d.Time(now)
	id, err := newDeviceID()
	if err != nil {
		return nil, err
	}
	var (
		q         string
		args      []any
		displaced []string
	)
	if d.DeviceID != nil {
		lost, err := t.ids(`DELETE FROM devices
			WHERE token = ? AND (user_id <> ? OR device_id IS NULL OR device_id <> ?)
			RETURNING user_id`, d.Token, d.UserID, *d.DeviceID)
		if err != nil {
			return nil, err
		}
		cleared, err := t.ids(`UPDATE users SET push_token = NULL, updated_at = ?
			WHERE push_token = ? AND id <> ? RETURNING id`, at, d.Token, d.UserID)
		if err != nil {
			return nil, err
		}
		displaced = distinctIDs(append(lost, cleared...), d.UserID)
		q = `INSERT INTO devices (` + deviceColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_id, device_id) WHERE device_id IS NOT NULL DO UPDATE SET
				token = excluded.token, device_type = excluded.device_type,
				updated_at = excluded.updated_at, last_seen_at = excluded.last_seen_at
			RETURNING ` + deviceColumns
		args = []any{id, d.UserID, *d.DeviceID, d.Token, d.DeviceType, at, at, at}
	} else {
		if displaced, err = t.releaseToken(d.UserID, d.Token, now); err != nil {
			return nil, err
		}
		q = `INSERT INTO devices (` + deviceColumns + `) VALUES (?, ?, NULL, ?, ?, ?, ?, ?)
			ON CONFLICT (token) DO UPDATE SET
				device_type = excluded.device_type,
				updated_at = excluded.updated_at, last_seen_at = excluded.last_seen_at
			RETURNING ` + deviceColumns
		args = []any{id, d.UserID, d.Token, d.DeviceType, at, at, at}
	}
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, err
	}
	saved, err := scanDevices(rows)
	if err != nil {
		return nil, err
	}
	if len(saved) != 1 {
		return nil, fmt.Errorf("save device: %d rows", len(saved))
	}
	*d = saved[0]
	return displaced, nil
}

// RegisterPushToken records d for d.UserID and makes d.Token the user's
// current token; see account.Devices for the rules. It returns the ids of
// the other users who lost d.Token. ENotFound when the user does not exist.
func (s *Store) RegisterPushToken(ctx context.Context, d *usersvc.Device, now time.Time) ([]string, error) {
	if !isUUID(d.UserID) {
		return nil, notFound(msgUserNotFound)
	}
	if !goodText(d.Token, d.DeviceType) || (d.DeviceID != nil && !goodText(*d.DeviceID)) {
		return nil, badText("push_token")
	}
	var (
		out       usersvc.Device
		displaced []string
	)
	err := s.inTx(ctx, "register push token", func(t *tx) error {
		out = *d
		if err := s.d.LockTokens(ctx, t.tx, []string{d.Token}); err != nil {
			return err
		}
		n, err := t.exec(`UPDATE users SET push_token = ?, updated_at = ? WHERE id = ?`, d.Token, s.d.Time(now), d.UserID)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound(msgUserNotFound)
		}
		displaced, err = t.saveDevice(&out, now)
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
	if !isUUID(userID) {
		return notFound(msgUserNotFound)
	}
	if deviceID != nil && !goodText(*deviceID) {
		return badText("device_id")
	}
	return s.inTx(ctx, "clear push token", func(t *tx) error {
		var current *string
		err := t.row(`SELECT push_token FROM users WHERE id = ?`+s.d.LockForUpdate(), []any{userID}, &current)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(msgUserNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE users SET push_token = NULL, updated_at = ? WHERE id = ?`, s.d.Time(now), userID); err != nil {
			return err
		}
		switch {
		case deviceID != nil:
			_, err = t.exec(`DELETE FROM devices WHERE user_id = ? AND device_id = ?`, userID, *deviceID)
		case current != nil:
			_, err = t.exec(`DELETE FROM devices WHERE user_id = ? AND token = ?`, userID, *current)
		}
		return err
	})
}

// Devices returns the user's device records, most recently seen first.
func (s *Store) Devices(ctx context.Context, userID string) ([]usersvc.Device, error) {
	if !isUUID(userID) {
		return []usersvc.Device{}, nil
	}
	rows, err := s.queryRows(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE user_id = ? ORDER BY last_seen_at DESC, id DESC`, userID)
	if err != nil {
		return nil, s.fail(ctx, "devices", err)
	}
	devices, err := scanDevices(rows)
	if err != nil {
		return nil, s.fail(ctx, "devices", err)
	}
	return devices, nil
}

// DevicesOfUsers returns the device records of each of ids that has any,
// most recently seen first, in one statement.
func (s *Store) DevicesOfUsers(ctx context.Context, ids []string) (map[string][]usersvc.Device, error) {
	out := map[string][]usersvc.Device{}
	ids = uuids(ids)
	if len(ids) == 0 {
		return out, nil
	}
	list, err := s.d.List(ids)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryRows(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE `+s.d.InList("user_id")+`
		ORDER BY user_id, last_seen_at DESC, id DESC`, list)
	if err != nil {
		return nil, s.fail(ctx, "devices of users", err)
	}
	devices, err := scanDevices(rows)
	if err != nil {
		return nil, s.fail(ctx, "devices of users", err)
	}
	for _, d := range devices {
		out[d.UserID] = append(out[d.UserID], d)
	}
	return out, nil
}

// DeleteDevice removes the user's record whose device id, or failing that
// record id, is deviceID, and clears the user's current token when it was
// that record's token. ENotFound when there is no such record.
func (s *Store) DeleteDevice(ctx context.Context, userID, deviceID string, now time.Time) error {
	if !isUUID(userID) || !goodText(deviceID) {
		return notFound(msgDeviceNotFound)
	}
	return s.inTx(ctx, "delete device", func(t *tx) error {
		var token string
		err := t.row(`DELETE FROM devices WHERE user_id = ? AND device_id = ? RETURNING token`,
			[]any{userID, deviceID}, &token)
		if errors.Is(err, sql.ErrNoRows) && isUUID(deviceID) {
			err = t.row(`DELETE FROM devices WHERE user_id = ? AND id = ? RETURNING token`,
				[]any{userID, deviceID}, &token)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(msgDeviceNotFound)
		}
		if err != nil {
			return err
		}
		_, err = t.exec(`UPDATE users SET push_token = NULL, updated_at = ? WHERE id = ? AND push_token = ?`,
			s.d.Time(now), userID, token)
		return err
	})
}

// TokenHolders returns the ids of the users who hold one of tokens, as a
// device record or as their current token, each once.
func (s *Store) TokenHolders(ctx context.Context, tokens []string) ([]string, error) {
	tokens = goodTexts(tokens)
	if len(tokens) == 0 {
		return nil, nil
	}
	list, err := s.d.List(tokens)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryRows(ctx, `SELECT user_id FROM devices WHERE `+s.d.InList("token")+`
		UNION SELECT id FROM users WHERE `+s.d.InList("push_token"), list, list)
	if err != nil {
		return nil, s.fail(ctx, "token holders", err)
	}
	ids, err := collect(rows, func(r *sql.Rows) (string, error) {
		var id string
		err := r.Scan(&id)
		return id, err
	})
	if err != nil {
		return nil, s.fail(ctx, "token holders", err)
	}
	return distinctIDs(ids, ""), nil
}

// InvalidatePushTokens removes every record holding one of tokens, whoever
// holds it, clears them as any user's current token, and returns the ids of
// the users who lost a record or their current token (each once) and the
// number of records removed.
func (s *Store) InvalidatePushTokens(ctx context.Context, tokens []string, now time.Time) ([]string, int, error) {
	tokens = goodTexts(tokens)
	if len(tokens) == 0 {
		return nil, 0, nil
	}
	list, err := s.d.List(tokens)
	if err != nil {
		return nil, 0, err
	}
	var (
		affected []string
		removed  int
	)
	err = s.inTx(ctx, "invalidate push tokens", func(t *tx) error {
		if err := s.d.LockTokens(ctx, t.tx, tokens); err != nil {
			return err
		}
		lost, err := t.ids(`DELETE FROM devices WHERE `+s.d.InList("token")+` RETURNING user_id`, list)
		if err != nil {
			return err
		}
		cleared, err := t.ids(`UPDATE users SET push_token = NULL, updated_at = ?
			WHERE `+s.d.InList("push_token")+` RETURNING id`, s.d.Time(now), list)
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
