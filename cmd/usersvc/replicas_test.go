package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/redistest"
)

// TestReplicas runs three service processes on one PostgreSQL database and
// one Redis, as a deployment behind a load balancer would, and checks what
// the contract promises across replicas: a write through one is read
// through the others at once (§3.6), refresh-token reuse is caught
// whichever replica sees it (§3.3), and the login limits count the
// attempts made on every replica together (§6).
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts three processes")
	}
	dbURL := pgtest.NewDatabase(t)
	rds := redistest.Start(t)
	bin := buildBinary(t)

	// The replicas believe X-Forwarded-For from the test, so that each
	// check can come from an address of its own and the per-address
	// limits of one check do not spill into another.
	secret, unsubKey := repRandomHex(t, 32), repRandomHex(t, 32)
	reps := make([]*repReplica, 3)
	for i, name := range []string{"A", "B", "C"} {
		p := startProcess(t, bin, "DATABASE_URL="+dbURL, "REDIS_URL="+rds.URL(), "SECRET_KEY="+secret,
			"UNSUBSCRIBE_KEY="+unsubKey, "DATA_DIR="+t.TempDir(), "TRUSTED_PROXIES=127.0.0.1/32", "LOG_FORMAT=json")
		reps[i] = &repReplica{name: name, p: p}
	}
	for _, r := range reps {
		st, body, _ := repDo(t, "GET", r.p.base+"/health", nil)
		if st != http.StatusOK || body["database"] != "connected" || body["redis"] != "connected" {
			t.Fatalf("replica %s /health: %d %v", r.name, st, body)
		}
	}
	t.Cleanup(func() {
		for _, r := range reps {
			if strings.Contains(r.p.logs.String(), secret) {
				t.Errorf("replica %s logged the signing secret", r.name)
			}
		}
	})

	t.Run("preferences", func(t *testing.T) { repPreferences(t, reps) })
	t.Run("name", func(t *testing.T) { repName(t, reps) })
	t.Run("push_token", func(t *testing.T) { repPushToken(t, reps) })
	t.Run("refresh_reuse", func(t *testing.T) { repRefreshReuse(t, reps) })
	t.Run("login_limit_per_email", func(t *testing.T) { repLoginLimitPerEmail(t, reps) })
	t.Run("login_limit_per_address", func(t *testing.T) { repLoginLimitPerAddress(t, reps) })

	// The reads above went through the shared cache, not around it: every
	// replica answered some of them from Redis.
	for _, r := range reps {
		if hits := repMetric(t, r, `usersvc_cache_hits_total{kind="user"}`); hits < 10 {
			t.Errorf("replica %s served %v user reads from the cache; the checks did not exercise it", r.name, hits)
		}
	}
}

// repReplica is one of the service processes.
type repReplica struct {
	name string
	p    *process
}

// repAddrSeq hands out client addresses (TEST-NET-3) for X-Forwarded-For.
var repAddrSeq atomic.Int64

func repNextAddr() string {
	n := repAddrSeq.Add(1)
	return fmt.Sprintf("203.0.113.%d", n%250+1)
}

func repRandomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// repDo sends body as JSON (when not nil) with headers given as name, value
// pairs, and returns the status, the decoded object and the headers.
func repDo(t *testing.T, method, url string, body any, headers ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req := jsonRequest(t, method, url, body, headers...)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: %d, body is not a JSON object: %q", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, m, resp.Header
}

// repUser is a registered user with a live session.
type repUser struct {
	id, email, password, access, refresh string
}

const repPassword = "Repl1ca!Passw0rd"

// repRegister registers a user through one replica and logs it in through
// another.
func repRegister(t *testing.T, reg, login *repReplica, label string) repUser {
	t.Helper()
	u := repUser{email: label + "." + repRandomHex(t, 4) + "@example.com", password: repPassword}
	st, body, _ := repDo(t, "POST", reg.p.base+"/api/v1/users/", map[string]any{"email": u.email, "password": u.password, "name": "Replica User"},
		"X-Forwarded-For", repNextAddr())
	if st != http.StatusCreated {
		t.Fatalf("register on %s: %d %s", reg.name, st, repBrief(body))
	}
	u.id = repData(t, body)["id"].(string)
	u.access, u.refresh = repLogin(t, login, u.email, u.password)
	return u
}

func repLogin(t *testing.T, r *repReplica, email, password string) (access, refresh string) {
	t.Helper()
	st, body, _ := repDo(t, "POST", r.p.base+"/api/v1/users/login", map[string]any{"email": email, "password": password},
		"X-Forwarded-For", repNextAddr())
	if st != http.StatusOK {
		t.Fatalf("login on %s: %d %s", r.name, st, repBrief(body))
	}
	d := repData(t, body)
	return d["access"].(string), d["refresh"].(string)
}

