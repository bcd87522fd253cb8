// Package password hashes and checks user passwords.
//
// New hashes are argon2id in the PHC string format. Verification also accepts
// the hashes written by the Django predecessor of this service (pbkdf2_sha256,
// pbkdf2_sha1, argon2, bcrypt_sha256 and bcrypt), and asks for every one of
// them, and for argon2id hashes with other parameters, to be rehashed.
//
// Hashing is expensive in memory and CPU on purpose, so the number of hashes
// computed at once is bounded: a burst of logins waits for a slot (or for its
// context to end) instead of exhausting memory.
//
// With WithTracerProvider, every hash is a span ("password.hash") and every
// verification one too ("password.verify", the same for a dummy check
// against an unknown email), with the time it waited for a slot.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/argon2"
)

// Params are the argon2id parameters of new hashes.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams returns the OWASP recommendation for argon2id: 19 MiB, two
// passes, one lane, a 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Limits on the parameters of a stored hash, so that a corrupt or hostile
// row cannot make one verification take gigabytes or minutes.
const (
	maxMemory     = 1 << 20 // KiB: 1 GiB
	maxTime       = 64
	maxThreads    = 64
	minSaltLen    = 8
	maxSaltLen    = 256
	minKeyLen     = 16
	maxKeyLen     = 256
	maxPBKDF2Iter = 10_000_000
	maxBcryptCost = 18
)

