package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

func testRegisterPushToken(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()

	t.Run("new record without device id", func(t *testing.T) {
		u := create(t, s, "Reg", at(0))
		d := usersvc.Device{UserID: u.ID, Token: "tok-a", DeviceType: usersvc.DeviceIOS}
		displaced, err := s.RegisterPushToken(ctx, &d, at(10))
		if err != nil {
			t.Fatalf("RegisterPushToken: %v", err)
		}
		wantIDs(t, "RegisterPushToken of a token nobody holds: displaced", displaced)
		if d.ID == "" {
			t.Fatalf("RegisterPushToken did not fill in the record id")
		}
		sameTime(t, "created_at", d.CreatedAt, at(10))
		sameTime(t, "updated_at", d.UpdatedAt, at(10))
		sameTime(t, "last_seen_at", d.LastSeenAt, at(10))
		ds := devicesOf(t, s, u.ID)
		if len(ds) != 1 {
			t.Fatalf("devices = %+v, want 1", ds)
		}
		sameDevice(t, ds[0], d)
		wantPushToken(t, s, u.ID, ptr("tok-a"))

		// The same token again refreshes that record.
		again := usersvc.Device{UserID: u.ID, Token: "tok-a", DeviceType: usersvc.DeviceAndroid}
		displaced, err = s.RegisterPushToken(ctx, &again, at(20))
		if err != nil {
			t.Fatalf("RegisterPushToken again: %v", err)
		}
		wantIDs(t, "RegisterPushToken of the user's own token: displaced", displaced)
		want := d
		want.DeviceType = usersvc.DeviceAndroid
		want.UpdatedAt, want.LastSeenAt = at(20), at(20)
		sameDevice(t, again, want)
		ds = devicesOf(t, s, u.ID)
		if len(ds) != 1 {
			t.Fatalf("devices = %+v, want the one record", ds)
		}
		sameDevice(t, ds[0], want)
	})

	t.Run("device id upsert", func(t *testing.T) {
		u := create(t, s, "Dev", at(0))
		first := registerDisplacing(t, s, u.ID, "tok-d1", "phone", at(1))
		if first.DeviceID == nil || *first.DeviceID != "phone" {
			t.Fatalf("device id = %s, want phone", strp(first.DeviceID))
		}
		// A new token for the same device replaces the old one in place.
		second := registerDisplacing(t, s, u.ID, "tok-d2", "phone", at(2))
		if second.ID != first.ID {
			t.Errorf("the device's record changed id: %s then %s", first.ID, second.ID)
		}
		sameTime(t, "created_at", second.CreatedAt, at(1))
		sameTime(t, "last_seen_at", second.LastSeenAt, at(2))
		wantTokens(t, s, u.ID, "tok-d2")
		wantPushToken(t, s, u.ID, ptr("tok-d2"))
		// The old token is free for anyone.
		other := create(t, s, "DevOther", at(3))
		registerDisplacing(t, s, other.ID, "tok-d1", "", at(3))
		wantTokens(t, s, u.ID, "tok-d2")

		// Another device id is another record.
		register(t, s, u.ID, "tok-d3", "tablet", at(4))
		wantTokens(t, s, u.ID, "tok-d3", "tok-d2")
		wantPushToken(t, s, u.ID, ptr("tok-d3"))

		// The same device id of another user is that user's record.
		registerDisplacing(t, s, other.ID, "tok-d4", "phone", at(5))
		wantTokens(t, s, u.ID, "tok-d3", "tok-d2")
		wantTokens(t, s, other.ID, "tok-d4", "tok-d1")
	})

	t.Run("token moves between the user's own records", func(t *testing.T) {
		u := create(t, s, "Own", at(0))
		register(t, s, u.ID, "tok-o1", "", at(1))
		register(t, s, u.ID, "tok-o2", "old-phone", at(2))
		// The token of the record without a device id now comes from a device.
		d := registerDisplacing(t, s, u.ID, "tok-o1", "new-phone", at(3))
		if d.DeviceID == nil || *d.DeviceID != "new-phone" {
			t.Errorf("record device id = %s, want new-phone", strp(d.DeviceID))
		}
		wantTokens(t, s, u.ID, "tok-o1", "tok-o2")
		// The token of one device moves to another device.
		registerDisplacing(t, s, u.ID, "tok-o2", "new-phone", at(4))
		ds := devicesOf(t, s, u.ID)
		if len(ds) != 1 || ds[0].Token != "tok-o2" || strp(ds[0].DeviceID) != `"new-phone"` {
			t.Errorf("devices = %+v, want only new-phone holding tok-o2", ds)
		}
		wantPushToken(t, s, u.ID, ptr("tok-o2"))
	})

	t.Run("without device id the record holding the token is kept", func(t *testing.T) {
		u := create(t, s, "Keep", at(0))
		d := register(t, s, u.ID, "tok-k", "watch", at(1))
		again := registerDisplacing(t, s, u.ID, "tok-k", "", at(2))
		if again.ID != d.ID || strp(again.DeviceID) != `"watch"` {
			t.Errorf("record = %s device %s, want %s device watch", again.ID, strp(again.DeviceID), d.ID)
		}
		sameTime(t, "last_seen_at", again.LastSeenAt, at(2))
		wantTokens(t, s, u.ID, "tok-k")
	})

	t.Run("current token follows the latest registration", func(t *testing.T) {
		u := create(t, s, "Latest", at(0))
		register(t, s, u.ID, "tok-l1", "", at(1))
		register(t, s, u.ID, "tok-l2", "", at(2))
		wantPushToken(t, s, u.ID, ptr("tok-l2"))
		register(t, s, u.ID, "tok-l1", "", at(3))
		wantPushToken(t, s, u.ID, ptr("tok-l1"))
		wantTokens(t, s, u.ID, "tok-l1", "tok-l2")
	})
}

