package httpapi_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/token"
)

func newTestTokens(t testing.TB, secret string) *token.Service {
	t.Helper()
	keys, err := token.NewHMACKeySet(token.Secret(secret))
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.New(token.Config{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestTokensRefresh signs a well-formed refresh token with another secret.
func newTestTokensRefresh(t *testing.T, secret, userID string) string {
	t.Helper()
	now := time.Now().UTC()
	tok, err := newTestTokens(t, secret).IssueRefresh(account.RefreshToken{
		JTI: uuid.NewString(), FamilyID: uuid.NewString(), UserID: userID, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
