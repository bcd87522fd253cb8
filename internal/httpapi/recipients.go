package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// nullable reads an optional member that is a string or null.
func (f *fields) nullable(name string) usersvc.Nullable[string] {
	if !f.present(name) {
		return usersvc.Nullable[string]{}
	}
	return usersvc.Nullable[string]{Set: true, Value: f.nullableStr(name)}
}

// profile reads the optional phone, locale and timezone members.
func (f *fields) profile() usersvc.ProfilePatch {
	return usersvc.ProfilePatch{Phone: f.nullable("phone"), Locale: f.nullable("locale"), Timezone: f.nullable("timezone")}
}

// preferencesPatch reads the members of a preferences update: the channel
// switches, categories and quiet_hours.
func (f *fields) preferencesPatch() usersvc.PreferencesPatch {
	p := usersvc.PreferencesPatch{Email: f.boolean("email"), Push: f.boolean("push"), SMS: f.boolean("sms"), InApp: f.boolean("in_app")}
	if f.present("categories") {
		p.Categories = f.categories()
	}
	if f.present("quiet_hours") {
		p.SetQuietHours = true
		p.QuietHours = f.quietHours()
	}
	return p
}

// categories reads {"key": true | false | null | {"channel": true | false | null}}.
func (f *fields) categories() map[string]*usersvc.CategoryPatch {
	c := f.object("categories")
	if c == nil {
		if _, ok := f.raw("categories"); !ok {
			f.add("categories", usersvc.MsgNotObject)
		}
		return nil
	}
	out := make(map[string]*usersvc.CategoryPatch, len(c.m))
	for key, v := range c.m {
		c.asked[key] = true
		switch string(v) {
		case "null":
			out[key] = nil
		case "true", "false":
			b := string(v) == "true"
			out[key] = &usersvc.CategoryPatch{All: &b}
		default:
			if v[0] != '{' {
				c.add(usersvc.ClipKey(key), "Must be true, false, null or an object of channels")
				continue
			}
			chans := c.object(key)
			if chans == nil {
				continue
			}
			cp := &usersvc.CategoryPatch{Channels: map[string]*bool{}}
			for _, ch := range usersvc.Channels {
				if chans.present(ch) {
					cp.Channels[ch] = chans.nullableBool(ch)
				}
			}
			chans.unknown()
			out[key] = cp
		}
	}
	return out
}

// nullableBool reads a member that is true, false or null (nil).
func (f *fields) nullableBool(name string) *bool {
	if v, ok := f.m[name]; ok && string(v) == "null" {
		f.asked[name] = true
		return nil
	}
	return f.boolean(name)
}

// quietHours reads null or {"start", "end", "timezone", "channels", "days"}.
func (f *fields) quietHours() *usersvc.QuietHours {
	q := f.object("quiet_hours") // null clears; object records any other problem
	if q == nil {
		return nil
	}
	var out usersvc.QuietHours
	for _, t := range []struct {
		name string
		dst  *usersvc.ClockTime
	}{{"start", &out.Start}, {"end", &out.End}} {
		if s, ok := q.str(t.name, true); ok {
			v, err := usersvc.ParseClockTime(s)
			if err != nil {
				q.add(t.name, "Must be a time of day as HH:MM, 00:00 to 23:59")
			}
			*t.dst = v
		}
	}
	out.Timezone = q.nullableStr("timezone")
	if _, ok := q.raw("channels"); ok {
		out.Channels = q.strs("channels", "Must be a list of channels")
	}
	if _, ok := q.raw("days"); ok {
		out.Days = q.strs("days", "Must be a list of days")
	}
	q.unknown()
	return &out
}

