package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
)

// The signing algorithms the service supports.
const (
	HS256 = "HS256" // HMAC-SHA256 with a shared secret
	EdDSA = "EdDSA" // Ed25519
	ES256 = "ES256" // ECDSA on P-256 with SHA-256
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
)

// ValidAlgorithm reports whether alg is one of the supported algorithms.
func ValidAlgorithm(alg string) bool {
	switch alg {
	case HS256, EdDSA, ES256, RS256:
		return true
	}
	return false
}

// MinSecretLen is the shortest HS256 secret accepted: as long as the hash
// output, as RFC 7518 section 3.2 asks.
const MinSecretLen = 32

// minRSABits is the smallest RSA modulus accepted for RS256.
const minRSABits = 2048

// generatedRSABits is the size of RSA keys that GenerateKeyFile makes.
const generatedRSABits = 3072

// Secret is an HS256 signing secret. It never prints: formatting, logging and
// JSON encoding all show "[REDACTED]".
type Secret []byte

const redacted = "[REDACTED]"

// String keeps the secret out of formatted output.
func (Secret) String() string { return redacted }

// GoString keeps the secret out of %#v output.
func (Secret) GoString() string { return redacted }

// Format keeps the secret out of every fmt verb, %x and %d included.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue keeps the secret out of structured logs.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON keeps the secret out of JSON dumps of a configuration.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// key is one signing key and its public half.
type key struct {
	kid    string
	sign   any // []byte, ed25519.PrivateKey, *ecdsa.PrivateKey or *rsa.PrivateKey
	verify any // []byte, ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey
	jwk    *jwk
}

// KeySet is the keys of one algorithm that the service signs and verifies
// tokens with. The first key signs; every key verifies the tokens that carry
// its kid, so that after a rotation the tokens signed by an older key stay
// valid until they expire. A KeySet never changes once made.
type KeySet struct {
	alg   string
	keys  []*key
	byKID map[string]*key
	jwks  []byte
}

// NewHMACKeySet returns an HS256 key set. The first secret signs. Each secret
// must be at least MinSecretLen bytes. The kid of a secret is derived from it
// by a one-way hash, so it names the secret without revealing it.
func NewHMACKeySet(secrets ...Secret) (*KeySet, error) {
	if len(secrets) == 0 {
		return nil, errors.New("token: no HS256 secret")
	}
	ks := &KeySet{alg: HS256}
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("token: HS256 secret %d is %d bytes, at least %d are needed", i+1, len(s), MinSecretLen)
		}
		b := append([]byte(nil), s...)
		sum := sha256.Sum256(append([]byte("usersvc-kid:"), b...))
		ks.keys = append(ks.keys, &key{kid: hex.EncodeToString(sum[:])[:16], sign: b, verify: b})
	}
	return ks.index()
}

// NewKeySet returns a key set for an asymmetric algorithm (EdDSA, ES256 or
// RS256) from private keys of the matching type: ed25519.PrivateKey,
// *ecdsa.PrivateKey on P-256, or *rsa.PrivateKey of at least 2048 bits. The
// first key signs. Each key's kid is its RFC 7638 JWK thumbprint.
func NewKeySet(alg string, keys ...crypto.Signer) (*KeySet, error) {
	if !ValidAlgorithm(alg) || alg == HS256 {
		return nil, fmt.Errorf("token: %q is not an asymmetric algorithm", alg)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("token: no %s key", alg)
	}
	ks := &KeySet{alg: alg}
	for i, signer := range keys {
		k, err := newAsymmetricKey(alg, signer)
		if err != nil {
			return nil, fmt.Errorf("token: key %d: %w", i+1, err)
		}
		ks.keys = append(ks.keys, k)
	}
	return ks.index()
}

func newAsymmetricKey(alg string, signer crypto.Signer) (*key, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	k := &key{sign: signer}
	switch alg {
	case EdDSA:
		priv, ok := signer.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s needs an Ed25519 key, not %s", alg, keyType(signer))
		}
		pub := priv.Public().(ed25519.PublicKey)
		k.verify = pub
		k.jwk = &jwk{Kty: "OKP", Crv: "Ed25519", X: b64(pub)}
	case ES256:
		priv, ok := signer.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s needs a P-256 ECDSA key, not %s", alg, keyType(signer))
		}
		point, err := priv.PublicKey.Bytes() // 0x04 || x || y
		if err != nil {
			return nil, err
		}
		k.verify = &priv.PublicKey
		k.jwk = &jwk{Kty: "EC", Crv: "P-256", X: b64(point[1:33]), Y: b64(point[33:])}
	case RS256:
		priv, ok := signer.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s needs an RSA key, not %s", alg, keyType(signer))
		}
		if bits := priv.N.BitLen(); bits < minRSABits {
			return nil, fmt.Errorf("the RSA key has %d bits, at least %d are needed", bits, minRSABits)
		}
		k.verify = &priv.PublicKey
		k.jwk = &jwk{Kty: "RSA", N: b64(priv.N.Bytes()), E: b64(big.NewInt(int64(priv.E)).Bytes())}
	}
	k.kid = k.jwk.thumbprint()
	k.jwk.Kid, k.jwk.Alg, k.jwk.Use = k.kid, alg, "sig"
	return k, nil
}

func keyType(k any) string {
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return "an Ed25519 key"
	case *ecdsa.PrivateKey:
		return "an ECDSA " + k.Curve.Params().Name + " key"
	case *rsa.PrivateKey:
		return "an RSA key"
	}
	return fmt.Sprintf("a %T", k)
}

