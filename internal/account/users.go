package account

import (
	"context"
	"time"

	"github.com/usersvc/usersvc"
)

// loadTimeout bounds a store read shared by concurrent misses.
const loadTimeout = 5 * time.Second

// user loads a user through the cache; concurrent misses for one id make
// one store read.
func (s *Service) user(ctx context.Context, id string) (*usersvc.User, error) {
	if u, ok := s.cache.User(ctx, id); ok {
		return u, nil
	}
	ch := s.loads.DoChan(id, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		u, err := s.store.UserByID(lctx, id)
		if err != nil {
			return nil, err
		}
		s.cache.StoreUser(lctx, u)
		return u, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if isNotFound(r.Err) {
			return nil, &usersvc.Error{Code: usersvc.ENotFound, Message: MsgUserNotFound, Err: r.Err}
		}
		if r.Err != nil {
			return nil, r.Err
		}
		u := *r.Val.(*usersvc.User) // each caller gets its own copy
		if u.PushToken != nil {
			t := *u.PushToken
			u.PushToken = &t
		}
		return &u, nil
	}
}

// forgetUser drops what is cached or being loaded for ids, so that a read
// that starts after a write neither joins a load begun before it nor hits
// the old value.
func (s *Service) forgetUser(ctx context.Context, ids ...string) {
	for _, id := range ids {
		s.loads.Forget(id)
	}
	s.cache.ForgetUser(ctx, ids...)
}

func notFound(err error) error {
	if isNotFound(err) {
		return &usersvc.Error{Code: usersvc.ENotFound, Message: MsgUserNotFound, Err: err}
	}
	return err
}

// User returns the user with id userID, as p may see it.
func (s *Service) User(ctx context.Context, p Principal, userID string) (*usersvc.User, error) {
	if err := s.authorize(ctx, p, userID, Read); err != nil {
		return nil, err
	}
	return s.userOf(ctx, p, userID)
}

// Preferences returns the user's notification preferences.
func (s *Service) Preferences(ctx context.Context, p Principal, userID string) (usersvc.Preferences, error) {
	u, err := s.User(ctx, p, userID)
	if err != nil {
		return usersvc.Preferences{}, err
	}
	return u.Preferences, nil
}

// UpdatePreferences applies a partial update; an empty patch is EInvalid.
func (s *Service) UpdatePreferences(ctx context.Context, p Principal, userID string, patch usersvc.PreferencesPatch) (usersvc.Preferences, error) {
	if err := s.authorize(ctx, p, userID, Write); err != nil {
		return usersvc.Preferences{}, err
	}
	if patch.Empty() {
		return usersvc.Preferences{}, usersvc.Errorf(usersvc.EInvalid, "At least one of email, push is required")
	}
	prefs, err := s.store.UpdatePreferences(ctx, userID, patch, s.clock())
	if err != nil {
		return usersvc.Preferences{}, notFound(err)
	}
	s.forgetUser(ctx, userID)
	return prefs, nil
}

// UpdatePushToken registers (or, with a nil token, clears) the user's push
// token and returns the user's current token.
func (s *Service) UpdatePushToken(ctx context.Context, p Principal, userID string, upd usersvc.PushTokenUpdate) (*string, error) {
	if err := s.authorize(ctx, p, userID, Write); err != nil {
		return nil, err
	}
	if err := upd.Validate(usersvc.FieldErrors{}); err != nil {
		return nil, err
	}
	now := s.clock()
	if upd.Token == nil {
		if err := s.store.ClearPushToken(ctx, userID, upd.DeviceID, now); err != nil {
			return nil, notFound(err)
		}
		s.forgetUser(ctx, userID)
		s.cache.ForgetDevices(ctx, userID)
		return nil, nil
	}
	d := &usersvc.Device{UserID: userID, DeviceID: upd.DeviceID, Token: *upd.Token, DeviceType: upd.DeviceType}
	displaced, err := s.store.RegisterPushToken(ctx, d, now)
	if err != nil {
		return nil, notFound(err)
	}
	s.forgetUser(ctx, append(displaced, userID)...)
	s.cache.ForgetDevices(ctx, append(displaced, userID)...)
	return &d.Token, nil
}
