// Package account holds the use cases of the user service: registration,
// login, token refresh and logout, reading and changing a user's data, and
// the access rules that decide who may do which. It declares the small
// interfaces it needs (Store, Hasher, Tokens) and holds every business rule
// once, whatever the store.
package account

import (
	"context"
	"errors"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
)

// Messages of the contract that the use cases produce.
const (
	MsgInvalidCredentials = "Invalid email or password"
	MsgAccountDisabled    = "Account is disabled"
	MsgEmailTaken         = "A user with this email already exists"
	MsgUserNotFound       = "User not found"
	MsgForbidden          = "You do not have permission to access this user"
	MsgTokenInvalid       = "Token is invalid or expired"
	MsgTokenReused        = "Token is invalid or expired"
)

// Service runs the use cases. Build it with New.
type Service struct {
	users     Users
	devices   Devices
	sessions  Sessions
	hasher    Hasher
	tokens    Tokens
	keys      ServiceKeys
	logger    *slog.Logger
	now       func() time.Time
	newID     func() string
	security  func(ctx context.Context, event string, attrs ...slog.Attr)
	limits    Limits
	onLimited func(rule string)
}

// Options are the optional parts of a Service.
type Options struct {
	// ServiceKeys are the keys other services present.
	ServiceKeys ServiceKeys
	// Logger receives warnings and security events; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NewID makes user ids; nil means UUID version 7.
	NewID func() string
	// OnSecurityEvent is told of each security event (failed login,
	// refresh reuse, forbidden access), for example to count them.
	OnSecurityEvent func(event string)
	// Limits rate-limit login and registration; zero means no limits.
	Limits Limits
	// OnRateLimited is told of each rejection, with the rule's name.
	OnRateLimited func(rule string)
}

// Security events.
const (
	EventLoginFailed   = "login_failed"
	EventRefreshReuse  = "refresh_reuse"
	EventForbidden     = "forbidden_access"
	EventLoginDisabled = "login_disabled_account"
	EventRateLimited   = "rate_limited"
)

// New returns a Service over its dependencies. A cache, when there is one,
// wraps store (see internal/cache): the use cases do not know of it.
func New(store Store, hasher Hasher, tokens Tokens, opts Options) *Service {
	s := &Service{
		users:     store,
		devices:   store,
		sessions:  store,
		hasher:    hasher,
		tokens:    tokens,
		keys:      opts.ServiceKeys,
		logger:    opts.Logger,
		now:       opts.Now,
		newID:     opts.NewID,
		limits:    opts.Limits,
		onLimited: opts.OnRateLimited,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	onEvent := opts.OnSecurityEvent
	s.security = func(ctx context.Context, event string, attrs ...slog.Attr) {
		if onEvent != nil {
			onEvent(event)
		}
		s.logger.LogAttrs(ctx, slog.LevelWarn, "security event", append([]slog.Attr{slog.String("event", event)}, attrs...)...)
	}
	return s
}

// clock returns the current time in UTC at the precision the stores keep.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Register creates a user. The registration is validated here; a taken
// email is EConflict.
func (s *Service) Register(ctx context.Context, reg usersvc.Registration) (*usersvc.User, error) {
	return s.create(ctx, reg, false)
}

// CreateAdmin creates an admin user, as Register does a user.
func (s *Service) CreateAdmin(ctx context.Context, reg usersvc.Registration) (*usersvc.User, error) {
	return s.create(ctx, reg, true)
}

func (s *Service) create(ctx context.Context, reg usersvc.Registration, admin bool) (*usersvc.User, error) {
	if err := reg.Validate(usersvc.FieldErrors{}); err != nil {
		return nil, err
	}
	if err := s.registerAllowed(ctx, reg.Email); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, string(reg.Password))
	if err != nil {
		return nil, err
	}
	now := s.clock()
	u := &usersvc.User{
		ID:          s.newID(),
		Email:       reg.Email,
		Name:        reg.Name,
		PushToken:   reg.PushToken,
		Preferences: reg.Preferences.Apply(usersvc.DefaultPreferences()),
		IsAdmin:     admin,
		IsActive:    true,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if _, err := s.users.CreateUser(ctx, u, hash); err != nil {
		if usersvc.ErrorCode(err) == usersvc.EConflict {
			return nil, &usersvc.Error{Code: usersvc.EConflict, Message: MsgEmailTaken, Err: err}
		}
		return nil, err
	}
	return u, nil
}

// Session is what a login or a refresh hands out.
type Session struct {
	Access  string
	Refresh string
	User    *usersvc.User
}

// Login checks credentials and starts a refresh family. A password longer
// than any account can have is EInvalid before anything is hashed. A login
// whose user changed its password, was disabled or was deleted while the
// password was being checked gets no session: it answers as a wrong
// password would.
func (s *Service) Login(ctx context.Context, c usersvc.Credentials) (*Session, error) {
	if utf8.RuneCountInString(string(c.Password)) > usersvc.MaxPasswordLength {
		fe := usersvc.FieldErrors{}
		fe.Add("password", usersvc.MsgPasswordLong)
		return nil, fe.Err()
	}
	email := usersvc.CanonicalEmail(c.Email)
	if err := s.loginBlocked(ctx, email); err != nil {
		return nil, err
	}
	u, cred, err := s.users.UserByEmail(ctx, email)
	if usersvc.ErrorCode(err) == usersvc.ENotFound {
		s.hasher.Burn(ctx, string(c.Password))
		s.loginFailed(ctx, email)
		s.security(ctx, EventLoginFailed, slog.String("reason", "unknown_email"))
		return nil, usersvc.Errorf(usersvc.EUnauthorized, MsgInvalidCredentials)
	}
	if err != nil {
		return nil, err
	}
	ok, rehash, err := s.hasher.Verify(ctx, string(c.Password), cred.Hash)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.loginFailed(ctx, email)
		s.security(ctx, EventLoginFailed, slog.String("reason", "bad_password"), slog.String("user_id", u.ID))
		return nil, usersvc.Errorf(usersvc.EUnauthorized, MsgInvalidCredentials)
	}
	if !u.IsActive {
		s.security(ctx, EventLoginDisabled, slog.String("user_id", u.ID))
		return nil, usersvc.Errorf(usersvc.EForbidden, MsgAccountDisabled)
	}
	s.loginSucceeded(ctx, email)
	now := s.clock()
	if rehash {
		if fresh, err := s.hasher.Hash(ctx, string(c.Password)); err == nil {
			if err := s.users.SetPasswordHash(ctx, u.ID, fresh, now); err != nil {
				s.logger.WarnContext(ctx, "password rehash not saved", slog.String("user_id", u.ID), slog.Any("error", err))
			}
		}
	}
	fam := RefreshFamily{ID: uuid.NewString(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.tokens.RefreshLifetime())}
	first := RefreshToken{JTI: uuid.NewString(), FamilyID: fam.ID, UserID: u.ID, IssuedAt: now, ExpiresAt: fam.ExpiresAt}
	if err := s.sessions.CreateRefreshFamily(ctx, fam, first, cred.Version); err != nil {
		if errors.Is(err, ErrCredentialChanged) {
			s.security(ctx, EventLoginFailed, slog.String("reason", "credential_changed"), slog.String("user_id", u.ID))
			return nil, usersvc.Errorf(usersvc.EUnauthorized, MsgInvalidCredentials)
		}
		return nil, err
	}
	return s.session(u, first, now)
}

