package verify_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/client/verify"
	"github.com/usersvc/usersvc/internal/token"
)

// accessTokenFor stands for a login at the user service: it returns an
// access token signed with secret for testUser.
func accessTokenFor(secret string) string {
	ks, err := token.NewHMACKeySet(token.Secret(secret))
	if err != nil {
		log.Fatal(err)
	}
	s, err := token.New(token.Config{Keys: ks})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := s.IssueAccess(&testUser, uuid.NewString(), "", time.Now())
	if err != nil {
		log.Fatal(err)
	}
	return tok
}

// Another service shares the user service's SECRET_KEY and checks its
// users' access tokens itself.
func ExampleVerifier_Middleware() {
	const secretKey = "test-secret-key-that-is-long-enough-0123456789" // in production: os.Getenv("SECRET_KEY")
	v, err := verify.NewHS256([]byte(secretKey))
	if err != nil {
		log.Fatal(err)
	}
	inbox := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "the inbox of %s (%s)", c.Name, c.UserID)
	}))

	for _, auth := range []string{"Bearer " + accessTokenFor(secretKey), "Bearer not-a-token"} {
		req := httptest.NewRequest("GET", "/inbox", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		inbox.ServeHTTP(rec, req)
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 200 the inbox of Ada Lovelace (0190b7a4-5a4f-7c2e-9d3b-2f1e4a5b6c7d)
	// 401 {"success":false,"data":null,"error":"Token is invalid or expired","message":"Token is invalid or expired","meta":null}
}

// When the user service signs with EdDSA, ES256 or RS256, other services
// verify with the keys it publishes; a rotated-in key is fetched when a
// token first names it.
func ExampleNewJWKS() {
	v, err := verify.NewJWKS("http://usersvc:8000")
	if err != nil {
		log.Fatal(err)
	}
	// Optional: fetch the keys at start, to find out early whether the
	// user service is reachable.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v.Refresh(ctx); err != nil {
		log.Printf("the user service's keys are not reachable yet: %v", err)
	}
	http.Handle("GET /inbox", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "the inbox of %s", c.Email)
	})))
}