func repData(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	d, ok := body["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data object in %s", repBrief(body))
	}
	return d
}

// repBrief is what a failure message shows of an answer: never its data,
// which may hold tokens.
func repBrief(body map[string]any) string {
	return fmt.Sprintf("success=%v message=%q error=%v", body["success"], body["message"], body["error"])
}

func repBearer(u repUser) []string { return []string{"Authorization", "Bearer " + u.access} }

// repRounds reads through every replica with check (round 0), then, for
// each round, has write change the data through a replica picked by rng
// and reads it back through the other replicas first, then the writer.
func repRounds(reps []*repReplica, rounds int, rng *mrand.Rand, write func(round int, w *repReplica), check func(round int, r *repReplica)) {
	for _, r := range reps {
		check(0, r)
	}
	for round := 1; round <= rounds; round++ {
		w := reps[rng.IntN(len(reps))]
		write(round, w)
		for _, r := range reps {
			if r != w {
				check(round, r)
			}
		}
		check(round, w)
	}
}

// repPreferences writes preferences through a random replica, round after
// round, and reads them back through every replica at once, both from the
// preferences route and from the user.
func repPreferences(t *testing.T, reps []*repReplica) {
	u := repRegister(t, reps[0], reps[1], "prefs")
	want := map[string]bool{"email": true, "push": true}
	check := func(round int, r *repReplica) {
		t.Helper()
		st, body, _ := repDo(t, "GET", r.p.base+"/api/v1/users/"+u.id+"/preferences", nil, repBearer(u)...)
		if st != http.StatusOK {
			t.Fatalf("round %d: preferences on %s: %d %s", round, r.name, st, repBrief(body))
		}
		if d := repData(t, body); d["email"] != want["email"] || d["push"] != want["push"] {
			t.Fatalf("round %d: preferences on %s = %v, last write was %v", round, r.name, d, want)
		}
		st, body, _ = repDo(t, "GET", r.p.base+"/api/v1/users/"+u.id, nil, repBearer(u)...)
		if st != http.StatusOK {
			t.Fatalf("round %d: user on %s: %d %s", round, r.name, st, repBrief(body))
		}
		if p, _ := repData(t, body)["preferences"].(map[string]any); p["email"] != want["email"] || p["push"] != want["push"] {
			t.Fatalf("round %d: user's preferences on %s = %v, last write was %v", round, r.name, p, want)
		}
	}
	// Every replica holds the user in the cache before the first write.
	rng := mrand.New(mrand.NewPCG(1, 2))
	repRounds(reps, 100, rng, func(round int, w *repReplica) {
		patch := map[string]any{}
		switch rng.IntN(3) {
		case 0:
			patch["email"] = !want["email"]
		case 1:
			patch["push"] = !want["push"]
		default:
			patch["email"], patch["push"] = rng.IntN(2) == 0, rng.IntN(2) == 0
		}
		for k, v := range patch {
			want[k] = v.(bool)
		}
		st, body, _ := repDo(t, "PATCH", w.p.base+"/api/v1/users/"+u.id+"/preferences", patch, repBearer(u)...)
		if st != http.StatusOK {
			t.Fatalf("round %d: PATCH on %s: %d %s", round, w.name, st, repBrief(body))
		}
		if d := repData(t, body); d["email"] != want["email"] || d["push"] != want["push"] {
			t.Fatalf("round %d: PATCH on %s answered %v, want %v", round, w.name, d, want)
		}
	}, check)
}

// repName renames the user through a random replica and reads the user
// back through every replica at once.
func repName(t *testing.T, reps []*repReplica) {
	u := repRegister(t, reps[2], reps[0], "name")
	want := "Replica User"
	check := func(round int, r *repReplica) {
		t.Helper()
		st, body, _ := repDo(t, "GET", r.p.base+"/api/v1/users/"+u.id, nil, repBearer(u)...)
		if st != http.StatusOK {
			t.Fatalf("round %d: user on %s: %d %s", round, r.name, st, repBrief(body))
		}
		if got := repData(t, body)["name"]; got != want {
			t.Fatalf("round %d: name on %s = %v, last write was %q", round, r.name, got, want)
		}
	}
	rng := mrand.New(mrand.NewPCG(5, 6))
	repRounds(reps, 50, rng, func(round int, w *repReplica) {
		letters := make([]byte, 8)
		for i := range letters {
			letters[i] = byte('a' + rng.IntN(26))
		}
		want = "Replica " + strings.ToUpper(string(letters[:1])) + string(letters[1:])
		st, body, _ := repDo(t, "PATCH", w.p.base+"/api/v1/users/"+u.id+"/", map[string]any{"name": want}, repBearer(u)...)
		if st != http.StatusOK {
			t.Fatalf("round %d: PATCH name on %s: %d %s", round, w.name, st, repBrief(body))
		}
		if got := repData(t, body)["name"]; got != want {
			t.Fatalf("round %d: PATCH name on %s answered %v, want %q", round, w.name, got, want)
		}
	}, check)
}

