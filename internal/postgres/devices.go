package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/usersvc/usersvc"
)

const deviceColumns = `id, user_id, device_id, token, device_type, created_at, updated_at, last_seen_at`

// tokenLockSpace is the first key of the transaction advisory locks taken
// on push tokens ("us" in ASCII); the second is the token's hash.
const tokenLockSpace int32 = 0x7573

func scanDevice(r pgx.Row) (usersvc.Device, error) {
	var d usersvc.Device
	if err := r.Scan(&d.ID, &d.UserID, &d.DeviceID, &d.Token, &d.DeviceType, &d.CreatedAt, &d.UpdatedAt, &d.LastSeenAt); err != nil {
		return d, err
	}
	d.CreatedAt, d.UpdatedAt, d.LastSeenAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC(), d.LastSeenAt.UTC()
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

// lockTokens takes, until the end of tx, an advisory lock on each of
// tokens, in one order for every transaction. Every transaction that gives
// a token to a user or takes it away holds its lock, so two of them for one
// token run one after the other and "a token belongs to one user" holds
// under concurrency, not only one statement at a time.
func lockTokens(ctx context.Context, tx pgx.Tx, tokens []string) error {
	if len(tokens) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, h)
		FROM (SELECT DISTINCT hashtext(t) AS h FROM unnest($2::text[]) AS t ORDER BY h) AS locks`,
		tokenLockSpace, tokens)
	return err
}

// userIDs runs q, which returns one user id a row, and returns every id
// it returned, repeats included.
func userIDs(ctx context.Context, tx pgx.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
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
// of the users who lost it, each once. The caller holds the token's lock.
func releaseToken(ctx context.Context, tx pgx.Tx, userID, token string, now time.Time) ([]string, error) {
	lost, err := userIDs(ctx, tx,
		`DELETE FROM devices WHERE token = $1 AND user_id <> $2 RETURNING user_id`, token, userID)
	if err != nil {
		return nil, err
	}
	cleared, err := userIDs(ctx, tx,
		`UPDATE users SET push_token = NULL, updated_at = $1 WHERE push_token = $2 AND id <> $3 RETURNING id`,
		ts(now), token, userID)
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
func saveDevice(ctx context.Context, tx pgx.Tx, d *usersvc.Device, now time.Time) ([]string, error) {
	now = ts(now)
	id, err := newDeviceID()
	if err != nil {
		return nil, err
	}
	var (
		row       pgx.Row
		displaced []string
	)
	if d.DeviceID != nil {
		lost, err := userIDs(ctx, tx, `DELETE FROM devices
			WHERE token = $1 AND (user_id <> $2 OR device_id IS NULL OR device_id <> $3)
			RETURNING user_id`,
			d.Token, d.UserID, *d.DeviceID)
		if err != nil {
			return nil, err
		}
		cleared, err := userIDs(ctx, tx,
			`UPDATE users SET push_token = NULL, updated_at = $1 WHERE push_token = $2 AND id <> $3 RETURNING id`,
			now, d.Token, d.UserID)
		if err != nil {
			return nil, err
		}
		displaced = distinctIDs(append(lost, cleared...), d.UserID)
		row = tx.QueryRow(ctx, `INSERT INTO devices (`+deviceColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $6, $6)
			ON CONFLICT (user_id, device_id) WHERE device_id IS NOT NULL DO UPDATE SET
				token = excluded.token, device_type = excluded.device_type,
				updated_at = excluded.updated_at, last_seen_at = excluded.last_seen_at
			RETURNING id, device_id, created_at, updated_at, last_seen_at`,
			id, d.UserID, *d.DeviceID, d.Token, d.DeviceType, now)
	} else {
		if displaced, err = releaseToken(ctx, tx, d.UserID, d.Token, now); err != nil {
			return nil, err
		}
		row = tx.QueryRow(ctx, `INSERT INTO devices (`+deviceColumns+`)
			VALUES ($1, $2, NULL, $3, $4, $5, $5, $5)
			ON CONFLICT (token) DO UPDATE SET
				device_type = excluded.device_type,
				updated_at = excluded.updated_at, last_seen_at = excluded.last_seen_at
			RETURNING id, device_id, created_at, updated_at, last_seen_at`,
			id, d.UserID, d.Token, d.DeviceType, now)
	}
	var (
		rid                    string
		deviceID               *string
		created, updated, seen time.Time
	)
	if err := row.Scan(&rid, &deviceID, &created, &updated, &seen); err != nil {
		return nil, err
	}
	d.ID, d.DeviceID = rid, deviceID
	d.CreatedAt, d.UpdatedAt, d.LastSeenAt = created.UTC(), updated.UTC(), seen.UTC()
	return displaced, nil
}

