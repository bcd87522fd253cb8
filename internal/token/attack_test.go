package token_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/tokentest"
)

// The attack tables: the ways a client may forge, alter or respell a token,
// run against ParseAccess and ParseRefresh for every algorithm the service
// signs with. Each group first re-signs the untampered token the way its
// attacks sign theirs and checks that it is accepted, so that every
// rejection in the group is down to the tampering alone.

// sigFunc makes the signature segment of a token from its signing input.
type sigFunc func(t *testing.T, input string) string

// hmacSig signs with HMAC over h and key, whatever the header says.
func hmacSig(h func() hash.Hash, key []byte) sigFunc {
	return func(_ *testing.T, input string) string {
		m := hmac.New(h, key)
		m.Write([]byte(input))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
}

// methodSig signs with method and key, whatever the header says.
func methodSig(method jwt.SigningMethod, key any) sigFunc {
	return func(t *testing.T, input string) string {
		t.Helper()
		sig, err := method.Sign(input, key)
		if err != nil {
			t.Fatalf("signing with %s: %v", method.Alg(), err)
		}
		return base64.RawURLEncoding.EncodeToString(sig)
	}
}

// fixedSig is a signature segment given as is ("" for none).
func fixedSig(sig string) sigFunc { return func(*testing.T, string) string { return sig } }

// segment is the base64url encoding of v's JSON.
func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// assemble builds a token from a header and claims exactly as given.
func assemble(t *testing.T, header, claims map[string]any, sign sigFunc) string {
	t.Helper()
	input := segment(t, header) + "." + segment(t, claims)
	return input + "." + sign(t, input)
}

// number is a JSON number written as n.
func number(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }

// attack is one tampering of the issued token.
type attack struct {
	name   string
	header map[string]any // changes to the issued header; a nil value deletes
	claims map[string]any // changes to the issued claims; a nil value deletes
	sign   sigFunc        // nil: the group's own signer, with the real key
	// respell, when set, rewrites the assembled token (or replaces it).
	respell func(tok string) string
}

// attackGroup is attacks on one issued token through one parse.
type attackGroup struct {
	name           string
	parse          func(tok string) error
	header, claims map[string]any // of the token as issued
	sign           sigFunc        // with the real key: the untampered token re-signed is accepted
	attacks        []attack
}

func runAttacks(t *testing.T, groups []attackGroup) {
	t.Helper()
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			base := assemble(t, g.header, g.claims, g.sign)
			if err := g.parse(base); err != nil {
				t.Fatalf("the untampered token, re-signed, was refused (%v): the attacks would prove nothing", err)
			}
			if len(g.attacks) == 0 {
				t.Fatal("a group without attacks")
			}
			for _, a := range g.attacks {
				t.Run(a.name, func(t *testing.T) {
					sign := a.sign
					if sign == nil {
						sign = g.sign
					}
					tok := assemble(t, tokentest.With(g.header, a.header), tokentest.With(g.claims, a.claims), sign)
					if a.respell != nil {
						tok = a.respell(tok)
					}
					if tok == base {
						t.Fatal("the attack changes nothing")
					}
					err := g.parse(tok)
					if err == nil {
						t.Fatalf("accepted: %.200s", tok)
					}
					if usersvc.ErrorCode(err) != usersvc.EUnauthorized || usersvc.ErrorMessage(err) != "Token is invalid or expired" {
						t.Errorf("error %v, want EUnauthorized with the fixed message", err)
					}
					if head, _, _ := strings.Cut(tok, "."); len(head) >= 8 && strings.Contains(err.Error(), head) {
						t.Errorf("the error %q repeats the token", err)
					}
				})
			}
		})
	}
}

// otherRSAKey is an RSA key the services of these tests do not know; made
// once, as RSA key generation is slow.
var otherRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// strangerKey returns a key of alg's type that f does not know.
func strangerKey(t *testing.T, alg string) crypto.Signer {
	t.Helper()
	if alg == token.RS256 {
		return otherRSAKey()
	}
	return newKey(t, alg)
}

// publicJWK is pub as a JSON Web Key, as an attacker would embed it.
func publicJWK(t *testing.T, pub crypto.PublicKey) map[string]any {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": b64(p.N.Bytes()), "e": b64(big.NewInt(int64(p.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := p.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(p)}
	}
	t.Fatalf("no JWK for %T", pub)
	return nil
}

