package httpapi

import (
	"time"

	"github.com/usersvc/usersvc"
)

// userView is a user as the API shows it.
type userView struct {
	ID          string              `json:"id"`
	Email       string              `json:"email"`
	Name        string              `json:"name"`
	PushToken   *string             `json:"push_token"`
	Phone       *string             `json:"phone"`
	Locale      *string             `json:"locale"`
	Timezone    *string             `json:"timezone"`
	Preferences usersvc.Preferences `json:"preferences"`
	CreatedAt   string              `json:"created_at"`
	UpdatedAt   string              `json:"updated_at"`
	// EmailVerifiedAt and PhoneVerifiedAt are null while unverified.
	EmailVerifiedAt *string `json:"email_verified_at"`
	PhoneVerifiedAt *string `json:"phone_verified_at"`
}

// registeredView is the answer to a registration: the user and its id twice.
type registeredView struct {
	UserID string `json:"user_id"`
	userView
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func viewUser(u *usersvc.User) userView {
	return userView{
		ID:          u.ID,
		Email:       u.Email,
		Name:        u.Name,
		PushToken:   u.PushToken,
		Phone:       u.Phone,
		Locale:      u.Locale,
		Timezone:    u.Timezone,
		Preferences: u.Preferences,
		CreatedAt:   timestamp(u.CreatedAt),
		UpdatedAt:   timestamp(u.UpdatedAt),

		EmailVerifiedAt: optTimestamp(u.EmailVerifiedAt),
		PhoneVerifiedAt: optTimestamp(u.PhoneVerifiedAt),
	}
}

// optTimestamp is the timestamp of *t, or nil.
func optTimestamp(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timestamp(*t)
	return &s
}
