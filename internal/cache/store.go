package cache

import (
	"context"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// loadTimeout bounds a store read shared by concurrent misses.
const loadTimeout = 5 * time.Second

// Cache is what the Store decorator needs of a cache: Memory and Redis.
type Cache interface {
	User(ctx context.Context, id string) (*usersvc.User, bool)
	StoreUser(ctx context.Context, u *usersvc.User)
	Devices(ctx context.Context, userID string) ([]usersvc.Device, bool)
	StoreDevices(ctx context.Context, userID string, d []usersvc.Device)
	Sessions(ctx context.Context, userID string) ([]string, bool)
	StoreSessions(ctx context.Context, userID string, ids []string)
	// Hold drops the entries of kinds (AllKinds, or some of them) of the
	// users with ids before a write, and keeps loads from storing them
	// again until Forget.
	Hold(ctx context.Context, kinds []string, ids ...string)
	// Forget drops the entries of kinds of the users with ids after a write.
	Forget(ctx context.Context, kinds []string, ids ...string)
}

// Inner is the store the decorator wraps.
type Inner interface {
	account.Store
	// TokenHolders returns the ids of the users who hold one of tokens,
	// as a device record or as their current token.
	TokenHolders(ctx context.Context, tokens []string) ([]string, error)
	// ImportUser is the import's write (see djangoimport.Destination).
	ImportUser(ctx context.Context, u *usersvc.User, passwordHash string, devices []usersvc.Device) (bool, error)
}

// Store is the account store with a cache in front of it: it has the
// methods of the store it wraps, so the use cases read and write through
// it without knowing of the cache.
//
// Reads of one user (UserByID) and of one user's devices (Devices) go to
// the cache first; concurrent misses of one key in one process make one
// store read (singleflight). Other reads go to the store.
//
// Every write is bracketed: before it, Hold drops the entries of every
// user it may change (the user, and the current holders of a push token
// it moves; for the start, refresh or end of a session, only the user's
// list of live sessions) and keeps loads from storing them again; after it, whether it
// committed or failed, Forget drops them again, together with any user the
// write reports it changed. So invalidation does not depend on a use case
// remembering it, and a process that dies between its commit and the
// Forget leaves no stale entry: see Redis.Hold for the bound.
type Store struct {
	Inner
	c     Cache
	loads singleflight.Group

	// AfterCommit, when set, runs after a write returned from the store
	// and before the cache is told of it. Tests use it to stop the process
	// there.
	AfterCommit func()
}

// Wrap returns inner with c in front of it.
func Wrap(inner Inner, c Cache) *Store { return &Store{Inner: inner, c: c} }

// UserByID returns the user through the cache.
func (s *Store) UserByID(ctx context.Context, id string) (*usersvc.User, error) {
	if u, ok := s.c.User(ctx, id); ok {
		return u, nil
	}
	v, err := s.load(ctx, KindUser+":"+id, func(lctx context.Context) (any, error) {
		u, err := s.Inner.UserByID(lctx, id)
		if err != nil {
			return nil, err
		}
		s.c.StoreUser(lctx, u)
		return u, nil
	})
	if err != nil {
		return nil, err
	}
	return cloneUser(v.(*usersvc.User)), nil // each caller gets its own copy
}

// Devices returns the user's devices through the cache.
func (s *Store) Devices(ctx context.Context, userID string) ([]usersvc.Device, error) {
	if d, ok := s.c.Devices(ctx, userID); ok {
		return d, nil
	}
	v, err := s.load(ctx, KindDevices+":"+userID, func(lctx context.Context) (any, error) {
		d, err := s.Inner.Devices(lctx, userID)
		if err != nil {
			return nil, err
		}
		s.c.StoreDevices(lctx, userID, d)
		return d, nil
	})
	if err != nil {
		return nil, err
	}
	return cloneDevices(v.([]usersvc.Device)), nil
}

// SessionIDs returns the ids of the user's live sessions through the
// cache. A cached list may hold a session that has expired since it was
// loaded; it never misses one that is live, as every write that starts or
// ends a session forgets it.
func (s *Store) SessionIDs(ctx context.Context, userID string, now time.Time) ([]string, error) {
	if ids, ok := s.c.Sessions(ctx, userID); ok {
		return ids, nil
	}
	v, err := s.load(ctx, KindSessions+":"+userID, func(lctx context.Context) (any, error) {
		ids, err := s.Inner.SessionIDs(lctx, userID, now)
		if err != nil {
			return nil, err
		}
		s.c.StoreSessions(lctx, userID, ids)
		return ids, nil
	})
	if err != nil {
		return nil, err
	}
	return append([]string{}, v.([]string)...), nil
}

// load runs fn once for concurrent callers of one key, detached from any
// one caller's cancellation but bounded by loadTimeout.
func (s *Store) load(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	ch := s.loads.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		return fn(lctx)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		return r.Val, r.Err
	}
}

