package token_test

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/usersvc/usersvc/internal/token"
)

// A token verified once is remembered, but its verdict at any later or
// earlier time is the one a service that never saw it gives: exp, nbf and
// iat are checked again on every presentation.
func TestVerifiedTokensAreCheckedAgainAtEachTime(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			method := jwt.GetSigningMethod(alg)
			ours := map[string]any{"kid": f.svc.Keys().KIDs()[0]}
			access := validClaims("access")
			tokens := map[string]string{
				"plain":     forge(t, method, f.sign, ours, access),
				"with nbf":  forge(t, method, f.sign, ours, with(access, "nbf", now.Add(-time.Second).Unix())),
				"late iat":  forge(t, method, f.sign, ours, with(access, "iat", now.Add(20*time.Second).Unix())),
				"short exp": forge(t, method, f.sign, ours, with(access, "exp", now.Add(time.Minute).Unix())),
			}
			times := []time.Duration{-time.Hour, -10 * time.Second, -2 * time.Second, 0, 59 * time.Second, time.Minute,
				time.Minute + time.Second, 14 * time.Minute, 24 * time.Hour}
			for name, tok := range tokens {
				if _, err := f.svc.ParseAccess(tok, now); err != nil {
					t.Fatalf("%s: rejected at first: %v", name, err)
				}
				for _, d := range times {
					fresh, err := token.New(token.Config{Keys: f.svc.Keys(), AccessLifetime: 15 * time.Minute})
					if err != nil {
						t.Fatal(err)
					}
					wantClaims, wantErr := fresh.ParseAccess(tok, now.Add(d))
					gotClaims, gotErr := f.svc.ParseAccess(tok, now.Add(d))
					if (gotErr == nil) != (wantErr == nil) || gotClaims != wantClaims ||
						errors.Is(gotErr, token.ErrExpired) != errors.Is(wantErr, token.ErrExpired) {
						t.Errorf("%s at %v: remembered gives %+v, %v; fresh gives %+v, %v", name, d, gotClaims, gotErr, wantClaims, wantErr)
					}
				}
			}
		})
	}
}

// A token that differs from a remembered one in any byte is verified on
// its own: a hit needs the same token.
func TestVerifiedTokenAltered(t *testing.T) {
	f := newFixture(t, token.HS256)
	tok, err := f.svc.IssueAccess(user, "jti-1", "", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ParseAccess(tok, now); err != nil {
		t.Fatal(err)
	}
	for i := range tok {
		if tok[i] == '.' {
			continue
		}
		b := []byte(tok)
		b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
		altered := string(b)
		if _, err := f.svc.ParseAccess(altered, now); err == nil {
			// A change in the last base64url character may leave the
			// decoded bytes as they were; strict decoding refuses it.
			t.Errorf("a token altered at byte %d of %d was accepted", i, len(tok))
		}
	}
	if _, err := f.svc.ParseAccess(tok, now); err != nil {
		t.Errorf("the original token was refused after the altered ones: %v", err)
	}
}
