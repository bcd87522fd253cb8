package usersvc

import (
	"log/slog"
	"time"
)

// User is a registered person. The password hash is not part of it: it never
// leaves the store and the account use cases.
type User struct {
	ID    string
	Email string
	Name  string
	// PushToken is the token the user registered most recently, or nil.
	PushToken *string
	// Phone (E.164), Locale (BCP 47) and Timezone (IANA) are optional.
	Phone       *string
	Locale      *string
	Timezone    *string
	Preferences Preferences
	IsAdmin     bool
	IsActive    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// EmailVerifiedAt and PhoneVerifiedAt are when the user proved to
	// receive at Email and at Phone (a code or link of a verification);
	// nil until then, and again once the address changes.
	EmailVerifiedAt *time.Time
	PhoneVerifiedAt *time.Time
}

// Device types a push token may be registered with.
const (
	DeviceAndroid = "android"
	DeviceIOS     = "ios"
	DeviceWeb     = "web"
	DeviceOther   = "other"
)

// ValidDeviceType reports whether t is one of the device types above.
func ValidDeviceType(t string) bool {
	switch t {
	case DeviceAndroid, DeviceIOS, DeviceWeb, DeviceOther:
		return true
	}
	return false
}

// Device is one push-token record of a user: one per device id, or one per
// token when the app sent no device id. A token belongs to one user at a time.
type Device struct {
	ID         string
	UserID     string
	DeviceID   *string
	Token      string
	DeviceType string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	LastSeenAt time.Time
}

// Password is a password as sent by a client. It redacts itself in logs and
// formatted output.
type Password string

// LogValue keeps the password out of structured logs.
func (Password) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// String keeps the password out of formatted output.
func (Password) String() string { return "[REDACTED]" }

// GoString keeps the password out of %#v output.
func (Password) GoString() string { return `"[REDACTED]"` }

// Registration is the input of a sign-up.
type Registration struct {
	Email       string
	Password    Password
	Name        string
	PushToken   *string
	Preferences PreferencesPatch
	// Profile holds the optional phone, locale and time zone (Name is not used).
	Profile ProfilePatch
}

// Validate normalises the registration in place (trims, lowercases the email)
// and records every rule it breaks in fe, leaving alone the fields that
// already have an entry there (a field that failed to decode is not checked
// again). It returns fe.Err().
func (r *Registration) Validate(fe FieldErrors) error {
	if _, bad := fe["email"]; !bad {
		var msgs []string
		r.Email, msgs = CheckEmail(r.Email)
		for _, m := range msgs {
			fe.Add("email", m)
		}
	}
	if _, bad := fe["password"]; !bad {
		for _, m := range CheckPassword(string(r.Password)) {
			fe.Add("password", m)
		}
	}
	if _, bad := fe["name"]; !bad {
		var msgs []string
		r.Name, msgs = CheckName(r.Name)
		for _, m := range msgs {
			fe.Add("name", m)
		}
	}
	if _, bad := fe["push_token"]; !bad && r.PushToken != nil {
		t, msgs := CheckPushToken(*r.PushToken)
		for _, m := range msgs {
			fe.Add("push_token", m)
		}
		r.PushToken = &t
	}
	r.Profile.Name = nil
	_ = r.Profile.Validate(fe)
	_ = r.Preferences.Validate("preferences.", fe)
	return fe.Err()
}

// Credentials is the input of a login.
type Credentials struct {
	Email    string
	Password Password
}

// PushTokenUpdate is the input of a push-token registration. A nil Token
// clears the user's current token (and the named device's record).
type PushTokenUpdate struct {
	Token      *string
	DeviceID   *string
	DeviceType string
}

// Validate normalises the update in place and records what it breaks in fe,
// skipping fields that already have an entry. It returns fe.Err().
func (u *PushTokenUpdate) Validate(fe FieldErrors) error {
	if _, bad := fe["push_token"]; !bad && u.Token != nil {
		t, msgs := CheckPushToken(*u.Token)
		for _, m := range msgs {
			fe.Add("push_token", m)
		}
		u.Token = &t
	}
	if _, bad := fe["device_id"]; !bad && u.DeviceID != nil {
		d, msgs := CheckDeviceID(*u.DeviceID)
		for _, m := range msgs {
			fe.Add("device_id", m)
		}
		u.DeviceID = &d
	}
	if _, bad := fe["device_type"]; !bad {
		if u.DeviceType == "" {
			u.DeviceType = DeviceOther
		} else if !ValidDeviceType(u.DeviceType) {
			fe.Add("device_type", "Must be one of: android, ios, web, other")
		}
	}
	return fe.Err()
}
