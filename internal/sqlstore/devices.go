package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
)

const deviceColumns = `id, user_id, device_id, token, device_type, created_at, updated_at, last_seen_at`

func scanDevice(r rowScanner) (usersvc.Device, error) {
	var d usersvc.Device
	return d, r.Scan(&d.ID, &d.UserID, &d.DeviceID, &d.Token, &d.DeviceType,
		timeCol{&d.CreatedAt}, timeCol{&d.UpdatedAt}, timeCol{&d.LastSeenAt})
}

// deviceText checks that the text of d can be stored.
func deviceText(d *usersvc.Device) error {
	if !goodText(d.Token, d.DeviceType) || (d.DeviceID != nil && !goodText(*d.DeviceID)) {
		return badText("push_token")
	}
	return nil
}

// releaseToken takes token away from every user but userID: their records
// holding it go, and it stops being their current token. It returns the ids
// of the users who lost it, each once. The caller holds the token's lock.
func (t *tx) releaseToken(userID, token string, now time.Time) ([]string, error) {
	lost, err := t.removeDevices(now, `token = ? AND user_id <> ?`, token, userID)
	if err != nil {
		return nil, err
	}
	return t.clearCurrent(lost, userID, `push_token = ? AND id <> ?`, now, token, userID)
}

// removeDevices deletes the device records where selects, emits
// device.removed for each, and returns their users' ids, repeats included.
func (t *tx) removeDevices(now time.Time, where string, args ...any) ([]string, error) {
	gone, err := all(t, scanDevice, `DELETE FROM devices WHERE `+where+` RETURNING `+deviceColumns, args...)
	ids := make([]string, len(gone))
	for i := range gone {
		ids[i] = gone[i].UserID
		t.emit(usersvc.EventDeviceRemoved, gone[i].UserID, now, usersvc.NewDeviceEventData(&gone[i]))
	}
	return ids, err
}

// clearCurrent sets to null the current token of the users that where
// selects, and returns their ids with lost, each once, but for except.
func (t *tx) clearCurrent(lost []string, except, where string, now time.Time, args ...any) ([]string, error) {
	cleared, err := all(t, scanID, `UPDATE users SET push_token = NULL, updated_at = ? WHERE `+where+` RETURNING id`,
		append([]any{t.s.d.Time(now)}, args...)...)
	if err != nil {
		return nil, err
	}
	return distinctIDs(append(lost, cleared...), except), nil
}

// saveDevice writes the record of d for d.UserID: the one of d.DeviceID
// when it is set, else the one holding d.Token. Every other record holding
// d.Token goes, and the token stops being any other user's current token.
// It fills in d from the record. It does not touch d.UserID's own current
// token. It returns the ids of the users other than d.UserID who lost
// d.Token, each once. The caller holds the token's lock.
func (t *tx) saveDevice(d *usersvc.Device, now time.Time) (displaced []string, err error) {
	at, id := t.s.d.Time(now), uuid.Must(uuid.NewV7()).String()
	conflict := `(token) DO UPDATE SET device_type = excluded.device_type`
	if d.DeviceID != nil {
		lost, err := t.removeDevices(now, `token = ? AND (user_id <> ? OR device_id IS NULL OR device_id <> ?)`,
			d.Token, d.UserID, *d.DeviceID)
		if err == nil {
			displaced, err = t.clearCurrent(lost, d.UserID, `push_token = ? AND id <> ?`, now, d.Token, d.UserID)
		}
		if err != nil {
			return nil, err
		}
		conflict = `(user_id, device_id) WHERE device_id IS NOT NULL DO UPDATE SET
			token = excluded.token, device_type = excluded.device_type`
	} else if displaced, err = t.releaseToken(d.UserID, d.Token, now); err != nil {
		return nil, err
	}
	*d, err = one(t, msgDeviceNotFound, scanDevice, `INSERT INTO devices (`+deviceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT `+conflict+`, updated_at = excluded.updated_at, last_seen_at = excluded.last_seen_at
		RETURNING `+deviceColumns, id, d.UserID, d.DeviceID, d.Token, d.DeviceType, at, at, at)
	if err == nil {
		t.emit(usersvc.EventDeviceRegistered, d.UserID, now, usersvc.NewDeviceEventData(d))
	}
	return displaced, err
}

// RegisterPushToken records d for d.UserID and makes d.Token the user's
// current token; see account.Devices for the rules. It returns the ids of
// the other users who lost d.Token. ENotFound when the user does not exist.
func (s *Store) RegisterPushToken(ctx context.Context, d *usersvc.Device, now time.Time) (displaced []string, err error) {
	if !isUUID(d.UserID) {
		return nil, notFound(msgUserNotFound)
	}
	if err := deviceText(d); err != nil {
		return nil, err
	}
	out := *d
	err = s.inTx(ctx, "register push token", func(t *tx) error {
		out = *d
		if err := s.d.LockTokens(ctx, t.db, []string{d.Token}); err != nil {
			return err
		}
		n, err := t.exec(`UPDATE users SET push_token = ?, updated_at = ? WHERE id = ?`, d.Token, s.d.Time(now), d.UserID)
		if err == nil && n == 0 {
			err = notFound(msgUserNotFound)
		}
		if err != nil {
			return err
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
		if _, err := one(t, msgUserNotFound, scanInto(&current),
			`SELECT push_token FROM users WHERE id = ?`+s.d.Lock(false), userID); err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE users SET push_token = NULL, updated_at = ? WHERE id = ?`, s.d.Time(now), userID); err != nil {
			return err
		}
		var err error
		switch {
		case deviceID != nil:
			_, err = t.removeDevices(now, `user_id = ? AND device_id = ?`, userID, *deviceID)
		case current != nil:
			_, err = t.removeDevices(now, `user_id = ? AND token = ?`, userID, *current)
		}
		return err
	})
}

