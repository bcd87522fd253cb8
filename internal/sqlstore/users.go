package sqlstore

import (
	"context"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

const userColumns = `id, email, name, push_token, phone, locale, timezone,
	pref_email, pref_push, pref_sms, pref_in_app, pref_categories, quiet_hours, is_admin, is_active, created_at, updated_at,
	email_verified_at, phone_verified_at`

// prefColumns are the columns of usersvc.Preferences, as prefDest scans them.
const prefColumns = `pref_email, pref_push, pref_sms, pref_in_app, pref_categories, quiet_hours`

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func userDest(u *usersvc.User) []any {
	d := []any{&u.ID, &u.Email, &u.Name, &u.PushToken, &u.Phone, &u.Locale, &u.Timezone}
	d = append(d, prefDest(&u.Preferences)...)
	return append(d, &u.IsAdmin, &u.IsActive, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt},
		optTime{&u.EmailVerifiedAt}, optTime{&u.PhoneVerifiedAt})
}

func prefDest(p *usersvc.Preferences) []any {
	return []any{&p.Email, &p.Push, &p.SMS, &p.InApp, categoriesCol{&p.Categories}, quietHoursCol{&p.QuietHours}}
}

// prefArgs are the values of prefColumns for p.
func prefArgs(p *usersvc.Preferences) []any {
	return []any{p.Email, p.Push, p.SMS, p.InApp, encodeCategories(p.Categories), encodeQuietHours(p.QuietHours)}
}

func scanUser(r rowScanner) (usersvc.User, error) {
	var u usersvc.User
	return u, r.Scan(userDest(&u)...)
}

// userText checks that the text of u can be stored.
func userText(u *usersvc.User) error {
	if !goodText(u.Email, u.Name) || !goodOptional(u.PushToken, u.Phone, u.Locale, u.Timezone) {
		return badText("user")
	}
	return nil
}

// insertUser inserts u. With ignoreExisting, an existing id leaves the
// table alone and reports false.
func (t *tx) insertUser(u *usersvc.User, passwordHash string, ignoreExisting bool) (bool, error) {
	q := `INSERT INTO users (` + userColumns + `, password_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	if ignoreExisting {
		q += ` ON CONFLICT (id) DO NOTHING`
	}
	if u.Preferences.Categories == nil {
		u.Preferences.Categories = map[string]usersvc.CategoryChoice{}
	}
	args := []any{u.ID, u.Email, u.Name, u.PushToken, u.Phone, u.Locale, u.Timezone}
	args = append(args, prefArgs(&u.Preferences)...)
	args = append(args, u.IsAdmin, u.IsActive, t.s.d.Time(u.CreatedAt), t.s.d.Time(u.UpdatedAt),
		t.s.optTime(u.EmailVerifiedAt), t.s.optTime(u.PhoneVerifiedAt), passwordHash)
	n, err := t.exec(q, args...)
	return n == 1, err
}

// CreateUser inserts u (its timestamps truncated in place to what the
// store keeps). When u.PushToken is set it also registers that token as a
// device record of u, moving it from any user who held it, and returns the
// ids of the other users who lost it.
func (s *Store) CreateUser(ctx context.Context, u *usersvc.User, passwordHash string) (displaced []string, err error) {
	if !isUUID(u.ID) {
		return nil, notFound(msgUserNotFound)
	}
	if err := userText(u); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = ts(u.CreatedAt), ts(u.UpdatedAt)
	err = s.inTx(ctx, "create user", func(t *tx) error {
		displaced = nil
		if err := s.d.LockTokens(ctx, t.db, tokenList(u.PushToken)); err != nil {
			return err
		}
		if _, err := t.insertUser(u, passwordHash, false); err != nil {
			return err
		}
		t.emit(usersvc.EventUserRegistered, u.ID, u.CreatedAt, usersvc.NewUserEventData(u))
		if u.PushToken == nil {
			return nil
		}
		d := usersvc.Device{UserID: u.ID, Token: *u.PushToken, DeviceType: usersvc.DeviceOther}
		displaced, err = t.saveDevice(&d, u.CreatedAt)
		return err
	})
	return displaced, err
}

func tokenList(p *string) []string {
	if p == nil {
		return nil
	}
	return []string{*p}
}

// UserByID returns the user or ENotFound.
func (s *Store) UserByID(ctx context.Context, id string) (*usersvc.User, error) {
	if !isUUID(id) {
		return nil, notFound(msgUserNotFound)
	}
	u, err := one(s.reader(ctx, "user by id"), msgUserNotFound, scanUser, `SELECT `+userColumns+` FROM users WHERE id = ?`, id)
	if err != nil {
		return nil, s.fail(ctx, "user by id", err)
	}
	return &u, nil
}

// UserByEmail returns the user with the canonical email, and its
// credential, or ENotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (*usersvc.User, account.Credential, error) {
	var (
		u usersvc.User
		c account.Credential
	)
	if !goodText(email) {
		return nil, c, notFound(msgUserNotFound)
	}
	_, err := one(s.reader(ctx, "user by email"), msgUserNotFound, scanInto(append(userDest(&u), &c.Hash, &c.Version)...),
		`SELECT `+userColumns+`, password_hash, cred_version FROM users WHERE email = ?`, email)
	if err != nil {
		return nil, c, s.fail(ctx, "user by email", err)
	}
	return &u, c, nil
}

// SetPasswordHash replaces the user's password hash with an equivalent
// one (a rehash of the same password), or ENotFound. The credential
// version and the sessions stay.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error {
	if !isUUID(userID) {
		return notFound(msgUserNotFound)
	}
	_, err := s.execTx(ctx, "set password hash", msgUserNotFound,
		`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, s.d.Time(now), userID)
	return err
}

