// Package account holds the use cases of the user service: registration,
// login, token refresh and logout, reading and changing a user's data, and
// the access rules that decide who may do which. It declares the small
// interfaces it needs (Store, Hasher, Tokens) and holds every business rule
// once, whatever the store.
package account

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
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
	events    Events
	cats      Categories
	unsub     UnsubscribeTokens
	hasher    Hasher
	tokens    Tokens
	keys      ServiceKeys
	logger    *slog.Logger
	now       func() time.Time
	newID     func() string
	security  func(ctx context.Context, event string, attrs ...slog.Attr)
	limits    Limits
	onLimited func(rule string)
	reuse     time.Duration
	onSession func(event string)

	resets        PasswordResets
	verifications Verifications
	emailChanges  EmailChanges
	// emailChangeTTL and emailChangeURL are those of Options.
	emailChangeTTL time.Duration
	emailChangeURL string
	verifyTTL      time.Duration
	verifyURL      string
	// requireVerified are the channels resolve sends on only to verified addresses.
	requireVerified []string
	rand            io.Reader
	resetTTL        time.Duration
	resetURL        string
	resetFloor      time.Duration
	onSelfService   func(flow, outcome string)
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
	// RefreshReuseInterval is how long after its spending a refresh token
	// may be presented again, while its successor is unspent, and get that
	// same successor (a retry of an answer the client lost). Zero makes
	// every second presentation reuse.
	RefreshReuseInterval time.Duration
	// OnSession is told of each session event (SessionCreated,
	// SessionRefreshed, SessionRetried, SessionReuseRevoked), for example
	// to count them.
	OnSession func(event string)
	// Unsubscribe signs and verifies one-click unsubscribe tokens; nil
	// turns one-click unsubscribe off (EUnavailable).
	Unsubscribe UnsubscribeTokens
	// PasswordResetTTL is how long a password reset token is valid; zero
	// means DefaultPasswordResetTTL.
	PasswordResetTTL time.Duration
	// PasswordResetURL is the operator's page where a user chooses a new
	// password, which gets the token in its "token" query parameter; empty
	// leaves the link of password_reset.requested null.
	PasswordResetURL string
	// ForgotPasswordFloor is the least time ForgotPassword takes, so that
	// a request for an account does not last longer than one for an
	// unknown email; zero means no floor.
	ForgotPasswordFloor time.Duration
	// OnSelfService is told of each step of a self-service flow (FlowPasswordReset…,
	// OutcomeRequested…), for example to count them.
	OnSelfService func(flow, outcome string)
	// VerificationTTL is how long a verification code and link are valid;
	// zero means DefaultVerificationTTL.
	VerificationTTL time.Duration
	// VerificationURL is the operator's page that confirms an email with
	// the token in its "token" query parameter; empty leaves the link of
	// verification.requested null.
	VerificationURL string
	// RequireVerified lists the channels (email, sms) on which resolve
	// sends only to verified addresses (ReasonUnverified otherwise).
	RequireVerified []string
	// EmailChangeTTL is how long the confirmation of a change of email is
	// valid; zero means DefaultEmailChangeTTL.
	EmailChangeTTL time.Duration
	// EmailChangeURL is the operator's page that confirms a change of
	// email with the token in its "token" query parameter; empty leaves
	// the link of email_change.requested null.
	EmailChangeURL string
	// Rand is the source of tokens and codes; nil means crypto/rand.
	Rand io.Reader
}

