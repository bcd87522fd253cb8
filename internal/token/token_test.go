package token_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/token"
)

const userID = "301b598d-95d6-4400-a92d-ea76cd91548e"

var (
	now    = time.Date(2026, 11, 25, 20, 38, 40, 0, time.UTC)
	secret = token.Secret("0123456789abcdef0123456789abcdef-test-secret")
	user   = &usersvc.User{ID: userID, Email: "grace.hopper@example.com", Name: "Grace Hopper", IsAdmin: true, IsActive: true}
)

// fixture is a Service with the raw key it signs with, so that tests can
// forge tokens with that very key.
type fixture struct {
	alg  string
	svc  *token.Service
	sign any // what jwt's SignedString takes for alg
	pub  crypto.PublicKey
}

// rsaKey is made once: RSA key generation is slow.
var rsaKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func newKey(t testing.TB, alg string) crypto.Signer {
	t.Helper()
	switch alg {
	case token.EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	case token.ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	case token.RS256:
		return rsaKey
	}
	t.Fatalf("no key for %s", alg)
	return nil
}

func newFixture(t testing.TB, alg string) *fixture {
	t.Helper()
	f := &fixture{alg: alg}
	var ks *token.KeySet
	var err error
	if alg == token.HS256 {
		ks, err = token.NewHMACKeySet(secret)
		f.sign = []byte(secret)
	} else {
		k := newKey(t, alg)
		ks, err = token.NewKeySet(alg, k)
		f.sign, f.pub = k, k.Public()
	}
	if err != nil {
		t.Fatal(err)
	}
	f.svc, err = token.New(token.Config{Keys: ks, AccessLifetime: 15 * time.Minute, RefreshLifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var algorithms = []string{token.HS256, token.EdDSA, token.ES256, token.RS256}

func refreshRecord() account.RefreshToken {
	return account.RefreshToken{
		JTI: "0f8b7c5e-6a43-4d2a-9c1e-2b7d8e9f0a1b", FamilyID: "fam", UserID: userID,
		IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			access, err := f.svc.IssueAccess(user, "jti-access-1", "", now)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.svc.ParseAccess(access, now.Add(time.Minute))
			if err != nil {
				t.Fatalf("ParseAccess: %v", err)
			}
			want := account.AccessClaims{
				UserID: userID, Email: user.Email, Name: user.Name, IsAdmin: true, JTI: "jti-access-1",
				IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute),
			}
			if got != want {
				t.Fatalf("ParseAccess = %+v, want %+v", got, want)
			}

			rt := refreshRecord()
			refresh, err := f.svc.IssueRefresh(rt)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := f.svc.ParseRefresh(refresh, now.Add(23*time.Hour))
			if err != nil {
				t.Fatalf("ParseRefresh: %v", err)
			}
			wantR := account.RefreshClaims{UserID: userID, JTI: rt.JTI, IssuedAt: now, ExpiresAt: rt.ExpiresAt}
			if rc != wantR {
				t.Fatalf("ParseRefresh = %+v, want %+v", rc, wantR)
			}
		})
	}
}

