package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
)

// replica is the worker's own copy of what it needs of the users it serves:
// their address, their preferences and their devices. It is filled once
// from the batch endpoint and then kept up to date from the change events,
// so that a notification needs no call to the user service.
type replica struct {
	mu sync.Mutex
	// state is what a state file keeps.
	state replicaState
	// served are the ids of the users the worker serves.
	served map[string]bool
}

type replicaState struct {
	// Cursor is the position of the last event of the change feed applied
	// (0 when the events come from a broker queue, which keeps its own).
	Cursor int64 `json:"cursor"`
	// Users are the users served, by id; those that do not exist too, so
	// that their registration is noticed.
	Users map[string]*localUser `json:"users"`
}

// localUser is one user as the worker knows them.
type localUser struct {
	// Exists is false for an id that names no user (never registered, or
	// deleted).
	Exists      bool                `json:"exists"`
	Active      bool                `json:"active"`
	Email       string              `json:"email,omitempty"`
	Name        string              `json:"name,omitempty"`
	Preferences usersvc.Preferences `json:"preferences"`
	// Devices are the push devices, most recently registered first.
	Devices []localDevice `json:"devices,omitempty"`
	// Position is that of the last event applied to the user: an event at
	// or before it is a repeat (brokers deliver at least once) or older
	// than what the batch endpoint showed, and is skipped.
	Position int64 `json:"position"`
}

type localDevice struct {
	ID         string `json:"id"`
	PushToken  string `json:"push_token"`
	DeviceType string `json:"device_type"`
}

func newReplica(ids []string) *replica {
	r := &replica{served: map[string]bool{}, state: replicaState{Users: map[string]*localUser{}}}
	for _, id := range ids {
		r.served[canonicalID(id)] = true
	}
	return r
}

// canonicalID writes a user id as the service does, or returns it as it is
// when it is no UUID (such an id names no user).
func canonicalID(id string) string {
	if u, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return u.String()
	}
	return id
}

// fill asks the batch endpoint for every served user that the replica does
// not hold yet, and records position as what their state reflects.
func (r *replica) fill(ctx context.Context, users *client.Client, position int64) error {
	r.mu.Lock()
	var ids []string
	for id := range r.served {
		if _, ok := r.state.Users[id]; ok {
			continue
		}
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			r.state.Users[id] = &localUser{} // names no user, ever
			continue
		}
		ids = append(ids, id)
	}
	r.mu.Unlock()
	slices.Sort(ids)
	for len(ids) > 0 {
		n := min(len(ids), 1000) // the batch endpoint's limit
		b, err := users.BatchUsers(ctx, ids[:n])
		if err != nil {
			return fmt.Errorf("filling the replica from the batch endpoint: %w", err)
		}
		r.mu.Lock()
		for _, u := range b.Users {
			lu := &localUser{Exists: true, Active: true, Email: u.Email, Name: u.Name, Preferences: u.Preferences, Position: position}
			for _, d := range u.PushTokens {
				lu.Devices = append(lu.Devices, localDevice{ID: d.ID, PushToken: d.PushToken, DeviceType: d.DeviceType})
			}
			r.state.Users[u.ID] = lu
		}
		for _, id := range b.NotFound {
			r.state.Users[id] = &localUser{Position: position}
		}
		r.mu.Unlock()
		ids = ids[n:]
	}
	return nil
}

