package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// login starts a family for userID at now that lives for life, and returns
// it with its first token.
func login(t testing.TB, s *sqlstore.Store, userID string, now time.Time, life time.Duration) (account.RefreshFamily, account.RefreshToken) {
	t.Helper()
	f := account.RefreshFamily{ID: newID(t), UserID: userID, CreatedAt: now, ExpiresAt: now.Add(life)}
	first := account.RefreshToken{JTI: newID(t), FamilyID: f.ID, UserID: userID, IssuedAt: now, ExpiresAt: f.ExpiresAt}
	var version int64
	if u, err := s.UserByID(t.Context(), userID); err == nil {
		_, c, err := s.UserByEmail(t.Context(), u.Email)
		if err != nil {
			t.Fatal(err)
		}
		version = c.Version
	}
	if err := s.CreateRefreshFamily(t.Context(), f, first, version); err != nil {
		t.Fatalf("CreateRefreshFamily: %v", err)
	}
	return f, first
}

func state(t testing.TB, s *sqlstore.Store, jti string) account.RefreshState {
	t.Helper()
	st, err := s.RefreshTokenState(t.Context(), jti)
	if err != nil {
		t.Fatalf("RefreshTokenState(%s): %v", jti, err)
	}
	return st
}

// sameState fails unless got describes token tok of a family expiring at
// famExpires with the given flags.
func sameState(t testing.TB, got account.RefreshState, tok account.RefreshToken, famExpires time.Time, spent, revoked bool) {
	t.Helper()
	g := got.Token
	if g.JTI != tok.JTI || g.FamilyID != tok.FamilyID || g.UserID != tok.UserID || g.ParentJTI != tok.ParentJTI {
		t.Errorf("token = %+v, want %+v", g, tok)
	}
	sameTime(t, "issued_at", g.IssuedAt, tok.IssuedAt)
	sameTime(t, "expires_at", g.ExpiresAt, tok.ExpiresAt)
	sameTime(t, "family expires_at", got.FamilyExpiresAt, famExpires)
	if got.AlreadySpent != spent || got.FamilyRevoked != revoked {
		t.Errorf("spent, revoked = %v, %v; want %v, %v", got.AlreadySpent, got.FamilyRevoked, spent, revoked)
	}
}

// spend spends jti through RotateRefreshToken with a rule that records
// nothing, and returns the state the rule was given.
func spend(t testing.TB, s *sqlstore.Store, jti string, now time.Time) (account.RefreshState, error) {
	var seen account.RefreshState
	_, err := s.RotateRefreshToken(t.Context(), "", jti, now, func(st account.RefreshState) account.Rotation {
		seen = st
		return account.Rotation{}
	})
	return seen, err
}

// rotate spends child's parent and records child as its successor.
func rotate(t testing.TB, s *sqlstore.Store, child account.RefreshToken) error {
	_, err := s.RotateRefreshToken(t.Context(), child.UserID, child.ParentJTI, child.IssuedAt,
		func(account.RefreshState) account.Rotation { return account.Rotation{Issue: &child} })
	return err
}

