package password

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/usersvc/usersvc/internal/account"
)

var _ account.Hasher = (*Hasher)(nil)

// fastParams keep tests quick where the cost does not matter.
var fastParams = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newHasher(t testing.TB, opts ...Option) *Hasher {
	t.Helper()
	h, err := New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func TestHashFormat(t *testing.T) {
	h := newHasher(t)
	encoded, err := h.Hash(t.Context(), "Cobol#1959rocks")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(encoded) {
		t.Fatalf("hash %q does not have the expected PHC form", encoded)
	}
	again, err := h.Hash(t.Context(), "Cobol#1959rocks")
	if err != nil {
		t.Fatal(err)
	}
	if again == encoded {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestRoundTrip(t *testing.T) {
	h := newHasher(t)
	ctx := t.Context()
	for _, pw := range []string{"Cobol#1959rocks", "", "ünïcødé pässwörd ✓", strings.Repeat("x", 1000)} {
		encoded, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatal(err)
		}
		ok, rehash, err := h.Verify(ctx, pw, encoded)
		if err != nil || !ok || rehash {
			t.Errorf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
		}
		ok, rehash, err = h.Verify(ctx, pw+"x", encoded)
		if err != nil || ok || rehash {
			t.Errorf("Verify(wrong password) = %v, %v, %v; want false, false, nil", ok, rehash, err)
		}
	}
}

func TestRehashOnChangedParams(t *testing.T) {
	ctx := t.Context()
	old := newHasher(t, WithParams(fastParams))
	encoded, err := old.Hash(ctx, "Secret#123")
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(*Params){
		"memory":  func(p *Params) { p.Memory = 128 },
		"time":    func(p *Params) { p.Time = 2 },
		"threads": func(p *Params) { p.Threads = 2 },
		"keylen":  func(p *Params) { p.KeyLen = 64 },
		"saltlen": func(p *Params) { p.SaltLen = 32 },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			p := fastParams
			change(&p)
			h := newHasher(t, WithParams(p))
			ok, rehash, err := h.Verify(ctx, "Secret#123", encoded)
			if err != nil || !ok || !rehash {
				t.Fatalf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
			}
			ok, rehash, _ = h.Verify(ctx, "Secret#124", encoded)
			if ok || rehash {
				t.Fatalf("Verify(wrong) = %v, %v; want false, false", ok, rehash)
			}
		})
	}
}

// Reference hashes made by the argon2 reference implementation:
// echo -n password | argon2 somesalt -t 2 -m 16 -p 4 -l 32 (-id or -i).
const (
	refArgon2id = "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	refArgon2i  = "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$IMit9qkFULCMA/ViizL57cnTLOa5DiVM9eMwpAvPwr4"
)

