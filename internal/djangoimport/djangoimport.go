// Package djangoimport copies the accounts of the Django predecessor of this
// service from its PostgreSQL database into an account store, so that its
// users move in without a password reset: same ids, the same password
// hashes (the password package verifies Django's, and the first login
// rehashes them to argon2id), flags, timestamps, notification preferences
// and active push-token devices.
//
// The import is idempotent. A user whose id is already in the store is left
// exactly as it is, so a second run writes nothing and reports only the
// rows that still cannot be imported. A row that cannot be imported is
// reported with its reason and does not stop the others.
//
// How the Django rows map onto this service:
//
//   - Emails are compared in their canonical form (usersvc.CanonicalEmail).
//     An email that fails usersvc.CheckEmail is not imported. Rows whose
//     emails differ only by case collapse to one account: the active one,
//     then the one that logged in most recently, then the one created first
//     (then the smallest id). The others are not imported, with their
//     devices, and each is reported naming the account kept.
//   - Names are trimmed and kept even when usersvc.CheckName rejects them
//     (Django allowed them); each such name is reported.
//   - is_admin is is_staff or is_superuser; is_active is copied.
//   - Preferences come from the preferences JSON: keys email and push,
//     each true when missing or null, other keys ignored. When the JSON has
//     neither key (typically {}) and users_notificationpreferences has a
//     row for the user, its email_notifications and push_notifications are
//     used. The sms channel is users_notificationpreferences.sms_notifications
//     when the user has a row (the JSON has no sms switch); in_app, which
//     Django did not have, is on, and there are no category choices (its
//     categories column is not read: usersvc's categories are the
//     operator's, defined anew).
//     JSON that is not an object, or a key that is not a boolean,
//     stops that user's import (guessing could opt someone in to
//     notifications they turned off): fix the row and run again.
//   - created_at, when null, is the earliest of date_joined (when the table
//     has it), last_login and updated_at, else the start of the run.
//     updated_at, when null or earlier, is created_at.
//   - Active users_pushtoken rows become devices with their ids, device
//     ids, types and created_at; inactive rows are skipped and counted. A
//     token that fails usersvc.CheckPushToken is skipped and reported, the
//     user imported. A device id that fails usersvc.CheckDeviceID is dropped
//     (the token is kept), an unknown device type becomes "other"; both are
//     reported. Of several active rows for one device id, the newest is kept.
//   - users_user.push_token, when valid and not among the user's devices,
//     becomes a device with no device id and type "other". The user's
//     current token is users_user.push_token, or when it is empty the token
//     of the newest device. The device holding a current token taken from
//     users_user.push_token is marked last seen at the user's updated_at
//     (when later than its creation), when Django last wrote that token, so
//     that it comes first among the user's devices.
//   - A token held by several users is kept by the one that registered it
//     last (device created_at, or updated_at for users_user.push_token); the
//     others skip it, reported.
//   - Password hashes are stored as they are. A hash of a scheme the service
//     does not verify is reported: that account cannot log in.
package djangoimport

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

// Options are the optional parts of a Run.
type Options struct {
	// Now is the clock for users that have no timestamp at all; nil means
	// time.Now.
	Now func() time.Time
	// DryRun reads and checks everything, looks the users up in the store,
	// and reports what an import would do, writing nothing.
	DryRun bool
}

// Kinds of Problem.
const (
	// The user is not imported.
	KindInvalidEmail   = "invalid_email"
	KindEmailCase      = "duplicate_email_case"
	KindEmailTaken     = "email_taken"
	KindBadPreferences = "bad_preferences"
	KindStoreError     = "store_error"
	// The user is imported; one of its tokens is not.
	KindInvalidToken    = "invalid_push_token"
	KindTokenElsewhere  = "push_token_of_another_user"
	KindDuplicateDevice = "duplicate_device"
	// The user is imported with a change, or as it is with a warning.
	KindInvalidDeviceID = "invalid_device_id"
	KindDeviceType      = "unknown_device_type"
	KindInvalidName     = "invalid_name"
	KindPasswordScheme  = "unsupported_password_hash"
)

