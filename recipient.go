package usersvc

import (
	"slices"
	"time"
)

// Reasons a channel is not sent on now.
const (
	// ReasonChannelOff: the user turned the channel off.
	ReasonChannelOff = "channel_off"
	// ReasonCategoryOff: the category does not use the channel, by its
	// default or by the user's choice.
	ReasonCategoryOff = "category_off"
	// ReasonQuietHours: the user's quiet hours cover this moment; the
	// message may go at DeliverAfter.
	ReasonQuietHours = "quiet_hours"
	// ReasonNoAddress: the user has no email address, phone number or push
	// device for the channel.
	ReasonNoAddress = "no_address"
	// ReasonAccountDisabled: the account is disabled.
	ReasonAccountDisabled = "account_disabled"
	// ReasonUnverified: the operator requires a verified address for the
	// channel (REQUIRE_VERIFIED) and the user's is not.
	ReasonUnverified = "unverified"
)

// ChannelDecision says whether to send to a user on one channel now, and
// where. When Send is true, the channel's address is set (Email for email,
// Phone for sms, Devices for push; in_app needs none). When Send is false,
// Reason says why; for ReasonQuietHours the address is set too, and
// DeliverAfter (UTC) is when the quiet hours end.
type ChannelDecision struct {
	Channel      string
	Send         bool
	Reason       string
	DeliverAfter *time.Time
	Email        *string
	Phone        *string
	Devices      []Device
}

// Decision is the answer for one user: a ChannelDecision per channel asked
// for, in the order asked, and the user's locale and time zone so that the
// sender can write the message.
type Decision struct {
	UserID   string
	Locale   *string
	Timezone *string
	Channels []ChannelDecision
}

// Decide says, for user u with push devices devices, which of channels a
// notification of category cat may use at instant at. cat nil means no
// category rules apply. For each channel, in this order:
//
//   - a disabled account gets nothing (ReasonAccountDisabled);
//   - a required category uses exactly the channels its defaults turn on
//     (ReasonCategoryOff for the others), whatever the user's switches,
//     category choices and quiet hours say;
//   - otherwise the user's channel switch must be on (ReasonChannelOff), and
//     the category must use the channel: the user's choice for the category
//     if there is one, else its default (ReasonCategoryOff);
//   - the user must have an address for the channel: an email address for
//     email, a phone number for sms, at least one device for push
//     (ReasonNoAddress); in_app needs none;
//   - unless the category is required, quiet hours that list the channel
//     and cover at hold it back (ReasonQuietHours, with DeliverAfter).
//
// A channel among requireVerified (email, sms) whose address the user has
// not verified is ReasonUnverified, after ReasonNoAddress.
//
// A channel that is none of Channels is off. Decide is pure: the same
// arguments give the same answer.
func Decide(u *User, devices []Device, cat *Category, channels []string, at time.Time, requireVerified []string) Decision {
	d := Decision{UserID: u.ID, Locale: u.Locale, Timezone: u.Timezone, Channels: make([]ChannelDecision, 0, len(channels))}
	required := cat != nil && cat.Required
	q := u.Preferences.QuietHours
	quietKnown, quiet, until := false, false, time.Time{}
	for _, ch := range channels {
		cd := ChannelDecision{Channel: ch}
		switch {
		case !u.IsActive:
			cd.Reason = ReasonAccountDisabled
		case required && !cat.Default(ch):
			cd.Reason = ReasonCategoryOff
		case !required && !u.Preferences.Channel(ch):
			cd.Reason = ReasonChannelOff
		case !required && cat != nil && !categoryWants(u.Preferences, cat, ch):
			cd.Reason = ReasonCategoryOff
		case !setAddress(&cd, u, devices):
			cd.Reason = ReasonNoAddress
		case slices.Contains(requireVerified, ch) && !verified(u, ch):
			cd.Reason = ReasonUnverified
			cd.Email, cd.Phone = nil, nil // an unverified address is not given
		case !required && q != nil && (q.Channels == nil || slices.Contains(q.Channels, ch)):
			if !quietKnown {
				quiet, until = q.Quiet(at, u.Timezone)
				quietKnown = true
			}
			if quiet {
				cd.Reason = ReasonQuietHours
				after := until.UTC()
				cd.DeliverAfter = &after
			} else {
				cd.Send = true
			}
		default:
			cd.Send = true
		}
		d.Channels = append(d.Channels, cd)
	}
	return d
}

