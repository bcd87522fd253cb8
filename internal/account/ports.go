package account

import (
	"context"
	"errors"
	"time"

	"github.com/usersvc/usersvc"
)

// Store is everything the use cases keep: users, their devices and their
// sessions. New takes one value that has all three ports; each use case
// uses one port.
type Store interface {
	Users
	Devices
	Sessions
	Events
	Categories
	PasswordResets
	Verifications
	EmailChanges
}

// Users keeps users. Implementations hold no business rules: they store,
// look up and enforce the uniqueness constraints of the schema. Errors are
// *usersvc.Error with ENotFound (no such row), EConflict (a uniqueness
// rule), EInvalid (text a database cannot hold: NUL or invalid UTF-8) or
// EUnavailable (the database cannot be reached); anything else is
// internal. Every method that changes several rows does so in one
// transaction: all of it happens, or none.
type Users interface {
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
	// credential, or ENotFound.
	UserByEmail(ctx context.Context, email string) (*usersvc.User, Credential, error)
	// SetPasswordHash replaces the user's hash by another of the same
	// password (a rehash); the credential version and sessions stay.
	SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error
	// ChangePassword replaces the user's password hash, moves the
	// credential version on and revokes every refresh family of the user
	// but keepFamily (which may be empty); it returns how many it revoked.
	ChangePassword(ctx context.Context, userID, hash, keepFamily string, now time.Time) (int, error)
	// UpdatePreferences applies patch atomically and returns the result, or ENotFound.
	UpdatePreferences(ctx context.Context, userID string, patch usersvc.PreferencesPatch, now time.Time) (usersvc.Preferences, error)
	// UpdateProfile changes the user's name, phone, locale and time zone
	// as the patch says, and returns the user as it now is, or ENotFound.
	UpdateProfile(ctx context.Context, userID string, patch usersvc.ProfilePatch, now time.Time) (*usersvc.User, error)
	// SetActive enables or disables the user, or ENotFound. Disabling also
	// moves the credential version on and revokes every refresh family of
	// the user.
	SetActive(ctx context.Context, userID string, active bool, now time.Time) (*usersvc.User, error)
	// DeleteUser removes the user with its devices and refresh tokens, or ENotFound.
	DeleteUser(ctx context.Context, userID string, now time.Time) error
	// ListUsers returns one page of users, newest first (created_at, then id,
	// descending), and the total number of users.
	ListUsers(ctx context.Context, limit, offset int) ([]usersvc.User, int, error)
	// UsersByIDs returns the users among ids that exist, in no set order,
	// with a constant number of queries whatever the number of ids.
	UsersByIDs(ctx context.Context, ids []string) ([]usersvc.User, error)
}

// PasswordResets keeps the password resets users asked for, under the
// rules of Users. A reset is known only by the SHA-256 hash of its token.
type PasswordResets interface {
	// CreatePasswordReset records r and emits password_reset.requested
	// with data, in one transaction that also drops the user's expired
	// resets. ENotFound when the user does not exist.
	CreatePasswordReset(ctx context.Context, r PasswordReset, data usersvc.PasswordResetEventData) error
	// PasswordReset returns the reset of tokenHash, or ENotFound.
	PasswordReset(ctx context.Context, tokenHash string) (PasswordReset, error)
	// ResetPassword spends r, if it is still unspent and unexpired at now
	// (else ENotFound and nothing changes), drops the user's other resets
	// and changes the password as ChangePassword does with no family kept,
	// all in one transaction; it returns how many sessions it ended.
	ResetPassword(ctx context.Context, r PasswordReset, hash string, now time.Time) (int, error)
}