// Tables of the Django database that problems refer to.
const (
	TableUser      = "users_user"
	TablePushToken = "users_pushtoken"
)

// Problem is one row that could not be imported, or not as it was.
type Problem struct {
	Table  string // TableUser or TablePushToken
	RowID  string // the id of that row
	UserID string // the user it belongs to
	Email  string // the user's email as the Django row has it
	Kind   string // one of the Kind constants
	Reason string // what happened to the row and why, in a sentence

	seq int // the position of the user in the source, to report in order
}

func (p Problem) String() string {
	where := p.Table + " " + p.RowID
	if p.Table != TableUser {
		where += " of user " + p.UserID
	}
	return fmt.Sprintf("%s %q: %s: %s", where, p.Email, p.Kind, p.Reason)
}

// Report is what a Run did. The user counts add up: UsersSeen is
// UsersImported + UsersPresent + UsersCollapsed + UsersFailed.
type Report struct {
	DryRun bool

	UsersSeen      int // rows of users_user
	UsersImported  int // written to the store by this run (or that would be, in a dry run)
	UsersPresent   int // already in the store under the same id, left unchanged
	UsersCollapsed int // not imported: another account has the same email up to case
	UsersFailed    int // not imported for another reason

	// Counted for the users imported by this run only.
	DevicesImported int // device records written
	DevicesInactive int // inactive users_pushtoken rows skipped
	TokensSkipped   int // tokens not imported (invalid, duplicate, held by another user)

	// Problems lists, in the order of the users in the source, every user
	// not imported and, for the users imported by this run, every token
	// skipped or value changed.
	Problems []Problem
}

// WriteTo prints the report: one line per count, then one per problem.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	if r.DryRun {
		b.WriteString("dry run: nothing was written\n")
	}
	line := func(label string, n int) { fmt.Fprintf(&b, "%-28s %d\n", label+":", n) }
	line("users seen", r.UsersSeen)
	line("users imported", r.UsersImported)
	line("users already present", r.UsersPresent)
	line("users collapsed by case", r.UsersCollapsed)
	line("users not imported", r.UsersFailed)
	line("devices imported", r.DevicesImported)
	line("devices skipped (inactive)", r.DevicesInactive)
	line("push tokens skipped", r.TokensSkipped)
	line("problems", len(r.Problems))
	for _, p := range r.Problems {
		b.WriteString("  ")
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Destination is the store the users are imported into.
type Destination interface {
	// ImportUser inserts u (keeping u.ID, timestamps and flags) with its
	// password hash and devices (as account.PrepareImport made them), in
	// one transaction, when no user has u.ID; it changes nothing and
	// returns false when that id already exists. The tokens u brings move
	// to it from any other user. A taken email under another id is
	// EConflict.
	ImportUser(ctx context.Context, u *usersvc.User, passwordHash string, devices []usersvc.Device) (bool, error)
	// UserByID and UserByEmail answer the dry run and explain conflicts.
	UserByID(ctx context.Context, id string) (*usersvc.User, error)
	UserByEmail(ctx context.Context, email string) (*usersvc.User, account.Credential, error)
}

// Run reads the Django users of src and imports them into dst. It returns
// an error only when src cannot be read, when dst is unavailable, or when
// ctx ends; the report then holds what was done until then. Everything
// else is a Problem in the report.
func Run(ctx context.Context, src Source, dst Destination, opts Options) (*Report, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	snap, err := read(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("djangoimport: read the Django database: %w", err)
	}
	r := &Report{DryRun: opts.DryRun, UsersSeen: len(snap.users)}
	plans := r.prepare(snap, now().UTC().Truncate(time.Microsecond))
	defer r.sortProblems()
	for _, p := range plans {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		var inserted bool
		if opts.DryRun {
			inserted, err = wouldImport(ctx, dst, p)
		} else if p.devices, err = account.PrepareImport(&p.user, p.devices); err == nil {
			inserted, err = dst.ImportUser(ctx, &p.user, p.hash, p.devices)
		}
		switch code := usersvc.ErrorCode(err); {
		case err == nil && inserted:
			r.UsersImported++
			r.DevicesImported += len(p.devices)
			r.DevicesInactive += p.inactive
			r.TokensSkipped += p.tokensSkipped
			r.Problems = append(r.Problems, p.notes...)
		case err == nil:
			r.UsersPresent++
		case ctx.Err() != nil:
			return r, ctx.Err()
		case code == usersvc.EUnavailable:
			return r, fmt.Errorf("djangoimport: write user %s: %w", p.user.ID, err)
		case code == usersvc.EConflict:
			r.fail(p.seq, p.src, KindEmailTaken, conflictReason(ctx, dst, p, err))
		default:
			r.fail(p.seq, p.src, KindStoreError, "not imported: the store refused it: "+err.Error())
		}
	}
	return r, nil
}

// wouldImport answers, without writing, what ImportUser would.
func wouldImport(ctx context.Context, dst Destination, p *plan) (bool, error) {
	_, err := dst.UserByID(ctx, p.user.ID)
	if err == nil {
		return false, nil
	}
	if usersvc.ErrorCode(err) != usersvc.ENotFound {
		return false, err
	}
	_, _, err = dst.UserByEmail(ctx, p.user.Email)
	if err == nil {
		return false, usersvc.Errorf(usersvc.EConflict, "A user with this email already exists")
	}
	if usersvc.ErrorCode(err) != usersvc.ENotFound {
		return false, err
	}
	return true, nil
}

// conflictReason explains an EConflict from ImportUser.
func conflictReason(ctx context.Context, dst Destination, p *plan, err error) string {
	if other, _, lerr := dst.UserByEmail(ctx, p.user.Email); lerr == nil && other.ID != p.user.ID {
		return fmt.Sprintf("not imported: the store already has account %s with the email %s", other.ID, p.user.Email)
	}
	return "not imported: it conflicts with a record already in the store: " + err.Error()
}

func (r *Report) sortProblems() {
	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].seq < r.Problems[j].seq })
}

