package account

import (
	"context"

	"github.com/usersvc/usersvc"
)

// user returns the user with id, or ENotFound with the contract's message.
func (s *Service) user(ctx context.Context, id string) (*usersvc.User, error) {
	u, err := s.users.UserByID(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
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
		return usersvc.Preferences{}, usersvc.Errorf(usersvc.EInvalid, MsgEmptyPreferences)
	}
	if err := patch.Validate("", usersvc.FieldErrors{}); err != nil {
		return usersvc.Preferences{}, err
	}
	if err := s.checkCategories(ctx, "", patch); err != nil {
		return usersvc.Preferences{}, err
	}
	prefs, err := s.users.UpdatePreferences(ctx, userID, patch, s.clock())
	if err != nil {
		return usersvc.Preferences{}, notFound(err)
	}
	return prefs, nil
}

// MsgEmptyPreferences is the message of a preferences update that names no known key.
const MsgEmptyPreferences = "At least one of email, push, sms, in_app, categories, quiet_hours is required"

// checkCategories checks the categories a patch names against the defined
// ones (read only when the patch names any), naming the fields under prefix.
func (s *Service) checkCategories(ctx context.Context, prefix string, patch usersvc.PreferencesPatch) error {
	if len(patch.Categories) == 0 {
		return nil
	}
	cats, err := s.cats.Categories(ctx)
	if err != nil {
		return err
	}
	defined := make(map[string]*usersvc.Category, len(cats))
	for i := range cats {
		defined[cats[i].Key] = &cats[i]
	}
	return patch.CheckCategories(prefix, defined, usersvc.FieldErrors{})
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
		if err := s.devices.ClearPushToken(ctx, userID, upd.DeviceID, now); err != nil {
			return nil, notFound(err)
		}
		return nil, nil
	}
	d := &usersvc.Device{UserID: userID, DeviceID: upd.DeviceID, Token: *upd.Token, DeviceType: upd.DeviceType}
	if _, err := s.devices.RegisterPushToken(ctx, d, now); err != nil {
		return nil, notFound(err)
	}
	return &d.Token, nil
}