func TestReferenceArgon2(t *testing.T) {
	h := newHasher(t)
	ctx := t.Context()
	for _, encoded := range []string{refArgon2id, refArgon2i, "argon2" + refArgon2id, "argon2" + refArgon2i} {
		ok, rehash, err := h.Verify(ctx, "password", encoded)
		if err != nil || !ok || !rehash {
			t.Errorf("Verify(%q) = %v, %v, %v; want true, true, nil", encoded, ok, rehash, err)
		}
		ok, _, err = h.Verify(ctx, "Password", encoded)
		if err != nil || ok {
			t.Errorf("Verify(%q, wrong) = %v, %v; want false, nil", encoded, ok, err)
		}
	}
	// With the reference parameters configured, the argon2id hash is current.
	h = newHasher(t, WithParams(Params{Memory: 65536, Time: 2, Threads: 4, SaltLen: 8, KeyLen: 32}))
	if ok, rehash, err := h.Verify(ctx, "password", refArgon2id); err != nil || !ok || rehash {
		t.Errorf("Verify(current) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	// Django's argon2 prefix always asks for a rehash into the native form.
	if ok, rehash, err := h.Verify(ctx, "password", "argon2"+refArgon2id); err != nil || !ok || !rehash {
		t.Errorf("Verify(django argon2) = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
}

func TestParsePHCErrors(t *testing.T) {
	const salt, key = "c29tZXNhbHQ", "GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	bad := map[string]string{
		"no leading dollar":  "argon2id$v=19$m=65536,t=2,p=4$" + salt + "$" + key,
		"argon2d":            "$argon2d$v=19$m=65536,t=2,p=4$" + salt + "$" + key,
		"unknown variant":    "$argon3id$v=19$m=65536,t=2,p=4$" + salt + "$" + key,
		"old version":        "$argon2id$v=16$m=65536,t=2,p=4$" + salt + "$" + key,
		"no version":         "$argon2id$m=65536,t=2,p=4$" + salt + "$" + key,
		"missing p":          "$argon2id$v=19$m=65536,t=2$" + salt + "$" + key,
		"repeated m":         "$argon2id$v=19$m=65536,m=65536,t=2,p=4$" + salt + "$" + key,
		"unknown param":      "$argon2id$v=19$m=65536,t=2,p=4,x=1$" + salt + "$" + key,
		"not a number":       "$argon2id$v=19$m=lots,t=2,p=4$" + salt + "$" + key,
		"negative":           "$argon2id$v=19$m=65536,t=-2,p=4$" + salt + "$" + key,
		"leading zero":       "$argon2id$v=19$m=065536,t=2,p=4$" + salt + "$" + key,
		"zero time":          "$argon2id$v=19$m=65536,t=0,p=4$" + salt + "$" + key,
		"zero threads":       "$argon2id$v=19$m=65536,t=2,p=0$" + salt + "$" + key,
		"threads over 255":   "$argon2id$v=19$m=65536,t=2,p=256$" + salt + "$" + key,
		"memory too small":   "$argon2id$v=19$m=8,t=2,p=4$" + salt + "$" + key,
		"memory too large":   "$argon2id$v=19$m=4194304,t=2,p=4$" + salt + "$" + key,
		"time too large":     "$argon2id$v=19$m=65536,t=100000,p=4$" + salt + "$" + key,
		"salt not base64":    "$argon2id$v=19$m=65536,t=2,p=4$c29t!XNhbHQ$" + key,
		"salt padded":        "$argon2id$v=19$m=65536,t=2,p=4$" + salt + "=$" + key,
		"salt too short":     "$argon2id$v=19$m=65536,t=2,p=4$c29t$" + key,
		"hash not base64":    "$argon2id$v=19$m=65536,t=2,p=4$" + salt + "$" + key + "!",
		"hash too short":     "$argon2id$v=19$m=65536,t=2,p=4$" + salt + "$R2Ra",
		"empty hash":         "$argon2id$v=19$m=65536,t=2,p=4$" + salt + "$",
		"extra field":        "$argon2id$v=19$m=65536,t=2,p=4$" + salt + "$" + key + "$",
		"too few fields":     "$argon2id$v=19$m=65536,t=2,p=4$" + salt,
		"only the prefix":    "$argon2id",
		"empty params":       "$argon2id$v=19$$" + salt + "$" + key,
		"param without =":    "$argon2id$v=19$m65536,t=2,p=4$" + salt + "$" + key,
		"uppercase variant":  "$ARGON2ID$v=19$m=65536,t=2,p=4$" + salt + "$" + key,
		"spaces around nums": "$argon2id$v=19$m= 65536,t=2,p=4$" + salt + "$" + key,
	}
	for name, s := range bad {
		if _, err := parsePHC(s); err == nil {
			t.Errorf("%s: parsePHC(%q) succeeded", name, s)
		}
	}
	if _, err := parsePHC(refArgon2id); err != nil {
		t.Errorf("parsePHC(reference) = %v", err)
	}
	// Order of the parameters does not matter.
	if _, err := parsePHC("$argon2id$v=19$p=4,t=2,m=65536$" + salt + "$" + key); err != nil {
		t.Errorf("parsePHC(reordered) = %v", err)
	}
}

func TestUnusableAndMalformedNeverMatch(t *testing.T) {
	h := newHasher(t, WithParams(fastParams))
	ctx := t.Context()
	for _, encoded := range []string{
		"",
		"!",
		"!91HJd1rTp9hHSjIUv7RtnliGk9rxN1ncvjaSnmRn",
		"password",
		"$",
		"$$$$$",
		"md5$salt$5f4dcc3b5aa765d61d8327deb882cf99",
		"unsalted_md5$$5f4dcc3b5aa765d61d8327deb882cf99",
		"sha1$salt$hash",
		"pbkdf2_sha256$",
		"pbkdf2_sha256$abc$salt$G2ZxQP3hJIjFzRr1ew49GugkjICfOD6lD9H1LN+exs8=",
		"pbkdf2_sha256$0$salt$G2ZxQP3hJIjFzRr1ew49GugkjICfOD6lD9H1LN+exs8=",
		"pbkdf2_sha256$-5$salt$G2ZxQP3hJIjFzRr1ew49GugkjICfOD6lD9H1LN+exs8=",
		"pbkdf2_sha256$999999999999$salt$G2ZxQP3hJIjFzRr1ew49GugkjICfOD6lD9H1LN+exs8=",
		"pbkdf2_sha256$1000$$G2ZxQP3hJIjFzRr1ew49GugkjICfOD6lD9H1LN+exs8=",
		"pbkdf2_sha256$1000$salt$not base64",
		"pbkdf2_sha256$1000$salt$Fg8eBDK69Ney21jWEC1Ge/amoXc=", // a sha1-sized key
		"pbkdf2_sha256$1000$c0ffeeSaltyD0g5$G2ZxQP3hJIjFzRr1ew49GugkjICfOD6lD9H1LN+exs8=$",
		"pbkdf2_sha512$1000$salt$G2ZxQP3hJIjFzRr1ew49GugkjICfOD6lD9H1LN+exs8=",
		"bcrypt$",
		"bcrypt$$2b$12$tooshort",
		"bcrypt$$2b$31$" + strings.Repeat("a", 53), // cost far beyond any real hash
		"bcrypt_sha256$$9z$12$" + strings.Repeat("a", 53),
		"argon2$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ",
		"argon2$argon2d$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"argon2$$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
	} {
		for _, pw := range []string{"", "password", "!", encoded} {
			ok, rehash, err := h.Verify(ctx, pw, encoded)
			if ok || rehash || err != nil {
				t.Errorf("Verify(%q, %q) = %v, %v, %v; want false, false, nil", pw, encoded, ok, rehash, err)
			}
		}
	}
}

// Vectors computed independently with Python's hashlib.pbkdf2_hmac, in
// Django's layout, plus RFC 6070's first 4096-iteration PBKDF2-HMAC-SHA1
// vector.
func TestDjangoPBKDF2Vectors(t *testing.T) {
	h := newHasher(t, WithParams(fastParams))
	ctx := t.Context()
	tests := []struct{ password, encoded string }{
		{"correct horse battery staple", "pbkdf2_sha256$1000$c0ffeeSaltyD0g5$G2ZxQP3hJIjFzRr1ew49GugkjICfOD6lD9H1LN+exs8="},
		{"s3cret!Pass", "pbkdf2_sha1$1200$NaCl4tw$Fg8eBDK69Ney21jWEC1Ge/amoXc="},
		{"password", "pbkdf2_sha1$4096$salt$SwB5AbdlSJq+rUnZJvch0GWkKcE="},
	}
	for _, tt := range tests {
		ok, rehash, err := h.Verify(ctx, tt.password, tt.encoded)
		if err != nil || !ok || !rehash {
			t.Errorf("Verify(%q) = %v, %v, %v; want true, true, nil", tt.encoded, ok, rehash, err)
		}
		ok, rehash, err = h.Verify(ctx, tt.password+" ", tt.encoded)
		if err != nil || ok || rehash {
			t.Errorf("Verify(%q, wrong) = %v, %v, %v; want false, false, nil", tt.encoded, ok, rehash, err)
		}
	}
}

// seedHashes reads email → password hash from the Django predecessor's dump.
func seedHashes(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../../../shared/fixtures/django/users_seed.sql")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("the Django fixture is not available")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hashes := map[string]string{}
	sc := bufio.NewScanner(f)
	inUsers := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "COPY public.users_user "):
			inUsers = true
		case line == `\.`:
			inUsers = false
		case inUsers:
			// password, last_login, is_superuser, id, email, ...
			cols := strings.Split(line, "\t")
			if len(cols) < 5 {
				t.Fatalf("unexpected users_user row: %d columns", len(cols))
			}
			hashes[cols[4]] = cols[0]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return hashes
}

func TestDjangoSeedHashes(t *testing.T) {
	hashes := seedHashes(t)
	h := newHasher(t)
	ctx := t.Context()
	passwords := map[string]string{
		"grace.hopper@example.com": "Cobol#1959rocks",
		"alan.turing@example.org":  "Enigma!1912x",
		"ada@example.net":          "Analytical&Engine1843",
		"linus@example.com":        "Penguin*1991ok",
		"ops-admin@example.com":    "Admin#Pass2025",
		"dormant@example.com":      "Sleepy#Owl2020",
		"sha1user@example.com":     "Legacy!Sha1pw",
	}
	if !strings.HasPrefix(hashes["sha1user@example.com"], "pbkdf2_sha1$") {
		t.Fatalf("the fixture's sha1 user has no pbkdf2_sha1 hash")
	}
	for email, pw := range passwords {
		encoded, found := hashes[email]
		if !found {
			t.Errorf("%s is not in the fixture", email)
			continue
		}
		ok, rehash, err := h.Verify(ctx, pw, encoded)
		if err != nil || !ok || !rehash {
			t.Errorf("%s: Verify(right password) = %v, %v, %v; want true, true, nil", email, ok, rehash, err)
		}
		// Each hash is 260000 rounds of PBKDF2: one wrong password apiece.
		wrong := pw[:len(pw)-1]
		if email == "grace.hopper@example.com" {
			wrong = passwords["alan.turing@example.org"]
		}
		if ok, rehash, err := h.Verify(ctx, wrong, encoded); ok || rehash || err != nil {
			t.Errorf("%s: Verify(wrong password) = %v, %v, %v; want false, false, nil", email, ok, rehash, err)
		}
	}
	nopass, found := hashes["nopass@example.com"]
	if !found || !strings.HasPrefix(nopass, "!") {
		t.Fatalf("the fixture's unusable password is missing")
	}
	for _, pw := range []string{"", nopass, nopass[1:], passwords["grace.hopper@example.com"]} {
		if ok, rehash, err := h.Verify(ctx, pw, nopass); ok || rehash || err != nil {
			t.Errorf("Verify(unusable) = %v, %v, %v; want false, false, nil", ok, rehash, err)
		}
	}
}

func TestDjangoBcrypt(t *testing.T) {
	h := newHasher(t, WithParams(fastParams))
	ctx := t.Context()
	const pw = "Analytical&Engine1843"
	plain, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(pw))
	prehashed, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(sum[:])), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Django writes "$2b$"; Go's bcrypt writes "$2a$": the two verify alike.
	b := strings.Replace(string(plain), "$2a$", "$2b$", 1)
	bs := strings.Replace(string(prehashed), "$2a$", "$2b$", 1)
	for _, encoded := range []string{"bcrypt$" + b, "bcrypt_sha256$" + bs, "bcrypt$" + string(plain)} {
		ok, rehash, err := h.Verify(ctx, pw, encoded)
		if err != nil || !ok || !rehash {
			t.Errorf("Verify(%q) = %v, %v, %v; want true, true, nil", encoded, ok, rehash, err)
		}
		if ok, _, err := h.Verify(ctx, pw+"!", encoded); ok || err != nil {
			t.Errorf("Verify(%q, wrong) = %v, %v; want false, nil", encoded, ok, err)
		}
	}
	// The schemes are not interchangeable.
	for _, encoded := range []string{"bcrypt$" + bs, "bcrypt_sha256$" + b} {
		if ok, _, _ := h.Verify(ctx, pw, encoded); ok {
			t.Errorf("Verify(%q) matched under the other bcrypt scheme", encoded)
		}
	}
}