// publicForms are f's public key in every form an attacker may find it,
// for use as an HMAC secret.
func publicForms(t *testing.T, f *fixture) map[string][]byte {
	t.Helper()
	pkix, err := x509.MarshalPKIXPublicKey(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	pkixPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	forms := map[string][]byte{"PKIX PEM": pkixPEM, "PKIX DER": pkix}
	switch p := f.pub.(type) {
	case *rsa.PublicKey:
		pkcs1 := x509.MarshalPKCS1PublicKey(p)
		forms["PKCS1 PEM"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})
		forms["PKCS1 DER"] = pkcs1
		forms["modulus"] = p.N.Bytes()
	case *ecdsa.PublicKey:
		point, err := p.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		forms["uncompressed point"] = point
	case ed25519.PublicKey:
		forms["raw"] = p
	}
	for name, v := range forms {
		forms[name+" with newline"] = append(append([]byte(nil), v...), '\n')
	}
	forms["PKIX PEM trimmed"] = bytes.TrimSpace(pkixPEM)
	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal(f.svc.JWKS(), &doc); err != nil || len(doc.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", f.svc.JWKS(), err)
	}
	member, _ := json.Marshal(doc.Keys[0])
	forms["JWKS member"] = member
	forms["JWKS document"] = f.svc.JWKS()
	return forms
}

var hmacHashes = map[string]func() hash.Hash{"HS256": sha256.New, "HS384": sha512.New384, "HS512": sha512.New}

// TestAttacks runs the attack tables against every algorithm.
func TestAttacks(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			runAttacks(t, attackGroups(t, newFixture(t, alg)))
		})
	}
}