// fail records a user that is not imported.
func (r *Report) fail(seq int, u *djangoUser, kind, reason string) {
	r.UsersFailed++
	r.Problems = append(r.Problems, userProblem(seq, u, kind, reason))
}

func userProblem(seq int, u *djangoUser, kind, reason string) Problem {
	return Problem{Table: TableUser, RowID: u.ID, UserID: u.ID, Email: deref(u.Email), Kind: kind, Reason: reason, seq: seq}
}

// plan is one user ready to be written.
type plan struct {
	seq     int
	src     *djangoUser
	user    usersvc.User
	hash    string
	devices []usersvc.Device
	// The current token came from users_user.push_token (not from the
	// newest device).
	tokenFromUser bool
	// Reported and counted only when the user is written.
	notes         []Problem
	inactive      int
	tokensSkipped int
}

func (p *plan) note(table, rowID, kind, reason string) {
	p.notes = append(p.notes, Problem{Table: table, RowID: rowID, UserID: p.user.ID, Email: deref(p.src.Email),
		Kind: kind, Reason: reason, seq: p.seq})
}

// prepare turns the snapshot into the users to write, recording in r the
// rows that cannot be imported at all.
func (r *Report) prepare(s *snapshot, now time.Time) []*plan {
	var valid []*plan
	for i := range s.users {
		u := &s.users[i]
		email, msgs := usersvc.CheckEmail(deref(u.Email))
		if len(msgs) > 0 {
			r.fail(i, u, KindInvalidEmail, "not imported: "+strings.Join(msgs, ", "))
			continue
		}
		prefs, err := preferences(u, s.notify)
		if err != nil {
			r.fail(i, u, KindBadPreferences, "not imported: "+err.Error())
			continue
		}
		p := &plan{seq: i, src: u, hash: deref(u.Password)}
		p.user = usersvc.User{
			ID:          u.ID,
			Email:       email,
			Preferences: prefs,
			IsAdmin:     u.IsStaff || u.IsSuperuser,
			IsActive:    u.IsActive,
		}
		p.user.CreatedAt, p.user.UpdatedAt = timestamps(u, now)
		name, msgs := usersvc.CheckName(deref(u.Name))
		p.user.Name = name
		if len(msgs) > 0 {
			p.note(TableUser, u.ID, KindInvalidName, fmt.Sprintf("imported with the name %q as it is: %s", name, strings.Join(msgs, ", ")))
		}
		if scheme, ok := passwordScheme(p.hash); !ok {
			p.note(TableUser, u.ID, KindPasswordScheme, fmt.Sprintf("imported, but its password hash (%s) is of a scheme the service does not verify: it cannot log in", scheme))
		}
		p.addDevices(s.devices[u.ID])
		valid = append(valid, p)
	}
	plans := r.collapse(valid)
	assignTokens(plans)
	for _, p := range plans {
		p.pickCurrentToken()
	}
	return plans
}

