package account

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
)

// Scopes a service key may carry.
const (
	ScopeUsersRead            = "users.read"
	ScopePushTokensInvalidate = "push_tokens.invalidate"
	msgMissingScope           = "This service key may not do that"
	msgInvalidServiceKey      = "Invalid service API key"
	msgAuthenticationRequired = "Authentication credentials were not provided"
	msgServiceMayNotActAsUser = "A service key may not change a user's data"
	msgAdminRequired          = "Admin access required"
	msgOwnerOnly              = "Only the user may do this for their own account"
)

// errSessionEnded is the cause of refusing an access token whose session
// has ended.
var errSessionEnded = errors.New("account: the session of the token has ended")

// Principal is who makes a request: a user (possibly an admin) or another
// service. The zero Principal is anonymous.
type Principal struct {
	UserID string
	// IsAdmin comes from the stored user, not from the token's claim, so
	// that a change of role counts at the next request.
	IsAdmin bool
	// Service is the name of the service key, for a service.
	Service string
	// SessionID is the session (refresh family) the user's access token
	// was issued in; empty for services and for tokens issued before
	// sessions were named.
	SessionID string
	scopes    []string
	// user is the stored user a token authenticated, loaded (through the
	// cache) by Authenticate; nil for services and hand-made principals.
	user *usersvc.User
}

// Anonymous reports whether nobody was authenticated.
func (p Principal) Anonymous() bool { return p.UserID == "" && p.Service == "" }

// HasScope reports whether a service principal holds scope.
func (p Principal) HasScope(scope string) bool { return slices.Contains(p.scopes, scope) }

// ServiceKey is one service account.
type ServiceKey struct {
	Name   string
	Key    string
	Scopes []string
}

// LogValue keeps the key out of logs.
func (k ServiceKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", k.Name), slog.String("scopes", strings.Join(k.Scopes, ",")))
}

// ServiceKeys is the set of service accounts.
type ServiceKeys []ServiceKey

// ParseServiceKeys reads the SERVICE_API_KEYS format: comma-separated
// `name:key` or `name:key:scopes` entries, where scopes are separated by
// commas, semicolons or "+" (`notifier:KEY:users.read,push_tokens.invalidate`).
// A key without scopes may read users.
func ParseServiceKeys(s string) (ServiceKeys, error) {
	var keys ServiceKeys
	seen := map[string]bool{}
	explicit := false // whether the last entry named its scopes
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, ":") && explicit {
			// A further scope of the previous entry.
			if err := addScopes(&keys[len(keys)-1], item); err != nil {
				return nil, err
			}
			continue
		}
		parts := strings.SplitN(item, ":", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			return nil, usersvc.Errorf(usersvc.EInvalid, "each entry must be name:key or name:key:scopes")
		}
		k := ServiceKey{Name: parts[0], Key: parts[1]}
		if len(k.Key) < 16 {
			return nil, usersvc.Errorf(usersvc.EInvalid, "the key of service %q is shorter than 16 characters", k.Name)
		}
		if seen[k.Name] {
			return nil, usersvc.Errorf(usersvc.EInvalid, "service %q is listed twice", k.Name)
		}
		seen[k.Name] = true
		explicit = len(parts) == 3 && parts[2] != ""
		if explicit {
			if err := addScopes(&k, parts[2]); err != nil {
				return nil, err
			}
		} else {
			k.Scopes = []string{ScopeUsersRead}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// addScopes adds the scopes listed in s to k.
func addScopes(k *ServiceKey, s string) error {
	for sc := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ';' || r == '+' || r == ' ' }) {
		switch sc {
		case ScopeUsersRead, ScopePushTokensInvalidate, ScopeEventsRead, ScopeCategoriesWrite:
			if !slices.Contains(k.Scopes, sc) {
				k.Scopes = append(k.Scopes, sc)
			}
		default:
			return usersvc.Errorf(usersvc.EInvalid, "service %q has an unknown scope %q", k.Name, sc)
		}
	}
	return nil
}

// match finds the key equal to presented, comparing every key in constant
// time (digests of equal length), so timing tells nothing of any key.
func (ks ServiceKeys) match(presented string) (ServiceKey, bool) {
	d := sha256.Sum256([]byte(presented))
	var found ServiceKey
	ok := 0
	for _, k := range ks {
		kd := sha256.Sum256([]byte(k.Key))
		if subtle.ConstantTimeCompare(d[:], kd[:]) == 1 {
			found = k
			ok = 1
		}
	}
	return found, ok == 1
}