// ChangePassword replaces the user's password hash, moves its credential
// version on, and revokes every refresh family of the user except
// keepFamily, in one transaction. It returns how many families it
// revoked, or ENotFound.
func (s *Store) ChangePassword(ctx context.Context, userID, hash, keepFamily string, now time.Time) (revoked int, err error) {
	if !isUUID(userID) {
		return 0, notFound(msgUserNotFound)
	}
	err = s.inTx(ctx, "change password", func(t *tx) (err error) {
		revoked, err = t.changePassword(userID, hash, keepFamily, now)
		return err
	})
	return revoked, err
}

// changePassword replaces the user's hash, moves its credential version
// on, emits user.password_changed and revokes every family but
// keepFamily; it returns how many it revoked, or ENotFound.
func (t *tx) changePassword(userID, hash, keepFamily string, now time.Time) (int, error) {
	n, err := t.exec(`UPDATE users SET password_hash = ?, cred_version = cred_version + 1, updated_at = ?
		WHERE id = ?`, hash, t.s.d.Time(now), userID)
	if err == nil && n == 0 {
		err = notFound(msgUserNotFound)
	}
	if err != nil {
		return 0, err
	}
	t.emit(usersvc.EventUserPasswordChanged, userID, now, usersvc.UserIDEventData{UserID: userID})
	ids, err := t.revokeFamilies(userID, keepFamily, usersvc.SessionsEndedPassword, now)
	return len(ids), err
}