// Verifications keeps the verifications of addresses under way, under
// the rules of Users. A verification is known only by the hashes of its
// code and link token; a user has at most one per channel.
type Verifications interface {
	// CreateVerification replaces the user's verification of v.Channel by
	// v and emits verification.requested with data, in one transaction.
	// ENotFound when the user does not exist.
	CreateVerification(ctx context.Context, v Verification, data usersvc.VerificationEventData) error
	// SpendVerificationAttempt counts one attempt at the user's
	// verification of channel, if it is unexpired at now and has had
	// fewer than max, and returns it with the attempt counted; else
	// ENotFound.
	SpendVerificationAttempt(ctx context.Context, userID, channel string, max int, now time.Time) (Verification, error)
	// VerificationByToken returns the verification of a link token's
	// hash, or ENotFound.
	VerificationByToken(ctx context.Context, tokenHash string) (Verification, error)
	// DeleteVerification ends the user's verification of channel, if any.
	DeleteVerification(ctx context.Context, userID, channel string) error
	// ConfirmVerification spends v and marks v.Address verified at now,
	// while it is still the user's address of the channel, emitting
	// user.updated, in one transaction; it returns the user. ENotFound,
	// changing nothing, when v was spent or replaced or the address
	// changed.
	ConfirmVerification(ctx context.Context, v Verification, now time.Time) (*usersvc.User, error)
}

// EmailChanges keeps the changes of email waiting for confirmation, under
// the rules of Users. A change is known only by its token's hash.
type EmailChanges interface {
	// CreateEmailChange records c, drops the user's expired changes and
	// emits email_change.requested with request and email_change.notice
	// with notice, in one transaction. ENotFound when the user does not
	// exist.
	CreateEmailChange(ctx context.Context, c EmailChange, request usersvc.EmailChangeEventData, notice usersvc.EmailChangeNoticeEventData) error
	// EmailChange returns the change of tokenHash, or ENotFound.
	EmailChange(ctx context.Context, tokenHash string) (EmailChange, error)
	// ConfirmEmailChange spends c, if it is unspent and unexpired at now
	// and the user's email is still c.OldEmail (else ENotFound), and sets
	// the user's email to c.NewEmail, verified at now, dropping the
	// user's other changes and emitting user.updated, in one transaction.
	// A taken address is EConflict, and nothing changes.
	ConfirmEmailChange(ctx context.Context, c EmailChange, now time.Time) (*usersvc.User, error)
}

