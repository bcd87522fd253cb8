package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

const userColumns = `id, email, name, push_token, pref_email, pref_push, is_admin, is_active, created_at, updated_at`

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// scanUser reads the userColumns of one row, then extra.
func scanUser(r rowScanner, extra ...any) (*usersvc.User, error) {
	var u usersvc.User
	dest := append([]any{
		&u.ID, &u.Email, &u.Name, &u.PushToken,
		&u.Preferences.Email, &u.Preferences.Push, &u.IsAdmin, &u.IsActive,
		timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt},
	}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	return &u, nil
}

func scanUsers(rows *sql.Rows) ([]usersvc.User, error) {
	return collect(rows, func(r *sql.Rows) (usersvc.User, error) {
		u, err := scanUser(r)
		if err != nil {
			return usersvc.User{}, err
		}
		return *u, nil
	})
}

// userText checks that the text of u can be stored.
func userText(u *usersvc.User) error {
	switch {
	case !goodText(u.Email):
		return badText("email")
	case !goodText(u.Name):
		return badText("name")
	case u.PushToken != nil && !goodText(*u.PushToken):
		return badText("push_token")
	}
	return nil
}

// insertUser inserts u. With ignoreExisting, an existing id leaves the
// table alone and reports false.
func (t *tx) insertUser(u *usersvc.User, passwordHash string, ignoreExisting bool) (bool, error) {
	q := `INSERT INTO users (` + userColumns + `, password_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	if ignoreExisting {
		q += ` ON CONFLICT (id) DO NOTHING`
	}
	d := t.s.d
	n, err := t.exec(q,
		u.ID, u.Email, u.Name, u.PushToken,
		u.Preferences.Email, u.Preferences.Push, u.IsAdmin, u.IsActive,
		d.Time(u.CreatedAt), d.Time(u.UpdatedAt), passwordHash)
	return n == 1, err
}

// CreateUser inserts u. Its timestamps are truncated in place to what the
// store keeps. When u.PushToken is set it also registers that token as a
// device record of u, moving it from any user who held it, and returns the
// ids of the other users who lost it.
func (s *Store) CreateUser(ctx context.Context, u *usersvc.User, passwordHash string) ([]string, error) {
	if !isUUID(u.ID) {
		return nil, notFound(msgUserNotFound)
	}
	if err := userText(u); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = ts(u.CreatedAt), ts(u.UpdatedAt)
	var displaced []string
	err := s.inTx(ctx, "create user", func(t *tx) error {
		displaced = nil
		if u.PushToken != nil {
			if err := s.d.LockTokens(ctx, t.tx, []string{*u.PushToken}); err != nil {
				return err
			}
		}
		if _, err := t.insertUser(u, passwordHash, false); err != nil {
			return err
		}
		if u.PushToken == nil {
			return nil
		}
		d := usersvc.Device{UserID: u.ID, Token: *u.PushToken, DeviceType: usersvc.DeviceOther}
		var err error
		displaced, err = t.saveDevice(&d, u.CreatedAt)
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
	u, err := scanUser(s.read.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(msgUserNotFound)
	}
	if err != nil {
		return nil, s.fail(ctx, "user by id", err)
	}
	return u, nil
}

// UserByEmail returns the user with the canonical email, and its
// credential, or ENotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (*usersvc.User, account.Credential, error) {
	var c account.Credential
	if !goodText(email) {
		return nil, c, notFound(msgUserNotFound)
	}
	rows, err := s.queryRows(ctx, `SELECT `+userColumns+`, password_hash, cred_version FROM users WHERE email = ?`, email)
	if err != nil {
		return nil, c, s.fail(ctx, "user by email", err)
	}
	users, err := collect(rows, func(r *sql.Rows) (*usersvc.User, error) { return scanUser(r, &c.Hash, &c.Version) })
	if err != nil {
		return nil, c, s.fail(ctx, "user by email", err)
	}
	if len(users) == 0 {
		return nil, c, notFound(msgUserNotFound)
	}
	return users[0], c, nil
}

// SetPasswordHash replaces the user's password hash with an equivalent
// one (a rehash of the same password), or ENotFound. It leaves the
// credential version alone: sessions stay.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error {
	if !isUUID(userID) {
		return notFound(msgUserNotFound)
	}
	return s.inTx(ctx, "set password hash", func(t *tx) error {
		n, err := t.exec(`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, s.d.Time(now), userID)
		if err == nil && n == 0 {
			return notFound(msgUserNotFound)
		}
		return err
	})
}