// UpdatePreferences applies patch and returns the result, or ENotFound.
// A patch of channel switches only is one statement; one that changes
// categories or quiet hours reads the preferences under a row lock and
// writes them back in the same transaction. An empty patch changes
// nothing.
func (s *Store) UpdatePreferences(ctx context.Context, userID string, patch usersvc.PreferencesPatch, now time.Time) (p usersvc.Preferences, err error) {
	if !isUUID(userID) {
		return p, notFound(msgUserNotFound)
	}
	if patch.QuietHours != nil && !goodOptional(patch.QuietHours.Timezone) {
		return p, badText("quiet_hours")
	}
	switches := len(patch.Categories) == 0 && !patch.SetQuietHours
	err = s.inTx(ctx, "update preferences", func(t *tx) error {
		var err error
		switch {
		case patch.Empty():
			_, err = one(t, msgUserNotFound, scanInto(prefDest(&p)...), `SELECT `+prefColumns+` FROM users WHERE id = ?`, userID)
			return err
		case switches:
			_, err = one(t, msgUserNotFound, scanInto(prefDest(&p)...), `UPDATE users SET pref_email = COALESCE(?, pref_email),
				pref_push = COALESCE(?, pref_push), pref_sms = COALESCE(?, pref_sms), pref_in_app = COALESCE(?, pref_in_app),
				updated_at = ? WHERE id = ? RETURNING `+prefColumns,
				patch.Email, patch.Push, patch.SMS, patch.InApp, s.d.Time(now), userID)
		default:
			var old usersvc.Preferences
			if _, err = one(t, msgUserNotFound, scanInto(prefDest(&old)...),
				`SELECT `+prefColumns+` FROM users WHERE id = ?`+s.d.Lock(false), userID); err != nil {
				return err
			}
			if p = patch.Apply(old); p.Equal(old) {
				return nil // nothing changes: no write, no event
			}
			_, err = t.exec(`UPDATE users SET pref_email = ?, pref_push = ?, pref_sms = ?, pref_in_app = ?,
				pref_categories = ?, quiet_hours = ?, updated_at = ? WHERE id = ?`,
				append(prefArgs(&p), s.d.Time(now), userID)...)
		}
		if err == nil {
			t.emit(usersvc.EventPreferencesUpdated, userID, now, usersvc.PreferencesEventData{UserID: userID, Preferences: p})
		}
		return err
	})
	return p, err
}