// repPushToken changes the user's push token through a random replica and
// reads the user and the device list back through every replica at once;
// every tenth round clears the token.
func repPushToken(t *testing.T, reps []*repReplica) {
	u := repRegister(t, reps[1], reps[2], "push")
	var want *string
	check := func(round int, r *repReplica) {
		t.Helper()
		st, body, _ := repDo(t, "GET", r.p.base+"/api/v1/users/"+u.id, nil, repBearer(u)...)
		if st != http.StatusOK {
			t.Fatalf("round %d: user on %s: %d %s", round, r.name, st, repBrief(body))
		}
		got := repData(t, body)["push_token"]
		if (want == nil && got != nil) || (want != nil && got != *want) {
			t.Fatalf("round %d: push_token on %s = %v, last write was %v", round, r.name, got, repStr(want))
		}
		st, body, _ = repDo(t, "GET", r.p.base+"/api/v1/users/"+u.id+"/push_tokens", nil, repBearer(u)...)
		if st != http.StatusOK {
			t.Fatalf("round %d: devices on %s: %d %s", round, r.name, st, repBrief(body))
		}
		devices, _ := body["data"].([]any)
		switch {
		case want == nil && len(devices) != 0:
			t.Fatalf("round %d: devices on %s = %v after the token was cleared", round, r.name, devices)
		case want != nil && len(devices) != 1:
			t.Fatalf("round %d: devices on %s = %v, want the one device with %s", round, r.name, devices, *want)
		case want != nil && devices[0].(map[string]any)["push_token"] != *want:
			t.Fatalf("round %d: device token on %s = %v, last write was %s", round, r.name, devices[0], *want)
		}
	}
	rng := mrand.New(mrand.NewPCG(3, 4))
	repRounds(reps, 50, rng, func(round int, w *repReplica) {
		body := map[string]any{"device_id": "replica-phone", "device_type": "android"}
		if round%10 == 0 {
			body["push_token"], want = nil, nil
		} else {
			tok := "fcm:round-" + strconv.Itoa(round) + "-" + repRandomHex(t, 6)
			body["push_token"], want = tok, &tok
		}
		st, resp, _ := repDo(t, "PATCH", w.p.base+"/api/v1/users/"+u.id+"/push_token", body, repBearer(u)...)
		if st != http.StatusOK {
			t.Fatalf("round %d: PATCH push_token on %s: %d %v", round, w.name, st, resp)
		}
	}, check)
}