// ChangePassword replaces the user's password hash, moves its credential
// version on, and revokes every refresh family of the user except
// keepFamily, in one transaction. It returns how many families it
// revoked, or ENotFound.
func (s *Store) ChangePassword(ctx context.Context, userID, hash, keepFamily string, now time.Time) (int, error) {
	if !isUUID(userID) {
		return 0, notFound(msgUserNotFound)
	}
	var revoked int
	err := s.inTx(ctx, "change password", func(t *tx) error {
		n, err := t.exec(`UPDATE users SET password_hash = ?, cred_version = cred_version + 1, updated_at = ?
			WHERE id = ?`, hash, s.d.Time(now), userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound(msgUserNotFound)
		}
		revoked, err = t.revokeFamilies(userID, keepFamily, now)
		return err
	})
	if err != nil {
		return 0, err
	}
	return revoked, nil
}

// UpdatePreferences applies patch in one statement and returns the result,
// or ENotFound. An empty patch changes nothing.
func (s *Store) UpdatePreferences(ctx context.Context, userID string, patch usersvc.PreferencesPatch, now time.Time) (usersvc.Preferences, error) {
	var p usersvc.Preferences
	if !isUUID(userID) {
		return p, notFound(msgUserNotFound)
	}
	err := s.inTx(ctx, "update preferences", func(t *tx) error {
		if patch.Empty() {
			return t.row(`SELECT pref_email, pref_push FROM users WHERE id = ?`, []any{userID}, &p.Email, &p.Push)
		}
		return t.row(`UPDATE users
			SET pref_email = COALESCE(?, pref_email), pref_push = COALESCE(?, pref_push), updated_at = ?
			WHERE id = ?
			RETURNING pref_email, pref_push`,
			[]any{patch.Email, patch.Push, s.d.Time(now), userID}, &p.Email, &p.Push)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return p, notFound(msgUserNotFound)
	}
	return p, s.fail(ctx, "update preferences", err)
}

// ListUsers returns one page of users, newest first, and the total count,
// both from one snapshot. An offset past the end gives an empty page.
func (s *Store) ListUsers(ctx context.Context, limit, offset int) ([]usersvc.User, int, error) {
	limit, offset = max(limit, 0), max(offset, 0)
	var (
		users []usersvc.User
		total int
	)
	err := s.readTx(ctx, "list users", func(t *tx) error {
		if err := t.row(`SELECT count(*) FROM users`, nil, &total); err != nil {
			return err
		}
		rows, err := t.query(`SELECT `+userColumns+` FROM users
			ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, limit, offset)
		if err != nil {
			return err
		}
		users, err = scanUsers(rows)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return users, total, nil
}

// UsersByIDs returns the users among ids that exist, in one statement.
func (s *Store) UsersByIDs(ctx context.Context, ids []string) ([]usersvc.User, error) {
	ids = uuids(ids)
	if len(ids) == 0 {
		return []usersvc.User{}, nil
	}
	list, err := s.d.List(ids)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryRows(ctx, `SELECT `+userColumns+` FROM users WHERE `+s.d.InList("id"), list)
	if err != nil {
		return nil, s.fail(ctx, "users by ids", err)
	}
	users, err := scanUsers(rows)
	if err != nil {
		return nil, s.fail(ctx, "users by ids", err)
	}
	return users, nil
}

// UpdateName changes the user's name, or ENotFound.
func (s *Store) UpdateName(ctx context.Context, userID, name string, now time.Time) (*usersvc.User, error) {
	if !goodText(name) {
		return nil, badText("name")
	}
	return s.updateUser(ctx, "update name", userID, nil,
		`UPDATE users SET name = ?, updated_at = ? WHERE id = ? RETURNING `+userColumns, name, s.d.Time(now), userID)
}

// SetActive enables or disables the user, or ENotFound. Disabling also
// moves the credential version on and revokes every refresh family of the
// user, in the same transaction, so that no login racing it keeps a
// session, even once the user is enabled again.
func (s *Store) SetActive(ctx context.Context, userID string, active bool, now time.Time) (*usersvc.User, error) {
	bump, after := 1, func(t *tx) error {
		_, err := t.revokeFamilies(userID, "", now)
		return err
	}
	if active {
		bump, after = 0, nil
	}
	return s.updateUser(ctx, "set active", userID, after,
		`UPDATE users SET is_active = ?, cred_version = cred_version + ?, updated_at = ?
		WHERE id = ? RETURNING `+userColumns, active, bump, s.d.Time(now), userID)
}

// updateUser runs, in a transaction, q, which changes the user and
// returns its columns, then after (when set). The user's row is changed
// first, so that its lock orders the transaction against logins (see
// CreateRefreshFamily).
func (s *Store) updateUser(ctx context.Context, op, userID string, after func(t *tx) error, q string, args ...any) (*usersvc.User, error) {
	if !isUUID(userID) {
		return nil, notFound(msgUserNotFound)
	}
	var u *usersvc.User
	err := s.inTx(ctx, op, func(t *tx) error {
		rows, err := t.query(q, args...)
		if err != nil {
			return err
		}
		users, err := scanUsers(rows)
		if err != nil {
			return err
		}
		if len(users) == 0 {
			return notFound(msgUserNotFound)
		}
		u = &users[0]
		if after != nil {
			return after(t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// DeleteUser removes the user; its devices and refresh tokens go with it
// (ON DELETE CASCADE), in one statement. ENotFound when there is no such
// user.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	if !isUUID(userID) {
		return notFound(msgUserNotFound)
	}
	return s.inTx(ctx, "delete user", func(t *tx) error {
		n, err := t.exec(`DELETE FROM users WHERE id = ?`, userID)
		if err == nil && n == 0 {
			return notFound(msgUserNotFound)
		}
		return err
	})
}

// ImportUser inserts u as it is (id, timestamps, flags) with its password
// hash and devices, unless a user with u.ID exists: then it changes nothing
// and returns false. The tokens u brings (its current token and those of
// its devices) move to it from any other user, as on registration. The
// devices are as account.PrepareImport made them. All of it is one
// transaction.
func (s *Store) ImportUser(ctx context.Context, u *usersvc.User, passwordHash string, devices []usersvc.Device) (bool, error) {
	if !isUUID(u.ID) {
		return false, notFound(msgUserNotFound)
	}
	if err := userText(u); err != nil {
		return false, err
	}
	tokens := make([]string, 0, len(devices)+1)
	if u.PushToken != nil {
		tokens = append(tokens, *u.PushToken)
	}
	for _, d := range devices {
		if !isUUID(d.ID) || !goodText(d.Token, d.DeviceType) || (d.DeviceID != nil && !goodText(*d.DeviceID)) {
			return false, badText("devices")
		}
		tokens = append(tokens, d.Token)
	}
	u.CreatedAt, u.UpdatedAt = ts(u.CreatedAt), ts(u.UpdatedAt)
	var inserted bool
	err := s.inTx(ctx, "import user", func(t *tx) error {
		inserted = false
		if err := s.d.LockTokens(ctx, t.tx, tokens); err != nil {
			return err
		}
		ok, err := t.insertUser(u, passwordHash, true)
		if err != nil || !ok {
			return err
		}
		for _, token := range tokens {
			if _, err := t.releaseToken(u.ID, token, u.UpdatedAt); err != nil {
				return err
			}
		}
		for _, d := range devices {
			if _, err := t.exec(`INSERT INTO devices (`+deviceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				d.ID, u.ID, d.DeviceID, d.Token, d.DeviceType,
				s.d.Time(d.CreatedAt), s.d.Time(d.UpdatedAt), s.d.Time(d.LastSeenAt)); err != nil {
				return err
			}
		}
		inserted = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return inserted, nil
}