// write runs fn between a Hold and a Forget of ids, of the holders of
// tokens, and of the ids fn reports.
func (s *Store) write(ctx context.Context, ids, tokens []string, fn func() ([]string, error)) error {
	return s.writeKinds(ctx, AllKinds, ids, tokens, fn)
}

// writeKinds is write for the entries of kinds alone.
func (s *Store) writeKinds(ctx context.Context, kinds, ids, tokens []string, fn func() ([]string, error)) error {
	held := append([]string(nil), ids...)
	if len(tokens) > 0 {
		// Best effort: if this read fails, the Forget below still covers
		// the users the write reports, unless the process dies first.
		if holders, err := s.Inner.TokenHolders(ctx, tokens); err == nil {
			held = append(held, holders...)
		}
	}
	s.c.Hold(ctx, kinds, held...)
	s.forgetLoads(kinds, held)
	more, err := fn()
	if s.AfterCommit != nil {
		s.AfterCommit()
	}
	all := append(held, more...)
	s.forgetLoads(kinds, all)
	s.c.Forget(ctx, kinds, all...)
	return err
}

// forgetLoads keeps reads that start now from joining loads begun before.
func (s *Store) forgetLoads(kinds, ids []string) {
	for _, k := range keysOf(kinds, ids) {
		s.loads.Forget(k)
	}
}

func one(id string) []string { return []string{id} }

func tokenOf(p *string) []string {
	if p == nil {
		return nil
	}
	return []string{*p}
}

// CreateUser creates the user; its push token may move from other users.
func (s *Store) CreateUser(ctx context.Context, u *usersvc.User, passwordHash string) (displaced []string, err error) {
	err = s.write(ctx, one(u.ID), tokenOf(u.PushToken), func() ([]string, error) {
		displaced, err = s.Inner.CreateUser(ctx, u, passwordHash)
		return displaced, err
	})
	return displaced, err
}

// SetPasswordHash rehashes the user's password.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error {
	return s.write(ctx, one(userID), nil, func() ([]string, error) {
		return nil, s.Inner.SetPasswordHash(ctx, userID, hash, now)
	})
}

// ChangePassword changes the user's password and ends its other sessions.
func (s *Store) ChangePassword(ctx context.Context, userID, hash, keepFamily string, now time.Time) (n int, err error) {
	err = s.write(ctx, one(userID), nil, func() ([]string, error) {
		n, err = s.Inner.ChangePassword(ctx, userID, hash, keepFamily, now)
		return nil, err
	})
	return n, err
}

// ConfirmEmailChange changes the user's email.
func (s *Store) ConfirmEmailChange(ctx context.Context, c account.EmailChange, now time.Time) (u *usersvc.User, err error) {
	err = s.write(ctx, one(c.UserID), nil, func() ([]string, error) {
		u, err = s.Inner.ConfirmEmailChange(ctx, c, now)
		return nil, err
	})
	return u, err
}

// ConfirmVerification marks an address of the user verified.
func (s *Store) ConfirmVerification(ctx context.Context, v account.Verification, now time.Time) (u *usersvc.User, err error) {
	err = s.write(ctx, one(v.UserID), nil, func() ([]string, error) {
		u, err = s.Inner.ConfirmVerification(ctx, v, now)
		return nil, err
	})
	return u, err
}

// ResetPassword spends a password reset, changes the user's password and
// ends its sessions.
func (s *Store) ResetPassword(ctx context.Context, r account.PasswordReset, hash string, now time.Time) (n int, err error) {
	err = s.write(ctx, one(r.UserID), nil, func() ([]string, error) {
		n, err = s.Inner.ResetPassword(ctx, r, hash, now)
		return nil, err
	})
	return n, err
}

// UpdatePreferences changes the user's preferences.
func (s *Store) UpdatePreferences(ctx context.Context, userID string, patch usersvc.PreferencesPatch, now time.Time) (p usersvc.Preferences, err error) {
	err = s.write(ctx, one(userID), nil, func() ([]string, error) {
		p, err = s.Inner.UpdatePreferences(ctx, userID, patch, now)
		return nil, err
	})
	return p, err
}