func testRegisterPushTokenMoves(t *testing.T, s *sqlstore.Store) {
	a := create(t, s, "MoverA", at(0))
	b := create(t, s, "MoverB", at(0))
	c := create(t, s, "Bystander", at(0))
	register(t, s, a.ID, "tok-shared", "", at(1))
	register(t, s, a.ID, "tok-a-only", "tablet", at(2))
	register(t, s, a.ID, "tok-shared", "", at(3)) // a's current token again
	register(t, s, c.ID, "tok-c", "", at(3))

	// Without a device id: a held a record and the current token.
	registerDisplacing(t, s, b.ID, "tok-shared", "", at(4), a.ID)
	wantTokens(t, s, a.ID, "tok-a-only")
	wantPushToken(t, s, a.ID, nil)
	wantTokens(t, s, b.ID, "tok-shared")
	wantPushToken(t, s, b.ID, ptr("tok-shared"))
	sameTime(t, "former holder's updated_at", getUser(t, s, a.ID).UpdatedAt, at(4))

	// With a device id, from a record that has one.
	register(t, s, a.ID, "tok-a2", "", at(5))
	registerDisplacing(t, s, b.ID, "tok-a-only", "b-phone", at(6), a.ID) // a held a record only
	wantTokens(t, s, a.ID, "tok-a2")
	wantPushToken(t, s, a.ID, ptr("tok-a2")) // a's current token was another one
	wantTokens(t, s, b.ID, "tok-a-only", "tok-shared")
	wantPushToken(t, s, b.ID, ptr("tok-a-only"))

	// And back.
	registerDisplacing(t, s, a.ID, "tok-shared", "a-phone", at(7), b.ID)
	wantTokens(t, s, a.ID, "tok-shared", "tok-a2")
	wantTokens(t, s, b.ID, "tok-a-only")
	wantPushToken(t, s, b.ID, ptr("tok-a-only"))

	// Nobody else was touched.
	wantTokens(t, s, c.ID, "tok-c")
	wantPushToken(t, s, c.ID, ptr("tok-c"))
	sameTime(t, "bystander's updated_at", getUser(t, s, c.ID).UpdatedAt, at(3))
}

