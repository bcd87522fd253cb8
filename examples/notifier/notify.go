package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
)

// notify asks the user service who of ids gets a notification of the
// worker's category now, on which of its channels and where (one Resolve,
// which sends more than 1000 ids in batches), and writes what would be
// sent, user by user in the order of ids, each user in one write. An id
// that is no UUID names no user and is not sent.
func (w *worker) notify(ctx context.Context, out io.Writer, ids []string, text string) error {
	canonical := make([]string, len(ids))
	var ask []string
	for i, id := range ids {
		canonical[i] = canonicalID(id)
		if _, err := uuid.Parse(id); err == nil && len(id) == 36 {
			ask = append(ask, canonical[i])
		}
	}
	decisions := map[string]usersvc.Decision{}
	if len(ask) > 0 {
		res, err := w.users.Resolve(ctx, client.ResolveRequest{Category: w.category, Channels: w.channels, UserIDs: ask})
		if err != nil {
			return fmt.Errorf("deciding whom to notify: %w", err)
		}
		for _, d := range res.Recipients {
			decisions[d.UserID] = d
		}
	}
	for _, id := range canonical {
		var b bytes.Buffer
		fmt.Fprintf(&b, "user %s\n", id)
		d, ok := decisions[id]
		switch {
		case !ok:
			fmt.Fprintln(&b, "  no such user: nothing sent")
		case disabled(d):
			fmt.Fprintln(&b, "  account disabled: nothing sent")
		default:
			w.write(&b, d, text)
		}
		if _, err := out.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// disabled reports whether the decision is that of a disabled account.
func disabled(d usersvc.Decision) bool {
	return len(d.Channels) > 0 && d.Channels[0].Reason == usersvc.ReasonAccountDisabled
}

// write tells what goes out on each channel of d, where a mail, SMS or
// push provider would be called, or why nothing does.
func (w *worker) write(b *bytes.Buffer, d usersvc.Decision, text string) {
	for _, c := range d.Channels {
		switch {
		case c.Reason == usersvc.ReasonQuietHours:
			fmt.Fprintf(b, "  %s: quiet hours, to send after %s\n", c.Channel, c.DeliverAfter.Format(time.RFC3339))
		case !c.Send:
			fmt.Fprintf(b, "  %s: not sent (%s)\n", c.Channel, c.Reason)
		case c.Channel == usersvc.ChannelEmail:
			if name := w.r.name(d.UserID); name != "" {
				fmt.Fprintf(b, "  email to %s <%s>: %s\n", name, *c.Email, text)
			} else {
				fmt.Fprintf(b, "  email to <%s>: %s\n", *c.Email, text)
			}
		case c.Channel == usersvc.ChannelSMS:
			fmt.Fprintf(b, "  sms to %s: %s\n", *c.Phone, text)
		case c.Channel == usersvc.ChannelPush:
			for _, dev := range c.Devices {
				fmt.Fprintf(b, "  push to %s (%s): %s\n", dev.Token, dev.DeviceType, text)
			}
		default:
			fmt.Fprintf(b, "  %s: %s\n", c.Channel, text)
		}
	}
}
