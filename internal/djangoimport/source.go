package djangoimport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Source is a connection to the Django database: a *pgx.Conn or a
// *pgxpool.Pool. Run reads it in one read-only, repeatable-read
// transaction, so that users and their tokens are a consistent snapshot.
type Source interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// djangoUser is one row of users_user. Columns the schema declares NOT NULL
// are still read as nullable where a NULL would otherwise stop the whole
// import: one odd row is reported, not fatal.
type djangoUser struct {
	ID          string
	Password    *string
	Email       *string
	Name        *string
	PushToken   *string
	Preferences *string // the jsonb as text
	IsActive    bool
	IsStaff     bool
	IsSuperuser bool
	LastLogin   *time.Time
	DateJoined  *time.Time // only when the table has a date_joined column
	CreatedAt   *time.Time
	UpdatedAt   *time.Time
}

// djangoDevice is one row of users_pushtoken.
type djangoDevice struct {
	ID         string
	UserID     string
	DeviceID   *string
	Token      *string
	DeviceType *string
	IsActive   bool
	CreatedAt  *time.Time
}

// notificationPreferences is one row of users_notificationpreferences.
type notificationPreferences struct {
	Email, Push, SMS *bool
}

// snapshot is everything the import needs from the Django database.
type snapshot struct {
	users   []djangoUser                       // oldest first
	devices map[string][]djangoDevice          // by user id
	notify  map[string]notificationPreferences // by user id
}

// read loads the Django tables. users_user must exist; users_pushtoken and
// users_notificationpreferences are read when they exist, and date_joined
// when users_user has it. Tables are found through the connection's
// search_path, as Django finds them.
func read(ctx context.Context, src Source) (*snapshot, error) {
	tx, err := src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	var hasUsers, hasTokens, hasNotify, hasDateJoined, hasSMS bool
	err = tx.QueryRow(ctx, `SELECT
		to_regclass('users_user') IS NOT NULL,
		to_regclass('users_pushtoken') IS NOT NULL,
		to_regclass('users_notificationpreferences') IS NOT NULL,
		EXISTS (SELECT 1 FROM pg_attribute
			WHERE attrelid = to_regclass('users_user') AND attname = 'date_joined'
			AND attnum > 0 AND NOT attisdropped),
		EXISTS (SELECT 1 FROM pg_attribute
			WHERE attrelid = to_regclass('users_notificationpreferences') AND attname = 'sms_notifications'
			AND attnum > 0 AND NOT attisdropped)`).Scan(&hasUsers, &hasTokens, &hasNotify, &hasDateJoined, &hasSMS)
	if err != nil {
		return nil, fmt.Errorf("look up the Django tables: %w", err)
	}
	if !hasUsers {
		return nil, errors.New("there is no users_user table: is this the Django service's database?")
	}

	s := &snapshot{devices: map[string][]djangoDevice{}, notify: map[string]notificationPreferences{}}
	dateJoined := "NULL::timestamptz"
	if hasDateJoined {
		dateJoined = "date_joined"
	}
	rows, err := tx.Query(ctx, `SELECT id::text, password, email, name, push_token, preferences::text,
		is_active, is_staff, is_superuser, last_login, `+dateJoined+`, created_at, updated_at
		FROM users_user ORDER BY created_at NULLS LAST, id`)
	if err != nil {
		return nil, fmt.Errorf("read users_user: %w", err)
	}
	s.users, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (djangoUser, error) {
		var u djangoUser
		err := r.Scan(&u.ID, &u.Password, &u.Email, &u.Name, &u.PushToken, &u.Preferences,
			&u.IsActive, &u.IsStaff, &u.IsSuperuser, &u.LastLogin, &u.DateJoined, &u.CreatedAt, &u.UpdatedAt)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("read users_user: %w", err)
	}

	if hasTokens {
		rows, err := tx.Query(ctx, `SELECT id::text, user_id::text, device_id, token, device_type, is_active, created_at
			FROM users_pushtoken ORDER BY user_id, created_at, id`)
		if err != nil {
			return nil, fmt.Errorf("read users_pushtoken: %w", err)
		}
		devices, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (djangoDevice, error) {
			var d djangoDevice
			err := r.Scan(&d.ID, &d.UserID, &d.DeviceID, &d.Token, &d.DeviceType, &d.IsActive, &d.CreatedAt)
			return d, err
		})
		if err != nil {
			return nil, fmt.Errorf("read users_pushtoken: %w", err)
		}
		for _, d := range devices {
			s.devices[d.UserID] = append(s.devices[d.UserID], d)
		}
	}

	if hasNotify {
		sms := "NULL::boolean"
		if hasSMS {
			sms = "sms_notifications"
		}
		rows, err := tx.Query(ctx, `SELECT user_id::text, email_notifications, push_notifications, `+sms+`
			FROM users_notificationpreferences`)
		if err != nil {
			return nil, fmt.Errorf("read users_notificationpreferences: %w", err)
		}
		var userID string
		var email, push, smsOn *bool
		_, err = pgx.ForEachRow(rows, []any{&userID, &email, &push, &smsOn}, func() error {
			s.notify[userID] = notificationPreferences{Email: copyBool(email), Push: copyBool(push), SMS: copyBool(smsOn)}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read users_notificationpreferences: %w", err)
		}
	}
	return s, tx.Commit(ctx)
}

// copyBool returns a pointer to a copy of *b, or nil.
func copyBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}