func TestLifetimes(t *testing.T) {
	ks, _ := token.NewHMACKeySet(secret)
	svc, err := token.New(token.Config{Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	if svc.AccessLifetime() != 15*time.Minute || svc.RefreshLifetime() != 24*time.Hour {
		t.Fatalf("default lifetimes %v, %v", svc.AccessLifetime(), svc.RefreshLifetime())
	}
	svc, _ = token.New(token.Config{Keys: ks, AccessLifetime: time.Minute, RefreshLifetime: time.Hour})
	if svc.AccessLifetime() != time.Minute || svc.RefreshLifetime() != time.Hour {
		t.Fatalf("lifetimes %v, %v", svc.AccessLifetime(), svc.RefreshLifetime())
	}
	if _, err := token.New(token.Config{}); err == nil {
		t.Fatal("New without keys succeeded")
	}
}

// decode returns the header and payload of a token as JSON objects.
func decode(t *testing.T, tok string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload
}

func TestClaimsExactly(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			access, _ := f.svc.IssueAccess(user, "jti-1", "", now)
			header, payload := decode(t, access)
			wantHeader := map[string]any{"alg": alg, "typ": "JWT", "kid": f.svc.Keys().KIDs()[0]}
			if !maps.Equal(header, wantHeader) {
				t.Errorf("header %v, want %v", header, wantHeader)
			}
			wantAccess := map[string]any{
				"token_type": "access", "user_id": userID, "sub": userID, "email": user.Email,
				"name": user.Name, "is_admin": true, "jti": "jti-1", "iss": "usersvc",
				"iat": float64(now.Unix()), "exp": float64(now.Add(15 * time.Minute).Unix()),
			}
			if !maps.Equal(payload, wantAccess) {
				t.Errorf("access payload %v, want %v", payload, wantAccess)
			}

			rt := refreshRecord()
			refresh, _ := f.svc.IssueRefresh(rt)
			header, payload = decode(t, refresh)
			if !maps.Equal(header, wantHeader) {
				t.Errorf("refresh header %v, want %v", header, wantHeader)
			}
			wantRefresh := map[string]any{
				"token_type": "refresh", "user_id": userID, "sub": userID, "jti": rt.JTI, "iss": "usersvc",
				"iat": float64(rt.IssuedAt.Unix()), "exp": float64(rt.ExpiresAt.Unix()),
			}
			if !maps.Equal(payload, wantRefresh) {
				t.Errorf("refresh payload %v, want %v", payload, wantRefresh)
			}
		})
	}
}

func TestIssueRejectsIncompleteInput(t *testing.T) {
	f := newFixture(t, token.HS256)
	if _, err := f.svc.IssueAccess(nil, "j", "", now); err == nil {
		t.Error("IssueAccess(nil user) succeeded")
	}
	if _, err := f.svc.IssueAccess(&usersvc.User{ID: "42"}, "j", "", now); err == nil {
		t.Error("IssueAccess(non-UUID id) succeeded")
	}
	if _, err := f.svc.IssueAccess(user, "", "", now); err == nil {
		t.Error("IssueAccess(no jti) succeeded")
	}
	rt := refreshRecord()
	rt.ExpiresAt = rt.IssuedAt
	if _, err := f.svc.IssueRefresh(rt); err == nil {
		t.Error("IssueRefresh(no lifetime) succeeded")
	}
}

// validClaims are the claims of a token the service would accept at now.
func validClaims(typ string) jwt.MapClaims {
	c := jwt.MapClaims{
		"token_type": typ, "user_id": userID, "sub": userID, "jti": "forged-jti", "iss": "usersvc",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
	if typ == "access" {
		c["email"], c["name"], c["is_admin"] = "x@example.com", "X", true
	}
	return c
}

// forge signs claims with key under method, with extra header fields; a nil
// header value removes the field.
func forge(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("forging: %v", err)
	}
	return s
}

