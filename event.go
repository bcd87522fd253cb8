package usersvc

import (
	"encoding/json"
	"time"
)

// Event is one change of a user, as the change feed and the brokers carry
// it: a CloudEvents 1.0 event in the structured JSON mode. Position is the
// extension attribute "position": the event's place in the one global,
// gap-tolerant, increasing order of events, which consumers keep as their
// cursor. TraceParent is the extension attribute "traceparent" of
// CloudEvents' distributed tracing extension: the W3C trace context of the
// request that made the change, when it was traced ("" and absent from the
// JSON otherwise).
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Position        int64           `json:"position"`
	TraceParent     string          `json:"traceparent,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// The constant attributes of every event.
const (
	EventSpecVersion = "1.0"
	EventSource      = "/usersvc"
	EventContentType = "application/json"
)

// Event types. Each names the change; its data is the type of the same
// name below (EventUserRegistered carries UserEventData, …).
const (
	EventUserRegistered       = "usersvc.user.registered"
	EventUserUpdated          = "usersvc.user.updated"
	EventUserDeleted          = "usersvc.user.deleted"
	EventUserDisabled         = "usersvc.user.disabled"
	EventUserEnabled          = "usersvc.user.enabled"
	EventUserPasswordChanged  = "usersvc.user.password_changed"
	EventPreferencesUpdated   = "usersvc.preferences.updated"
	EventDeviceRegistered     = "usersvc.device.registered"
	EventDeviceRemoved        = "usersvc.device.removed"
	EventPushTokenInvalidated = "usersvc.push_token.invalidated"
	EventSessionsRevoked      = "usersvc.sessions.revoked"
	// EventPasswordResetRequested asks the system to deliver a password
	// reset link: it carries a secret (see PasswordResetEventData).
	EventPasswordResetRequested = "usersvc.password_reset.requested"
	// EventVerificationRequested asks the system to deliver a
	// verification code (and, for email, a link): it carries secrets (see
	// VerificationEventData).
	EventVerificationRequested = "usersvc.verification.requested"
	// EventEmailChangeRequested asks the system to deliver, to the new
	// address, the confirmation of a change of email: it carries a secret
	// (see EmailChangeEventData).
	EventEmailChangeRequested = "usersvc.email_change.requested"
	// EventEmailChangeNotice asks the system to tell the old address that
	// a change of email was asked for (EmailChangeNoticeEventData).
	EventEmailChangeNotice = "usersvc.email_change.notice"
	// EventCategoryUpdated and EventCategoryDeleted are changes of a
	// category's definition, not of a user: their subject is
	// CategorySubject(key).
	EventCategoryUpdated = "usersvc.category.updated"
	EventCategoryDeleted = "usersvc.category.deleted"
)

// CategorySubject is the subject of the events of the category key:
// "categories/" and the key, which no user id can be.
func CategorySubject(key string) string { return "categories/" + key }

// EventTypes lists every event type.
var EventTypes = []string{
	EventUserRegistered, EventUserUpdated, EventUserDeleted, EventUserDisabled, EventUserEnabled,
	EventUserPasswordChanged, EventPreferencesUpdated, EventDeviceRegistered, EventDeviceRemoved,
	EventPushTokenInvalidated, EventSessionsRevoked, EventPasswordResetRequested,
	EventVerificationRequested, EventEmailChangeRequested, EventEmailChangeNotice,
	EventCategoryUpdated, EventCategoryDeleted,
}

// UserEventData is the data of user.registered, user.updated,
// user.disabled and user.enabled: the user as it now is. It never holds a
// password or its hash.
type UserEventData struct {
	ID          string      `json:"id"`
	Email       string      `json:"email"`
	Name        string      `json:"name"`
	PushToken   *string     `json:"push_token"`
	Phone       *string     `json:"phone"`
	Locale      *string     `json:"locale"`
	Timezone    *string     `json:"timezone"`
	Preferences Preferences `json:"preferences"`
	IsAdmin     bool        `json:"is_admin"`
	IsActive    bool        `json:"is_active"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
	// EmailVerifiedAt and PhoneVerifiedAt are null while unverified.
	EmailVerifiedAt *time.Time `json:"email_verified_at"`
	PhoneVerifiedAt *time.Time `json:"phone_verified_at"`
}

// NewUserEventData is the event data of u.
func NewUserEventData(u *User) UserEventData {
	return UserEventData{ID: u.ID, Email: u.Email, Name: u.Name, PushToken: u.PushToken,
		Phone: u.Phone, Locale: u.Locale, Timezone: u.Timezone, Preferences: u.Preferences,
		IsAdmin: u.IsAdmin, IsActive: u.IsActive, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
		EmailVerifiedAt: utcOrNil(u.EmailVerifiedAt), PhoneVerifiedAt: utcOrNil(u.PhoneVerifiedAt)}
}