// Session events.
const (
	SessionCreated      = "created"
	SessionRefreshed    = "refreshed"
	SessionRetried      = "retried"
	SessionReuseRevoked = "reuse_revoked"
)

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
		events:    store,
		cats:      store,
		unsub:     opts.Unsubscribe,
		hasher:    hasher,
		tokens:    tokens,
		keys:      opts.ServiceKeys,
		logger:    opts.Logger,
		now:       opts.Now,
		newID:     opts.NewID,
		limits:    opts.Limits,
		onLimited: opts.OnRateLimited,
		reuse:     max(opts.RefreshReuseInterval, 0),
		onSession: opts.OnSession,

		resets:        store,
		verifications: store,
		emailChanges:  store,

		emailChangeTTL: positiveOr(opts.EmailChangeTTL, DefaultEmailChangeTTL),
		emailChangeURL: opts.EmailChangeURL,
		verifyTTL:      positiveOr(opts.VerificationTTL, DefaultVerificationTTL),
		verifyURL:      opts.VerificationURL,

		requireVerified: opts.RequireVerified,
		rand:            opts.Rand,
		resetTTL:        positiveOr(opts.PasswordResetTTL, DefaultPasswordResetTTL),
		resetURL:        opts.PasswordResetURL,
		resetFloor:      opts.ForgotPasswordFloor,
		onSelfService:   opts.OnSelfService,
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.onSelfService == nil {
		s.onSelfService = func(string, string) {}
	}
	if s.onSession == nil {
		s.onSession = func(string) {}
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

// positiveOr is d when it is positive, else def.
func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
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
	if err := s.checkCategories(ctx, "preferences.", reg.Preferences); err != nil {
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
		Phone:       reg.Profile.Phone.Value,
		Locale:      reg.Profile.Locale.Value,
		Timezone:    reg.Profile.Timezone.Value,
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
	ua, addr := clientOf(ctx)
	fam := RefreshFamily{ID: uuid.NewString(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.tokens.RefreshLifetime()),
		UserAgent: ua, ClientAddr: addr}
	first := RefreshToken{JTI: uuid.NewString(), FamilyID: fam.ID, UserID: u.ID, IssuedAt: now, ExpiresAt: fam.ExpiresAt}
	if err := s.sessions.CreateRefreshFamily(ctx, fam, first, cred.Version); err != nil {
		if errors.Is(err, ErrCredentialChanged) {
			s.security(ctx, EventLoginFailed, slog.String("reason", "credential_changed"), slog.String("user_id", u.ID))
			return nil, usersvc.Errorf(usersvc.EUnauthorized, MsgInvalidCredentials)
		}
		return nil, err
	}
	s.onSession(SessionCreated)
	return s.session(u, first, now)
}

// session issues an access token of rt's session and rt itself.
func (s *Service) session(u *usersvc.User, rt RefreshToken, now time.Time) (*Session, error) {
	access, err := s.tokens.IssueAccess(u, uuid.NewString(), rt.FamilyID, now)
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
// before is reuse, which revokes its whole family (whoever holds its
// newest token must log in again), except a retry: within the reuse
// interval of its spending, while its successor is unspent, it gets that
// same successor again, so a client that lost the answer stays logged in.
func (s *Service) Refresh(ctx context.Context, raw string) (*Session, error) {
	now := s.clock()
	claims, err := s.tokens.ParseRefresh(raw, now)
	if err != nil {
		return nil, invalidToken(err)
	}
	u, err := s.user(ctx, claims.UserID)
	if usersvc.ErrorCode(err) == usersvc.ENotFound {
		return nil, invalidToken(err)
	}
	if err != nil {
		return nil, err
	}
	if !u.IsActive {
		return nil, invalidToken(nil)
	}
	r, err := s.sessions.RotateRefreshToken(ctx, u.ID, claims.JTI, now, s.rotation(u.ID, now))
	if usersvc.ErrorCode(err) == usersvc.ENotFound {
		return nil, invalidToken(err)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case r.Revoke:
		s.onSession(SessionReuseRevoked)
		s.security(ctx, EventRefreshReuse, slog.String("user_id", u.ID))
	case r.Issue != nil:
		s.onSession(SessionRefreshed)
		return s.session(u, *r.Issue, now)
	case r.Reissue != nil:
		s.onSession(SessionRetried)
		return s.session(u, *r.Reissue, now)
	}
	return nil, r.Err
}

// rotation is the rule of refresh rotation, applied to the state of the
// presented token of userID inside the store's transaction.
func (s *Service) rotation(userID string, now time.Time) func(RefreshState) Rotation {
	return func(st RefreshState) Rotation {
		switch {
		case st.Token.UserID != userID || st.FamilyRevoked || !now.Before(st.FamilyExpiresAt):
			return Rotation{Err: invalidToken(nil)}
		case !st.AlreadySpent:
			exp := now.Add(s.tokens.RefreshLifetime())
			if exp.After(st.FamilyExpiresAt) {
				exp = st.FamilyExpiresAt // rotation never extends a family
			}
			return Rotation{Issue: &RefreshToken{JTI: uuid.NewString(), FamilyID: st.Token.FamilyID, UserID: userID,
				ParentJTI: st.Token.JTI, IssuedAt: now, ExpiresAt: exp}}
		case s.reuse > 0 && st.Successor != nil && !st.SuccessorSpent && !now.After(st.SpentAt.Add(s.reuse)):
			return Rotation{Reissue: st.Successor}
		}
		return Rotation{Revoke: true, Err: usersvc.Errorf(usersvc.EUnauthorized, MsgTokenReused)}
	}
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
	_, err = s.sessions.RevokeSessions(ctx, st.Token.UserID, []string{st.Token.FamilyID}, "", usersvc.SessionsEndedLogout, now)
	return err
}

// isNotFound reports whether err is ENotFound.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var e *usersvc.Error
	return errors.As(err, &e) && e.Code == usersvc.ENotFound
}