// preferences reads the user's preferences, falling back to the row of
// users_notificationpreferences when the JSON names neither channel.
func preferences(u *djangoUser, notify map[string]notificationPreferences) (usersvc.Preferences, error) {
	prefs, named, err := parsePreferences(deref(u.Preferences))
	if err != nil {
		return prefs, err
	}
	np, ok := notify[u.ID]
	if ok && !named {
		prefs = usersvc.DefaultPreferences()
		if np.Email != nil {
			prefs.Email = *np.Email
		}
		if np.Push != nil {
			prefs.Push = *np.Push
		}
	}
	if ok && np.SMS != nil {
		// Only the table holds the sms switch.
		prefs.SMS = *np.SMS
	}
	return prefs, nil
}

// parsePreferences reads Django's preferences JSON. Missing or null keys
// are true; named reports whether the JSON had email or push at all.
func parsePreferences(raw string) (prefs usersvc.Preferences, named bool, err error) {
	prefs = usersvc.DefaultPreferences()
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "null" {
		return prefs, false, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return prefs, false, fmt.Errorf("preferences %s are not a JSON object", shorten(raw))
	}
	for _, k := range []struct {
		key string
		dst *bool
	}{{"email", &prefs.Email}, {"push", &prefs.Push}} {
		v, ok := m[k.key]
		if !ok || string(v) == "null" {
			continue
		}
		named = true
		if err := json.Unmarshal(v, k.dst); err != nil {
			return prefs, false, fmt.Errorf("preferences %s: %q is %s, not a boolean", shorten(raw), k.key, shorten(string(v)))
		}
	}
	return prefs, named, nil
}

// timestamps returns the user's creation and update times, filling in the
// ones Django left null.
func timestamps(u *djangoUser, now time.Time) (created, updated time.Time) {
	switch {
	case u.CreatedAt != nil:
		created = *u.CreatedAt
	default:
		created = now
		for _, t := range []*time.Time{u.DateJoined, u.LastLogin, u.UpdatedAt} {
			if t != nil && t.Before(created) {
				created = *t
			}
		}
	}
	updated = created
	if u.UpdatedAt != nil && u.UpdatedAt.After(created) {
		updated = *u.UpdatedAt
	}
	return utc(created), utc(updated)
}

// passwordScheme returns the scheme of a Django password hash and whether
// the service verifies it. An unusable password ("!…") counts as
// supported: it is meant never to match.
func passwordScheme(hash string) (string, bool) {
	if hash == "" {
		return "empty", false
	}
	if strings.HasPrefix(hash, "!") || strings.HasPrefix(hash, "$argon2id$") {
		return "", true
	}
	scheme, _, found := strings.Cut(hash, "$")
	if !found {
		return "no scheme", false
	}
	switch scheme {
	case "pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt":
		return scheme, true
	}
	return clip(scheme), false
}