func testRefreshFamily(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Session", at(0))
	f, first := login(t, s, u.ID, at(10), 24*time.Hour)
	sameState(t, state(t, s, first.JTI), first, f.ExpiresAt, false, false)

	child := account.RefreshToken{JTI: newID(t), FamilyID: f.ID, UserID: u.ID, ParentJTI: first.JTI, IssuedAt: at(20), ExpiresAt: f.ExpiresAt}
	if err := rotate(t, s, child); err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	sameState(t, state(t, s, child.JTI), child, f.ExpiresAt, false, false)
	st := state(t, s, first.JTI)
	sameState(t, st, first, f.ExpiresAt, true, false)
	sameTime(t, "spent_at", st.SpentAt, at(20))
	if st.Successor == nil || st.Successor.JTI != child.JTI || st.SuccessorSpent {
		t.Errorf("successor = %+v (spent %v), want %s unspent", st.Successor, st.SuccessorSpent, child.JTI)
	} else {
		sameTime(t, "successor expires_at", st.Successor.ExpiresAt, child.ExpiresAt)
	}
	if ss, err := s.Sessions(ctx, u.ID, at(21)); err != nil || len(ss) != 1 || ss[0].ID != f.ID {
		t.Fatalf("Sessions = %+v, %v", ss, err)
	} else {
		sameTime(t, "last_used_at", ss[0].LastUsedAt, at(20))
	}

	// Spending again reports the earlier spend and changes nothing else.
	st, err := spend(t, s, first.JTI, at(30))
	if err != nil {
		t.Fatalf("spend again: %v", err)
	}
	sameState(t, st, first, f.ExpiresAt, true, false)
	sameTime(t, "spent_at", st.SpentAt, at(20))
	sameState(t, state(t, s, child.JTI), child, f.ExpiresAt, false, false)
	// Once the successor is spent, its parent's state says so.
	if _, err := spend(t, s, child.JTI, at(31)); err != nil {
		t.Fatal(err)
	}
	if st := state(t, s, first.JTI); !st.SuccessorSpent {
		t.Errorf("the successor's spending does not show in its parent's state")
	}

	t.Run("unknown user", func(t *testing.T) {
		f := account.RefreshFamily{ID: newID(t), UserID: newID(t), CreatedAt: at(0), ExpiresAt: at(60)}
		tok := account.RefreshToken{JTI: newID(t), FamilyID: f.ID, UserID: f.UserID, IssuedAt: at(0), ExpiresAt: at(60)}
		if err := s.CreateRefreshFamily(ctx, f, tok, 0); !errors.Is(err, account.ErrCredentialChanged) {
			t.Fatalf("CreateRefreshFamily of an unknown user = %v, want ErrCredentialChanged", err)
		}
		_, err := s.RefreshTokenState(ctx, tok.JTI)
		wantCode(t, err, usersvc.ENotFound)
	})
	t.Run("unknown token", func(t *testing.T) {
		_, err := spend(t, s, newID(t), at(40))
		wantCode(t, err, usersvc.ENotFound)
	})
	t.Run("duplicate jti", func(t *testing.T) {
		_, second := login(t, s, u.ID, at(40), time.Hour)
		dup := account.RefreshToken{JTI: child.JTI, FamilyID: second.FamilyID, UserID: u.ID, ParentJTI: second.JTI, IssuedAt: at(41), ExpiresAt: at(60)}
		wantCode(t, rotate(t, s, dup), usersvc.EConflict)
		sameState(t, state(t, s, child.JTI), child, f.ExpiresAt, true, false)
		// The failed rotation spent nothing.
		sameState(t, state(t, s, second.JTI), second, second.ExpiresAt, false, false)
	})
}

func testRotateRefreshTokenConcurrent(t *testing.T, s *sqlstore.Store) {
	const n = 20
	u := create(t, s, "Spender", at(0))
	f, first := login(t, s, u.ID, at(0), time.Hour)
	states := make([]account.RefreshState, n)
	errs := concurrently(n, func(i int) error {
		var err error
		states[i], err = spend(t, s, first.JTI, at(i+1))
		return err
	})
	fresh := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("spend %d: %v", i, err)
		}
		if states[i].Token.JTI != first.JTI || states[i].Token.FamilyID != f.ID {
			t.Errorf("spend %d returned token %+v", i, states[i].Token)
		}
		if !states[i].AlreadySpent {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d of %d concurrent spends saw an unspent token, want exactly 1", fresh, n)
	}
	if !state(t, s, first.JTI).AlreadySpent {
		t.Errorf("token is not spent after the spends")
	}
}