// categoryView is a category as the API shows it.
type categoryView struct {
	Key         string          `json:"key"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Defaults    map[string]bool `json:"defaults"`
	Required    bool            `json:"required"`
	Commercial  bool            `json:"commercial"`
	CreatedAt   string          `json:"created_at"`
	UpdatedAt   string          `json:"updated_at"`
}

func viewCategory(c *usersvc.Category) categoryView {
	return categoryView{Key: c.Key, Name: c.Name, Description: c.Description, Defaults: c.Defaults,
		Required: c.Required, Commercial: c.Commercial, CreatedAt: timestamp(c.CreatedAt), UpdatedAt: timestamp(c.UpdatedAt)}
}

func handleListCategories(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		cs, err := accounts.Categories(r.Context(), principalOf(r))
		if err != nil {
			return err
		}
		views := make([]categoryView, len(cs))
		for i := range cs {
			views[i] = viewCategory(&cs[i])
		}
		respond(w, http.StatusOK, "Categories retrieved successfully", views, nil)
		return nil
	}
}

func handleGetCategory(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := accounts.Category(r.Context(), principalOf(r), r.PathValue("key"))
		if err != nil {
			return err
		}
		respond(w, http.StatusOK, "Category retrieved successfully", viewCategory(c), nil)
		return nil
	}
}

func handlePutCategory(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		c := usersvc.Category{Key: r.PathValue("key")}
		c.Name, _ = f.str("name", true)
		c.Description, _ = f.str("description", false)
		if d := f.object("defaults"); d != nil {
			c.Defaults = map[string]bool{}
			for _, ch := range usersvc.Channels {
				if b := d.boolean(ch); b != nil {
					c.Defaults[ch] = *b
				}
			}
			d.unknown()
		}
		for _, b := range []struct {
			name string
			dst  *bool
		}{{"required", &c.Required}, {"commercial", &c.Commercial}} {
			if v := f.boolean(b.name); v != nil {
				*b.dst = *v
			}
		}
		f.unknown()
		if err := f.err(); err != nil {
			return err
		}
		created, err := accounts.PutCategory(r.Context(), principalOf(r), &c)
		if err != nil {
			return err
		}
		if created {
			respond(w, http.StatusCreated, "Category created successfully", viewCategory(&c), nil)
		} else {
			respond(w, http.StatusOK, "Category updated successfully", viewCategory(&c), nil)
		}
		return nil
	}
}

func handleDeleteCategory(accounts *account.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := accounts.DeleteCategory(r.Context(), principalOf(r), r.PathValue("key")); err != nil {
			return err
		}
		respond(w, http.StatusOK, "Category deleted successfully", nil, nil)
		return nil
	}
}

// channelView is the decision for one channel of one user.
type channelView struct {
	Send         bool         `json:"send"`
	Reason       *string      `json:"reason"`
	DeliverAfter *string      `json:"deliver_after,omitempty"`
	Email        *string      `json:"email,omitempty"`
	Phone        *string      `json:"phone,omitempty"`
	PushTokens   []deviceView `json:"push_tokens,omitempty"`
}

// recipientView is the decision for one user.
type recipientView struct {
	UserID   string       `json:"user_id"`
	Locale   *string      `json:"locale"`
	Timezone *string      `json:"timezone"`
	Channels channelViews `json:"channels"`
}

// channelViews holds the decision of each channel asked for (a struct, not
// a map: a thousand recipients encode without sorting keys).
type channelViews struct {
	Email *channelView `json:"email,omitempty"`
	Push  *channelView `json:"push,omitempty"`
	SMS   *channelView `json:"sms,omitempty"`
	InApp *channelView `json:"in_app,omitempty"`
}

// at returns the field of channel c.
func (v *channelViews) at(c string) **channelView {
	switch c {
	case usersvc.ChannelEmail:
		return &v.Email
	case usersvc.ChannelPush:
		return &v.Push
	case usersvc.ChannelSMS:
		return &v.SMS
	}
	return &v.InApp
}

func handleResolve(accounts *account.Service) handlerFunc {
	type data struct {
		At         string          `json:"at"`
		Category   *string         `json:"category"`
		Recipients []recipientView `json:"recipients"`
		NotFound   []string        `json:"not_found"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		var req account.ResolveRequest
		req.Category, _ = f.str("category", false)
		req.Channels = f.strs("channels", "Must be a list of channels")
		req.UserIDs = f.strs("user_ids", "Must be a list of ids")
		if at, ok := f.str("at", false); ok {
			t, err := time.Parse(time.RFC3339Nano, at)
			if err != nil {
				f.add("at", "Must be an RFC 3339 date-time, such as 2026-03-29T01:30:00Z")
			}
			req.At = t.UTC().Truncate(time.Microsecond)
		}
		f.unknown()
		if err := f.err(); err != nil {
			return err
		}
		res, err := accounts.Resolve(r.Context(), principalOf(r), req)
		if err != nil {
			return err
		}
		out := data{At: timestamp(res.At), Recipients: make([]recipientView, len(res.Decisions)), NotFound: res.NotFound}
		if res.Category != nil {
			out.Category = &res.Category.Key
		}
		for i, d := range res.Decisions {
			out.Recipients[i] = viewDecision(d)
		}
		respond(w, http.StatusOK, "Recipients resolved successfully", out, nil)
		return nil
	}
}

