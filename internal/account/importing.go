package account

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
)

// PrepareImport returns the devices of an imported user as a store keeps
// them: owned by u, each with an id (a new one when it has none), and with
// timestamps defaulting to the user's creation time, all at the precision
// the stores keep. The stores' ImportUser takes devices prepared so.
func PrepareImport(u *usersvc.User, devices []usersvc.Device) ([]usersvc.Device, error) {
	micro := func(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
	out := make([]usersvc.Device, len(devices))
	for i, d := range devices {
		if d.ID == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("new device id: %w", err)
			}
			d.ID = id.String()
		}
		d.UserID = u.ID
		if d.CreatedAt.IsZero() {
			d.CreatedAt = u.CreatedAt
		}
		if d.UpdatedAt.IsZero() {
			d.UpdatedAt = d.CreatedAt
		}
		if d.LastSeenAt.IsZero() {
			d.LastSeenAt = d.UpdatedAt
		}
		d.CreatedAt, d.UpdatedAt, d.LastSeenAt = micro(d.CreatedAt), micro(d.UpdatedAt), micro(d.LastSeenAt)
		out[i] = d
	}
	return out, nil
}