// ListUsers returns one page of users, newest first, and the total count,
// both from one snapshot. An offset past the end gives an empty page.
func (s *Store) ListUsers(ctx context.Context, limit, offset int) (users []usersvc.User, total int, err error) {
	err = s.readTx(ctx, "list users", func(t *tx) error {
		if _, err := one(t, "", scanInto(&total), `SELECT count(*) FROM users`); err != nil {
			return err
		}
		users, err = all(t, scanUser, `SELECT `+userColumns+` FROM users
			ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, max(limit, 0), max(offset, 0))
		return err
	})
	return users, total, err
}

// UsersByIDs returns the users among ids that exist, in one statement.
func (s *Store) UsersByIDs(ctx context.Context, ids []string) ([]usersvc.User, error) {
	if ids = uuids(ids); len(ids) == 0 {
		return []usersvc.User{}, nil
	}
	users, err := all(s.reader(ctx, "users by ids"), scanUser,
		`SELECT `+userColumns+` FROM users WHERE `+s.d.InList("id"), s.d.List(ids))
	return users, s.fail(ctx, "users by ids", err)
}

// UpdateProfile changes the user's name, phone, locale and time zone as
// the patch says, or ENotFound. A new phone number is unverified.
func (s *Store) UpdateProfile(ctx context.Context, userID string, patch usersvc.ProfilePatch, now time.Time) (*usersvc.User, error) {
	if (patch.Name != nil && !goodText(*patch.Name)) || !goodOptional(patch.Phone.Value, patch.Locale.Value, patch.Timezone.Value) {
		return nil, badText("user")
	}
	return s.updateUser(ctx, "update profile", userID, usersvc.EventUserUpdated, nil,
		`UPDATE users SET name = COALESCE(?, name), phone = CASE WHEN ? THEN ? ELSE phone END,
		phone_verified_at = CASE WHEN ? AND COALESCE(phone, '') <> COALESCE(?, '') THEN NULL ELSE phone_verified_at END,
		locale = CASE WHEN ? THEN ? ELSE locale END, timezone = CASE WHEN ? THEN ? ELSE timezone END,
		updated_at = ? WHERE id = ? RETURNING `+userColumns,
		patch.Name, patch.Phone.Set, patch.Phone.Value, patch.Phone.Set, patch.Phone.Value, patch.Locale.Set, patch.Locale.Value,
		patch.Timezone.Set, patch.Timezone.Value, s.d.Time(now), userID)
}

// SetActive enables or disables the user, or ENotFound. Disabling also
// moves the credential version on and revokes every refresh family of the
// user, in the same transaction, so that no login racing it keeps a
// session, even once the user is enabled again.
func (s *Store) SetActive(ctx context.Context, userID string, active bool, now time.Time) (*usersvc.User, error) {
	bump, typ, after := 1, usersvc.EventUserDisabled, func(t *tx) error {
		_, err := t.revokeFamilies(userID, "", usersvc.SessionsEndedDisabled, now)
		return err
	}
	if active {
		bump, typ, after = 0, usersvc.EventUserEnabled, nil
	}
	return s.updateUser(ctx, "set active", userID, typ, after,
		`UPDATE users SET is_active = ?, cred_version = cred_version + ?, updated_at = ?
		WHERE id = ? RETURNING `+userColumns, active, bump, s.d.Time(now), userID)
}

// updateUser runs, in a transaction, q, which changes the user and
// returns its columns, emits the event typ of the user, then runs after
// (when set). The user's row is changed
// first, so that its lock orders the transaction against logins (see
// CreateRefreshFamily).
func (s *Store) updateUser(ctx context.Context, op, userID, typ string, after func(t *tx) error, q string, args ...any) (*usersvc.User, error) {
	if !isUUID(userID) {
		return nil, notFound(msgUserNotFound)
	}
	var u usersvc.User
	err := s.inTx(ctx, op, func(t *tx) (err error) {
		if u, err = one(t, msgUserNotFound, scanUser, q, args...); err != nil {
			return err
		}
		t.emit(typ, userID, u.UpdatedAt, usersvc.NewUserEventData(&u))
		if after == nil {
			return nil
		}
		return after(t)
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// DeleteUser removes the user; its devices and refresh tokens go with it
// (ON DELETE CASCADE), in one statement. ENotFound when there is no such
// user.
func (s *Store) DeleteUser(ctx context.Context, userID string, now time.Time) error {
	if !isUUID(userID) {
		return notFound(msgUserNotFound)
	}
	return s.inTx(ctx, "delete user", func(t *tx) error {
		n, err := t.exec(`DELETE FROM users WHERE id = ?`, userID)
		if err == nil && n == 0 {
			err = notFound(msgUserNotFound)
		}
		t.emit(usersvc.EventUserDeleted, userID, now, usersvc.UserIDEventData{UserID: userID})
		return err
	})
}

// ImportUser inserts u as it is (id, timestamps, flags) with its password
// hash and devices, unless a user with u.ID exists: then it changes nothing
// and returns false. The tokens u brings (its current token and those of
// its devices) move to it from any other user, as on registration. The
// devices are as account.PrepareImport made them. All of it is one
// transaction.
func (s *Store) ImportUser(ctx context.Context, u *usersvc.User, passwordHash string, devices []usersvc.Device) (inserted bool, err error) {
	if !isUUID(u.ID) {
		return false, notFound(msgUserNotFound)
	}
	tokens := tokenList(u.PushToken)
	for _, d := range devices {
		if !isUUID(d.ID) || !goodText(d.Token, d.DeviceType) || (d.DeviceID != nil && !goodText(*d.DeviceID)) {
			return false, badText("devices")
		}
		tokens = append(tokens, d.Token)
	}
	if err := userText(u); err != nil {
		return false, err
	}
	u.CreatedAt, u.UpdatedAt = ts(u.CreatedAt), ts(u.UpdatedAt)
	err = s.inTx(ctx, "import user", func(t *tx) error {
		inserted = false
		if err := s.d.LockTokens(ctx, t.db, tokens); err != nil {
			return err
		}
		if ok, err := t.insertUser(u, passwordHash, true); err != nil || !ok {
			return err
		}
		t.emit(usersvc.EventUserRegistered, u.ID, u.CreatedAt, usersvc.NewUserEventData(u))
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
			d.UserID = u.ID
			t.emit(usersvc.EventDeviceRegistered, u.ID, d.UpdatedAt, usersvc.NewDeviceEventData(&d))
		}
		inserted = true
		return nil
	})
	return inserted, err
}