func repStr(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

func repRefresh(t *testing.T, r *repReplica, refresh string) (int, map[string]any) {
	t.Helper()
	st, body, _ := repDo(t, "POST", r.p.base+"/api/v1/users/refresh", map[string]any{"refresh": refresh})
	return st, body
}

// repRefreshReuse rotates a refresh token across replicas, then presents a
// spent one on another replica: that is reuse, and the whole family is
// dead on every replica, while another login of the same user lives on.
func repRefreshReuse(t *testing.T, reps []*repReplica) {
	a, b, c := reps[0], reps[1], reps[2]
	u := repRegister(t, a, a, "refresh")
	_, otherRefresh := repLogin(t, c, u.email, u.password)

	// Rotation works across replicas: logged in on A, refreshed on B, then on C.
	st, body := repRefresh(t, b, u.refresh)
	if st != http.StatusOK {
		t.Fatalf("refresh of the login's token on B: %d %s", st, repBrief(body))
	}
	r1 := repData(t, body)["refresh"].(string)
	st, body = repRefresh(t, c, r1)
	if st != http.StatusOK {
		t.Fatalf("refresh of B's token on C: %d %s", st, repBrief(body))
	}
	r2 := repData(t, body)["refresh"].(string)

	// Spend r2 on A, then present it again on B: reuse.
	st, body = repRefresh(t, a, r2)
	if st != http.StatusOK {
		t.Fatalf("refresh of C's token on A: %d %s", st, repBrief(body))
	}
	r3 := repData(t, body)["refresh"].(string)
	// Presented again on B within the reuse interval, while r3 is unspent:
	// a retry, answered with the same successor.
	st, body = repRefresh(t, b, r2)
	if st != http.StatusOK || repData(t, body)["refresh"] != r3 {
		t.Fatalf("a retry of a spent token on B: %d %s, want 200 with A's successor", st, repBrief(body))
	}
	// Spend r3 on C; r2 presented again on B is now reuse.
	st, body = repRefresh(t, c, r3)
	if st != http.StatusOK {
		t.Fatalf("refresh of A's token on C: %d %s", st, repBrief(body))
	}
	r4 := repData(t, body)["refresh"].(string)
	st, body = repRefresh(t, b, r2)
	if st != http.StatusUnauthorized {
		t.Fatalf("a spent token presented again on B after its successor was spent: %d %s, want 401", st, repBrief(body))
	}
	// The family is dead on C: C's fresh successor fails too, and so does
	// every older token.
	if st, body = repRefresh(t, c, r4); st != http.StatusUnauthorized {
		t.Fatalf("the newest token of a reused family on C: %d %s, want 401", st, repBrief(body))
	}
	for i, old := range []string{u.refresh, r1} {
		if st, body = repRefresh(t, reps[i], old); st != http.StatusUnauthorized {
			t.Errorf("an older token of the reused family on %s: %d %s, want 401", reps[i].name, st, repBrief(body))
		}
	}
	// Another login of the same user is another family: it still refreshes.
	if st, body = repRefresh(t, b, otherRefresh); st != http.StatusOK {
		t.Errorf("another family of the same user on B: %d %s, want 200", st, repBrief(body))
	}
}

// repRetryAfter checks a 429 with a Retry-After of at most window seconds.
func repRetryAfter(t *testing.T, what string, st int, body map[string]any, h http.Header, window int) {
	t.Helper()
	if st != http.StatusTooManyRequests {
		t.Fatalf("%s: %d %s, want 429", what, st, repBrief(body))
	}
	ra, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || ra < 1 || ra > window {
		t.Errorf("%s: Retry-After %q, want 1 to %d seconds", what, h.Get("Retry-After"), window)
	}
	if body["success"] != false {
		t.Errorf("%s: body %s", what, repBrief(body))
	}
}

// repLoginLimitPerEmail fails five logins of one email, spread over the
// three replicas (each from another address): the next attempt on every
// replica is refused, even with the right password.
func repLoginLimitPerEmail(t *testing.T, reps []*repReplica) {
	u := repRegister(t, reps[2], reps[0], "limit")
	other := repRegister(t, reps[0], reps[1], "bystander")
	for i := range 5 {
		r := reps[i%len(reps)]
		st, body, _ := repDo(t, "POST", r.p.base+"/api/v1/users/login", map[string]any{"email": u.email, "password": "Wr0ng!Password"},
			"X-Forwarded-For", repNextAddr())
		if st != http.StatusUnauthorized {
			t.Fatalf("failure %d on %s: %d %s, want 401", i+1, r.name, st, repBrief(body))
		}
	}
	for _, r := range reps {
		st, body, h := repDo(t, "POST", r.p.base+"/api/v1/users/login", map[string]any{"email": strings.ToUpper(u.email), "password": u.password},
			"X-Forwarded-For", repNextAddr())
		repRetryAfter(t, "login on "+r.name+" after five failures on A, B, C", st, body, h, 15*60)
	}
	// The limit is the email's: another user logs in on every replica.
	for _, r := range reps {
		repLogin(t, r, other.email, other.password)
	}
}

// repLoginLimitPerAddress fails twenty logins from one address, each with
// another email, spread over the three replicas: the next attempt from that
// address is refused on every replica, and other addresses are not.
func repLoginLimitPerAddress(t *testing.T, reps []*repReplica) {
	const addr = "198.51.100.77"
	for i := range 20 {
		r := reps[i%len(reps)]
		email := "nobody" + strconv.Itoa(i) + "." + repRandomHex(t, 4) + "@example.com"
		st, body, _ := repDo(t, "POST", r.p.base+"/api/v1/users/login", map[string]any{"email": email, "password": repPassword},
			"X-Forwarded-For", addr)
		if st != http.StatusUnauthorized {
			t.Fatalf("failure %d from %s on %s: %d %s, want 401", i+1, addr, r.name, st, repBrief(body))
		}
	}
	fresh := repRegister(t, reps[1], reps[2], "fresh")
	for _, r := range reps {
		st, body, h := repDo(t, "POST", r.p.base+"/api/v1/users/login", map[string]any{"email": fresh.email, "password": fresh.password},
			"X-Forwarded-For", addr)
		repRetryAfter(t, "login from "+addr+" on "+r.name+" after twenty failures on A, B, C", st, body, h, 15*60)
	}
	// The limit is the address's: the same user logs in from another one.
	for _, r := range reps {
		repLogin(t, r, fresh.email, fresh.password)
	}
}

// repMetric returns the value of one sample of the replica's /metrics.
func repMetric(t *testing.T, r *repReplica, sample string) float64 {
	t.Helper()
	resp, err := http.Get(r.p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(raw)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("%s on %s: %v", sample, r.name, err)
	}
	return v
}
