package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/client"
)

// replica is the worker's own copy of what it needs of the users it serves
// and the service's decision does not carry: their name, for the greeting
// of an email. It is filled once from the batch endpoint and, with
// -follow, kept up to date from the change events. Whom to notify, on
// which channels and at which addresses is not in it: the service decides
// that at the moment of sending (Resolve), since quiet hours depend on the
// moment and categories on the message.
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
	Exists bool   `json:"exists"`
	Name   string `json:"name,omitempty"`
	// Position is that of the last event applied to the user: an event at
	// or before it is a repeat (brokers deliver at least once) or older
	// than what the batch endpoint showed, and is skipped.
	Position int64 `json:"position"`
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
			r.state.Users[u.ID] = &localUser{Exists: true, Name: u.Name, Position: position}
		}
		for _, id := range b.NotFound {
			r.state.Users[id] = &localUser{Position: position}
		}
		r.mu.Unlock()
		ids = ids[n:]
	}
	return nil
}

// apply brings the replica up to date with ev and returns a line telling
// the change of a served user, or "" for a change the worker does not care
// about (an event of another user, a repeat, a session event). Events of a
// type it does not know are skipped.
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
		u.Exists, u.Name = true, d.Name
		change = fmt.Sprintf("%s <%s>, active %t, %s", d.Name, d.Email, d.IsActive, prefsString(d.Preferences))
	case usersvc.UserIDEventData:
		if ev.Type != usersvc.EventUserDeleted {
			return "", nil
		}
		*u = localUser{Position: ev.Position}
		change = "deleted"
	case usersvc.PreferencesEventData:
		change = prefsString(d.Preferences)
	case usersvc.DeviceEventData:
		if ev.Type == usersvc.EventDeviceRegistered {
			change = fmt.Sprintf("device %s (%s) registered", d.PushToken, d.DeviceType)
		} else {
			change = fmt.Sprintf("device %s removed", d.PushToken)
		}
	case usersvc.PushTokenInvalidatedEventData:
		change = fmt.Sprintf("push token %s invalidated (%s)", d.PushToken, d.Reason)
	default:
		return "", nil // sessions.revoked: nothing to send changes
	}
	return fmt.Sprintf("user %s: %s (%s, position %d)", ev.Subject, change, strings.TrimPrefix(ev.Type, "usersvc."), ev.Position), nil
}

// prefsString tells the channel switches of p.
func prefsString(p usersvc.Preferences) string {
	onOff := map[bool]string{true: "on", false: "off"}
	return fmt.Sprintf("email %s, push %s, sms %s, in_app %s", onOff[p.Email], onOff[p.Push], onOff[p.SMS], onOff[p.InApp])
}

// cursor is the position of the last event of the feed applied.
func (r *replica) cursor() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.Cursor
}

// name returns the name of the user id as the replica knows it, or "".
func (r *replica) name(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u := r.state.Users[id]; u != nil && u.Exists {
		return u.Name
	}
	return ""
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