// attackGroups are the attacks on the tokens f issues.
func attackGroups(t *testing.T, f *fixture) []attackGroup {
	t.Helper()
	alg := f.alg
	hs := alg == token.HS256
	kid := f.svc.Keys().KIDs()[0]
	access, err := f.svc.IssueAccess(user, "jti-attack", "", now)
	if err != nil {
		t.Fatal(err)
	}
	refresh, err := f.svc.IssueRefresh(refreshRecord())
	if err != nil {
		t.Fatal(err)
	}
	header, claims := tokentest.Decode(t, access)
	rheader, rclaims := tokentest.Decode(t, refresh)
	if header["alg"] != alg || header["kid"] != kid {
		t.Fatalf("issued header %v", header)
	}
	ours := methodSig(jwt.GetSigningMethod(alg), f.sign)
	issuedSig := access[strings.LastIndex(access, ".")+1:]
	parseAccess := func(tok string) error { _, err := f.svc.ParseAccess(tok, now); return err }
	parseRefresh := func(tok string) error { _, err := f.svc.ParseRefresh(tok, now); return err }
	group := func(name string, attacks ...attack) attackGroup {
		return attackGroup{name: name, parse: parseAccess, header: header, claims: claims, sign: ours, attacks: attacks}
	}
	unix := now.Unix()
	otherUser := "00000000-0000-4000-8000-000000000000"
	attackerRSA := otherRSAKey()
	attackerSecret := []byte("attacker-chosen-secret-0123456789abcdef")
	// stranger is a key of the configured algorithm that the service does
	// not know (none for HS256, whose stranger is attackerSecret).
	var stranger crypto.Signer
	strangerSig := hmacSig(sha256.New, attackerSecret)
	if !hs {
		stranger = strangerKey(t, alg)
		strangerSig = methodSig(jwt.GetSigningMethod(alg), stranger)
	}
	octJWK := map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(attackerSecret)}

	var groups []attackGroup

	// alg: none, however spelled, with or without a signature or a kid.
	var none []attack
	for _, spelling := range []string{"none", "None", "NONE", "nOnE"} {
		none = append(none,
			attack{name: spelling + " unsigned", header: map[string]any{"alg": spelling}, sign: fixedSig("")},
			attack{name: spelling + " with the issued signature", header: map[string]any{"alg": spelling}, sign: fixedSig(issuedSig)},
			attack{name: spelling + " unsigned without kid", header: map[string]any{"alg": spelling, "kid": nil}, sign: fixedSig("")},
		)
	}
	none = append(none,
		attack{name: "no alg, unsigned", header: map[string]any{"alg": nil, "kid": nil}, sign: fixedSig("")},
		attack{name: "no alg, signed", header: map[string]any{"alg": nil}},
		attack{name: "empty alg, unsigned", header: map[string]any{"alg": ""}, sign: fixedSig("")},
	)
	groups = append(groups, group("alg none", none...))

	// Another algorithm than the configured one, signed with the real key
	// wherever that key can sign it.
	switching := []attack{
		{name: "alg as a list", header: map[string]any{"alg": []string{alg}}},
		{name: "alg in lower case", header: map[string]any{"alg": strings.ToLower(alg)}},
	}
	switch alg {
	case token.HS256:
		switching = append(switching,
			attack{name: "HS384", header: map[string]any{"alg": "HS384"}, sign: hmacSig(sha512.New384, []byte(secret))},
			attack{name: "HS512", header: map[string]any{"alg": "HS512"}, sign: hmacSig(sha512.New, []byte(secret))},
			attack{name: "RS256 header over an HS256 signature", header: map[string]any{"alg": "RS256"}},
			attack{name: "RS256 signed by an attacker", header: map[string]any{"alg": "RS256"}, sign: methodSig(jwt.SigningMethodRS256, attackerRSA)},
		)
	case token.RS256:
		switching = append(switching,
			attack{name: "RS384", header: map[string]any{"alg": "RS384"}, sign: methodSig(jwt.SigningMethodRS384, f.sign)},
			attack{name: "RS512", header: map[string]any{"alg": "RS512"}, sign: methodSig(jwt.SigningMethodRS512, f.sign)},
			attack{name: "PS256", header: map[string]any{"alg": "PS256"}, sign: methodSig(jwt.SigningMethodPS256, f.sign)},
		)
	case token.EdDSA:
		switching = append(switching, attack{name: "Ed25519", header: map[string]any{"alg": "Ed25519"}})
	case token.ES256:
		switching = append(switching, attack{name: "ES384 header", header: map[string]any{"alg": "ES384"}})
	}
	for _, other := range algorithms {
		if other != alg {
			o := newFixture(t, other)
			switching = append(switching, attack{name: other + " with its own key", header: map[string]any{"alg": other},
				sign: methodSig(jwt.GetSigningMethod(other), o.sign)})
		}
	}
	groups = append(groups, group("algorithm switching", switching...))

	// The public key, which anyone can fetch, as an HMAC secret.
	if !hs {
		var confusion []attack
		for name, pub := range publicForms(t, f) {
			for _, mac := range []string{"HS256", "HS384", "HS512"} {
				confusion = append(confusion, attack{name: mac + " with the " + name, header: map[string]any{"alg": mac},
					sign: hmacSig(hmacHashes[mac], pub)})
			}
		}
		groups = append(groups, group("HMAC keyed with the public key", confusion...))
	}

	// Another key, and claims changed under the issued signature.
	tampering := []attack{
		{name: "is_admin changed under the issued signature", claims: map[string]any{"is_admin": false}, sign: fixedSig(issuedSig)},
		{name: "user_id changed under the issued signature", claims: map[string]any{"user_id": otherUser, "sub": otherUser}, sign: fixedSig(issuedSig)},
		{name: "exp extended under the issued signature", claims: map[string]any{"exp": number(unix + 86400)}, sign: fixedSig(issuedSig)},
		{name: "no signature", sign: fixedSig("")},
	}
	if hs {
		tampering = append(tampering,
			attack{name: "secret in upper case", sign: hmacSig(sha256.New, []byte(strings.ToUpper(string(secret))))},
			attack{name: "empty secret", sign: hmacSig(sha256.New, nil)},
			attack{name: "another secret", sign: hmacSig(sha256.New, attackerSecret)},
		)
	} else {
		tampering = append(tampering, attack{name: "another key under our kid", sign: strangerSig})
	}
	groups = append(groups, group("tampering", tampering...))

	// Header parameters that name a key, or change how the token is read:
	// refused even on a token signed with the real key.
	ownJWKS := "https://users.internal/.well-known/jwks.json"
	sources := []attack{
		{name: "jwk of an attacker's RSA key", header: map[string]any{"jwk": publicJWK(t, &attackerRSA.PublicKey)}},
		{name: "jwk oct", header: map[string]any{"jwk": octJWK}},
		{name: "jku", header: map[string]any{"jku": "https://attacker.example/jwks.json"}},
		{name: "jku naming our own JWKS", header: map[string]any{"jku": ownJWKS}},
		{name: "x5u", header: map[string]any{"x5u": "https://attacker.example/cert.pem"}},
		{name: "x5c", header: map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString([]byte("not a certificate"))}}},
		{name: "x5t", header: map[string]any{"x5t": "abc"}},
		{name: "x5t#S256", header: map[string]any{"x5t#S256": "abc"}},
		{name: "crit", header: map[string]any{"crit": []string{"exp"}}},
	}
	if hs {
		// The attacker's own key signs, and the header carries it.
		sources = append(sources,
			attack{name: "RS256 signed by the key in jwk", header: map[string]any{"alg": "RS256", "jwk": publicJWK(t, &attackerRSA.PublicKey)},
				sign: methodSig(jwt.SigningMethodRS256, attackerRSA)},
			attack{name: "HS256 signed by the secret in jwk", header: map[string]any{"jwk": octJWK}, sign: hmacSig(sha256.New, attackerSecret)},
		)
	} else {
		var doc struct{ Keys []map[string]any }
		if err := json.Unmarshal(f.svc.JWKS(), &doc); err != nil {
			t.Fatal(err)
		}
		strangerJWK := publicJWK(t, stranger.Public())
		sources = append(sources,
			attack{name: "jwk holding our own published key", header: map[string]any{"jwk": doc.Keys[0]}},
			attack{name: "signed by the key in jwk", header: map[string]any{"jwk": strangerJWK}, sign: strangerSig},
			attack{name: "signed by the key in jwk, no kid", header: map[string]any{"jwk": strangerJWK, "kid": nil}, sign: strangerSig},
			attack{name: "signed by the key at jku", header: map[string]any{"jku": "https://attacker.example/jwks.json"}, sign: strangerSig},
			attack{name: "signed by the key at x5u", header: map[string]any{"x5u": "https://attacker.example/c.pem"}, sign: strangerSig},
		)
	}
	groups = append(groups, group("header key sources", sources...))

	// kid: only the kids of the key set name a key; nothing is looked up by
	// path or query, and a file a kid names is never read.
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "secret_key")
	fileSecret := []byte("a secret kept in a file the kid names, 0123456789")
	if err := os.WriteFile(keyFile, fileSecret, 0o600); err != nil {
		t.Fatal(err)
	}
	kids := []any{
		"attacker", "unknown", "", "../../../../dev/null", "../../../../../../dev/null", "/dev/null", "secret_key",
		"../secret_key", keyFile, "' OR 1=1 --", "' OR '1'='1' --", `" UNION SELECT 'a' --`, "kid\x00", kid + "\x00", strings.ToUpper(kid), 0, []string{kid}, nil,
		strings.Repeat("k", 10_000),
	}
	signers := map[string]sigFunc{"the real key": ours}
	if hs {
		signers["an empty key"] = hmacSig(sha256.New, nil)
		signers["the named file"] = hmacSig(sha256.New, fileSecret)
	} else {
		signers["another key"] = strangerSig
	}
	var kidTricks []attack
	for _, k := range kids {
		for by, sign := range signers {
			kidTricks = append(kidTricks, attack{name: fmt.Sprintf("%.40q signed with %s", fmt.Sprint(k), by), header: map[string]any{"kid": k}, sign: sign})
		}
	}
	groups = append(groups, group("kid tricks", kidTricks...))

	// Claims, signed with the real key.
	future, past := number(unix+3600), number(unix-3600)
	groups = append(groups, group("claims",
		attack{name: "iss wrong", claims: map[string]any{"iss": "someone-else"}},
		attack{name: "iss one letter", claims: map[string]any{"iss": "x"}},
		attack{name: "iss missing", claims: map[string]any{"iss": nil}},
		attack{name: "iss as a list", claims: map[string]any{"iss": []string{token.Issuer}}},
		attack{name: "iss in upper case", claims: map[string]any{"iss": strings.ToUpper(token.Issuer)}},
		attack{name: "nbf in the future", claims: map[string]any{"nbf": future}},
		attack{name: "nbf fractional future", claims: map[string]any{"nbf": json.Number(string(future) + ".5")}},
		attack{name: "exp in the past", claims: map[string]any{"exp": past, "iat": number(unix - 7200)}},
		attack{name: "exp a minute ago", claims: map[string]any{"exp": number(unix - 60)}},
		attack{name: "exp now", claims: map[string]any{"exp": number(unix)}},
		attack{name: "exp missing", claims: map[string]any{"exp": nil}},
		attack{name: "exp a past string", claims: map[string]any{"exp": string(past), "iat": number(unix - 7200)}},
		attack{name: "exp not a number", claims: map[string]any{"exp": "tomorrow"}},
		attack{name: "exp a numeric string", claims: map[string]any{"exp": string(future)}},
		attack{name: "exp overflows", claims: map[string]any{"exp": json.Number("1e400")}},
		attack{name: "exp negative", claims: map[string]any{"exp": json.Number("-1")}},
		attack{name: "iat far in the future", claims: map[string]any{"iat": future, "exp": number(unix + 7200)}},
		attack{name: "iat missing", claims: map[string]any{"iat": nil}},
		attack{name: "token_type refresh", claims: map[string]any{"token_type": token.TypeRefresh}},
		attack{name: "token_type missing", claims: map[string]any{"token_type": nil}},
		attack{name: "token_type upper", claims: map[string]any{"token_type": "ACCESS"}},
		attack{name: "sub differs", claims: map[string]any{"sub": otherUser}},
		attack{name: "sub missing", claims: map[string]any{"sub": nil}},
		attack{name: "user_id not a uuid", claims: map[string]any{"user_id": "1 OR 1=1", "sub": "1 OR 1=1"}},
		attack{name: "user_id missing", claims: map[string]any{"user_id": nil}},
		attack{name: "jti missing", claims: map[string]any{"jti": nil}},
	))

	// The token read is not the token issued: other spellings, other shapes,
	// the other type.
	lastDot := strings.LastIndex(access, ".")
	respell := func(name string, f func(tok string) string) attack { return attack{name: name, respell: f} }
	constant := func(s string) func(string) string { return func(string) string { return s } }
	groups = append(groups, group("spellings",
		respell("empty", constant("")),
		respell("one dot", constant(".")),
		respell("two dots", constant("..")),
		respell("three dots", constant("...")),
		respell("a.b.c", constant("a.b.c")),
		respell("1000 dots", constant(strings.Repeat(".", 1000))),
		respell("trailing dot", func(tok string) string { return tok + "." }),
		respell("leading dot", func(tok string) string { return "." + tok }),
		respell("padded", func(tok string) string { return tok + "=" }),
		respell("last character cut", func(tok string) string { return tok[:len(tok)-1] }),
		respell("standard base64 in the signature", func(tok string) string {
			i := strings.LastIndex(tok, ".")
			return tok[:i+1] + "+" + tok[i+2:]
		}),
		respell("LF in the signature", func(tok string) string { return tok[:len(tok)-8] + "\n" + tok[len(tok)-8:] }),
		respell("CR LF after the header", func(tok string) string { return strings.Replace(tok, ".", ".\r\n", 1) }),
		respell("space before a dot", func(tok string) string { return strings.Replace(tok, ".", " .", 1) }),
		respell("Bearer prefix", func(tok string) string { return "Bearer " + tok }),
		respell("empty claims, HS256 header", constant("eyJhbGciOiJIUzI1NiJ9.e30."+strings.Repeat("A", 43))),
		respell("oversized", func(string) string {
			return assemble(t, header, tokentest.With(claims, map[string]any{"pad": strings.Repeat("x", token.MaxTokenLen)}), ours)
		}),
		respell("the issued refresh token", constant(refresh)),
		respell("the issued header and signature around the refresh claims", func(string) string {
			return access[:strings.Index(access, ".")+1] + segment(t, rclaims) + access[lastDot:]
		}),
	))

	// A refresh token must be one: an access token, or refresh claims
	// relabelled, are refused by ParseRefresh.
	groups = append(groups, attackGroup{
		name: "refresh", parse: parseRefresh, header: rheader, claims: rclaims, sign: ours,
		attacks: []attack{
			{name: "token_type access", claims: map[string]any{"token_type": token.TypeAccess}},
			{name: "token_type missing", claims: map[string]any{"token_type": nil}},
			{name: "the issued access token", respell: constant(access)},
			{name: "alg none", header: map[string]any{"alg": "none"}, sign: fixedSig("")},
			{name: "exp extended under the issued signature", claims: map[string]any{"exp": number(unix + 7*86400)},
				sign: fixedSig(refresh[strings.LastIndex(refresh, ".")+1:])},
		},
	})
	return groups
}