// forgeUnsigned makes a token with the given alg header and no signature.
func forgeUnsigned(t *testing.T, alg, kid string, claims jwt.MapClaims) string {
	t.Helper()
	h, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "."
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	c = maps.Clone(c)
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

// expectRejected checks that tok fails both parses with an EUnauthorized
// error that does not echo the token.
func expectRejected(t *testing.T, svc *token.Service, name, tok string, at time.Time) {
	t.Helper()
	_, errA := svc.ParseAccess(tok, at)
	_, errR := svc.ParseRefresh(tok, at)
	for _, err := range []error{errA, errR} {
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		var e *usersvc.Error
		if !errors.As(err, &e) || e.Code != usersvc.EUnauthorized || e.Message != "Token is invalid or expired" {
			t.Errorf("%s: error %#v, want EUnauthorized with the fixed message", name, err)
		}
		if parts := strings.Split(tok, "."); len(tok) > 0 && strings.Contains(err.Error(), parts[0]) && parts[0] != "" {
			t.Errorf("%s: error %q echoes the token", name, err)
		}
	}
}

func TestForgedAndInvalidTokens(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			method := jwt.GetSigningMethod(alg)
			kid := f.svc.Keys().KIDs()[0]
			ours := map[string]any{"kid": kid}
			access := validClaims("access")
			refresh := validClaims("refresh")

			// The forging helper itself makes tokens the service accepts.
			if _, err := f.svc.ParseAccess(forge(t, method, f.sign, ours, access), now); err != nil {
				t.Fatalf("a well-formed access token was rejected: %v", err)
			}
			if _, err := f.svc.ParseRefresh(forge(t, method, f.sign, ours, refresh), now); err != nil {
				t.Fatalf("a well-formed refresh token was rejected: %v", err)
			}

			reject := func(name, tok string) { t.Helper(); expectRejected(t, f.svc, name, tok, now) }

			for _, typ := range []string{"access", "refresh"} {
				c := validClaims(typ)
				reject(typ+" expired", forge(t, method, f.sign, ours, with(c, "exp", now.Add(-time.Second).Unix())))
				reject(typ+" expiring now", forge(t, method, f.sign, ours, with(c, "exp", now.Unix())))
				reject(typ+" no exp", forge(t, method, f.sign, ours, with(c, "exp", nil)))
				reject(typ+" not yet valid", forge(t, method, f.sign, ours, with(c, "nbf", now.Add(time.Minute).Unix())))
				reject(typ+" issued in the future", forge(t, method, f.sign, ours, with(c, "iat", now.Add(5*time.Minute).Unix())))
				reject(typ+" no iat", forge(t, method, f.sign, ours, with(c, "iat", nil)))
				reject(typ+" wrong iss", forge(t, method, f.sign, ours, with(c, "iss", "someone-else")))
				reject(typ+" no iss", forge(t, method, f.sign, ours, with(c, "iss", nil)))
				reject(typ+" no user_id", forge(t, method, f.sign, ours, with(c, "user_id", nil)))
				reject(typ+" user_id not a UUID", forge(t, method, f.sign, ours, with(with(c, "user_id", "42"), "sub", "42")))
				reject(typ+" user_id not canonical", forge(t, method, f.sign, ours,
					with(with(c, "user_id", strings.ToUpper(userID)), "sub", strings.ToUpper(userID))))
				reject(typ+" user_id a number", forge(t, method, f.sign, ours, with(c, "user_id", 42)))
				reject(typ+" sub differs", forge(t, method, f.sign, ours, with(c, "sub", "ae116c8c-102f-4d1b-9de1-24b02910fa27")))
				reject(typ+" no jti", forge(t, method, f.sign, ours, with(c, "jti", nil)))
				reject(typ+" no token_type", forge(t, method, f.sign, ours, with(c, "token_type", nil)))
				reject(typ+" odd token_type", forge(t, method, f.sign, ours, with(c, "token_type", "Access")))
				// NumericDate is a JSON number; the parser would read these strings.
				future := strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10)
				reject(typ+" exp a string", forge(t, method, f.sign, ours, with(c, "exp", future)))
				reject(typ+" iat a string", forge(t, method, f.sign, ours, with(c, "iat", strconv.FormatInt(now.Unix(), 10))))
				reject(typ+" nbf a string", forge(t, method, f.sign, ours, with(c, "nbf", strconv.FormatInt(now.Unix(), 10))))
				reject(typ+" nbf null", forge(t, method, f.sign, ours, with(c, "nbf", json.RawMessage("null"))))
			}
			// A token of one type is not the other.
			if _, err := f.svc.ParseRefresh(forge(t, method, f.sign, ours, access), now); err == nil {
				t.Error("an access token was accepted as a refresh token")
			}
			if _, err := f.svc.ParseAccess(forge(t, method, f.sign, ours, refresh), now); err == nil {
				t.Error("a refresh token was accepted as an access token")
			}
			issuedAccess, _ := f.svc.IssueAccess(user, "j", "", now)
			issuedRefresh, _ := f.svc.IssueRefresh(refreshRecord())
			if _, err := f.svc.ParseRefresh(issuedAccess, now); err == nil {
				t.Error("an issued access token was accepted as a refresh token")
			}
			if _, err := f.svc.ParseAccess(issuedRefresh, now); err == nil {
				t.Error("an issued refresh token was accepted as an access token")
			}

			// One token, other spellings: the base64 decoder would skip CR
			// and LF, and padding is not part of the compact form.
			for name, spelled := range map[string]string{
				"LF in the signature":     issuedAccess[:len(issuedAccess)-8] + "\n" + issuedAccess[len(issuedAccess)-8:],
				"CR LF in the payload":    strings.Replace(issuedAccess, ".", ".\r\n", 1),
				"space before the dot":    strings.Replace(issuedAccess, ".", " .", 1),
				"padded signature":        issuedAccess + "=",
				"standard base64 symbols": strings.NewReplacer("-", "+", "_", "/").Replace(issuedAccess),
			} {
				if spelled == issuedAccess {
					continue // the token holds no - or _ to replace
				}
				reject("access "+name, spelled)
			}

			// Tampering.
			parts := strings.Split(issuedAccess, ".")
			sig := []byte(parts[2])
			sig[len(sig)/2] ^= 1
			if sig[len(sig)/2] == '-' || sig[len(sig)/2] == '_' || sig[len(sig)/2] > 'z' {
				sig[len(sig)/2] = 'A'
			}
			reject("tampered signature", parts[0]+"."+parts[1]+"."+string(sig))
			reject("no signature", parts[0]+"."+parts[1]+".")
			_, payload := decode(t, issuedAccess)
			payload["is_admin"] = true
			payload["user_id"], payload["sub"] = "ae116c8c-102f-4d1b-9de1-24b02910fa27", "ae116c8c-102f-4d1b-9de1-24b02910fa27"
			p, _ := json.Marshal(payload)
			reject("tampered payload", parts[0]+"."+base64.RawURLEncoding.EncodeToString(p)+"."+parts[2])
			reject("padded signature", issuedAccess+"=")

			// Another key, under our kid and under its own.
			other := newFixture(t, alg)
			if alg == token.HS256 {
				other.sign = []byte("another secret, as long as the first one is")
			} else if alg == token.RS256 {
				k, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					t.Fatal(err)
				}
				other.sign = k
			}
			reject("other key, our kid", forge(t, method, other.sign, ours, access))
			reject("other key, its kid", forge(t, method, other.sign, map[string]any{"kid": "other"}, access))

			// kid.
			reject("unknown kid", forge(t, method, f.sign, map[string]any{"kid": "nope"}, access))
			reject("no kid", forge(t, method, f.sign, map[string]any{"kid": nil}, access))
			reject("kid not a string", forge(t, method, f.sign, map[string]any{"kid": 7}, access))

			// Header key sources, even on a token signed by our own key.
			for _, h := range []string{"jku", "jwk", "x5u", "x5c", "crit"} {
				var v any = "https://attacker.example/keys"
				switch h {
				case "jwk":
					v = map[string]any{"kty": "oct", "k": "c2VjcmV0"}
				case "x5c", "crit":
					v = []string{"MIIB"}
				}
				reject("header "+h, forge(t, method, f.sign, map[string]any{"kid": kid, h: v}, access))
			}

			// alg: none, however spelled.
			for _, none := range []string{"none", "None", "NONE", "nOnE"} {
				reject("alg "+none, forgeUnsigned(t, none, kid, access))
				reject("alg "+none+" with a signature", forgeUnsigned(t, none, kid, access)+parts[2])
			}
			reject("no alg", forgeUnsigned(t, "", kid, access))

			// Another algorithm than the configured one.
			for _, other := range algorithms {
				if other == alg {
					continue
				}
				o := newFixture(t, other)
				reject("alg "+other, forge(t, jwt.GetSigningMethod(other), o.sign, ours, access))
			}
			if alg != token.HS256 {
				// Algorithm confusion: HS256 keyed with the public key.
				der, err := x509.MarshalPKIXPublicKey(f.pub)
				if err != nil {
					t.Fatal(err)
				}
				pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
				candidates := [][]byte{der, pemPub, bytes.TrimSpace(pemPub)}
				if pub, ok := f.pub.(ed25519.PublicKey); ok {
					candidates = append(candidates, pub)
				}
				for i, k := range candidates {
					reject("HS256 with the public key "+string(rune('a'+i)), forge(t, jwt.SigningMethodHS256, k, ours, access))
				}
				jwks := f.svc.JWKS()
				reject("HS256 with the JWKS", forge(t, jwt.SigningMethodHS256, jwks, ours, access))
			}

			// Shape.
			long := forge(t, method, f.sign, ours, with(access, "pad", strings.Repeat("x", token.MaxTokenLen)))
			reject("oversized", long)
			reject("four parts", issuedAccess+".abc")
			reject("many dots", strings.Repeat(".", 1000))
			reject("two parts", parts[0]+"."+parts[1])
			reject("empty", "")
			reject("garbage", "not a token")
			reject("bearer prefix", "Bearer "+issuedAccess)
			reject("spaces", " "+issuedAccess)
		})
	}
}