// addDevices turns the user's users_pushtoken rows and users_user.push_token
// into device records, newest first.
func (p *plan) addDevices(rows []djangoDevice) {
	active := make([]djangoDevice, 0, len(rows))
	for _, d := range rows {
		if d.IsActive {
			active = append(active, d)
		} else {
			p.inactive++
		}
	}
	created := func(d djangoDevice) time.Time {
		if d.CreatedAt == nil {
			return p.user.CreatedAt
		}
		return utc(*d.CreatedAt)
	}
	sort.SliceStable(active, func(i, j int) bool {
		ci, cj := created(active[i]), created(active[j])
		if !ci.Equal(cj) {
			return ci.After(cj)
		}
		return active[i].ID > active[j].ID
	})
	tokens := map[string]bool{}
	deviceIDs := map[string]bool{}
	for _, d := range active {
		token, msgs := usersvc.CheckPushToken(deref(d.Token))
		if len(msgs) > 0 {
			p.tokensSkipped++
			p.note(TablePushToken, d.ID, KindInvalidToken, fmt.Sprintf("token %s skipped: %s", clip(deref(d.Token)), strings.Join(msgs, ", ")))
			continue
		}
		if tokens[token] {
			p.tokensSkipped++
			p.note(TablePushToken, d.ID, KindDuplicateDevice, "skipped: a newer row of this user has the same token")
			continue
		}
		var deviceID *string
		if raw := strings.TrimSpace(deref(d.DeviceID)); raw != "" {
			id, msgs := usersvc.CheckDeviceID(raw)
			if len(msgs) > 0 {
				p.note(TablePushToken, d.ID, KindInvalidDeviceID, fmt.Sprintf("token imported without its device id %s: %s", clip(raw), strings.Join(msgs, ", ")))
			} else if deviceIDs[id] {
				p.tokensSkipped++
				p.note(TablePushToken, d.ID, KindDuplicateDevice, fmt.Sprintf("skipped: a newer row of this user has the device id %s", id))
				continue
			} else {
				deviceID = &id
				deviceIDs[id] = true
			}
		}
		typ := strings.ToLower(strings.TrimSpace(deref(d.DeviceType)))
		if !usersvc.ValidDeviceType(typ) {
			p.note(TablePushToken, d.ID, KindDeviceType, fmt.Sprintf("imported with the device type other instead of %s", clip(deref(d.DeviceType))))
			typ = usersvc.DeviceOther
		}
		tokens[token] = true
		c := created(d)
		p.devices = append(p.devices, usersvc.Device{ID: d.ID, DeviceID: deviceID, Token: token, DeviceType: typ,
			CreatedAt: c, UpdatedAt: c, LastSeenAt: c})
	}

	raw := strings.TrimSpace(deref(p.src.PushToken))
	if raw == "" {
		return
	}
	token, msgs := usersvc.CheckPushToken(raw)
	if len(msgs) > 0 {
		p.tokensSkipped++
		p.note(TableUser, p.user.ID, KindInvalidToken, fmt.Sprintf("push_token %s skipped: %s", clip(raw), strings.Join(msgs, ", ")))
		return
	}
	p.user.PushToken = &token
	p.tokenFromUser = true
	if !tokens[token] {
		t := p.user.UpdatedAt
		p.devices = append(p.devices, usersvc.Device{Token: token, DeviceType: usersvc.DeviceOther,
			CreatedAt: t, UpdatedAt: t, LastSeenAt: t})
	}
}

// registeredAt is when p registered the token of its device d: when Django
// last wrote the user row for a token that is only in users_user.push_token.
func (p *plan) registeredAt(d usersvc.Device) time.Time {
	if d.ID == "" {
		return p.user.UpdatedAt
	}
	return d.CreatedAt
}