func TestConcurrencyBound(t *testing.T) {
	h := newHasher(t, WithParams(fastParams), WithMaxConcurrent(1))
	// Hold the only slot, as a long hash in progress would.
	h.sem <- struct{}{}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "Secret#123"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash with no free slot = %v, want context.DeadlineExceeded", err)
	}
	if _, _, err := h.Verify(ctx, "Secret#123", refArgon2id); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify with no free slot = %v, want context.DeadlineExceeded", err)
	}
	if _, _, err := h.Verify(ctx, "Secret#123", "!unusable"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify(unusable) with no free slot = %v, want context.DeadlineExceeded", err)
	}
	start := time.Now()
	h.Burn(ctx, "Secret#123") // returns once ctx is done
	if time.Since(start) > time.Second {
		t.Fatal("Burn did not return when its context ended")
	}

	// A waiter gets the slot once it is freed.
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(t.Context(), "Secret#123")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Hash finished while the slot was held: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	<-h.sem
	if err := <-done; err != nil {
		t.Fatalf("Hash after the slot was freed: %v", err)
	}

	// A context that has already ended fails even with a free slot.
	canceled, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if _, err := h.Hash(canceled, "Secret#123"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash(canceled) = %v, want context.Canceled", err)
	}
}

func TestConcurrentUseStaysBounded(t *testing.T) {
	var inside, peak atomic.Int32
	h := newHasher(t, WithParams(fastParams), WithMaxConcurrent(2))
	// The observer runs inside the slot: count how many are in at once.
	h.observe = func(time.Duration) {
		n := inside.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		inside.Add(-1)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			encoded, err := h.Hash(t.Context(), "Secret#123")
			if err != nil {
				t.Error(err)
				return
			}
			if ok, _, err := h.Verify(t.Context(), "Secret#123", encoded); !ok || err != nil {
				t.Errorf("Verify = %v, %v", ok, err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 2 || p < 1 {
		t.Fatalf("peak concurrency %d, want 1 or 2", p)
	}
}

func TestObserver(t *testing.T) {
	var calls atomic.Int32
	h := newHasher(t, WithParams(fastParams), WithObserver(func(d time.Duration) {
		if d <= 0 {
			t.Errorf("observed duration %v", d)
		}
		calls.Add(1)
	}))
	ctx := t.Context()
	encoded, _ := h.Hash(ctx, "a")
	h.Verify(ctx, "a", encoded)
	h.Verify(ctx, "a", "!")
	h.Burn(ctx, "a")
	if n := calls.Load(); n != 4 {
		t.Fatalf("observer called %d times, want 4", n)
	}
}

func TestNewRejectsBadParams(t *testing.T) {
	for _, p := range []Params{
		{},
		{Memory: 19456, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 19456, Time: 2, Threads: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 19456, Time: 2, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 4},
		{Memory: 4, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32},
	} {
		if _, err := New(WithParams(p)); err == nil {
			t.Errorf("New(%+v) succeeded", p)
		}
	}
	if got := newHasher(t).Params(); got != DefaultParams() {
		t.Errorf("default params %+v, want %+v", got, DefaultParams())
	}
}

func BenchmarkHash(b *testing.B) {
	h := newHasher(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "Cobol#1959rocks"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := newHasher(b)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "Cobol#1959rocks")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, "Cobol#1959rocks", encoded); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkVerifyDjangoPBKDF2(b *testing.B) {
	h := newHasher(b)
	ctx := context.Background()
	const encoded = "pbkdf2_sha256$260000$epWLGKV5I2WCgPAP2MkwFQ$fP8J1gdA3wqo+DIz/v9xNLs/KMIsvc7TV8PTPgppZT4="
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, "Cobol#1959rocks", encoded); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
