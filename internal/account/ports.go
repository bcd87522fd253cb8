package account

import (
	"context"
	"time"

	"github.com/usersvc/usersvc"
)

// Store keeps users, their devices and the server-side state of refresh
// tokens. Implementations hold no business rules: they store, look up and
// enforce the uniqueness constraints of the schema. Errors are *usersvc.Error
// with ENotFound (no such row), EConflict (a uniqueness rule) or EUnavailable
// (the database cannot be reached); anything else is internal.
type Store interface {
	// CreateUser inserts u with its password hash. When u.PushToken is set
	// it also registers that token as a device record of u (with no device
	// id, type "other"), moving it from any user who held it. A taken email
	// is EConflict. displaced holds the ids of the other users who lost that
	// token (a record of theirs went, or it was their current token), each
	// once, in no set order; it is empty when nobody else held it.
	CreateUser(ctx context.Context, u *usersvc.User, passwordHash string) (displaced []string, err error)
	// UserByID returns the user or ENotFound.
	UserByID(ctx context.Context, id string) (*usersvc.User, error)
	// UserByEmail returns the user whose canonical email is email, with its
	// password hash, or ENotFound.
	UserByEmail(ctx context.Context, email string) (*usersvc.User, string, error)
	// SetPasswordHash replaces the user's password hash.
	SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error
	// UpdatePreferences applies patch atomically and returns the result, or ENotFound.
	UpdatePreferences(ctx context.Context, userID string, patch usersvc.PreferencesPatch, now time.Time) (usersvc.Preferences, error)
	// RegisterPushToken records d (d.Token set, d.DeviceID optional) for
	// d.UserID and makes d.Token the user's current token. The record is the
	// one of d.DeviceID, else the one holding d.Token; the token is removed
	// from every other record (of this user or another) and from any other
	// user's current token. d.ID, d.CreatedAt, d.UpdatedAt and d.LastSeenAt
	// are filled in. displaced holds the ids of the users other than
	// d.UserID who lost d.Token (a record of theirs went, or it was their
	// current token), each once, in no set order; it is empty when nobody
	// else held it. ENotFound when the user does not exist.
	RegisterPushToken(ctx context.Context, d *usersvc.Device, now time.Time) (displaced []string, err error)
	// ClearPushToken sets the user's current token to null and removes the
	// record of deviceID when it is given, else the record holding the
	// token that was current. ENotFound when the user does not exist.
	ClearPushToken(ctx context.Context, userID string, deviceID *string, now time.Time) error
	// Devices returns the user's device records, most recently seen first.
	Devices(ctx context.Context, userID string) ([]usersvc.Device, error)

	// CreateRefreshFamily starts a family (one login) with its first token.
	CreateRefreshFamily(ctx context.Context, f RefreshFamily, first RefreshToken) error
	// SpendRefreshToken marks the token spent at now, atomically: of many
	// concurrent calls for one jti, exactly one sees AlreadySpent false.
	// ENotFound when the jti is unknown.
	SpendRefreshToken(ctx context.Context, jti string, now time.Time) (RefreshState, error)
	// AddRefreshToken records a successor in an existing family.
	AddRefreshToken(ctx context.Context, t RefreshToken) error
	// RevokeRefreshFamily marks the family revoked (idempotent).
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error
	// RefreshTokenState returns what is known of a token without changing it, or ENotFound.
	RefreshTokenState(ctx context.Context, jti string) (RefreshState, error)
	// DeleteExpiredRefreshTokens removes families (and their tokens) that
	// expired before t, and returns how many families went.
	DeleteExpiredRefreshTokens(ctx context.Context, t time.Time) (int, error)

	// RevokeUserRefreshFamilies revokes every family of the user except
	// exceptFamilyID (which may be empty), and returns how many it revoked.
	RevokeUserRefreshFamilies(ctx context.Context, userID, exceptFamilyID string, now time.Time) (int, error)

	// ListUsers returns one page of users, newest first (created_at, then id,
	// descending), and the total number of users.
	ListUsers(ctx context.Context, limit, offset int) ([]usersvc.User, int, error)
	// UsersByIDs returns the users among ids that exist, in no set order,
	// with a constant number of queries whatever the number of ids.
	UsersByIDs(ctx context.Context, ids []string) ([]usersvc.User, error)
	// DevicesOfUsers returns the device records of each of ids (most recently
	// seen first), with a constant number of queries.
	DevicesOfUsers(ctx context.Context, ids []string) (map[string][]usersvc.Device, error)
	// DeleteDevice removes the user's record whose device id (or, failing
	// that, record id) is deviceID, clearing the user's current token when it
	// was that record's token. ENotFound when there is no such record.
	DeleteDevice(ctx context.Context, userID, deviceID string, now time.Time) error
	// InvalidatePushTokens removes every record holding one of tokens,
	// whoever holds it, clears them as any user's current token, and returns
	// the ids of the users who lost a record or a current token (each once,
	// in no set order) and the number of records removed.
	InvalidatePushTokens(ctx context.Context, tokens []string, now time.Time) (affected []string, removed int, err error)

	// UpdateName changes the user's name, or ENotFound.
	UpdateName(ctx context.Context, userID, name string, now time.Time) (*usersvc.User, error)
	// SetActive enables or disables the user, or ENotFound.
	SetActive(ctx context.Context, userID string, active bool, now time.Time) (*usersvc.User, error)
	// DeleteUser removes the user with its devices and refresh tokens, or ENotFound.
	DeleteUser(ctx context.Context, userID string) error

	// ImportUser inserts u (keeping u.ID, timestamps and flags) with its
	// password hash and devices when no user has u.ID; it changes nothing
	// and returns false when that id already exists. A taken email under
	// another id is EConflict.
	ImportUser(ctx context.Context, u *usersvc.User, passwordHash string, devices []usersvc.Device) (bool, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// RefreshFamily is every refresh token descended from one login.
type RefreshFamily struct {
	ID        string
	UserID    string
	CreatedAt time.Time
	// ExpiresAt bounds every token of the family: rotation never extends it.
	ExpiresAt time.Time
}

// RefreshToken is the server-side record of one refresh token.
type RefreshToken struct {
	JTI       string
	FamilyID  string
	UserID    string
	ParentJTI string // empty for the first token of a family
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// RefreshState is a refresh token's record with the state of its family.
type RefreshState struct {
	Token           RefreshToken
	FamilyExpiresAt time.Time
	FamilyRevoked   bool
	// AlreadySpent is true when the token had been spent before this call.
	AlreadySpent bool
}

// Hasher hashes and checks passwords.
type Hasher interface {
	// Hash returns an encoded hash of password.
	Hash(ctx context.Context, password string) (string, error)
	// Verify reports whether password matches encoded, and whether encoded
	// should be replaced by a fresh Hash (its parameters or scheme are
	// outdated). A malformed or unusable encoded hash never matches.
	Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error)
	// Burn does the work of one Verify against nothing, so that a login for
	// an unknown email costs as much as one for a known email.
	Burn(ctx context.Context, password string)
}

// Tokens signs and verifies JWTs.
type Tokens interface {
	// IssueAccess returns a signed access token for u.
	IssueAccess(u *usersvc.User, jti string, now time.Time) (string, error)
	// IssueRefresh returns a signed refresh token for t.
	IssueRefresh(t RefreshToken) (string, error)
	// ParseAccess verifies an access token and returns its claims.
	ParseAccess(token string, now time.Time) (AccessClaims, error)
	// ParseRefresh verifies a refresh token and returns its claims.
	ParseRefresh(token string, now time.Time) (RefreshClaims, error)
	// AccessLifetime is how long an access token lives.
	AccessLifetime() time.Duration
	// RefreshLifetime is how long a refresh family lives.
	RefreshLifetime() time.Duration
}

// AccessClaims are the verified claims of an access token.
type AccessClaims struct {
	UserID    string
	Email     string
	Name      string
	IsAdmin   bool
	JTI       string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// RefreshClaims are the verified claims of a refresh token.
type RefreshClaims struct {
	UserID    string
	JTI       string
	IssuedAt  time.Time
	ExpiresAt time.Time
}
