package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/usersvc/usersvc"
)

// nullable is an optional string on the wire that may be null: it is sent
// only when set, as its value or as null.
type nullable struct{ v *string }

func (n nullable) MarshalJSON() ([]byte, error) { return json.Marshal(n.v) }

// optional is the member of a Nullable: nil (absent) when not set.
func optional(v usersvc.Nullable[string]) *nullable {
	if !v.Set {
		return nil
	}
	return &nullable{v.Value}
}

// prefsBody is a preferences patch on the wire: absent keys stay as they are.
type prefsBody struct {
	Email      *bool                         `json:"email,omitempty"`
	Push       *bool                         `json:"push,omitempty"`
	SMS        *bool                         `json:"sms,omitempty"`
	InApp      *bool                         `json:"in_app,omitempty"`
	Categories map[string]*categoryPatchBody `json:"categories,omitempty"`
	QuietHours *quietHoursBody               `json:"quiet_hours,omitempty"`
}

func newPrefsBody(p usersvc.PreferencesPatch) *prefsBody {
	b := &prefsBody{Email: p.Email, Push: p.Push, SMS: p.SMS, InApp: p.InApp}
	if len(p.Categories) > 0 {
		b.Categories = make(map[string]*categoryPatchBody, len(p.Categories))
		for key, cp := range p.Categories {
			if cp == nil {
				b.Categories[key] = nil // null: drop the user's choice
				continue
			}
			b.Categories[key] = &categoryPatchBody{*cp}
		}
	}
	if p.SetQuietHours {
		b.QuietHours = &quietHoursBody{p.QuietHours}
	}
	return b
}

// categoryPatchBody is a change of one category: true or false for the
// whole category, else an object of channel to true, false or null.
type categoryPatchBody struct{ p usersvc.CategoryPatch }

func (c categoryPatchBody) MarshalJSON() ([]byte, error) {
	if c.p.All != nil {
		return json.Marshal(*c.p.All)
	}
	if c.p.Channels == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(c.p.Channels)
}

// quietHoursBody is the quiet hours to set, or null to clear them.
type quietHoursBody struct{ q *usersvc.QuietHours }

func (q quietHoursBody) MarshalJSON() ([]byte, error) { return json.Marshal(q.q) }

