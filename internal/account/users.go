package account

import (
	"context"

	"github.com/usersvc/usersvc"
)

// user loads a user through the cache.
func (s *Service) user(ctx context.Context, id string) (*usersvc.User, error) {
	if u, ok := s.cache.User(ctx, id); ok {
		return u, nil
	}
	u, err := s.store.UserByID(ctx, id)
	if isNotFound(err) {
		return nil, &usersvc.Error{Code: usersvc.ENotFound, Message: MsgUserNotFound, Err: err}
	}
	if err != nil {
		return nil, err
	}
	s.cache.StoreUser(ctx, u)
	return u, nil
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
	return s.user(ctx, userID)
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
	s.cache.ForgetUser(ctx, userID)
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
		s.cache.ForgetUser(ctx, userID)
		s.cache.ForgetDevices(ctx, userID)
		return nil, nil
	}
	d := &usersvc.Device{UserID: userID, DeviceID: upd.DeviceID, Token: *upd.Token, DeviceType: upd.DeviceType}
	displaced, err := s.store.RegisterPushToken(ctx, d, now)
	if err != nil {
		return nil, notFound(err)
	}
	s.cache.ForgetUser(ctx, append(displaced, userID)...)
	s.cache.ForgetDevices(ctx, append(displaced, userID)...)
	return &d.Token, nil
}
