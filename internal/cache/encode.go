package cache

import (
	"time"

	"github.com/usersvc/usersvc"
)

// userJSON is the encoding of a cached user. It lists every field that is
// cached; a field added to usersvc.User is not cached until it is added
// here (and the key prefix's version changed if old values would decode
// wrongly).
type userJSON struct {
	ID        string  `json:"id"`
	Email     string  `json:"email"`
	Name      string  `json:"name"`
	PushToken *string `json:"push_token,omitempty"`
	Phone     *string `json:"phone,omitempty"`
	Locale    *string `json:"locale,omitempty"`
	Timezone  *string `json:"timezone,omitempty"`
	PrefEmail bool    `json:"pref_email"`
	PrefPush  bool    `json:"pref_push"`
	PrefSMS   bool    `json:"pref_sms"`
	PrefInApp bool    `json:"pref_in_app"`
	// Categories and QuietHours are the user's, as usersvc encodes them.
	Categories map[string]usersvc.CategoryChoice `json:"categories,omitempty"`
	QuietHours *usersvc.QuietHours               `json:"quiet_hours,omitempty"`
	IsAdmin    bool                              `json:"is_admin"`
	IsActive   bool                              `json:"is_active"`
	CreatedAt  time.Time                         `json:"created_at"`
	UpdatedAt  time.Time                         `json:"updated_at"`
	// EmailVerifiedAt and PhoneVerifiedAt are absent in entries written
	// before addresses were verified, which is what they were: nil.
	EmailVerifiedAt *time.Time `json:"email_verified_at,omitempty"`
	PhoneVerifiedAt *time.Time `json:"phone_verified_at,omitempty"`
}

func newUserJSON(u *usersvc.User) userJSON {
	return userJSON{
		ID:         u.ID,
		Email:      u.Email,
		Name:       u.Name,
		PushToken:  u.PushToken,
		Phone:      u.Phone,
		Locale:     u.Locale,
		Timezone:   u.Timezone,
		PrefEmail:  u.Preferences.Email,
		PrefPush:   u.Preferences.Push,
		PrefSMS:    u.Preferences.SMS,
		PrefInApp:  u.Preferences.InApp,
		Categories: u.Preferences.Categories,
		QuietHours: u.Preferences.QuietHours,
		IsAdmin:    u.IsAdmin,
		IsActive:   u.IsActive,
		CreatedAt:  u.CreatedAt.UTC(),
		UpdatedAt:  u.UpdatedAt.UTC(),

		EmailVerifiedAt: u.EmailVerifiedAt,
		PhoneVerifiedAt: u.PhoneVerifiedAt,
	}
}

func (v *userJSON) user() *usersvc.User {
	if v.Categories == nil {
		v.Categories = map[string]usersvc.CategoryChoice{}
	}
	return &usersvc.User{
		ID:        v.ID,
		Email:     v.Email,
		Name:      v.Name,
		PushToken: v.PushToken,
		Phone:     v.Phone,
		Locale:    v.Locale,
		Timezone:  v.Timezone,
		Preferences: usersvc.Preferences{Email: v.PrefEmail, Push: v.PrefPush, SMS: v.PrefSMS, InApp: v.PrefInApp,
			Categories: v.Categories, QuietHours: v.QuietHours},
		IsAdmin:   v.IsAdmin,
		IsActive:  v.IsActive,
		CreatedAt: v.CreatedAt.UTC(),
		UpdatedAt: v.UpdatedAt.UTC(),

		EmailVerifiedAt: v.EmailVerifiedAt,
		PhoneVerifiedAt: v.PhoneVerifiedAt,
	}
}

// deviceJSON is the encoding of a cached device record.
type deviceJSON struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	DeviceID   *string   `json:"device_id,omitempty"`
	Token      string    `json:"token"`
	DeviceType string    `json:"device_type"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
}

func newDeviceJSON(d *usersvc.Device) deviceJSON {
	return deviceJSON{
		ID:         d.ID,
		UserID:     d.UserID,
		DeviceID:   d.DeviceID,
		Token:      d.Token,
		DeviceType: d.DeviceType,
		CreatedAt:  d.CreatedAt.UTC(),
		UpdatedAt:  d.UpdatedAt.UTC(),
		LastSeenAt: d.LastSeenAt.UTC(),
	}
}

func (v *deviceJSON) device() usersvc.Device {
	return usersvc.Device{
		ID:         v.ID,
		UserID:     v.UserID,
		DeviceID:   v.DeviceID,
		Token:      v.Token,
		DeviceType: v.DeviceType,
		CreatedAt:  v.CreatedAt.UTC(),
		UpdatedAt:  v.UpdatedAt.UTC(),
		LastSeenAt: v.LastSeenAt.UTC(),
	}
}