func testRegisterPushTokenConcurrent(t *testing.T, s *sqlstore.Store) {
	const n = 10
	users := make([]*usersvc.User, n)
	for i := range users {
		users[i] = create(t, s, fmt.Sprintf("Racer%c", 'A'+i), at(0))
	}
	// Each user also holds a token of its own, so moves overlap with
	// ordinary registrations.
	errs := concurrently(2*n, func(i int) error {
		u := users[i%n]
		token := "tok-contended"
		if i >= n {
			token = "tok-own-" + u.ID
		}
		d := usersvc.Device{UserID: u.ID, Token: token, DeviceType: usersvc.DeviceOther}
		displaced, err := s.RegisterPushToken(t.Context(), &d, at(i+1))
		if err == nil && (slices.Contains(displaced, u.ID) || i >= n && len(displaced) > 0) {
			return fmt.Errorf("registration of %s by %s displaced %q", token, u.ID, displaced)
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("registration %d: %v", i, err)
		}
	}
	var recordHolders, currentHolders []string
	for _, u := range users {
		ds := devicesOf(t, s, u.ID)
		for _, d := range ds {
			if d.Token == "tok-contended" {
				recordHolders = append(recordHolders, u.ID)
			}
		}
		if !slices.Contains(tokens(ds), "tok-own-"+u.ID) {
			t.Errorf("user %s lost its own token: %q", u.ID, tokens(ds))
		}
		if p := getUser(t, s, u.ID).PushToken; p != nil && *p == "tok-contended" {
			currentHolders = append(currentHolders, u.ID)
		}
	}
	if len(recordHolders) != 1 {
		t.Fatalf("users with a record of the contended token: %v, want exactly one", recordHolders)
	}
	if len(currentHolders) > 1 || len(currentHolders) == 1 && currentHolders[0] != recordHolders[0] {
		t.Errorf("current holders of the contended token %v, record holder %v", currentHolders, recordHolders)
	}
}

func testClearPushToken(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()

	t.Run("without device id removes the current token's record", func(t *testing.T) {
		u := create(t, s, "Clear", at(0))
		register(t, s, u.ID, "tok-c1", "", at(1))
		register(t, s, u.ID, "tok-c2", "phone", at(2))
		register(t, s, u.ID, "tok-c3", "", at(3))
		register(t, s, u.ID, "tok-c2", "phone", at(4)) // current: tok-c2
		if err := s.ClearPushToken(ctx, u.ID, nil, at(5)); err != nil {
			t.Fatalf("ClearPushToken: %v", err)
		}
		wantPushToken(t, s, u.ID, nil)
		wantTokens(t, s, u.ID, "tok-c3", "tok-c1")
		sameTime(t, "updated_at", getUser(t, s, u.ID).UpdatedAt, at(5))
		// Nothing current: clearing again removes nothing.
		if err := s.ClearPushToken(ctx, u.ID, nil, at(6)); err != nil {
			t.Fatalf("ClearPushToken again: %v", err)
		}
		wantTokens(t, s, u.ID, "tok-c3", "tok-c1")
	})

	t.Run("with device id removes that device's record", func(t *testing.T) {
		u := create(t, s, "ClearDev", at(0))
		register(t, s, u.ID, "tok-x", "x", at(1))
		register(t, s, u.ID, "tok-y", "y", at(2)) // current: tok-y
		if err := s.ClearPushToken(ctx, u.ID, ptr("x"), at(3)); err != nil {
			t.Fatalf("ClearPushToken(x): %v", err)
		}
		wantPushToken(t, s, u.ID, nil)
		wantTokens(t, s, u.ID, "tok-y")
		// An unknown device id still clears the current token.
		register(t, s, u.ID, "tok-y", "y", at(4))
		if err := s.ClearPushToken(ctx, u.ID, ptr("nope"), at(5)); err != nil {
			t.Fatalf("ClearPushToken(nope): %v", err)
		}
		wantPushToken(t, s, u.ID, nil)
		wantTokens(t, s, u.ID, "tok-y")
	})

	t.Run("user without tokens", func(t *testing.T) {
		u := create(t, s, "Empty", at(0))
		if err := s.ClearPushToken(ctx, u.ID, nil, at(1)); err != nil {
			t.Fatalf("ClearPushToken: %v", err)
		}
		wantPushToken(t, s, u.ID, nil)
	})

	t.Run("another user's device id is not touched", func(t *testing.T) {
		a := create(t, s, "OwnerA", at(0))
		b := create(t, s, "OwnerB", at(0))
		register(t, s, a.ID, "tok-oa", "same", at(1))
		register(t, s, b.ID, "tok-ob", "same", at(1))
		if err := s.ClearPushToken(ctx, a.ID, ptr("same"), at(2)); err != nil {
			t.Fatalf("ClearPushToken: %v", err)
		}
		wantTokens(t, s, a.ID)
		wantTokens(t, s, b.ID, "tok-ob")
		wantPushToken(t, s, b.ID, ptr("tok-ob"))
	})
}

func testDevicesOrder(t *testing.T, s *sqlstore.Store) {
	u := create(t, s, "Order", at(0))
	register(t, s, u.ID, "tok-1", "", at(10))
	register(t, s, u.ID, "tok-2", "two", at(30))
	register(t, s, u.ID, "tok-3", "", at(20))
	wantTokens(t, s, u.ID, "tok-2", "tok-3", "tok-1")
	register(t, s, u.ID, "tok-1", "", at(40))
	wantTokens(t, s, u.ID, "tok-1", "tok-2", "tok-3")
	// Records seen at the same time come newest record first.
	v := create(t, s, "Tie", at(0))
	first := register(t, s, v.ID, "tok-t1", "", at(50))
	second := register(t, s, v.ID, "tok-t2", "", at(50))
	want := []string{"tok-t1", "tok-t2"}
	if second.ID > first.ID {
		want = []string{"tok-t2", "tok-t1"}
	}
	wantTokens(t, s, v.ID, want...)
}

func testDevicesOfUsers(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	a := create(t, s, "ManyA", at(0))
	b := create(t, s, "ManyB", at(0))
	c := create(t, s, "ManyC", at(0))
	register(t, s, a.ID, "tok-a1", "", at(1))
	register(t, s, a.ID, "tok-a2", "x", at(3))
	register(t, s, a.ID, "tok-a3", "", at(2))
	register(t, s, b.ID, "tok-b1", "", at(1))
	other := create(t, s, "NotAsked", at(0))
	register(t, s, other.ID, "tok-other", "", at(1))

	ids := []string{a.ID, b.ID, c.ID, "not-a-uuid"}
	for len(ids) < 1000 {
		ids = append(ids, newID(t))
	}
	got, err := s.DevicesOfUsers(ctx, ids)
	if err != nil {
		t.Fatalf("DevicesOfUsers: %v", err)
	}
	for id, want := range map[string][]string{a.ID: {"tok-a2", "tok-a3", "tok-a1"}, b.ID: {"tok-b1"}, c.ID: {}} {
		if g := tokens(got[id]); !slices.Equal(g, want) {
			t.Errorf("devices of %s = %q, want %q", id, g, want)
		}
		for i, d := range got[id] {
			sameDevice(t, d, devicesOf(t, s, id)[i])
		}
	}
	if _, ok := got[other.ID]; ok {
		t.Errorf("DevicesOfUsers returned devices of a user it was not asked about")
	}
	if empty, err := s.DevicesOfUsers(ctx, nil); err != nil || len(empty) != 0 {
		t.Errorf("DevicesOfUsers(nil) = %v, %v", empty, err)
	}
}

func testDeleteDevice(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()

	t.Run("by device id", func(t *testing.T) {
		u := create(t, s, "DelDev", at(0))
		register(t, s, u.ID, "tok-x", "x", at(1))
		register(t, s, u.ID, "tok-y", "y", at(2)) // current
		if err := s.DeleteDevice(ctx, u.ID, "x", at(3)); err != nil {
			t.Fatalf("DeleteDevice(x): %v", err)
		}
		wantTokens(t, s, u.ID, "tok-y")
		wantPushToken(t, s, u.ID, ptr("tok-y"))
		if err := s.DeleteDevice(ctx, u.ID, "y", at(4)); err != nil {
			t.Fatalf("DeleteDevice(y): %v", err)
		}
		wantTokens(t, s, u.ID)
		wantPushToken(t, s, u.ID, nil)
		sameTime(t, "updated_at", getUser(t, s, u.ID).UpdatedAt, at(4))
		wantCode(t, s.DeleteDevice(ctx, u.ID, "y", at(5)), usersvc.ENotFound)
	})

	t.Run("by record id", func(t *testing.T) {
		u := create(t, s, "DelRec", at(0))
		d := register(t, s, u.ID, "tok-r", "", at(1))
		register(t, s, u.ID, "tok-r2", "", at(2))
		register(t, s, u.ID, "tok-r", "", at(3)) // current
		if err := s.DeleteDevice(ctx, u.ID, d.ID, at(4)); err != nil {
			t.Fatalf("DeleteDevice(record id): %v", err)
		}
		wantTokens(t, s, u.ID, "tok-r2")
		wantPushToken(t, s, u.ID, nil)
		// A record with a device id can be named by its record id too.
		dev := register(t, s, u.ID, "tok-r3", "named", at(5))
		if err := s.DeleteDevice(ctx, u.ID, dev.ID, at(6)); err != nil {
			t.Fatalf("DeleteDevice(record id of a named device): %v", err)
		}
		wantTokens(t, s, u.ID, "tok-r2")
	})

	t.Run("another user's device", func(t *testing.T) {
		a := create(t, s, "DelA", at(0))
		b := create(t, s, "DelB", at(0))
		d := register(t, s, b.ID, "tok-b", "phone", at(1))
		wantCode(t, s.DeleteDevice(ctx, a.ID, "phone", at(2)), usersvc.ENotFound)
		wantCode(t, s.DeleteDevice(ctx, a.ID, d.ID, at(2)), usersvc.ENotFound)
		wantTokens(t, s, b.ID, "tok-b")
		wantPushToken(t, s, b.ID, ptr("tok-b"))
	})
}

func testInvalidatePushTokens(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	a := create(t, s, "InvA", at(0))
	b := create(t, s, "InvB", at(0))
	c := create(t, s, "InvC", at(0))
	register(t, s, a.ID, "tok-a2", "phone", at(1))
	register(t, s, a.ID, "tok-a1", "", at(2)) // current
	register(t, s, b.ID, "tok-b1", "", at(3)) // current
	register(t, s, c.ID, "tok-c1", "", at(4)) // current
	affected, n, err := s.InvalidatePushTokens(ctx, []string{"tok-a1", "tok-b1", "tok-a2", "tok-unknown", "tok-b1"}, "unregistered", at(5))
	if err != nil {
		t.Fatalf("InvalidatePushTokens: %v", err)
	}
	if n != 3 {
		t.Errorf("InvalidatePushTokens removed %d records, want 3", n)
	}
	wantIDs(t, "InvalidatePushTokens: affected", affected, a.ID, b.ID)
	wantTokens(t, s, a.ID)
	wantPushToken(t, s, a.ID, nil)
	wantTokens(t, s, b.ID)
	wantPushToken(t, s, b.ID, nil)
	sameTime(t, "updated_at", getUser(t, s, b.ID).UpdatedAt, at(5))
	wantTokens(t, s, c.ID, "tok-c1")
	wantPushToken(t, s, c.ID, ptr("tok-c1"))

	// A token that is current but not the latest record's.
	register(t, s, c.ID, "tok-c2", "", at(6)) // current tok-c2
	affected, n, err = s.InvalidatePushTokens(ctx, []string{"tok-c1"}, "unregistered", at(7))
	if err != nil || n != 1 {
		t.Errorf("InvalidatePushTokens(tok-c1) = %d, %v; want 1", n, err)
	}
	wantIDs(t, "InvalidatePushTokens(tok-c1): affected", affected, c.ID)
	wantPushToken(t, s, c.ID, ptr("tok-c2"))
	if affected, n, err := s.InvalidatePushTokens(ctx, nil, "unregistered", at(8)); err != nil || n != 0 || len(affected) != 0 {
		t.Errorf("InvalidatePushTokens(nil) = %q, %d, %v", affected, n, err)
	}
	if affected, n, err := s.InvalidatePushTokens(ctx, []string{"tok-unknown"}, "unregistered", at(8)); err != nil || n != 0 || len(affected) != 0 {
		t.Errorf("InvalidatePushTokens(tok-unknown) = %q, %d, %v; want no user, 0 records", affected, n, err)
	}

	t.Run("a record of one user, the current token of another", func(t *testing.T) {
		// rec holds a record of tok-rec that is not its current token.
		rec := create(t, s, "InvRec", at(10))
		register(t, s, rec.ID, "tok-rec", "", at(11))
		register(t, s, rec.ID, "tok-rec-cur", "", at(12))
		// cur has tok-cur as its current token and no record of it (as an
		// import can leave it).
		cur := newUser(t, "InvCur", at(10))
		cur.PushToken = ptr("tok-cur")
		if ok, err := s.ImportUser(ctx, cur, "h", nil); err != nil || !ok {
			t.Fatalf("ImportUser = %v, %v; want true", ok, err)
		}
		wantTokens(t, s, cur.ID)
		wantPushToken(t, s, cur.ID, ptr("tok-cur"))

		affected, n, err := s.InvalidatePushTokens(ctx, []string{"tok-rec", "tok-cur"}, "unregistered", at(13))
		if err != nil {
			t.Fatalf("InvalidatePushTokens: %v", err)
		}
		if n != 1 {
			t.Errorf("InvalidatePushTokens removed %d records, want 1", n)
		}
		wantIDs(t, "InvalidatePushTokens: affected", affected, rec.ID, cur.ID)
		wantTokens(t, s, rec.ID, "tok-rec-cur")
		wantPushToken(t, s, rec.ID, ptr("tok-rec-cur"))
		wantPushToken(t, s, cur.ID, nil)
		sameTime(t, "updated_at", getUser(t, s, cur.ID).UpdatedAt, at(13))
	})
}