// verified reports whether the user's address of channel ch is verified
// (only email and sms have addresses to verify).
func verified(u *User, ch string) bool {
	switch ch {
	case ChannelEmail:
		return u.EmailVerifiedAt != nil
	case ChannelSMS:
		return u.PhoneVerifiedAt != nil
	}
	return true
}

// categoryWants reports whether category cat uses channel ch for a user
// with preferences p: the user's choice if any, else the default.
func categoryWants(p Preferences, cat *Category, ch string) bool {
	if c, ok := p.Categories[cat.Key]; ok {
		if on, set := c.Wants(ch); set {
			return on
		}
	}
	return cat.Default(ch)
}

// setAddress fills in the address of cd's channel and reports whether the
// user has one.
func setAddress(cd *ChannelDecision, u *User, devices []Device) bool {
	switch cd.Channel {
	case ChannelEmail:
		if u.Email == "" {
			return false
		}
		e := u.Email
		cd.Email = &e
	case ChannelSMS:
		if u.Phone == nil || *u.Phone == "" {
			return false
		}
		p := *u.Phone
		cd.Phone = &p
	case ChannelPush:
		if len(devices) == 0 {
			return false
		}
		cd.Devices = slices.Clone(devices)
	case ChannelInApp:
	default:
		return false
	}
	return true
}

// Quiet reports whether instant at falls in the quiet hours, and if so
// until when (the end of the window, exclusive).
//
// The window is read in q.Location(userTZ). A window starts on each local
// day listed in Days (every day when Days is empty) at Start, and ends at
// End the same day, or the next day when End is before Start. At a given
// instant the windows that started on the local date of at and on the day
// before are the only ones that can cover it. A window whose End equals its
// Start is empty.
//
// Start and end are local wall times made into instants with time.Date, so
// a window is as long in hours as the clock says except across a change of
// UTC offset: a night window that spans the spring change is an hour
// shorter, one that spans the autumn change an hour longer. A wall time
// that does not exist (inside a spring-forward gap) is read with the offset
// from before the gap, so it moves forward by the gap: 02:30 on the night
// Europe/Berlin goes from 02:00 to 03:00 is 03:30 CEST. A wall time that
// exists twice (in the hour repeated in autumn) is one of its two instants
// as time.Date picks it; in Europe/Berlin the second one, in standard time.
func (q *QuietHours) Quiet(at time.Time, userTZ *string) (quiet bool, until time.Time) {
	if q == nil || q.Start == q.End {
		return false, time.Time{}
	}
	loc := q.Location(userTZ)
	y, m, day := at.In(loc).Date()
	for _, back := range []int{0, 1} {
		startDay := day - back
		if len(q.Days) > 0 {
			// The weekday of a calendar date, free of any zone's offsets.
			wd := time.Date(y, m, startDay, 12, 0, 0, 0, time.UTC).Weekday()
			if !slices.Contains(q.Days, weekdays[wd]) {
				continue
			}
		}
		endDay := startDay
		if q.End < q.Start {
			endDay++
		}
		start := time.Date(y, m, startDay, int(q.Start)/60, int(q.Start)%60, 0, 0, loc)
		end := time.Date(y, m, endDay, int(q.End)/60, int(q.End)%60, 0, 0, loc)
		if !at.Before(start) && at.Before(end) {
			return true, end
		}
	}
	return false, time.Time{}
}
