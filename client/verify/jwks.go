package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// maxJWKSBytes bounds the key set document.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted, as the service does.
const minRSABits = 2048

// publicKey is one key of the set and the one algorithm it verifies.
type publicKey struct {
	alg string
	key any // ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey
}

// jwksKeys is the service's key set, fetched from its JWKS URL and kept.
type jwksKeys struct {
	url          string
	hc           *http.Client
	now          func() time.Time
	minRefresh   time.Duration
	maxAge       time.Duration
	fetchTimeout time.Duration

	fetching sync.Mutex // held by the one fetch in progress

	mu        sync.Mutex
	keys      map[string]publicKey
	loaded    bool      // a set was fetched once
	fetchedAt time.Time // of the set in use
	attempted time.Time // of the last fetch, failed or not
	gen       uint64    // counts the sets fetched
	lastErr   error     // of the last fetch
}

// key returns the key kid for alg, fetching the set first when kid is
// unknown or the set is old, as far as the refresh interval allows.
func (j *jwksKeys) key(ctx context.Context, kid, alg string) (any, error) {
	k, ok, fresh, gen := j.lookup(kid)
	switch {
	case ok && fresh:
	case ok:
		// An old set: refresh it unless someone is, and meanwhile use it.
		if j.fetching.TryLock() {
			j.fetchIfDue(ctx, gen)
			j.fetching.Unlock()
			k, ok, _, _ = j.lookup(kid)
		}
	default:
		j.fetching.Lock()
		j.fetchIfDue(ctx, gen)
		j.fetching.Unlock()
		k, ok, _, _ = j.lookup(kid)
	}
	if !ok {
		j.mu.Lock()
		loaded, lastErr := j.loaded, j.lastErr
		j.mu.Unlock()
		if !loaded {
			if lastErr == nil {
				return nil, ErrKeysUnavailable
			}
			return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, lastErr)
		}
		return nil, invalid("signed by an unknown key")
	}
	if k.alg != alg {
		return nil, invalid("algorithm does not match the key")
	}
	return k.key, nil
}

// lookup returns the key kid, whether the set is young enough, and the
// set's generation.
func (j *jwksKeys) lookup(kid string) (publicKey, bool, bool, uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	k, ok := j.keys[kid]
	fresh := j.loaded && j.now().Sub(j.fetchedAt) < j.maxAge
	return k, ok, fresh, j.gen
}

// fetchIfDue fetches the set unless another fetch replaced generation gen
// meanwhile or the last attempt is more recent than the refresh interval.
// The caller holds j.fetching.
func (j *jwksKeys) fetchIfDue(ctx context.Context, gen uint64) {
	j.mu.Lock()
	due := j.gen == gen && (j.attempted.IsZero() || j.now().Sub(j.attempted) >= j.minRefresh)
	j.mu.Unlock()
	if due {
		_ = j.fetchLocked(ctx)
	}
}

// fetch fetches the set now.
func (j *jwksKeys) fetch(ctx context.Context) error {
	j.fetching.Lock()
	defer j.fetching.Unlock()
	return j.fetchLocked(ctx)
}

// fetchLocked fetches the set and, on success, puts it in use. The caller
// holds j.fetching. A caller that gives up does not cut the fetch short: the
// attempt counts against the refresh interval, so it should finish.
func (j *jwksKeys) fetchLocked(ctx context.Context) error {
	j.mu.Lock()
	j.attempted = j.now()
	j.mu.Unlock()
	keys, err := j.download(ctx)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lastErr = err
	if err != nil {
		return err
	}
	j.keys, j.loaded, j.fetchedAt = keys, true, j.now()
	j.gen++
	return nil
}

// download gets and parses the key set document.
func (j *jwksKeys) download(ctx context.Context) (map[string]publicKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", j.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: status %d", j.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", j.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("fetching %s: the key set is larger than %d bytes", j.url, maxJWKSBytes)
	}
	return parseJWKS(body)
}

// jwk is one key of a JSON Web Key Set, as far as it matters here.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// parseJWKS reads a key set. Keys that are not signing keys of a supported
// type, or carry no kid, are left out.
func parseJWKS(doc []byte) (map[string]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("the key set is not JSON: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`the key set has no "keys"`)
	}
	out := make(map[string]publicKey, len(set.Keys))
	for _, raw := range set.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil || k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		pk, err := k.public()
		if err != nil {
			continue
		}
		if k.Alg != "" && k.Alg != pk.alg {
			continue
		}
		out[k.Kid] = pk
	}
	return out, nil
}

// public returns the key k describes, and the algorithm it is for.
func (k *jwk) public() (publicKey, error) {
	b64 := base64.RawURLEncoding
	switch {
	case k.Kty == "OKP" && k.Crv == "Ed25519":
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return publicKey{}, errors.New("bad Ed25519 key")
		}
		return publicKey{alg: "EdDSA", key: ed25519.PublicKey(x)}, nil
	case k.Kty == "EC" && k.Crv == "P-256":
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return publicKey{}, errors.New("bad P-256 key")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, err
		}
		return publicKey{alg: "ES256", key: pub}, nil
	case k.Kty == "RSA":
		n, errN := b64.DecodeString(k.N)
		e, errE := b64.DecodeString(k.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return publicKey{}, errors.New("bad RSA key")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			return publicKey{}, errors.New("weak RSA key")
		}
		return publicKey{alg: "RS256", key: pub}, nil
	}
	return publicKey{}, errors.New("unsupported key type")
}
