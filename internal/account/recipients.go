package account

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/unsubscribe"
)

// ScopeCategoriesWrite lets a service key define and delete categories.
const ScopeCategoriesWrite = "categories.write"

// Messages of the recipient directory.
const (
	MsgCategoryNotFound    = "Category not found"
	MsgRequiredCommercial  = "A required category cannot be commercial"
	MsgNotCommercial       = "Only a commercial category can be unsubscribed from with one click"
	MsgUnsubscribeInvalid  = "Invalid unsubscribe token"
	MsgUnsubscribeDisabled = "One-click unsubscribe is not configured"
)

// Categories lists every category. Anyone authenticated may read them: a
// preferences page shows them.
func (s *Service) Categories(ctx context.Context, p Principal) ([]usersvc.Category, error) {
	if p.Anonymous() {
		return nil, usersvc.Errorf(usersvc.EUnauthorized, msgAuthenticationRequired)
	}
	return s.cats.Categories(ctx)
}

// Category returns one category, to admins and services that read users.
func (s *Service) Category(ctx context.Context, p Principal, key string) (*usersvc.Category, error) {
	if err := s.requireScope(ctx, p, ScopeUsersRead, true); err != nil {
		return nil, err
	}
	return s.category(ctx, key)
}

func (s *Service) category(ctx context.Context, key string) (*usersvc.Category, error) {
	c, err := s.cats.Category(ctx, key)
	if isNotFound(err) {
		return nil, &usersvc.Error{Code: usersvc.ENotFound, Message: MsgCategoryNotFound, Err: err}
	}
	return c, err
}

// PutCategory creates or replaces a category (admins, and services with
// categories.write) and reports whether it created it. Channels missing
// from c.Defaults default to on.
func (s *Service) PutCategory(ctx context.Context, p Principal, c *usersvc.Category) (bool, error) {
	if err := s.requireScope(ctx, p, ScopeCategoriesWrite, true); err != nil {
		return false, err
	}
	fe := usersvc.FieldErrors{}
	for _, m := range usersvc.CheckCategoryKey(c.Key) {
		fe.Add("key", m)
	}
	name, msgs := usersvc.CheckCategoryName(c.Name)
	for _, m := range msgs {
		fe.Add("name", m)
	}
	c.Name = name
	if utf8.RuneCountInString(c.Description) > 1000 {
		fe.Add("description", "Must be at most 1000 characters")
	}
	if c.Required && c.Commercial {
		fe.Add("commercial", MsgRequiredCommercial)
	}
	defaults := make(map[string]bool, len(usersvc.Channels))
	for ch, on := range c.Defaults {
		if !usersvc.ValidChannel(ch) {
			fe.Add("defaults", usersvc.MsgChannels)
			break
		}
		defaults[ch] = on
	}
	for _, ch := range usersvc.Channels {
		if _, ok := defaults[ch]; !ok {
			defaults[ch] = true
		}
	}
	c.Defaults = defaults
	if err := fe.Err(); err != nil {
		return false, err
	}
	return s.cats.PutCategory(ctx, c, s.clock())
}

// DeleteCategory removes a category (admins, and services with
// categories.write). The users' choices about it stay stored: defining
// the key again brings them back.
func (s *Service) DeleteCategory(ctx context.Context, p Principal, key string) error {
	if err := s.requireScope(ctx, p, ScopeCategoriesWrite, true); err != nil {
		return err
	}
	err := s.cats.DeleteCategory(ctx, key, s.clock())
	if isNotFound(err) {
		return &usersvc.Error{Code: usersvc.ENotFound, Message: MsgCategoryNotFound, Err: err}
	}
	return err
}

// ResolveRequest asks who of UserIDs gets a notification of Category (may
// be empty: no category rules) on Channels, at At (zero: now).
type ResolveRequest struct {
	Category string
	Channels []string
	UserIDs  []string
	At       time.Time
}

// Resolution is the answer of Resolve: a decision per user found, in the
// order of the request, and the ids not found.
type Resolution struct {
	At        time.Time
	Category  *usersvc.Category
	Decisions []usersvc.Decision
	NotFound  []string
}