func (p Params) validate() error {
	switch {
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("password: memory %d KiB is out of range", p.Memory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("password: time %d is out of range", p.Time)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("password: threads %d is out of range", p.Threads)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("password: salt length %d is out of range", p.SaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("password: key length %d is out of range", p.KeyLen)
	}
	return nil
}

// Hasher hashes new passwords with argon2id and verifies stored hashes.
// It is safe for concurrent use.
type Hasher struct {
	params  Params
	sem     chan struct{}
	observe func(time.Duration)
	collect bool         // a garbage collection after each hash, in its slot
	tracer  trace.Tracer // nil: no spans
	// dummy is a hash of a random password with params, made at
	// construction, against which Burn verifies.
	dummy *argon2Hash
}

// Option configures a Hasher.
type Option func(*Hasher)

// WithParams sets the argon2id parameters of new hashes. Stored hashes with
// other parameters verify, and are reported for rehashing.
func WithParams(p Params) Option { return func(h *Hasher) { h.params = p } }

// WithMaxConcurrent bounds how many hashes are computed at once. The
// default is GOMAXPROCS: hashing is CPU-bound, so more would only add memory.
func WithMaxConcurrent(n int) Option {
	return func(h *Hasher) {
		if n > 0 {
			h.sem = make(chan struct{}, n)
		}
	}
}

// WithCollectAfterHash has every hash followed, while it still holds its
// slot, by a garbage collection (runtime.GC). The 19 MiB an argon2id hash
// allocates (golang.org/x/crypto/argon2 takes no buffer to reuse) is then
// free before the next hash starts, and the next one reuses those pages;
// otherwise, under a soft memory limit that holds little more than the
// hashes in flight, the runtime gives the pages back to the system between
// hashes and every hash faults 19 MiB of fresh ones in; and without a
// limit, the heap of a login storm grows to twice the hashes in flight
// before the collector runs (RSS 130 to 150 MiB on two cores, 75 to 80 MiB
// with this). A collection of the service's small heap costs about a
// millisecond; the hash's own memory holds no pointers and is not scanned.
func WithCollectAfterHash() Option { return func(h *Hasher) { h.collect = true } }

// WithObserver has f called with the duration of every hash computation
// (not counting the wait for a slot), e.g. to feed a histogram.
func WithObserver(f func(time.Duration)) Option { return func(h *Hasher) { h.observe = f } }

// WithTracerProvider records a span of tp for every hash and verification.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(h *Hasher) { h.tracer = tp.Tracer("github.com/usersvc/usersvc/internal/password") }
}

// Span names.
const (
	spanHash   = "password.hash"
	spanVerify = "password.verify"
)

// New returns a Hasher. It computes one hash before it returns (the one
// Burn checks against), so it takes as long as one Hash.
func New(opts ...Option) (*Hasher, error) {
	h := &Hasher{params: DefaultParams()}
	for _, opt := range opts {
		opt(h)
	}
	if err := h.params.validate(); err != nil {
		return nil, err
	}
	if h.sem == nil {
		h.sem = make(chan struct{}, max(runtime.GOMAXPROCS(0), 1))
	}
	dummy, err := parsePHC(h.encode(rand.Text()))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Params returns the parameters of new hashes.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the argon2id PHC string of password:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>, salt and hash in base64
// without padding. It fails only when ctx ends before a slot is free.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	var encoded string
	if err := h.run(ctx, spanHash, func() { encoded = h.encode(password) }); err != nil {
		return "", err
	}
	return encoded, nil
}

// encode hashes password with a fresh salt, without taking a slot.
func (h *Hasher) encode(password string) string {
	p := h.params
	salt := make([]byte, p.SaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether password matches encoded and whether encoded should
// be replaced with a fresh Hash. A malformed, empty or unusable ("!…")
// encoded hash never matches and is not an error; it costs as much as a
// check against a current hash, so that such an account cannot be told apart
// by timing. The only error is ctx ending before a slot is free.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	check, rehash := h.checker(encoded)
	if check == nil {
		return false, false, h.run(ctx, spanVerify, func() { h.dummy.check(password) })
	}
	if err := h.run(ctx, spanVerify, func() { ok = check(password) }); err != nil {
		return false, false, err
	}
	return ok, ok && rehash, nil
}

// Burn does the work of one Verify against a hash with the current
// parameters, so that a login for an unknown email takes as long as one for a
// known email. It returns early when ctx ends.
func (h *Hasher) Burn(ctx context.Context, password string) {
	_ = h.run(ctx, spanVerify, func() { h.dummy.check(password) })
}

// run calls f in a hashing slot and reports its duration to the observer,
// within a span named name when tracing.
func (h *Hasher) run(ctx context.Context, name string, f func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var span trace.Span
	if h.tracer != nil {
		_, span = h.tracer.Start(ctx, name)
		defer span.End()
	}
	queued := time.Now()
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		if span != nil {
			span.SetStatus(codes.Error, "no hashing slot before the deadline")
		}
		return ctx.Err()
	}
	defer func() { <-h.sem }()
	start := time.Now()
	if span != nil {
		span.SetAttributes(attribute.Float64("usersvc.password.wait_ms", float64(start.Sub(queued).Microseconds())/1000))
	}
	f()
	if h.observe != nil {
		h.observe(time.Since(start))
	}
	if h.collect {
		runtime.GC()
	}
	return nil
}

// checker parses encoded and returns a function that checks a password
// against it, and whether encoded should be rehashed. It returns a nil
// function when encoded is malformed or unusable.
func (h *Hasher) checker(encoded string) (func(string) bool, bool) {
	switch {
	case encoded == "" || strings.HasPrefix(encoded, "!"):
		return nil, false
	case strings.HasPrefix(encoded, "$argon2"):
		a, err := parsePHC(encoded)
		if err != nil {
			return nil, false
		}
		return a.check, !a.current(h.params)
	}
	scheme, rest, found := strings.Cut(encoded, "$")
	if !found {
		return nil, false
	}
	switch scheme {
	case "pbkdf2_sha256", "pbkdf2_sha1":
		return djangoPBKDF2(scheme, rest), true
	case "argon2":
		// Django keeps argon2-cffi's PHC string after its own prefix.
		a, err := parsePHC("$" + rest)
		if err != nil {
			return nil, false
		}
		return a.check, true
	case "bcrypt_sha256":
		return djangoBcrypt(rest, true), true
	case "bcrypt":
		return djangoBcrypt(rest, false), true
	}
	return nil, false
}

// b64 is the base64 of PHC strings: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// argon2Hash is a parsed PHC argon2 string.
type argon2Hash struct {
	variant string // "argon2id" or "argon2i"
	params  Params
	salt    []byte
	key     []byte
}

var errMalformed = errors.New("malformed hash")

// parsePHC parses $argon2id$v=19$m=…,t=…,p=…$salt$hash (or argon2i). Only
// version 19 is accepted: it is the only one the argon2 package computes.
func parsePHC(s string) (*argon2Hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, errMalformed
	}
	a := &argon2Hash{variant: parts[1]}
	if a.variant != "argon2id" && a.variant != "argon2i" {
		return nil, errMalformed
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, errMalformed
	}
	var seen [3]bool
	for kv := range strings.SplitSeq(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, errMalformed
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || (len(v) > 1 && v[0] == '0') {
			return nil, errMalformed
		}
		var i int
		switch k {
		case "m":
			i, a.params.Memory = 0, uint32(n)
		case "t":
			i, a.params.Time = 1, uint32(n)
		case "p":
			if n > 255 {
				return nil, errMalformed
			}
			i, a.params.Threads = 2, uint8(n)
		default:
			return nil, errMalformed
		}
		if seen[i] {
			return nil, errMalformed
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return nil, errMalformed
	}
	var err error
	if a.salt, err = b64.DecodeString(parts[4]); err != nil {
		return nil, errMalformed
	}
	if a.key, err = b64.DecodeString(parts[5]); err != nil {
		return nil, errMalformed
	}
	a.params.SaltLen, a.params.KeyLen = uint32(len(a.salt)), uint32(len(a.key))
	if a.params.validate() != nil {
		return nil, errMalformed
	}
	return a, nil
}

// current reports whether the hash was made the way New would make it now.
func (a *argon2Hash) current(p Params) bool { return a.variant == "argon2id" && a.params == p }

func (a *argon2Hash) check(password string) bool {
	p := a.params
	var key []byte
	if a.variant == "argon2id" {
		key = argon2.IDKey([]byte(password), a.salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	} else {
		key = argon2.Key([]byte(password), a.salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	}
	return subtle.ConstantTimeCompare(key, a.key) == 1
}