func viewDecision(d usersvc.Decision) recipientView {
	v := recipientView{UserID: d.UserID, Locale: d.Locale, Timezone: d.Timezone}
	for _, c := range d.Channels {
		cv := channelView{Send: c.Send, Email: c.Email, Phone: c.Phone}
		if c.Reason != "" {
			reason := c.Reason
			cv.Reason = &reason
		}
		if c.DeliverAfter != nil {
			s := timestamp(*c.DeliverAfter)
			cv.DeliverAfter = &s
		}
		if c.Channel == usersvc.ChannelPush && len(c.Devices) > 0 {
			cv.PushTokens = viewDevices(c.Devices)
		}
		*v.Channels.at(c.Channel) = &cv
	}
	return v
}

// unsubscribePath is where one-click unsubscribe links point, below the
// public URL.
const unsubscribePath = "/api/v1/unsubscribe/"

func handleUnsubscribeLink(accounts *account.Service, publicURL string) handlerFunc {
	type data struct {
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		m, err := decodeObject(w, r)
		if err != nil {
			return err
		}
		f := newFields(m)
		userID, _ := f.str("user_id", true)
		category, _ := f.str("category", true)
		channel, _ := f.str("channel", false)
		f.unknown()
		if err := f.err(); err != nil {
			return err
		}
		token, err := accounts.UnsubscribeLink(r.Context(), principalOf(r), userID, category, channel)
		if err != nil {
			return err
		}
		url := publicURL + unsubscribePath + token
		respond(w, http.StatusOK, "Unsubscribe link created successfully", data{URL: url, Headers: map[string]string{
			"List-Unsubscribe":      "<" + url + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		}}, nil)
		return nil
	}
}

// oneClickBody is the body RFC 8058 has a mail client post.
const oneClickBody = "List-Unsubscribe=One-Click"

// maxOneClickBody bounds the form a one-click unsubscribe reads.
const maxOneClickBody = 1 << 10

func handleUnsubscribe(accounts *account.Service) handlerFunc {
	type data struct {
		Category string  `json:"category"`
		Channel  *string `json:"channel"`
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxOneClickBody)
		if err := r.ParseForm(); err != nil || !slices.Contains(r.PostForm["List-Unsubscribe"], "One-Click") {
			return usersvc.Errorf(usersvc.EInvalid, "The body must be "+oneClickBody+" (application/x-www-form-urlencoded)")
		}
		res, err := accounts.Unsubscribe(r.Context(), r.PathValue("token"))
		if err != nil && wantsHTML(r) {
			unsubscribeErrorPage(w, err)
			return nil
		}
		if err != nil {
			return err
		}
		d := data{Category: res.Category}
		if res.Channel != "" {
			d.Channel = &res.Channel
		}
		if wantsHTML(r) {
			unsubscribePage(w, http.StatusOK, res, true)
			return nil
		}
		respond(w, http.StatusOK, "Unsubscribed successfully", d, nil)
		return nil
	}
}

// wantsHTML reports whether a browser (the confirmation page's form) made
// the request.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(strings.ToLower(strings.Join(r.Header.Values("Accept"), ",")), "text/html")
}