// index fills byKID and the JWKS document.
func (ks *KeySet) index() (*KeySet, error) {
	ks.byKID = make(map[string]*key, len(ks.keys))
	doc := struct {
		Keys []*jwk `json:"keys"`
	}{Keys: []*jwk{}}
	for _, k := range ks.keys {
		if _, dup := ks.byKID[k.kid]; dup {
			return nil, fmt.Errorf("token: the key %s is in the set twice", k.kid)
		}
		ks.byKID[k.kid] = k
		if k.jwk != nil {
			doc.Keys = append(doc.Keys, k.jwk)
		}
	}
	var err error
	ks.jwks, err = json.Marshal(doc)
	return ks, err
}

// Algorithm returns the algorithm of the set.
func (ks *KeySet) Algorithm() string { return ks.alg }

// KIDs returns the key ids of the set, the signing key's first.
func (ks *KeySet) KIDs() []string {
	ids := make([]string, len(ks.keys))
	for i, k := range ks.keys {
		ids[i] = k.kid
	}
	return ids
}

// JWKS returns the JSON Web Key Set of the public keys, {"keys":[…]}, for
// /.well-known/jwks.json. It is {"keys":[]} for HS256, whose key is secret.
func (ks *KeySet) JWKS() []byte { return append([]byte(nil), ks.jwks...) }

// jwk is the public half of a key as a JSON Web Key (RFC 7517, RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// thumbprint returns the RFC 7638 thumbprint of the key: the base64url
// SHA-256 of its required members, in lexicographic order, with no
// whitespace. The members are base64url or fixed names, so they need no
// JSON escaping.
func (j *jwk) thumbprint() string {
	var canonical string
	switch j.Kty {
	case "OKP":
		canonical = `{"crv":"` + j.Crv + `","kty":"OKP","x":"` + j.X + `"}`
	case "EC":
		canonical = `{"crv":"` + j.Crv + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	case "RSA":
		canonical = `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	}
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// LoadPrivateKeys parses every private key in a PEM file, in order: PKCS#8
// ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") and PKCS#1 ("RSA PRIVATE KEY")
// blocks. "EC PARAMETERS" blocks are skipped; any other block, an encrypted
// key, or a file with no key is an error.
func LoadPrivateKeys(pemBytes []byte) ([]crypto.Signer, error) {
	var keys []crypto.Signer
	rest := pemBytes
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted {
			return nil, fmt.Errorf("token: PEM block %d is encrypted", n)
		}
		var (
			k   any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PARAMETERS":
			continue
		default:
			return nil, fmt.Errorf("token: PEM block %d is a %q, not a private key", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("token: PEM block %d: %w", n, err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("token: PEM block %d holds %s, which cannot sign", n, keyType(k))
		}
		keys = append(keys, signer)
	}
	if len(keys) == 0 {
		return nil, errors.New("token: no private key in the PEM data")
	}
	return keys, nil
}

// LoadKeyFile reads the private keys of alg from a PEM file (see
// LoadPrivateKeys). The first key signs.
func LoadKeyFile(path, alg string) (*KeySet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	keys, err := LoadPrivateKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	ks, err := NewKeySet(alg, keys...)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return ks, nil
}

// GenerateKeyFile creates a new private key for alg (Ed25519, P-256 or
// RSA-3072) and writes it to path as a PKCS#8 PEM block, readable by its owner
// only. It never replaces a file: when path exists it returns an error that
// matches fs.ErrExist. The file appears complete or not at all.
func GenerateKeyFile(path, alg string) error {
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		signer, err = rsa.GenerateKey(rand.Reader, generatedRSABits)
	default:
		return fmt.Errorf("token: cannot generate a key for %q", alg)
	}
	if err != nil {
		return fmt.Errorf("token: generating a %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return fmt.Errorf("token: encoding the %s key: %w", alg, err)
	}
	return writeNewFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// LoadOrGenerate returns the key set in the PEM file at path, first creating
// the file with one new key for alg (see GenerateKeyFile) when there is none.
// created reports whether it made the file.
func LoadOrGenerate(path, alg string) (ks *KeySet, created bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		err = GenerateKeyFile(path, alg)
		switch {
		case err == nil:
			created = true
		case !errors.Is(err, fs.ErrExist): // another process may have just made it
			return nil, false, err
		}
	}
	ks, err = LoadKeyFile(path, alg)
	return ks, created, err
}

// LoadOrGenerateSecret returns the HS256 secret kept in the file at path,
// first creating the file with a new random secret (260 bits, as text) when
// there is none. created reports whether it made the file. Surrounding
// whitespace in the file is ignored.
func LoadOrGenerateSecret(path string) (s Secret, created bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		fresh := rand.Text() + rand.Text()
		err = writeNewFile(path, []byte(fresh+"\n"))
		switch {
		case err == nil:
			return Secret(fresh), true, nil
		case !errors.Is(err, fs.ErrExist):
			return nil, false, err
		}
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("token: %w", err)
	}
	s = Secret(strings.TrimSpace(string(data)))
	if len(s) < MinSecretLen {
		return nil, false, fmt.Errorf("token: the secret in %s is shorter than %d bytes", path, MinSecretLen)
	}
	return s, false, nil
}

// writeNewFile writes data to path with mode 0600, creating its directory
// (0700) when needed. It fails with fs.ErrExist rather than replace a file,
// and a reader never sees the file half-written: it is written aside, then
// linked into place.
func writeNewFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("token: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("token: %s already exists: %w", path, fs.ErrExist)
		}
		// Some file systems have no hard links: create the file exclusively.
		return writeExclusive(path, data)
	}
	return nil
}

func writeExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("token: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("token: %w", err)
	}
	return nil
}