// Devices returns the user's device records, most recently seen first.
func (s *Store) Devices(ctx context.Context, userID string) ([]usersvc.Device, error) {
	if !isUUID(userID) {
		return []usersvc.Device{}, nil
	}
	ds, err := all(s.reader(ctx, "devices"), scanDevice, `SELECT `+deviceColumns+` FROM devices
		WHERE user_id = ? ORDER BY last_seen_at DESC, id DESC`, userID)
	return ds, s.fail(ctx, "devices", err)
}

// DevicesOfUsers returns the device records of each of ids that has any,
// most recently seen first, in one statement.
func (s *Store) DevicesOfUsers(ctx context.Context, ids []string) (map[string][]usersvc.Device, error) {
	out := map[string][]usersvc.Device{}
	if ids = uuids(ids); len(ids) == 0 {
		return out, nil
	}
	ds, err := all(s.reader(ctx, "devices of users"), scanDevice, `SELECT `+deviceColumns+` FROM devices
		WHERE `+s.d.InList("user_id")+` ORDER BY user_id, last_seen_at DESC, id DESC`, s.d.List(ids))
	for _, d := range ds {
		out[d.UserID] = append(out[d.UserID], d)
	}
	return out, s.fail(ctx, "devices of users", err)
}

// DeleteDevice removes the user's record whose device id, or failing that
// record id, is deviceID, and clears the user's current token when it was
// that record's token. ENotFound when there is no such record.
func (s *Store) DeleteDevice(ctx context.Context, userID, deviceID string, now time.Time) error {
	if !isUUID(userID) || !goodText(deviceID) {
		return notFound(msgDeviceNotFound)
	}
	return s.inTx(ctx, "delete device", func(t *tx) error {
		d, err := one(t, msgDeviceNotFound, scanDevice, `DELETE FROM devices WHERE user_id = ? AND device_id = ? RETURNING `+deviceColumns, userID, deviceID)
		if usersvc.ErrorCode(err) == usersvc.ENotFound && isUUID(deviceID) {
			d, err = one(t, msgDeviceNotFound, scanDevice, `DELETE FROM devices WHERE user_id = ? AND id = ? RETURNING `+deviceColumns, userID, deviceID)
		}
		if err != nil {
			return err
		}
		t.emit(usersvc.EventDeviceRemoved, userID, now, usersvc.NewDeviceEventData(&d))
		_, err = t.exec(`UPDATE users SET push_token = NULL, updated_at = ? WHERE id = ? AND push_token = ?`,
			s.d.Time(now), userID, d.Token)
		return err
	})
}

// scanUserToken reads a user id and its current token as a device of no
// record.
func scanUserToken(r rowScanner) (d usersvc.Device, err error) {
	return d, r.Scan(&d.UserID, &d.Token)
}

// TokenHolders returns the ids of the users who hold one of tokens, as a
// device record or as their current token, each once.
func (s *Store) TokenHolders(ctx context.Context, tokens []string) ([]string, error) {
	if tokens = goodTexts(tokens); len(tokens) == 0 {
		return nil, nil
	}
	list := s.d.List(tokens)
	ids, err := all(s.reader(ctx, "token holders"), scanID, `SELECT user_id FROM devices WHERE `+s.d.InList("token")+`
		UNION SELECT id FROM users WHERE `+s.d.InList("push_token"), list, list)
	return distinctIDs(ids, ""), s.fail(ctx, "token holders", err)
}

// InvalidatePushTokens removes every record holding one of tokens, whoever
// holds it, clears them as any user's current token, and returns the ids of
// the users who lost a record or their current token (each once) and the
// number of records removed.
func (s *Store) InvalidatePushTokens(ctx context.Context, tokens []string, reason string, now time.Time) (affected []string, removed int, err error) {
	if tokens = goodTexts(tokens); len(tokens) == 0 {
		return nil, 0, nil
	}
	list := s.d.List(tokens)
	err = s.inTx(ctx, "invalidate push tokens", func(t *tx) error {
		if err := s.d.LockTokens(ctx, t.db, tokens); err != nil {
			return err
		}
		gone, err := all(t, scanDevice, `DELETE FROM devices WHERE `+s.d.InList("token")+` RETURNING `+deviceColumns, list)
		if err != nil {
			return err
		}
		current, err := all(t, scanUserToken, `SELECT id, push_token FROM users WHERE `+s.d.InList("push_token")+s.d.Lock(false), list)
		if err != nil {
			return err
		}
		lost, seen := make([]string, len(gone)), map[[2]string]bool{}
		for i, d := range append(gone, current...) {
			if i < len(gone) {
				lost[i] = d.UserID
			}
			if k := [2]string{d.UserID, d.Token}; !seen[k] {
				seen[k] = true
				t.emit(usersvc.EventPushTokenInvalidated, d.UserID, now,
					usersvc.PushTokenInvalidatedEventData{UserID: d.UserID, PushToken: d.Token, Reason: reason})
			}
		}
		removed = len(gone)
		affected, err = t.clearCurrent(lost, "", s.d.InList("push_token"), now, list)
		return err
	})
	return affected, removed, err
}