// utcOrNil is *t in UTC, or nil.
func utcOrNil(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

// UserIDEventData is the data of user.deleted and user.password_changed.
type UserIDEventData struct {
	UserID string `json:"user_id"`
}

// PreferencesEventData is the data of preferences.updated: the whole new
// preferences.
type PreferencesEventData struct {
	UserID      string      `json:"user_id"`
	Preferences Preferences `json:"preferences"`
}

// DeviceEventData is the data of device.registered and device.removed. It
// carries the push token: the push service needs it.
type DeviceEventData struct {
	UserID     string  `json:"user_id"`
	ID         string  `json:"id"`
	DeviceID   *string `json:"device_id"`
	PushToken  string  `json:"push_token"`
	DeviceType string  `json:"device_type"`
}

// NewDeviceEventData is the event data of d.
func NewDeviceEventData(d *Device) DeviceEventData {
	return DeviceEventData{UserID: d.UserID, ID: d.ID, DeviceID: d.DeviceID, PushToken: d.Token, DeviceType: d.DeviceType}
}

// PushTokenInvalidatedEventData is the data of push_token.invalidated: a
// token the push provider rejected was taken from the user.
type PushTokenInvalidatedEventData struct {
	UserID    string `json:"user_id"`
	PushToken string `json:"push_token"`
	Reason    string `json:"reason"`
}

// SessionsRevokedEventData is the data of sessions.revoked: sessions of the
// user ended (a logout, the end of a session, a password change, a
// disable, the reuse of a refresh token).
type SessionsRevokedEventData struct {
	UserID     string   `json:"user_id"`
	SessionIDs []string `json:"session_ids"`
	Reason     string   `json:"reason"`
}

// PasswordResetEventData is the data of password_reset.requested: what a
// mail service needs to send the user the way to choose a new password.
// Token is the single-use secret (usersvc keeps only its SHA-256 hash),
// valid until ExpiresAt; Link is the operator's reset page with the token
// in its query (null when PASSWORD_RESET_URL is not set: the mail service
// builds its own from Token). Consumers must not log or keep it.
type PasswordResetEventData struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	Locale    *string   `json:"locale"`
	Token     string    `json:"token"`
	Link      *string   `json:"link"`
	ExpiresAt time.Time `json:"expires_at"`
}

// VerificationEventData is the data of verification.requested: what the
// mail or SMS service needs to send the user a code that proves the
// address. Channel is "email" or "sms"; Address the email or the phone
// (E.164); Code six digits; Token (email only) the single-use secret of a
// link, and Link the operator's page with it (null when
// VERIFICATION_URL is not set, and for sms). usersvc keeps only hashes of
// Code and Token. Consumers must not log or keep them.
type VerificationEventData struct {
	UserID    string    `json:"user_id"`
	Channel   string    `json:"channel"`
	Address   string    `json:"address"`
	Locale    *string   `json:"locale"`
	Code      string    `json:"code"`
	Token     *string   `json:"token"`
	Link      *string   `json:"link"`
	ExpiresAt time.Time `json:"expires_at"`
}

// EmailChangeEventData is the data of email_change.requested: to be
// delivered to NewEmail. Token is the single-use secret that confirms the
// change (usersvc keeps only its hash), valid until ExpiresAt; Link the
// operator's page with it (null when EMAIL_CHANGE_URL is not set).
// Consumers must not log or keep it.
type EmailChangeEventData struct {
	UserID    string    `json:"user_id"`
	OldEmail  string    `json:"old_email"`
	NewEmail  string    `json:"new_email"`
	Locale    *string   `json:"locale"`
	Token     string    `json:"token"`
	Link      *string   `json:"link"`
	ExpiresAt time.Time `json:"expires_at"`
}

// EmailChangeNoticeEventData is the data of email_change.notice: to be
// delivered to Email, the address the account has now, so that its owner
// learns of a change it did not ask for. It carries no secret.
type EmailChangeNoticeEventData struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	NewEmail  string    `json:"new_email"`
	Locale    *string   `json:"locale"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CategoryEventData is the data of category.updated: the category as it
// now is (created or changed), as GET /api/v1/categories shows it.
type CategoryEventData struct {
	Key         string          `json:"key"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Defaults    map[string]bool `json:"defaults"`
	Required    bool            `json:"required"`
	Commercial  bool            `json:"commercial"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// NewCategoryEventData is the event data of c.
func NewCategoryEventData(c *Category) CategoryEventData {
	return CategoryEventData{Key: c.Key, Name: c.Name, Description: c.Description, Defaults: c.Defaults,
		Required: c.Required, Commercial: c.Commercial, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
}

// CategoryKeyEventData is the data of category.deleted. The users' choices
// of the category stay, and apply again if a category of the same key is
// defined.
type CategoryKeyEventData struct {
	Key string `json:"key"`
}

// Reasons of sessions.revoked.
const (
	SessionsEndedLogout   = "logout"
	SessionsEndedByUser   = "ended"
	SessionsEndedPassword = "password_changed"
	SessionsEndedDisabled = "disabled"
	SessionsEndedReuse    = "refresh_reuse"
)