// Resolve decides, for each user, on which of the channels a notification
// of the category goes now (or when), and to which addresses, with a
// constant number of queries whatever the number of users: the category,
// the users, and their devices when push is asked for.
func (s *Service) Resolve(ctx context.Context, p Principal, req ResolveRequest) (*Resolution, error) {
	if err := s.requireScope(ctx, p, ScopeUsersRead, true); err != nil {
		return nil, err
	}
	fe := usersvc.FieldErrors{}
	ids := checkUserIDs(req.UserIDs, fe)
	if len(req.Channels) == 0 {
		fe.Add("channels", "Must name at least one channel")
	}
	var channels []string
	for _, c := range req.Channels {
		if !usersvc.ValidChannel(c) {
			fe.Add("channels", usersvc.MsgChannels)
			break
		}
		if !slices.Contains(channels, c) {
			channels = append(channels, c)
		}
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	res := &Resolution{At: req.At, Decisions: []usersvc.Decision{}, NotFound: []string{}}
	if res.At.IsZero() {
		res.At = s.clock()
	}
	if req.Category != "" {
		c, err := s.cats.Category(ctx, req.Category)
		if isNotFound(err) {
			fe.Add("category", "Unknown category")
			return nil, fe.Err()
		}
		if err != nil {
			return nil, err
		}
		res.Category = c
	}
	found, missing, err := s.usersWithDevices(ctx, ids, slices.Contains(channels, usersvc.ChannelPush))
	if err != nil {
		return nil, err
	}
	res.NotFound = append(res.NotFound, missing...)
	for i := range found {
		u := &found[i]
		res.Decisions = append(res.Decisions, usersvc.Decide(&u.User, u.Devices, res.Category, channels, res.At, s.requireVerified))
	}
	return res, nil
}

// UnsubscribeTokens signs and verifies one-click unsubscribe tokens. A
// token binds a user, a category and a channel ("" for the whole
// category).
type UnsubscribeTokens interface {
	Token(c unsubscribe.Claims) string
	Verify(token string) (unsubscribe.Claims, error)
}

// UnsubscribeLink makes the token of a one-click unsubscribe link (services
// that read users, and admins) for a user, a commercial category and
// optionally one channel.
func (s *Service) UnsubscribeLink(ctx context.Context, p Principal, userID, category, channel string) (string, error) {
	if err := s.requireScope(ctx, p, ScopeUsersRead, true); err != nil {
		return "", err
	}
	if s.unsub == nil {
		return "", usersvc.Errorf(usersvc.EUnavailable, MsgUnsubscribeDisabled)
	}
	fe := usersvc.FieldErrors{}
	if id, err := uuid.Parse(userID); err != nil || id.String() != strings.ToLower(userID) {
		fe.Add("user_id", "Invalid UUID format")
	}
	if channel != "" && !usersvc.ValidChannel(channel) {
		fe.Add("channel", usersvc.MsgChannels)
	}
	if err := fe.Err(); err != nil {
		return "", err
	}
	if err := s.unsubscribable(ctx, category, "category"); err != nil {
		return "", err
	}
	if _, err := s.user(ctx, userID); err != nil {
		return "", err
	}
	return s.unsub.Token(unsubscribe.Claims{UserID: userID, Category: category, Channel: channel}), nil
}

// unsubscribable checks that category exists and is commercial; a problem
// is an EInvalid error of field.
func (s *Service) unsubscribable(ctx context.Context, category, field string) error {
	c, err := s.cats.Category(ctx, category)
	fe := usersvc.FieldErrors{}
	switch {
	case isNotFound(err):
		fe.Add(field, "Unknown category")
	case err != nil:
		return err
	case !c.Commercial:
		fe.Add(field, MsgNotCommercial)
	}
	return fe.Err()
}

// UnsubscribeResult says what a one-click unsubscribe turned off.
type UnsubscribeResult struct {
	Category string
	Channel  string
}

// CheckUnsubscribe verifies a one-click unsubscribe token without changing
// anything (for the confirmation page). A bad token is EInvalid.
func (s *Service) CheckUnsubscribe(token string) (UnsubscribeResult, error) {
	_, cat, ch, err := s.verifyUnsubscribe(token)
	return UnsubscribeResult{Category: cat, Channel: ch}, err
}

func (s *Service) verifyUnsubscribe(token string) (userID, category, channel string, err error) {
	if s.unsub == nil {
		return "", "", "", usersvc.Errorf(usersvc.EUnavailable, MsgUnsubscribeDisabled)
	}
	c, err := s.unsub.Verify(token)
	if err != nil {
		return "", "", "", &usersvc.Error{Code: usersvc.EInvalid, Message: MsgUnsubscribeInvalid, Err: err}
	}
	return c.UserID, c.Category, c.Channel, nil
}

// Unsubscribe turns off what a one-click unsubscribe token names: the
// user's whole category, or one channel of it. It needs no other
// credential; doing it again changes nothing more. A bad token, or one of
// a category that is no longer commercial, is EInvalid and changes
// nothing.
func (s *Service) Unsubscribe(ctx context.Context, token string) (UnsubscribeResult, error) {
	userID, cat, ch, err := s.verifyUnsubscribe(token)
	res := UnsubscribeResult{Category: cat, Channel: ch}
	if err != nil {
		return res, err
	}
	if err := s.unsubscribable(ctx, cat, "token"); err != nil {
		return res, err
	}
	off := false
	cp := &usersvc.CategoryPatch{All: &off}
	if ch != "" {
		cp = &usersvc.CategoryPatch{Channels: map[string]*bool{ch: &off}}
	}
	patch := usersvc.PreferencesPatch{Categories: map[string]*usersvc.CategoryPatch{cat: cp}}
	if _, err := s.users.UpdatePreferences(ctx, userID, patch, s.clock()); err != nil {
		return res, notFound(err)
	}
	return res, nil
}