// apply brings the replica up to date with ev and returns a line saying
// what changed, or "" when nothing did (an event of another user, a repeat,
// a change the worker does not care about). Events of a type it does not
// know are skipped.
func (r *replica) apply(ev usersvc.Event) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state.Cursor = max(r.state.Cursor, ev.Position)
	if !r.served[ev.Subject] {
		return "", nil
	}
	u := r.state.Users[ev.Subject]
	if u == nil {
		u = &localUser{}
		r.state.Users[ev.Subject] = u
	}
	if ev.Position <= u.Position {
		return "", nil
	}
	data, err := client.EventData(ev)
	if errors.Is(err, client.ErrUnknownEventType) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	u.Position = ev.Position
	change := ""
	switch d := data.(type) {
	case usersvc.UserEventData:
		u.Exists, u.Active, u.Email, u.Name, u.Preferences = true, d.IsActive, d.Email, d.Name, d.Preferences
		change = fmt.Sprintf("%s <%s>, active %t, %s", d.Name, d.Email, d.IsActive, prefsString(d.Preferences))
	case usersvc.UserIDEventData:
		if ev.Type != usersvc.EventUserDeleted {
			return "", nil
		}
		*u = localUser{Position: ev.Position}
		change = "deleted"
	case usersvc.PreferencesEventData:
		u.Preferences = d.Preferences
		change = prefsString(d.Preferences)
	case usersvc.DeviceEventData:
		u.Devices = slices.DeleteFunc(u.Devices, func(x localDevice) bool { return x.ID == d.ID })
		if ev.Type == usersvc.EventDeviceRegistered {
			u.Devices = slices.Insert(u.Devices, 0, localDevice{ID: d.ID, PushToken: d.PushToken, DeviceType: d.DeviceType})
			change = fmt.Sprintf("device %s (%s) registered", d.PushToken, d.DeviceType)
		} else {
			change = fmt.Sprintf("device %s removed", d.PushToken)
		}
	case usersvc.PushTokenInvalidatedEventData:
		u.Devices = slices.DeleteFunc(u.Devices, func(x localDevice) bool { return x.PushToken == d.PushToken })
		change = fmt.Sprintf("push token %s invalidated (%s)", d.PushToken, d.Reason)
	default:
		return "", nil // sessions.revoked: nothing to send changes
	}
	return fmt.Sprintf("user %s: %s (%s, position %d)", ev.Subject, change, strings.TrimPrefix(ev.Type, "usersvc."), ev.Position), nil
}

func prefsString(p usersvc.Preferences) string {
	onOff := map[bool]string{true: "on", false: "off"}
	return "email " + onOff[p.Email] + ", push " + onOff[p.Push]
}

// cursor is the position of the last event of the feed applied.
func (r *replica) cursor() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.Cursor
}

// notify writes what would be sent to the user id, from the replica only,
// in one write.
func (r *replica) notify(w io.Writer, id, subject string) {
	var out bytes.Buffer
	defer func() { w.Write(out.Bytes()) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	id = canonicalID(id)
	fmt.Fprintf(&out, "user %s\n", id)
	u := r.state.Users[id]
	switch {
	case u == nil:
		fmt.Fprintln(&out, "  not a user this worker serves: nothing sent")
		return
	case !u.Exists:
		fmt.Fprintln(&out, "  no such user: nothing sent")
		return
	case !u.Active:
		fmt.Fprintln(&out, "  account disabled: nothing sent")
		return
	}
	if u.Preferences.Email {
		fmt.Fprintf(&out, "  email to %s <%s>: %s\n", u.Name, u.Email, subject)
	} else {
		fmt.Fprintln(&out, "  email: off")
	}
	switch {
	case !u.Preferences.Push:
		fmt.Fprintln(&out, "  push: off")
	case len(u.Devices) == 0:
		fmt.Fprintln(&out, "  push: on, but no device is registered")
	}
	if u.Preferences.Push {
		for _, d := range u.Devices {
			fmt.Fprintf(&out, "  push to %s (%s): %s\n", d.PushToken, d.DeviceType, subject)
		}
	}
}

// load reads the replica from a state file; it reports false when there is
// none yet.
func (r *replica) load(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var st replicaState
	if err := json.Unmarshal(b, &st); err != nil {
		return false, fmt.Errorf("state file %s: %w", path, err)
	}
	if st.Users == nil {
		st.Users = map[string]*localUser{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = st
	return true, nil
}

// save writes the replica, cursor included, to a state file at once (a
// new file renamed over the old), so that the cursor stored always goes
// with the changes it covers.
func (r *replica) save(path string) error {
	r.mu.Lock()
	b, err := json.MarshalIndent(r.state, "", "  ")
	r.mu.Unlock()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
