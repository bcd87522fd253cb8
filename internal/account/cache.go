package account

import (
	"context"

	"github.com/usersvc/usersvc"
)

// Cache fronts the store's reads of users and devices. It is best effort:
// a miss or a failing cache falls back to the store, and every write
// forgets what it changed before it answers.
type Cache interface {
	User(ctx context.Context, id string) (*usersvc.User, bool)
	StoreUser(ctx context.Context, u *usersvc.User)
	ForgetUser(ctx context.Context, ids ...string)
	Devices(ctx context.Context, userID string) ([]usersvc.Device, bool)
	StoreDevices(ctx context.Context, userID string, d []usersvc.Device)
	ForgetDevices(ctx context.Context, userIDs ...string)
}

type noCache struct{}

func (noCache) User(context.Context, string) (*usersvc.User, bool)       { return nil, false }
func (noCache) StoreUser(context.Context, *usersvc.User)                 {}
func (noCache) ForgetUser(context.Context, ...string)                    {}
func (noCache) Devices(context.Context, string) ([]usersvc.Device, bool) { return nil, false }
func (noCache) StoreDevices(context.Context, string, []usersvc.Device)   {}
func (noCache) ForgetDevices(context.Context, ...string)                 {}