// EmailChange is one change of email waiting for confirmation.
type EmailChange struct {
	// TokenHash is the hex SHA-256 of the token sent to NewEmail.
	TokenHash string
	UserID    string
	OldEmail  string
	NewEmail  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Verification is one verification of an address under way.
type Verification struct {
	UserID  string
	Channel string // usersvc.ChannelEmail or usersvc.ChannelSMS
	Address string // the email or phone it was sent to
	// CodeHash is the hex SHA-256 of the user id, channel and code;
	// TokenHash the hex SHA-256 of the link token (email only, else empty).
	CodeHash  string
	TokenHash string
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
}

// PasswordReset is the record of one forgotten-password request.
type PasswordReset struct {
	// TokenHash is the hex SHA-256 of the token handed to the user.
	TokenHash string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Categories keeps the operator's notification categories, under the
// rules of Users.
type Categories interface {
	// Categories returns every category, by key.
	Categories(ctx context.Context) ([]usersvc.Category, error)
	// Category returns the category with key, or ENotFound.
	Category(ctx context.Context, key string) (*usersvc.Category, error)
	// PutCategory creates or replaces c (by key), sets its timestamps and
	// reports whether it created it.
	PutCategory(ctx context.Context, c *usersvc.Category, now time.Time) (created bool, err error)
	// DeleteCategory removes the category, or ENotFound.
	DeleteCategory(ctx context.Context, key string, now time.Time) error
}

// Devices keeps the push-token records of users, under the rules of Users.
type Devices interface {
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
	// reason is the push provider's, recorded with the change.
	InvalidatePushTokens(ctx context.Context, tokens []string, reason string, now time.Time) (affected []string, removed int, err error)
}

// Sessions keeps the server-side state of refresh tokens. A session is a
// refresh family: every refresh token descended from one login.
type Sessions interface {
	// CreateRefreshFamily starts a family (one login) with its first token,
	// only while the user is active and its credential version is still
	// credVersion; else ErrCredentialChanged (also when the user is gone).
	CreateRefreshFamily(ctx context.Context, f RefreshFamily, first RefreshToken, credVersion int64) error
	// RotateRefreshToken spends the token jti at now, if it was not spent,
	// and applies what decide makes of its state, in one transaction:
	// recording a new successor (marked as the token's successor, the
	// family last used at now), or revoking the family. decide is called
	// with the state after the spending (AlreadySpent tells whether this
	// call spent it); it must not have side effects, as a transaction that
	// the database aborted runs again. Of many concurrent calls for one
	// jti, exactly one sees AlreadySpent false. userID is the user the
	// token names. ENotFound when the jti is unknown.
	RotateRefreshToken(ctx context.Context, userID, jti string, now time.Time, decide func(RefreshState) Rotation) (Rotation, error)
	// RefreshTokenState returns what is known of a token without changing it, or ENotFound.
	RefreshTokenState(ctx context.Context, jti string) (RefreshState, error)
	// RevokeSessions revokes the user's live families among ids (every one
	// of the user's when ids is nil) but except (which may be empty), and
	// returns how many it revoked. Revoking a revoked family is no error.
	// reason is one of usersvc.SessionsEnded…, recorded with the change.
	RevokeSessions(ctx context.Context, userID string, ids []string, except, reason string, now time.Time) (int, error)
	// Sessions returns the user's live families (not revoked, not expired
	// at now), most recently used first.
	Sessions(ctx context.Context, userID string, now time.Time) ([]RefreshFamily, error)
	// SessionIDs returns the ids of the user's live families at now, in no
	// set order; it is read on every authenticated request, through the
	// cache.
	SessionIDs(ctx context.Context, userID string, now time.Time) ([]string, error)
}

// Rotation is what a refresh does with the token it spends.
type Rotation struct {
	// Issue is a new successor to record.
	Issue *RefreshToken
	// Reissue is the successor recorded before, handed out again to a
	// retry within the reuse interval.
	Reissue *RefreshToken
	// Revoke ends the family (reuse of a spent token).
	Revoke bool
	// Err is the answer to the caller once the transaction has committed.
	Err error
}

// Credential is what a login checks a password against.
type Credential struct {
	// Hash is the encoded password hash.
	Hash string
	// Version moves on with every change that ends the user's sessions (a
	// new password, a disable); a session is recorded only under the
	// version its login read.
	Version int64
}

// ErrCredentialChanged is the store's answer to a session whose login read
// a credential that has changed since (a new password, a disable, a
// delete).
var ErrCredentialChanged = errors.New("account: the credential changed during the login")

// RefreshFamily is every refresh token descended from one login.
type RefreshFamily struct {
	ID        string
	UserID    string
	CreatedAt time.Time
	// ExpiresAt bounds every token of the family: rotation never extends it.
	ExpiresAt time.Time
	// LastUsedAt is the time of the last refresh (CreatedAt before any).
	LastUsedAt time.Time
	// UserAgent and ClientAddr describe the client of the login.
	UserAgent  string
	ClientAddr string
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
	// SpentAt is when the token was spent (zero while it is not).
	SpentAt time.Time
	// Successor is the token issued when this one was spent, if any, and
	// SuccessorSpent whether it has been spent in turn.
	Successor      *RefreshToken
	SuccessorSpent bool
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
	// IssueAccess returns a signed access token for u in the session sid.
	IssueAccess(u *usersvc.User, jti, sid string, now time.Time) (string, error)
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
	UserID  string
	Email   string
	Name    string
	IsAdmin bool
	JTI     string
	// SessionID is the refresh family the token was issued with; empty in
	// tokens issued before sessions were named.
	SessionID string
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