// UpdateProfile changes the user's name, phone, locale and time zone.
func (s *Store) UpdateProfile(ctx context.Context, userID string, patch usersvc.ProfilePatch, now time.Time) (u *usersvc.User, err error) {
	err = s.write(ctx, one(userID), nil, func() ([]string, error) {
		u, err = s.Inner.UpdateProfile(ctx, userID, patch, now)
		return nil, err
	})
	return u, err
}

// SetActive enables or disables the user.
func (s *Store) SetActive(ctx context.Context, userID string, active bool, now time.Time) (u *usersvc.User, err error) {
	err = s.write(ctx, one(userID), nil, func() ([]string, error) {
		u, err = s.Inner.SetActive(ctx, userID, active, now)
		return nil, err
	})
	return u, err
}

// DeleteUser removes the user.
func (s *Store) DeleteUser(ctx context.Context, userID string, now time.Time) error {
	return s.write(ctx, one(userID), nil, func() ([]string, error) {
		return nil, s.Inner.DeleteUser(ctx, userID, now)
	})
}

// RegisterPushToken gives the user a token, which may move from others.
func (s *Store) RegisterPushToken(ctx context.Context, d *usersvc.Device, now time.Time) (displaced []string, err error) {
	err = s.write(ctx, one(d.UserID), []string{d.Token}, func() ([]string, error) {
		displaced, err = s.Inner.RegisterPushToken(ctx, d, now)
		return displaced, err
	})
	return displaced, err
}

// ClearPushToken clears the user's current token.
func (s *Store) ClearPushToken(ctx context.Context, userID string, deviceID *string, now time.Time) error {
	return s.write(ctx, one(userID), nil, func() ([]string, error) {
		return nil, s.Inner.ClearPushToken(ctx, userID, deviceID, now)
	})
}

// DeleteDevice removes one of the user's device records.
func (s *Store) DeleteDevice(ctx context.Context, userID, deviceID string, now time.Time) error {
	return s.write(ctx, one(userID), nil, func() ([]string, error) {
		return nil, s.Inner.DeleteDevice(ctx, userID, deviceID, now)
	})
}

// InvalidatePushTokens drops tokens from whoever holds them.
func (s *Store) InvalidatePushTokens(ctx context.Context, tokens []string, reason string, now time.Time) (affected []string, removed int, err error) {
	err = s.write(ctx, nil, tokens, func() ([]string, error) {
		affected, removed, err = s.Inner.InvalidatePushTokens(ctx, tokens, reason, now)
		return affected, err
	})
	return affected, removed, err
}

// ImportUser imports one user, whose tokens may move from others.
func (s *Store) ImportUser(ctx context.Context, u *usersvc.User, passwordHash string, devices []usersvc.Device) (ok bool, err error) {
	tokens := tokenOf(u.PushToken)
	for _, d := range devices {
		tokens = append(tokens, d.Token)
	}
	err = s.write(ctx, one(u.ID), tokens, func() ([]string, error) {
		ok, err = s.Inner.ImportUser(ctx, u, passwordHash, devices)
		return nil, err
	})
	return ok, err
}

// sessionKinds are the entries a start, a refresh or an end of a session
// changes: the user's live sessions, not the user.
var sessionKinds = []string{KindSessions}

// CreateRefreshFamily starts a session of the user.
func (s *Store) CreateRefreshFamily(ctx context.Context, f account.RefreshFamily, first account.RefreshToken, credVersion int64) error {
	return s.writeKinds(ctx, sessionKinds, one(f.UserID), nil, func() ([]string, error) {
		return nil, s.Inner.CreateRefreshFamily(ctx, f, first, credVersion)
	})
}

// RotateRefreshToken refreshes a session of the user, which may end it.
func (s *Store) RotateRefreshToken(ctx context.Context, userID, jti string, now time.Time, decide func(account.RefreshState) account.Rotation) (r account.Rotation, err error) {
	err = s.writeKinds(ctx, sessionKinds, one(userID), nil, func() ([]string, error) {
		r, err = s.Inner.RotateRefreshToken(ctx, userID, jti, now, decide)
		return nil, err
	})
	return r, err
}

// RevokeSessions ends sessions of the user.
func (s *Store) RevokeSessions(ctx context.Context, userID string, ids []string, except, reason string, now time.Time) (n int, err error) {
	err = s.writeKinds(ctx, sessionKinds, one(userID), nil, func() ([]string, error) {
		n, err = s.Inner.RevokeSessions(ctx, userID, ids, except, reason, now)
		return nil, err
	})
	return n, err
}