func (s *Service) session(u *usersvc.User, rt RefreshToken, now time.Time) (*Session, error) {
	access, err := s.tokens.IssueAccess(u, uuid.NewString(), now)
	if err != nil {
		return nil, err
	}
	refresh, err := s.tokens.IssueRefresh(rt)
	if err != nil {
		return nil, err
	}
	return &Session{Access: access, Refresh: refresh, User: u}, nil
}

func invalidToken(err error) error {
	return &usersvc.Error{Code: usersvc.EUnauthorized, Message: MsgTokenInvalid, Err: err}
}

// Refresh spends a refresh token and returns a new pair. A token spent
// before revokes its whole family: whoever holds its newest token must log
// in again.
func (s *Service) Refresh(ctx context.Context, raw string) (*Session, error) {
	now := s.clock()
	claims, err := s.tokens.ParseRefresh(raw, now)
	if err != nil {
		return nil, invalidToken(err)
	}
	st, err := s.sessions.SpendRefreshToken(ctx, claims.JTI, now)
	if usersvc.ErrorCode(err) == usersvc.ENotFound {
		return nil, invalidToken(err)
	}
	if err != nil {
		return nil, err
	}
	if st.Token.UserID != claims.UserID || st.FamilyRevoked || !now.Before(st.FamilyExpiresAt) {
		return nil, invalidToken(nil)
	}
	if st.AlreadySpent {
		if err := s.sessions.RevokeRefreshFamily(ctx, st.Token.FamilyID, now); err != nil {
			return nil, err
		}
		s.security(ctx, EventRefreshReuse, slog.String("user_id", st.Token.UserID), slog.String("family_id", st.Token.FamilyID))
		return nil, usersvc.Errorf(usersvc.EUnauthorized, MsgTokenReused)
	}
	u, err := s.user(ctx, st.Token.UserID)
	if usersvc.ErrorCode(err) == usersvc.ENotFound {
		return nil, invalidToken(err)
	}
	if err != nil {
		return nil, err
	}
	if !u.IsActive {
		return nil, invalidToken(nil)
	}
	exp := now.Add(s.tokens.RefreshLifetime())
	if exp.After(st.FamilyExpiresAt) {
		exp = st.FamilyExpiresAt
	}
	child := RefreshToken{JTI: uuid.NewString(), FamilyID: st.Token.FamilyID, UserID: u.ID, ParentJTI: st.Token.JTI, IssuedAt: now, ExpiresAt: exp}
	if err := s.sessions.AddRefreshToken(ctx, child); err != nil {
		return nil, err
	}
	return s.session(u, child, now)
}

// Logout revokes the family of a refresh token. Revoking a revoked family
// is not an error.
func (s *Service) Logout(ctx context.Context, raw string) error {
	now := s.clock()
	claims, err := s.tokens.ParseRefresh(raw, now)
	if err != nil {
		return invalidToken(err)
	}
	st, err := s.sessions.RefreshTokenState(ctx, claims.JTI)
	if usersvc.ErrorCode(err) == usersvc.ENotFound {
		return invalidToken(err)
	}
	if err != nil {
		return err
	}
	if st.Token.UserID != claims.UserID {
		return invalidToken(nil)
	}
	return s.sessions.RevokeRefreshFamily(ctx, st.Token.FamilyID, now)
}

// isNotFound reports whether err is ENotFound.
func isNotFound(err error) bool {
	var e *usersvc.Error
	return errors.As(err, &e) && e.Code == usersvc.ENotFound
}