func testRevokeSessions(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Revoke", at(0))
	f, first := login(t, s, u.ID, at(0), time.Hour)
	child := account.RefreshToken{JTI: newID(t), FamilyID: f.ID, UserID: u.ID, ParentJTI: first.JTI, IssuedAt: at(5), ExpiresAt: f.ExpiresAt}
	if err := rotate(t, s, child); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	other, otherFirst := login(t, s, u.ID, at(1), time.Hour)
	third, thirdFirst := login(t, s, u.ID, at(2), time.Hour)

	for i := range 2 { // idempotent
		n, err := s.RevokeSessions(ctx, u.ID, []string{f.ID}, "", "ended", at(10+i))
		if err != nil || n != 1-i {
			t.Fatalf("RevokeSessions #%d = %d, %v; want %d", i+1, n, err, 1-i)
		}
		sameState(t, state(t, s, first.JTI), first, f.ExpiresAt, true, true)
		sameState(t, state(t, s, child.JTI), child, f.ExpiresAt, false, true)
		sameState(t, state(t, s, otherFirst.JTI), otherFirst, other.ExpiresAt, false, false)
	}
	ids, err := s.SessionIDs(ctx, u.ID, at(20))
	if err != nil || len(ids) != 2 {
		t.Fatalf("SessionIDs = %v, %v; want the two others", ids, err)
	}
	// All but one, then all; another user's id names nothing of this one.
	if n, err := s.RevokeSessions(ctx, newID(t), nil, "", "ended", at(20)); err != nil || n != 0 {
		t.Errorf("RevokeSessions(another user) = %d, %v", n, err)
	}
	if n, err := s.RevokeSessions(ctx, u.ID, nil, third.ID, "ended", at(21)); err != nil || n != 1 {
		t.Errorf("RevokeSessions(all but third) = %d, %v; want 1", n, err)
	}
	sameState(t, state(t, s, thirdFirst.JTI), thirdFirst, third.ExpiresAt, false, false)
	if n, err := s.RevokeSessions(ctx, u.ID, nil, "", "ended", at(22)); err != nil || n != 1 {
		t.Errorf("RevokeSessions(all) = %d, %v; want 1", n, err)
	}
	if ss, err := s.Sessions(ctx, u.ID, at(23)); err != nil || len(ss) != 0 {
		t.Errorf("Sessions after revoking all = %+v, %v", ss, err)
	}
	// A spend in a revoked family still reports the revocation.
	st, err := spend(t, s, child.JTI, at(30))
	if err != nil {
		t.Fatalf("spend: %v", err)
	}
	sameState(t, st, child, f.ExpiresAt, false, true)
}

func testDeleteExpiredRefreshTokens(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Expiry", at(0))
	short, shortFirst := login(t, s, u.ID, at(0), time.Hour)
	child := account.RefreshToken{JTI: newID(t), FamilyID: short.ID, UserID: u.ID, ParentJTI: shortFirst.JTI, IssuedAt: at(60), ExpiresAt: short.ExpiresAt}
	if err := rotate(t, s, child); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	edge, edgeFirst := login(t, s, u.ID, at(0), 2*time.Hour)
	long, longFirst := login(t, s, u.ID, at(0), 3*time.Hour)

	if n, err := s.DeleteExpiredRefreshTokens(ctx, at(0)); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredRefreshTokens(start) = %d, %v; want 0", n, err)
	}
	// Expired before the cut-off goes; expiring exactly at it stays.
	n, err := s.DeleteExpiredRefreshTokens(ctx, edge.ExpiresAt)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredRefreshTokens = %d, %v; want 1", n, err)
	}
	for _, jti := range []string{shortFirst.JTI, child.JTI} {
		_, err := s.RefreshTokenState(ctx, jti)
		wantCode(t, err, usersvc.ENotFound)
	}
	sameState(t, state(t, s, edgeFirst.JTI), edgeFirst, edge.ExpiresAt, false, false)
	sameState(t, state(t, s, longFirst.JTI), longFirst, long.ExpiresAt, false, false)
	// A token of a deleted family can no longer be rotated.
	late := account.RefreshToken{JTI: newID(t), FamilyID: short.ID, UserID: u.ID, ParentJTI: child.JTI, IssuedAt: at(7200), ExpiresAt: short.ExpiresAt}
	wantCode(t, rotate(t, s, late), usersvc.ENotFound)

	if n, err := s.DeleteExpiredRefreshTokens(ctx, at(100000)); err != nil || n != 2 {
		t.Fatalf("DeleteExpiredRefreshTokens(later) = %d, %v; want 2", n, err)
	}
	_, err = s.RefreshTokenState(ctx, longFirst.JTI)
	wantCode(t, err, usersvc.ENotFound)
	// The user stays.
	getUser(t, s, u.ID)
}

