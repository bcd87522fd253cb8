package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/usersvc/usersvc"
)

const msgCategoryNotFound = "Category not found"

const categoryColumns = `key, name, description, default_email, default_push, default_sms, default_in_app,
	required, commercial, created_at, updated_at`

func scanCategory(r rowScanner) (usersvc.Category, error) {
	var (
		c                       usersvc.Category
		email, push, sms, inApp bool
	)
	err := r.Scan(&c.Key, &c.Name, &c.Description, &email, &push, &sms, &inApp, &c.Required, &c.Commercial,
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	c.Defaults = map[string]bool{usersvc.ChannelEmail: email, usersvc.ChannelPush: push, usersvc.ChannelSMS: sms, usersvc.ChannelInApp: inApp}
	return c, err
}

// Categories returns every category, by key.
func (s *Store) Categories(ctx context.Context) ([]usersvc.Category, error) {
	cs, err := all(s.reader(ctx, "categories"), scanCategory, `SELECT `+categoryColumns+` FROM categories ORDER BY key`)
	return cs, s.fail(ctx, "categories", err)
}

// Category returns the category with key, or ENotFound.
func (s *Store) Category(ctx context.Context, key string) (*usersvc.Category, error) {
	if !goodText(key) {
		return nil, notFound(msgCategoryNotFound)
	}
	c, err := one(s.reader(ctx, "category"), msgCategoryNotFound, scanCategory,
		`SELECT `+categoryColumns+` FROM categories WHERE key = ?`, key)
	if err != nil {
		return nil, s.fail(ctx, "category", err)
	}
	return &c, nil
}

// PutCategory creates the category c.Key or replaces what it says (its
// creation time stays), writes category.updated, and reports whether it
// created it. It sets c's timestamps to the stored ones.
func (s *Store) PutCategory(ctx context.Context, c *usersvc.Category, now time.Time) (created bool, err error) {
	if !goodText(c.Key, c.Name, c.Description) {
		return false, badText("category")
	}
	now = ts(now)
	var stored usersvc.Category
	err = s.inTx(ctx, "put category", func(t *tx) error {
		var n int
		if _, err := one(t, "", scanInto(&n), `SELECT count(*) FROM categories WHERE key = ?`, c.Key); err != nil {
			return err
		}
		created = n == 0
		d := c.Defaults
		stored, err = one(t, "", scanCategory, `INSERT INTO categories (`+categoryColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET name = excluded.name, description = excluded.description,
			default_email = excluded.default_email, default_push = excluded.default_push,
			default_sms = excluded.default_sms, default_in_app = excluded.default_in_app,
			required = excluded.required, commercial = excluded.commercial, updated_at = excluded.updated_at
			RETURNING `+categoryColumns,
			c.Key, c.Name, c.Description, d[usersvc.ChannelEmail], d[usersvc.ChannelPush], d[usersvc.ChannelSMS],
			d[usersvc.ChannelInApp], c.Required, c.Commercial, s.d.Time(now), s.d.Time(now))
		if err == nil {
			t.emit(usersvc.EventCategoryUpdated, usersvc.CategorySubject(stored.Key), now, usersvc.NewCategoryEventData(&stored))
		}
		return err
	})
	if err == nil {
		c.CreatedAt, c.UpdatedAt = stored.CreatedAt, stored.UpdatedAt
	}
	return created, err
}

// DeleteCategory removes the category, or ENotFound, and writes
// category.deleted. The users' choices about it stay stored (and apply
// again if the key is defined again).
func (s *Store) DeleteCategory(ctx context.Context, key string, now time.Time) error {
	if !goodText(key) {
		return notFound(msgCategoryNotFound)
	}
	return s.inTx(ctx, "delete category", func(t *tx) error {
		n, err := t.exec(`DELETE FROM categories WHERE key = ?`, key)
		if err == nil && n == 0 {
			err = notFound(msgCategoryNotFound)
		}
		if err == nil {
			t.emit(usersvc.EventCategoryDeleted, usersvc.CategorySubject(key), ts(now), usersvc.CategoryKeyEventData{Key: key})
		}
		return err
	})
}

// categoriesCol scans a user's category choices from their JSON text.
type categoriesCol struct {
	m *map[string]usersvc.CategoryChoice
}

func (c categoriesCol) Scan(src any) error {
	m := map[string]usersvc.CategoryChoice{}
	if s, ok := src.(string); ok && s == "{}" {
		*c.m = m // most users make no choice: no decoding
		return nil
	}
	if err := scanJSON(src, &m); err != nil {
		return err
	}
	if m == nil {
		m = map[string]usersvc.CategoryChoice{}
	}
	*c.m = m
	return nil
}

// quietHoursCol scans a user's quiet hours from their JSON text or NULL.
type quietHoursCol struct {
	q **usersvc.QuietHours
}

func (c quietHoursCol) Scan(src any) error {
	*c.q = nil
	if src == nil {
		return nil
	}
	var q usersvc.QuietHours
	if err := scanJSON(src, &q); err != nil {
		return err
	}
	*c.q = &q
	return nil
}

func scanJSON(src, dst any) error {
	switch v := src.(type) {
	case string:
		return json.Unmarshal([]byte(v), dst)
	case []byte:
		return json.Unmarshal(v, dst)
	case nil:
		return nil
	}
	return fmt.Errorf("JSON column holds %T", src)
}

func encodeCategories(m map[string]usersvc.CategoryChoice) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // maps of strings to choices always encode
	return string(b)
}

func encodeQuietHours(q *usersvc.QuietHours) *string {
	if q == nil {
		return nil
	}
	b, _ := json.Marshal(q) // plain values always encode
	s := string(b)
	return &s
}

// goodOptional reports whether every set value is storable text.
func goodOptional(ps ...*string) bool {
	for _, p := range ps {
		if p != nil && !goodText(*p) {
			return false
		}
	}
	return true
}