// assignTokens leaves each token with one user only, the one that
// registered it last, and removes it from the others.
func assignTokens(plans []*plan) {
	type holder struct {
		p  *plan
		at time.Time
	}
	owner := map[string]holder{}
	for _, p := range plans {
		for _, d := range p.devices {
			at := p.registeredAt(d)
			if h, ok := owner[d.Token]; !ok || at.After(h.at) || at.Equal(h.at) && p.user.ID > h.p.user.ID {
				owner[d.Token] = holder{p, at}
			}
		}
	}
	for _, p := range plans {
		kept := p.devices[:0]
		for _, d := range p.devices {
			h := owner[d.Token]
			if h.p == p {
				kept = append(kept, d)
				continue
			}
			p.tokensSkipped++
			table, row := TablePushToken, d.ID
			if d.ID == "" {
				table, row = TableUser, p.user.ID
			}
			p.note(table, row, KindTokenElsewhere, fmt.Sprintf("token %s skipped: user %s registered it later and keeps it", clip(d.Token), h.p.user.ID))
			if p.user.PushToken != nil && *p.user.PushToken == d.Token {
				p.user.PushToken, p.tokenFromUser = nil, false
			}
		}
		p.devices = kept
	}
}

// pickCurrentToken settles the user's current token: users_user.push_token,
// else the newest device's token.
func (p *plan) pickCurrentToken() {
	if p.user.PushToken == nil {
		var newest *usersvc.Device
		for i := range p.devices {
			if newest == nil || p.devices[i].CreatedAt.After(newest.CreatedAt) {
				newest = &p.devices[i]
			}
		}
		if newest != nil {
			token := newest.Token
			p.user.PushToken = &token
		}
		return
	}
	if !p.tokenFromUser {
		return
	}
	for i := range p.devices {
		d := &p.devices[i]
		if d.Token == *p.user.PushToken && p.user.UpdatedAt.After(d.LastSeenAt) {
			d.UpdatedAt, d.LastSeenAt = p.user.UpdatedAt, p.user.UpdatedAt
		}
	}
}

// collapse keeps one user of each group whose emails are the same up to
// case, recording the others in r. The order of plans is kept.
func (r *Report) collapse(plans []*plan) []*plan {
	groups := map[string][]*plan{}
	for _, p := range plans {
		groups[p.user.Email] = append(groups[p.user.Email], p)
	}
	kept := plans[:0]
	for _, p := range plans {
		group := groups[p.user.Email]
		best := group[0]
		for _, q := range group[1:] {
			if better(q, best) {
				best = q
			}
		}
		if best == p {
			kept = append(kept, p)
			continue
		}
		r.UsersCollapsed++
		r.Problems = append(r.Problems, userProblem(p.seq, p.src, KindEmailCase,
			fmt.Sprintf("not imported: its email is the same as that of user %s (%q) up to case, and that account is kept (%s)",
				best.user.ID, deref(best.src.Email), whyBetter(best, p))))
	}
	return kept
}

// better reports whether a is kept rather than b when their emails are the
// same up to case: the active one, then the one that logged in last, then
// the one created first, then the smaller id.
func better(a, b *plan) bool {
	if a.user.IsActive != b.user.IsActive {
		return a.user.IsActive
	}
	al, bl := a.src.LastLogin, b.src.LastLogin
	switch {
	case al != nil && bl == nil:
		return true
	case al == nil && bl != nil:
		return false
	case al != nil && !al.Equal(*bl):
		return al.After(*bl)
	}
	if !a.user.CreatedAt.Equal(b.user.CreatedAt) {
		return a.user.CreatedAt.Before(b.user.CreatedAt)
	}
	return a.user.ID < b.user.ID
}

// whyBetter says in a few words why kept was kept rather than other.
func whyBetter(kept, other *plan) string {
	switch {
	case kept.user.IsActive != other.user.IsActive:
		return "it is active"
	case kept.src.LastLogin != nil && (other.src.LastLogin == nil || !kept.src.LastLogin.Equal(*other.src.LastLogin)):
		return "it logged in more recently"
	case !kept.user.CreatedAt.Equal(other.user.CreatedAt):
		return "it was created first"
	}
	return "its id is smaller"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// clip quotes s for a report line, shortened when long.
func clip(s string) string { return fmt.Sprintf("%q", shorten(s)) }

// shorten cuts s for a report line when it is long.
func shorten(s string) string {
	const limit = 60
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "…"
	}
	return s
}