func testChangePassword(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	u := create(t, s, "Everywhere", at(0))
	other := create(t, s, "Elsewhere", at(0))
	f1, t1 := login(t, s, u.ID, at(1), time.Hour)
	f2, t2 := login(t, s, u.ID, at(2), time.Hour)
	f3, t3 := login(t, s, u.ID, at(3), time.Hour)
	fo, to := login(t, s, other.ID, at(4), time.Hour)
	if _, err := s.RevokeSessions(ctx, u.ID, []string{f3.ID}, "", "ended", at(5)); err != nil {
		t.Fatalf("RevokeSessions: %v", err)
	}
	version := func(want int64, hash string) {
		t.Helper()
		_, c, err := s.UserByEmail(ctx, u.Email)
		if err != nil || c.Version != want || c.Hash != hash {
			t.Fatalf("credential = %+v, %v; want version %d, hash %q", c, err, want, hash)
		}
	}

	n, err := s.ChangePassword(ctx, u.ID, "hash-2", f1.ID, at(6))
	if err != nil || n != 1 {
		t.Fatalf("ChangePassword(keeping f1) = %d, %v; want 1", n, err)
	}
	version(1, "hash-2")
	sameState(t, state(t, s, t1.JTI), t1, f1.ExpiresAt, false, false)
	sameState(t, state(t, s, t2.JTI), t2, f2.ExpiresAt, false, true)
	sameState(t, state(t, s, t3.JTI), t3, f3.ExpiresAt, false, true)
	sameState(t, state(t, s, to.JTI), to, fo.ExpiresAt, false, false)
	// A login that read the old version records no session.
	f4 := account.RefreshFamily{ID: newID(t), UserID: u.ID, CreatedAt: at(6), ExpiresAt: at(60)}
	t4 := account.RefreshToken{JTI: newID(t), FamilyID: f4.ID, UserID: u.ID, IssuedAt: at(6), ExpiresAt: at(60)}
	if err := s.CreateRefreshFamily(ctx, f4, t4, 0); !errors.Is(err, account.ErrCredentialChanged) {
		t.Fatalf("CreateRefreshFamily under the old version = %v, want ErrCredentialChanged", err)
	}

	n, err = s.ChangePassword(ctx, u.ID, "hash-3", "", at(7))
	if err != nil || n != 1 {
		t.Fatalf("ChangePassword(all) = %d, %v; want 1", n, err)
	}
	version(2, "hash-3")
	sameState(t, state(t, s, t1.JTI), t1, f1.ExpiresAt, false, true)
	sameState(t, state(t, s, to.JTI), to, fo.ExpiresAt, false, false)

	// A rehash keeps the version; a disable moves it and ends the sessions.
	if err := s.SetPasswordHash(ctx, u.ID, "hash-3b", at(8)); err != nil {
		t.Fatal(err)
	}
	version(2, "hash-3b")
	f5, t5 := login(t, s, u.ID, at(8), time.Hour)
	if _, err := s.SetActive(ctx, u.ID, false, at(9)); err != nil {
		t.Fatal(err)
	}
	version(3, "hash-3b")
	sameState(t, state(t, s, t5.JTI), t5, f5.ExpiresAt, false, true)
	if _, err := s.SetActive(ctx, u.ID, true, at(10)); err != nil {
		t.Fatal(err)
	}
	version(3, "hash-3b")
	sameState(t, state(t, s, t5.JTI), t5, f5.ExpiresAt, false, true)

	_, err = s.ChangePassword(ctx, newID(t), "h", "", at(8))
	wantCode(t, err, usersvc.ENotFound)
}