func TestExpiry(t *testing.T) {
	f := newFixture(t, token.HS256)
	access, _ := f.svc.IssueAccess(user, "j", "", now)
	exp := now.Add(f.svc.AccessLifetime())
	if _, err := f.svc.ParseAccess(access, exp.Add(-time.Second)); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	_, err := f.svc.ParseAccess(access, exp)
	if !errors.Is(err, token.ErrExpired) || usersvc.ErrorCode(err) != usersvc.EUnauthorized {
		t.Fatalf("at exp: %v, want EUnauthorized wrapping ErrExpired", err)
	}
	// Issued slightly ahead of the verifier's clock: accepted within the leeway.
	if _, err := f.svc.ParseAccess(access, now.Add(-10*time.Second)); err != nil {
		t.Fatalf("10s of clock skew: %v", err)
	}
	if _, err := f.svc.ParseAccess(access, now.Add(-time.Hour)); err == nil {
		t.Fatal("a token issued an hour ahead was accepted")
	}
	refresh, _ := f.svc.IssueRefresh(refreshRecord())
	if _, err := f.svc.ParseRefresh(refresh, now.Add(24*time.Hour)); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("refresh at exp: %v, want ErrExpired", err)
	}
}

func TestRotation(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			var oldKS, newKS, newOnly *token.KeySet
			var err error
			if alg == token.HS256 {
				next := token.Secret("the next secret, which is long enough to use")
				oldKS, _ = token.NewHMACKeySet(secret)
				newKS, err = token.NewHMACKeySet(next, secret)
				newOnly, _ = token.NewHMACKeySet(next)
			} else {
				oldKey := newKey(t, alg)
				nextKey := newKey(t, alg)
				if alg == token.RS256 {
					nextKey, err = rsa.GenerateKey(rand.Reader, 2048)
					if err != nil {
						t.Fatal(err)
					}
				}
				oldKS, _ = token.NewKeySet(alg, oldKey)
				newKS, err = token.NewKeySet(alg, nextKey, oldKey)
				newOnly, _ = token.NewKeySet(alg, nextKey)
			}
			if err != nil {
				t.Fatal(err)
			}
			oldSvc, _ := token.New(token.Config{Keys: oldKS})
			newSvc, _ := token.New(token.Config{Keys: newKS})
			onlySvc, _ := token.New(token.Config{Keys: newOnly})

			old, _ := oldSvc.IssueAccess(user, "j-old", "", now)
			if _, err := newSvc.ParseAccess(old, now); err != nil {
				t.Fatalf("a token of the old key after rotation: %v", err)
			}
			fresh, _ := newSvc.IssueAccess(user, "j-new", "", now)
			h, _ := decode(t, fresh)
			if h["kid"] != newKS.KIDs()[0] || newKS.KIDs()[0] == oldKS.KIDs()[0] || newKS.KIDs()[1] != oldKS.KIDs()[0] {
				t.Fatalf("kid %v; set %v, old %v", h["kid"], newKS.KIDs(), oldKS.KIDs())
			}
			if _, err := newSvc.ParseAccess(fresh, now); err != nil {
				t.Fatal(err)
			}
			if _, err := oldSvc.ParseAccess(fresh, now); err == nil {
				t.Fatal("a service without the new key accepted its token")
			}
			// Once the old key is retired, its tokens fail.
			if _, err := onlySvc.ParseAccess(old, now); err == nil {
				t.Fatal("a retired key's token was accepted")
			}
			if alg != token.HS256 {
				var doc struct{ Keys []map[string]any }
				if err := json.Unmarshal(newSvc.JWKS(), &doc); err != nil || len(doc.Keys) != 2 {
					t.Fatalf("JWKS after rotation: %s, %v", newSvc.JWKS(), err)
				}
				if doc.Keys[0]["kid"] != newKS.KIDs()[0] || doc.Keys[1]["kid"] != oldKS.KIDs()[0] {
					t.Fatalf("JWKS kids %v %v", doc.Keys[0]["kid"], doc.Keys[1]["kid"])
				}
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	f := newFixture(t, token.HS256)
	if got := string(f.svc.JWKS()); got != `{"keys":[]}` {
		t.Errorf("HS256 JWKS = %s", got)
	}
	if strings.Contains(string(f.svc.JWKS()), string(secret)) {
		t.Error("the JWKS holds the secret")
	}
	for _, alg := range algorithms[1:] {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			var doc struct {
				Keys []map[string]string `json:"keys"`
			}
			if err := json.Unmarshal(f.svc.JWKS(), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Keys) != 1 {
				t.Fatalf("JWKS has %d keys", len(doc.Keys))
			}
			k := doc.Keys[0]
			if k["kid"] != f.svc.Keys().KIDs()[0] || k["alg"] != alg || k["use"] != "sig" {
				t.Errorf("JWK kid/alg/use = %q/%q/%q", k["kid"], k["alg"], k["use"])
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := k[private]; ok {
					t.Errorf("JWK has the private member %q", private)
				}
			}
			b64 := func(name string) []byte {
				t.Helper()
				b, err := base64.RawURLEncoding.DecodeString(k[name])
				if err != nil || len(b) == 0 {
					t.Fatalf("JWK member %q: %v", name, err)
				}
				return b
			}
			var pub crypto.PublicKey
			switch alg {
			case token.EdDSA:
				if k["kty"] != "OKP" || k["crv"] != "Ed25519" {
					t.Fatalf("JWK %v", k)
				}
				pub = ed25519.PublicKey(b64("x"))
			case token.ES256:
				if k["kty"] != "EC" || k["crv"] != "P-256" {
					t.Fatalf("JWK %v", k)
				}
				x, y := b64("x"), b64("y")
				if len(x) != 32 || len(y) != 32 {
					t.Fatalf("coordinates of %d and %d bytes", len(x), len(y))
				}
				p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
				if err != nil {
					t.Fatal(err)
				}
				pub = p
			case token.RS256:
				if k["kty"] != "RSA" {
					t.Fatalf("JWK %v", k)
				}
				n, e := b64("n"), b64("e")
				if n[0] == 0 || e[0] == 0 {
					t.Fatal("n or e has a leading zero byte")
				}
				var ev int
				for _, b := range e {
					ev = ev<<8 | int(b)
				}
				pub = &rsa.PublicKey{N: new(rsaInt).SetBytes(n), E: ev}
			}
			if !f.pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Fatal("the JWK is not the service's public key")
			}
			// And a token verifies with it, as a relying service would do.
			access, _ := f.svc.IssueAccess(user, "j", "", now)
			if _, err := jwt.Parse(access, func(*jwt.Token) (any, error) { return pub, nil },
				jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(func() time.Time { return now })); err != nil {
				t.Fatalf("verifying with the published key: %v", err)
			}
		})
	}
}