// Authenticate turns request credentials into a Principal: a bearer access
// token, or a service key. Both empty gives the anonymous principal; bad
// credentials are EUnauthorized. A token is good only while its user exists
// and is active, and while its session is live: the user and the ids of
// its live sessions are looked up (through the cache) on every request, so
// that deleting or disabling an account, a logout, a password change or
// the end of a session ends its access tokens at once, and IsAdmin is the
// stored user's.
func (s *Service) Authenticate(ctx context.Context, bearer, serviceKey string) (Principal, error) {
	if serviceKey != "" {
		k, ok := s.keys.match(serviceKey)
		if !ok {
			return Principal{}, usersvc.Errorf(usersvc.EUnauthorized, msgInvalidServiceKey)
		}
		return Principal{Service: k.Name, scopes: k.Scopes}, nil
	}
	if bearer == "" {
		return Principal{}, nil
	}
	claims, err := s.tokens.ParseAccess(bearer, s.clock())
	if err != nil {
		return Principal{}, invalidToken(err)
	}
	u, err := s.user(ctx, claims.UserID)
	if isNotFound(err) {
		return Principal{}, invalidToken(err)
	}
	if err != nil {
		return Principal{}, err
	}
	if !u.IsActive {
		return Principal{}, usersvc.Errorf(usersvc.EUnauthorized, MsgAccountDisabled)
	}
	if claims.SessionID != "" {
		live, err := s.sessions.SessionIDs(ctx, u.ID, s.clock())
		if err != nil {
			return Principal{}, err
		}
		if !slices.Contains(live, claims.SessionID) {
			return Principal{}, invalidToken(errSessionEnded)
		}
	}
	return Principal{UserID: u.ID, IsAdmin: u.IsAdmin, SessionID: claims.SessionID, user: u}, nil
}

// userOf returns the user with id, reusing the one p's token was
// authenticated with when it is that user (one cache read per request).
func (s *Service) userOf(ctx context.Context, p Principal, id string) (*usersvc.User, error) {
	if p.user != nil && p.user.ID == id {
		u := *p.user
		if u.PushToken != nil {
			t := *u.PushToken
			u.PushToken = &t
		}
		return &u, nil
	}
	return s.user(ctx, id)
}

// Access is what a request does with a user's data.
type Access int

// Kinds of access.
const (
	Read  Access = iota // the user, admins and services with users.read
	Write               // the user and admins
	Owner               // the user alone (not an admin for another user, not a service)
	Admin               // admins alone (not the user themselves, not a service)
)

// Authorize decides whether p may have access a to the data of the user with
// id userID; see authorize.
func (s *Service) Authorize(ctx context.Context, p Principal, userID string, a Access) error {
	return s.authorize(ctx, p, userID, a)
}

// authorize decides whether p may act on the data of the user with id
// userID. The decision depends only on the principal and the id, never on
// whether the user exists, so that nobody learns which ids exist.
func (s *Service) authorize(ctx context.Context, p Principal, userID string, a Access) error {
	if _, err := uuid.Parse(userID); err != nil || len(userID) != 36 {
		return usersvc.Errorf(usersvc.EInvalid, "Invalid UUID format")
	}
	switch {
	case p.Anonymous():
		return usersvc.Errorf(usersvc.EUnauthorized, msgAuthenticationRequired)
	case p.Service != "":
		if a == Read && p.HasScope(ScopeUsersRead) {
			return nil
		}
		s.security(ctx, EventForbidden, slog.String("service", p.Service), slog.String("target_user_id", userID))
		if a != Read {
			return usersvc.Errorf(usersvc.EForbidden, msgServiceMayNotActAsUser)
		}
		return usersvc.Errorf(usersvc.EForbidden, msgMissingScope)
	case a == Admin:
		if p.IsAdmin {
			return nil
		}
		s.security(ctx, EventForbidden, slog.String("user_id", p.UserID), slog.String("target_user_id", userID))
		return usersvc.Errorf(usersvc.EForbidden, msgAdminRequired)
	case a == Owner:
		if p.UserID == userID {
			return nil
		}
		s.security(ctx, EventForbidden, slog.String("user_id", p.UserID), slog.String("target_user_id", userID))
		if p.IsAdmin {
			return usersvc.Errorf(usersvc.EForbidden, msgOwnerOnly)
		}
		return usersvc.Errorf(usersvc.EForbidden, MsgForbidden)
	case p.IsAdmin, p.UserID == userID:
		return nil
	}
	s.security(ctx, EventForbidden, slog.String("user_id", p.UserID), slog.String("target_user_id", userID))
	return usersvc.Errorf(usersvc.EForbidden, MsgForbidden)
}

// requireScope checks that p is a service holding scope, or an admin.
func (s *Service) requireScope(ctx context.Context, p Principal, scope string, adminToo bool) error {
	switch {
	case p.Anonymous():
		return usersvc.Errorf(usersvc.EUnauthorized, msgAuthenticationRequired)
	case p.Service != "" && p.HasScope(scope):
		return nil
	case p.Service == "" && p.IsAdmin && adminToo:
		return nil
	}
	s.security(ctx, EventForbidden, slog.String("user_id", p.UserID), slog.String("service", p.Service), slog.String("scope", scope))
	if p.Service != "" {
		return usersvc.Errorf(usersvc.EForbidden, msgMissingScope)
	}
	return usersvc.Errorf(usersvc.EForbidden, msgAdminRequired)
}
