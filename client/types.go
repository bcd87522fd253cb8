package client

import (
	"log/slog"
	"time"

	"github.com/usersvc/usersvc"
)

// User is a user as the service shows it.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	// PushToken is the token the user registered most recently, or nil.
	PushToken *string `json:"push_token"`
	// Phone (E.164, such as +14155550123), Locale (BCP 47, such as en-US)
	// and Timezone (IANA, such as Europe/Berlin) are nil when not set.
	Phone       *string             `json:"phone"`
	Locale      *string             `json:"locale"`
	Timezone    *string             `json:"timezone"`
	Preferences usersvc.Preferences `json:"preferences"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
	// EmailVerifiedAt and PhoneVerifiedAt are when the user verified its
	// email and its phone; nil while unverified (see RequestVerification).
	EmailVerifiedAt *time.Time `json:"email_verified_at"`
	PhoneVerifiedAt *time.Time `json:"phone_verified_at"`
}

// Device is one push-token record of a user: one per device id, or one per
// token when the app sent no device id.
type Device struct {
	// ID is the record's id.
	ID string `json:"id"`
	// DeviceID is the id the app gave its device, or nil.
	DeviceID  *string `json:"device_id"`
	PushToken string  `json:"push_token"`
	// DeviceType is usersvc.DeviceAndroid, DeviceIOS, DeviceWeb or DeviceOther.
	DeviceType string    `json:"device_type"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// LastSeenAt is when the app last registered the token.
	LastSeenAt time.Time `json:"last_seen_at"`
}

// Tokens is a pair of access and refresh tokens. It keeps them out of logs
// and formatted output.
type Tokens struct {
	// Access authenticates calls (Authorization: Bearer) until it expires.
	Access string
	// Refresh gets a new pair from Refresh, once.
	Refresh string
}

// LogValue keeps the tokens out of structured logs.
func (Tokens) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// String keeps the tokens out of formatted output.
func (Tokens) String() string { return "[REDACTED]" }

// GoString keeps the tokens out of %#v output.
func (Tokens) GoString() string { return "client.Tokens{[REDACTED]}" }

// Session is what a login hands out.
type Session struct {
	Tokens Tokens
	User   User
}

// PageMeta describes one page of a list.
type PageMeta struct {
	Total       int  `json:"total"`
	Limit       int  `json:"limit"`
	Page        int  `json:"page"`
	TotalPages  int  `json:"total_pages"`
	HasNext     bool `json:"has_next"`
	HasPrevious bool `json:"has_previous"`
}

// UserPage is one page of the user list, newest first.
type UserPage struct {
	Users []User
	Meta  PageMeta
}

// UserWithDevices is a user and every device record, for notification fan-out.
type UserWithDevices struct {
	User
	PushTokens []Device `json:"push_tokens"`
}

// Batch is the answer of BatchUsers: the users found, in the order asked
// (each id once), and the ids of no user.
type Batch struct {
	Users    []UserWithDevices `json:"users"`
	NotFound []string          `json:"not_found"`
}

// Health is the service's report on itself.
type Health struct {
	// Status is "healthy", "degraded" (Redis is configured but down) or
	// "unhealthy" (the database is down).
	Status string `json:"status"`
	// Database is "connected" or "disconnected".
	Database string `json:"database"`
	// Redis is "connected", "disconnected" or "not_configured".
	Redis     string    `json:"redis"`
	Version   string    `json:"version"`
	Timestamp time.Time `json:"timestamp"`
}

// JSONWebKey is one public signing key of the service (RFC 7517).
type JSONWebKey struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}