// RegisterPushToken records d for d.UserID and makes d.Token the user's
// current token; see account.Store for the rules. It returns the ids of the
// other users who lost d.Token. ENotFound when the user does not exist.
func (s *Store) RegisterPushToken(ctx context.Context, d *usersvc.Device, now time.Time) ([]string, error) {
	if !isUUID(d.UserID) {
		return nil, notFound(msgUserNotFound)
	}
	out := *d
	var displaced []string
	err := s.inTx(ctx, "register push token", func(tx pgx.Tx) error {
		displaced = nil
		if err := lockTokens(ctx, tx, []string{d.Token}); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx,
			`UPDATE users SET push_token = $1, updated_at = $2 WHERE id = $3`, d.Token, ts(now), d.UserID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound(msgUserNotFound)
		}
		out = *d
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
	if !isUUID(userID) {
		return notFound(msgUserNotFound)
	}
	return s.inTx(ctx, "clear push token", func(tx pgx.Tx) error {
		var current *string
		err := tx.QueryRow(ctx, `SELECT push_token FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(msgUserNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`UPDATE users SET push_token = NULL, updated_at = $1 WHERE id = $2`, ts(now), userID); err != nil {
			return err
		}
		switch {
		case deviceID != nil:
			_, err = tx.Exec(ctx, `DELETE FROM devices WHERE user_id = $1 AND device_id = $2`, userID, *deviceID)
		case current != nil:
			_, err = tx.Exec(ctx, `DELETE FROM devices WHERE user_id = $1 AND token = $2`, userID, *current)
		}
		return err
	})
}

// collectDevices reads every row of rows as a device.
func collectDevices(rows pgx.Rows) ([]usersvc.Device, error) {
	devices := []usersvc.Device{}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		devices = append(devices, d)
	}
	return devices, rows.Err()
}

// Devices returns the user's device records, most recently seen first.
func (s *Store) Devices(ctx context.Context, userID string) ([]usersvc.Device, error) {
	if !isUUID(userID) {
		return []usersvc.Device{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE user_id = $1 ORDER BY last_seen_at DESC, id DESC`, userID)
	if err != nil {
		return nil, s.fail(ctx, "devices", err)
	}
	devices, err := collectDevices(rows)
	if err != nil {
		return nil, s.fail(ctx, "devices", err)
	}
	return devices, nil
}

// DevicesOfUsers returns the device records of each of ids that has any,
// most recently seen first, in one query.
func (s *Store) DevicesOfUsers(ctx context.Context, ids []string) (map[string][]usersvc.Device, error) {
	out := map[string][]usersvc.Device{}
	ids = uuids(ids)
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE user_id = ANY($1::uuid[])
		ORDER BY user_id, last_seen_at DESC, id DESC`, ids)
	if err != nil {
		return nil, s.fail(ctx, "devices of users", err)
	}
	devices, err := collectDevices(rows)
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
	if !isUUID(userID) {
		return notFound(msgDeviceNotFound)
	}
	return s.inTx(ctx, "delete device", func(tx pgx.Tx) error {
		var token string
		err := tx.QueryRow(ctx,
			`DELETE FROM devices WHERE user_id = $1 AND device_id = $2 RETURNING token`, userID, deviceID).Scan(&token)
		if errors.Is(err, pgx.ErrNoRows) && isUUID(deviceID) {
			err = tx.QueryRow(ctx,
				`DELETE FROM devices WHERE user_id = $1 AND id = $2 RETURNING token`, userID, deviceID).Scan(&token)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(msgDeviceNotFound)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx,
			`UPDATE users SET push_token = NULL, updated_at = $1 WHERE id = $2 AND push_token = $3`,
			ts(now), userID, token)
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
	var (
		affected []string
		removed  int
	)
	err := s.inTx(ctx, "invalidate push tokens", func(tx pgx.Tx) error {
		affected, removed = nil, 0
		if err := lockTokens(ctx, tx, tokens); err != nil {
			return err
		}
		lost, err := userIDs(ctx, tx,
			`DELETE FROM devices WHERE token = ANY($1::text[]) RETURNING user_id`, tokens)
		if err != nil {
			return err
		}
		cleared, err := userIDs(ctx, tx, `UPDATE users SET push_token = NULL, updated_at = $1
			WHERE push_token = ANY($2::text[]) RETURNING id`, ts(now), tokens)
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
		d.CreatedAt, d.UpdatedAt, d.LastSeenAt = ts(d.CreatedAt), ts(d.UpdatedAt), ts(d.LastSeenAt)
		out[i] = d
	}
	return out, nil
}