// categoryBody is a category on the wire.
type categoryBody struct {
	Key         string          `json:"key,omitempty"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Defaults    map[string]bool `json:"defaults"`
	Required    bool            `json:"required"`
	Commercial  bool            `json:"commercial"`
	CreatedAt   *time.Time      `json:"created_at,omitempty"`
	UpdatedAt   *time.Time      `json:"updated_at,omitempty"`
}

func (b categoryBody) category() usersvc.Category {
	c := usersvc.Category{Key: b.Key, Name: b.Name, Description: b.Description, Defaults: b.Defaults,
		Required: b.Required, Commercial: b.Commercial}
	if b.CreatedAt != nil {
		c.CreatedAt = *b.CreatedAt
	}
	if b.UpdatedAt != nil {
		c.UpdatedAt = *b.UpdatedAt
	}
	return c
}

// Categories returns every category the operator defined: GET
// /api/v1/categories. Anyone authenticated may read them (a preferences
// page shows them to its user).
func (c *Client) Categories(ctx context.Context) ([]usersvc.Category, error) {
	var out []categoryBody
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/categories", auth: true, data: &out}); err != nil {
		return nil, err
	}
	cats := make([]usersvc.Category, len(out))
	for i, b := range out {
		cats[i] = b.category()
	}
	return cats, nil
}

// Category returns one category: GET /api/v1/categories/{key}. For admins
// and services with the users.read scope; a category that does not exist
// is ErrNotFound.
func (c *Client) Category(ctx context.Context, key string) (*usersvc.Category, error) {
	p, err := path("/api/v1/categories/", key)
	if err != nil {
		return nil, err
	}
	var b categoryBody
	if err := c.do(ctx, request{method: http.MethodGet, path: p, auth: true, data: &b}); err != nil {
		return nil, err
	}
	cat := b.category()
	return &cat, nil
}

// PutCategory creates or replaces the category cat.Key and returns it as
// stored, and whether it was created: PUT /api/v1/categories/{key}. Name,
// Description, Defaults, Required and Commercial are sent (CreatedAt and
// UpdatedAt are the service's); a channel missing from Defaults is on by
// default. For admins and services with the categories.write scope. A bad
// key or name, an unknown channel, or a category both required and
// commercial is ErrInvalid. It is retried like a GET (the same body gives
// the same category); created is then false if an attempt whose answer
// was lost created it.
func (c *Client) PutCategory(ctx context.Context, cat usersvc.Category) (*usersvc.Category, bool, error) {
	p, err := path("/api/v1/categories/", cat.Key)
	if err != nil {
		return nil, false, err
	}
	defaults := cat.Defaults
	if defaults == nil {
		defaults = map[string]bool{}
	}
	body := categoryBody{Name: cat.Name, Description: cat.Description, Defaults: defaults, Required: cat.Required, Commercial: cat.Commercial}
	var b categoryBody
	var status int
	err = c.do(ctx, request{method: http.MethodPut, path: p, auth: true, retry: true, body: body, data: &b, status: &status})
	if err != nil {
		return nil, false, err
	}
	out := b.category()
	return &out, status == http.StatusCreated, nil
}

// DeleteCategory removes a category: DELETE /api/v1/categories/{key}. The
// users' choices about it stay stored and apply again if the key is
// defined again. For admins and services with the categories.write scope;
// a category that does not exist is ErrNotFound, except when a retry finds
// it gone after an attempt whose answer was lost.
func (c *Client) DeleteCategory(ctx context.Context, key string) error {
	p, err := path("/api/v1/categories/", key)
	if err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p, auth: true, goneIsDone: true})
}

// MaxResolveUsers is how many user ids one request of Resolve carries; the
// service refuses more.
const MaxResolveUsers = 1000

// resolveConcurrency bounds the batches of one Resolve in flight at once.
const resolveConcurrency = 4

// ResolveRequest asks who of UserIDs gets a notification of Category on
// Channels (usersvc.ChannelEmail, ...), at At.
type ResolveRequest struct {
	// Category is the key of a category; "" applies no category rules
	// (only the channel switches, the addresses and the quiet hours).
	Category string
	// Channels are the channels to decide on, at least one; each
	// decision lists them in this order, once each.
	Channels []string
	// UserIDs are the users, any number: more than MaxResolveUsers are
	// sent in several requests.
	UserIDs []string
	// At is the moment to decide for (quiet hours); zero means now, as the
	// service's clock says.
	At time.Time
}

// Resolution is the answer of Resolve.
type Resolution struct {
	// At is the moment decided for (UTC), the same for every batch.
	At time.Time
	// Category is the key of the category, or "".
	Category string
	// Recipients holds a decision per user found, in the order of the
	// request (each user once).
	Recipients []usersvc.Decision
	// NotFound lists the ids of no user, in the order of the request.
	NotFound []string
}

// Resolve decides, for each user, on which of the channels a notification
// of the category goes now, and to which address (the email address, the
// E.164 phone number, every push device; in-app needs none), or why not
// (usersvc.ReasonChannelOff, ReasonCategoryOff, ReasonQuietHours with
// DeliverAfter, ReasonNoAddress, ReasonAccountDisabled): POST
// /api/v1/recipients/resolve. Each decision carries the user's locale and
// time zone. For admins and services with the users.read scope.
//
// More than MaxResolveUsers ids (after dropping repeats, ignoring case) are
// sent in batches of MaxResolveUsers, a few at a time, all for the same
// moment (At, or else the moment the service gave the first batch); the
// answers are merged in the order of the request. A failed batch fails
// the whole call (its error names the batch). Resolve changes nothing, so
// it is retried like a GET.
func (c *Client) Resolve(ctx context.Context, req ResolveRequest) (*Resolution, error) {
	channels := req.Channels
	if channels == nil {
		channels = []string{}
	}
	ids := req.UserIDs
	if ids == nil {
		ids = []string{}
	}
	if len(ids) <= MaxResolveUsers {
		return c.resolve(ctx, req.Category, channels, ids, req.At)
	}
	ids = uniqueIDs(ids)
	var batches [][]string
	for ids := ids; len(ids) > 0; {
		n := min(len(ids), MaxResolveUsers)
		batches = append(batches, ids[:n])
		ids = ids[n:]
	}
	if len(batches) == 1 {
		return c.resolve(ctx, req.Category, channels, batches[0], req.At)
	}
	batchErr := func(i int, err error) error {
		from := i * MaxResolveUsers
		return fmt.Errorf("usersvc: resolve: batch %d of %d (ids %d to %d): %w", i+1, len(batches), from, from+len(batches[i])-1, err)
	}
	answers := make([]*Resolution, len(batches))
	// The first batch fixes the moment when the caller gave none.
	first, err := c.resolve(ctx, req.Category, channels, batches[0], req.At)
	if err != nil {
		return nil, batchErr(0, err)
	}
	answers[0] = first
	at := first.At
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(batches))
	sem := make(chan struct{}, resolveConcurrency)
	var wg sync.WaitGroup
	for i := 1; i < len(batches); i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				return
			}
			answers[i], errs[i] = c.resolve(ctx, req.Category, channels, batches[i], at)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// The first batch that failed for itself, not because another did.
	for i, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, batchErr(i, err)
		}
	}
	for i, err := range errs {
		if err != nil {
			return nil, batchErr(i, err)
		}
	}
	out := &Resolution{At: at, Category: first.Category, Recipients: []usersvc.Decision{}, NotFound: []string{}}
	for _, a := range answers {
		out.Recipients = append(out.Recipients, a.Recipients...)
		out.NotFound = append(out.NotFound, a.NotFound...)
	}
	return out, nil
}

// uniqueIDs returns ids without repeats, ignoring case (a UUID in
// canonical form is lower case), first occurrence first.
func uniqueIDs(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		k := strings.ToLower(id)
		if !seen[k] {
			seen[k] = true
			out = append(out, id)
		}
	}
	return out
}

// resolveAnswer is the answer of the resolve endpoint on the wire.
type resolveAnswer struct {
	At         time.Time `json:"at"`
	Category   *string   `json:"category"`
	Recipients []struct {
		UserID   string                         `json:"user_id"`
		Locale   *string                        `json:"locale"`
		Timezone *string                        `json:"timezone"`
		Channels map[string]channelDecisionBody `json:"channels"`
	} `json:"recipients"`
	NotFound []string `json:"not_found"`
}

type channelDecisionBody struct {
	Send         bool       `json:"send"`
	Reason       *string    `json:"reason"`
	DeliverAfter *time.Time `json:"deliver_after"`
	Email        *string    `json:"email"`
	Phone        *string    `json:"phone"`
	PushTokens   []Device   `json:"push_tokens"`
}

// resolve makes one request of at most MaxResolveUsers ids.
func (c *Client) resolve(ctx context.Context, category string, channels, ids []string, at time.Time) (*Resolution, error) {
	body := struct {
		Category string   `json:"category,omitempty"`
		Channels []string `json:"channels"`
		UserIDs  []string `json:"user_ids"`
		At       string   `json:"at,omitempty"`
	}{Category: category, Channels: channels, UserIDs: ids}
	if !at.IsZero() {
		body.At = at.UTC().Format(time.RFC3339Nano)
	}
	var a resolveAnswer
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/recipients/resolve", auth: true, retry: true, body: body, data: &a})
	if err != nil {
		return nil, err
	}
	// The answer keys channels by name; the decisions list them as asked.
	var order []string
	for _, ch := range channels {
		if !slices.Contains(order, ch) {
			order = append(order, ch)
		}
	}
	out := &Resolution{At: a.At.UTC(), Recipients: make([]usersvc.Decision, 0, len(a.Recipients)), NotFound: a.NotFound}
	if a.Category != nil {
		out.Category = *a.Category
	}
	if out.NotFound == nil {
		out.NotFound = []string{}
	}
	for _, r := range a.Recipients {
		d := usersvc.Decision{UserID: r.UserID, Locale: r.Locale, Timezone: r.Timezone, Channels: make([]usersvc.ChannelDecision, 0, len(order))}
		for _, ch := range order {
			cb, ok := r.Channels[ch]
			if !ok {
				continue
			}
			cd := usersvc.ChannelDecision{Channel: ch, Send: cb.Send, Email: cb.Email, Phone: cb.Phone}
			if cb.Reason != nil {
				cd.Reason = *cb.Reason
			}
			if cb.DeliverAfter != nil {
				t := cb.DeliverAfter.UTC()
				cd.DeliverAfter = &t
			}
			for _, dev := range cb.PushTokens {
				cd.Devices = append(cd.Devices, usersvc.Device{ID: dev.ID, UserID: r.UserID, DeviceID: dev.DeviceID, Token: dev.PushToken,
					DeviceType: dev.DeviceType, CreatedAt: dev.CreatedAt, UpdatedAt: dev.UpdatedAt, LastSeenAt: dev.LastSeenAt})
			}
			d.Channels = append(d.Channels, cd)
		}
		out.Recipients = append(out.Recipients, d)
	}
	return out, nil
}

// UnsubscribeLink is a one-click unsubscribe link (RFC 8058) to put in an
// email.
type UnsubscribeLink struct {
	// URL unsubscribes when posted to with the body
	// List-Unsubscribe=One-Click, without credentials; a GET of it shows
	// a confirmation page and changes nothing.
	URL string
	// Headers are the email headers to add: List-Unsubscribe
	// ("<URL>") and List-Unsubscribe-Post ("List-Unsubscribe=One-Click").
	Headers map[string]string
}

// UnsubscribeLink returns the one-click unsubscribe link of a user for a
// commercial category, and for one channel of it, or for the whole
// category when channel is "": POST /api/v1/unsubscribe/links. For admins
// and services with the users.read scope. An unknown category, one that is
// not commercial and an unknown channel are ErrInvalid; a user that does
// not exist is ErrNotFound. The link does not expire; it stops working if
// the service's UNSUBSCRIBE_KEY changes without the old key kept in
// UNSUBSCRIBE_KEY_PREVIOUS.
func (c *Client) UnsubscribeLink(ctx context.Context, userID, category, channel string) (*UnsubscribeLink, error) {
	body := struct {
		UserID   string `json:"user_id"`
		Category string `json:"category"`
		Channel  string `json:"channel,omitempty"`
	}{userID, category, channel}
	var data struct {
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/unsubscribe/links", auth: true, retry: true, body: body, data: &data})
	if err != nil {
		return nil, err
	}
	return &UnsubscribeLink{URL: data.URL, Headers: data.Headers}, nil
}