// RFC 8037 appendix A: the Ed25519 key and its RFC 7638 thumbprint.
func TestKIDIsRFC7638Thumbprint(t *testing.T) {
	seed, _ := base64.RawURLEncoding.DecodeString("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
	ks, err := token.NewKeySet(token.EdDSA, ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	if got := ks.KIDs()[0]; got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Fatalf("kid %s", got)
	}
	var doc struct{ Keys []map[string]string }
	json.Unmarshal(ks.JWKS(), &doc)
	if doc.Keys[0]["x"] != "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" {
		t.Fatalf("x %s", doc.Keys[0]["x"])
	}
}

func TestHMACKID(t *testing.T) {
	a, _ := token.NewHMACKeySet(secret)
	b, _ := token.NewHMACKeySet(secret)
	c, _ := token.NewHMACKeySet(token.Secret("a different secret that is long enough!!"))
	kid := a.KIDs()[0]
	if len(kid) != 16 || kid != b.KIDs()[0] || kid == c.KIDs()[0] {
		t.Fatalf("kids %s %s %s", kid, b.KIDs()[0], c.KIDs()[0])
	}
	if strings.Contains(string(secret), kid) {
		t.Fatal("the kid reveals the secret")
	}
	if _, err := token.NewHMACKeySet(token.Secret("short")); err == nil {
		t.Fatal("a short secret was accepted")
	}
	if _, err := token.NewHMACKeySet(); err == nil {
		t.Fatal("an empty set was accepted")
	}
	if _, err := token.NewHMACKeySet(secret, secret); err == nil {
		t.Fatal("a repeated secret was accepted")
	}
}

func TestNewKeySetChecksKeys(t *testing.T) {
	ed := newKey(t, token.EdDSA)
	ec := newKey(t, token.ES256)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	bad := []struct {
		alg  string
		keys []crypto.Signer
	}{
		{token.EdDSA, []crypto.Signer{ec}},
		{token.ES256, []crypto.Signer{ed}},
		{token.ES256, []crypto.Signer{p384}},
		{token.RS256, []crypto.Signer{ec}},
		{token.RS256, []crypto.Signer{small}},
		{token.EdDSA, []crypto.Signer{ed, ec}},
		{token.EdDSA, []crypto.Signer{ed, ed}},
		{token.EdDSA, nil},
		{token.HS256, []crypto.Signer{ed}},
		{"PS256", []crypto.Signer{rsaKey}},
	}
	for _, b := range bad {
		if _, err := token.NewKeySet(b.alg, b.keys...); err == nil {
			t.Errorf("NewKeySet(%s, %d keys) succeeded", b.alg, len(b.keys))
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := secret
	type config struct {
		Secret token.Secret
	}
	var logged bytes.Buffer
	outputs := []string{
		fmtAll(s), fmtAll(config{s}), fmtAll(&config{s}),
	}
	j, _ := json.Marshal(config{s})
	outputs = append(outputs, string(j))
	logJSON(&logged, s)
	outputs = append(outputs, logged.String())
	for _, out := range outputs {
		if strings.Contains(out, string(secret)) || strings.Contains(out, "0123456789abcdef") ||
			strings.Contains(out, "3031323334") {
			t.Errorf("secret printed: %s", out)
		}
		if !strings.Contains(out, "[REDACTED]") {
			t.Errorf("no redaction marker in %s", out)
		}
	}
}

// FuzzParse checks that parsing never panics, that every failure is an
// EUnauthorized that repeats nothing of the token, and that it accepts no
// token but one signed with the service's key in canonical form: the two
// it issued, or the forgeries of the checked-in corpus that are signed with
// the test secret itself (testdata/fuzz/FuzzParse).
func FuzzParse(f *testing.F) {
	fx := newFixture(f, token.HS256)
	access, _ := fx.svc.IssueAccess(user, "jti", "", now)
	refresh, _ := fx.svc.IssueRefresh(refreshRecord())
	f.Add(access)
	f.Add(refresh)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(strings.Repeat(".", 10))
	parts := strings.Split(access, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Fuzz(func(t *testing.T, s string) {
		_, errA := fx.svc.ParseAccess(s, now)
		_, errR := fx.svc.ParseRefresh(s, now)
		if errA == nil && s != access && !signedCanonically(s) {
			t.Fatalf("accepted as access: %q", s)
		}
		if errR == nil && s != refresh && !signedCanonically(s) {
			t.Fatalf("accepted as refresh: %q", s)
		}
		if errA == nil && errR == nil {
			t.Fatalf("accepted as both access and refresh: %q", s)
		}
		for _, err := range []error{errA, errR} {
			if err != nil && usersvc.ErrorCode(err) != usersvc.EUnauthorized {
				t.Fatalf("error %v is not EUnauthorized", err)
			}
			if err != nil && len(s) >= 8 && strings.Contains(s, ".") && strings.Contains(err.Error(), s) {
				t.Fatalf("error %v repeats the token", err)
			}
		}
	})
}

// signedCanonically reports whether s is an HS256 token whose signature
// the test secret makes, with every segment in canonical base64url (so that
// no other spelling of an accepted token is accepted too).
func signedCanonically(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != p {
			return false
		}
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)) == parts[2]
}

type rsaInt = big.Int

func fmtAll(v any) string {
	return fmt.Sprintf("%s|%v|%+v|%#v|%x|%X|%d|%q", v, v, v, v, v, v, v, v)
}

func logJSON(w io.Writer, s token.Secret) {
	l := slog.New(slog.NewJSONHandler(w, nil))
	l.Info("config", "secret", s, "struct", struct{ Secret token.Secret }{s})
	slog.New(slog.NewTextHandler(w, nil)).Info("config", "secret", s)
}
