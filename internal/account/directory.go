package account

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/usersvc/usersvc"
)

// Limits of the directory reads.
const (
	MaxPageLimit  = 100
	MaxBatchUsers = 1000
	MaxInvalidate = 1000
)

// Page is one page of the user list.
type Page struct {
	Users []usersvc.User
	Total int
	Page  int
	Limit int
}

// ListUsers returns one page of users, newest first, for admins and
// services that may read users.
func (s *Service) ListUsers(ctx context.Context, p Principal, page, limit int) (*Page, error) {
	if err := s.requireScope(ctx, p, ScopeUsersRead, true); err != nil {
		return nil, err
	}
	fe := usersvc.FieldErrors{}
	if page < 1 {
		fe.Add("page", "Must be a whole number of at least 1")
	}
	if limit < 1 || limit > MaxPageLimit {
		fe.Add("limit", "Must be a whole number from 1 to 100")
	} else if last := math.MaxInt/limit + 1; limit > 1 && page > last {
		// Its offset, (page-1)*limit, would overflow.
		fe.Add("page", fmt.Sprintf("Must be at most %d with a limit of %d", last, limit))
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	users, total, err := s.users.ListUsers(ctx, limit, (page-1)*limit)
	if err != nil {
		return nil, err
	}
	return &Page{Users: users, Total: total, Page: page, Limit: limit}, nil
}

// UserWithDevices is a user with every device record, for notification fan-out.
type UserWithDevices struct {
	usersvc.User
	Devices []usersvc.Device
}

// BatchUsers looks up many users at once with a constant number of
// queries: the users found with their devices, and the ids not found.
func (s *Service) BatchUsers(ctx context.Context, p Principal, ids []string) ([]UserWithDevices, []string, error) {
	if err := s.requireScope(ctx, p, ScopeUsersRead, true); err != nil {
		return nil, nil, err
	}
	fe := usersvc.FieldErrors{}
	want := checkUserIDs(ids, fe)
	if err := fe.Err(); err != nil {
		return nil, nil, err
	}
	return s.usersWithDevices(ctx, want, true)
}

// checkUserIDs checks a batch of ids (1 to MaxBatchUsers canonical UUIDs)
// into fe under "user_ids" and returns them without repeats, in order.
func checkUserIDs(ids []string, fe usersvc.FieldErrors) []string {
	switch {
	case len(ids) == 0:
		fe.Add("user_ids", "Must hold at least one id")
	case len(ids) > MaxBatchUsers:
		fe.Add("user_ids", "Must hold at most 1000 ids")
	}
	want := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil || len(id) != 36 {
			fe.Add("user_ids", "Invalid UUID format at index "+strconv.Itoa(i))
			continue
		}
		if c := u.String(); !seen[c] {
			seen[c] = true
			want = append(want, c)
		}
	}
	return want
}

// usersWithDevices looks up the users of ids, in the order of ids, with
// their devices when withDevices (one query each), and lists the ids not
// found. The users and their devices are read at once, on two
// connections: the devices of an id that is no user are none, so the
// devices need not wait for the users, and the lookup takes the longer of
// the two reads rather than their sum.
func (s *Service) usersWithDevices(ctx context.Context, want []string, withDevices bool) ([]UserWithDevices, []string, error) {
	var (
		users   []usersvc.User
		devices map[string][]usersvc.Device
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		users, err = s.users.UsersByIDs(gctx, want)
		return err
	})
	if withDevices {
		g.Go(func() (err error) {
			devices, err = s.devices.DevicesOfUsers(gctx, want)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	byID := make(map[string]usersvc.User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	out := make([]UserWithDevices, 0, len(users))
	var missing []string
	for _, id := range want {
		u, ok := byID[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		out = append(out, UserWithDevices{User: u, Devices: devices[id]})
	}
	return out, missing, nil
}

// Devices returns every device record of the user.
func (s *Service) Devices(ctx context.Context, p Principal, userID string) ([]usersvc.Device, error) {
	if err := s.authorize(ctx, p, userID, Read); err != nil {
		return nil, err
	}
	if _, err := s.userOf(ctx, p, userID); err != nil {
		return nil, err
	}
	return s.devices.Devices(ctx, userID)
}

// DeleteDevice removes one device record of the user.
func (s *Service) DeleteDevice(ctx context.Context, p Principal, userID, deviceID string) error {
	if err := s.authorize(ctx, p, userID, Write); err != nil {
		return err
	}
	if _, err := s.userOf(ctx, p, userID); err != nil {
		return err
	}
	if err := s.devices.DeleteDevice(ctx, userID, deviceID, s.clock()); err != nil {
		if isNotFound(err) {
			return &usersvc.Error{Code: usersvc.ENotFound, Message: "Device not found", Err: err}
		}
		return err
	}
	return nil
}

// InvalidatePushTokens drops tokens the push provider rejected, whoever
// holds them, and returns how many device records went.
func (s *Service) InvalidatePushTokens(ctx context.Context, p Principal, tokens []string, reason string) (int, error) {
	if err := s.requireScope(ctx, p, ScopePushTokensInvalidate, false); err != nil {
		return 0, err
	}
	fe := usersvc.FieldErrors{}
	switch {
	case len(tokens) == 0:
		fe.Add("push_tokens", "Must hold at least one token")
	case len(tokens) > MaxInvalidate:
		fe.Add("push_tokens", "Must hold at most 1000 tokens")
	}
	clean := make([]string, 0, len(tokens))
	for i, t := range tokens {
		c, msgs := usersvc.CheckPushToken(t)
		if len(msgs) > 0 {
			fe.Add("push_tokens", msgs[0]+" at index "+strconv.Itoa(i))
			continue
		}
		clean = append(clean, c)
	}
	if err := fe.Err(); err != nil {
		return 0, err
	}
	_, n, err := s.devices.InvalidatePushTokens(ctx, clean, reason, s.clock())
	if err != nil {
		return 0, err
	}
	return n, nil
}
