package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// result is one load run against one system.
type result struct {
	requests int     // answered with the expected status
	errors   int     // anything else, connection errors included
	firstErr string  // the first of them
	rate     float64 // answered requests per second
	p50, p99 time.Duration
}

// readTargets are the authenticated reads: each user's preferences and
// user, with the user's own token, in turn.
func readTargets(base string, users []user) []vegeta.Target {
	var ts []vegeta.Target
	for _, u := range users {
		h := http.Header{"Authorization": {"Bearer " + u.access}}
		ts = append(ts,
			vegeta.Target{Method: http.MethodGet, URL: base + "/api/v1/users/" + u.id + "/preferences", Header: h},
			vegeta.Target{Method: http.MethodGet, URL: base + "/api/v1/users/" + u.id + "/", Header: h})
	}
	return ts
}

// wrkScript is the Lua script that has each wrk connection walk the
// targets and prints the summary on one line the harness reads.
func wrkScript(targets []vegeta.Target) string {
	var b strings.Builder
	b.WriteString("local targets = {\n")
	for _, t := range targets {
		path := t.URL[strings.Index(t.URL[len("http://"):], "/")+len("http://"):]
		fmt.Fprintf(&b, "  {%q, %q},\n", path, t.Header.Get("Authorization"))
	}
	b.WriteString(`}
local reqs = {}
local i = 0
init = function(args)
  for k, t in ipairs(targets) do
    reqs[k] = wrk.format("GET", t[1], {["Authorization"] = t[2]})
  end
  i = math.random(#reqs)
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))
end
`)
	return b.String()
}

// saturateWrk drives targets closed-loop with wrk: 2 threads, conns
// connections, for d.
func saturateWrk(ctx context.Context, dir, base string, targets []vegeta.Target, conns int, d time.Duration) (result, error) {
	script := filepath.Join(dir, "targets.lua")
	if err := os.WriteFile(script, []byte(wrkScript(targets)), 0o600); err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(max(int(d.Seconds()), 1))+"s",
		"--timeout", "5s", "-s", script, base)
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		var n, us, p50, p99, errs int64
		if _, err := fmt.Sscanf(line, "BENCH %d %d %d %d %d", &n, &us, &p50, &p99, &errs); err == nil {
			return result{requests: int(n - errs), errors: int(errs), rate: float64(n-errs) / (float64(us) / 1e6),
				p50: time.Duration(p50) * time.Microsecond, p99: time.Duration(p99) * time.Microsecond}, nil
		}
	}
	return result{}, fmt.Errorf("wrk printed no summary: %s", out)
}

// attack runs targets through vegeta for d: at rate per second
// (open-loop, with up to 4 × workers in flight), or with rate 0 closed-loop
// with workers clients. ok tells an expected answer.
func attack(targets []vegeta.Target, rate, workers int, d time.Duration, ok func(code uint16) bool) result {
	// The attacker's own transport, so that its keep-alive connections are
	// closed when the run ends rather than left to the service's idle
	// timeout (they would count in the next run's goroutines and files).
	tr := &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: vegeta.DefaultConnections,
		MaxConnsPerHost:     vegeta.DefaultMaxConnections,
	}
	defer tr.CloseIdleConnections()
	opts := []func(*vegeta.Attacker){vegeta.Client(&http.Client{Transport: tr}),
		vegeta.KeepAlive(true), vegeta.Timeout(10 * time.Second), vegeta.MaxBody(256)}
	if rate == 0 {
		opts = append(opts, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)), vegeta.Connections(workers))
	} else {
		// Workers are added while all are busy, up to a bound, so that a
		// rate the system cannot keep shows as a lower rate answered.
		opts = append(opts, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(4*workers)), vegeta.Connections(4*workers))
	}
	a := vegeta.NewAttacker(opts...)
	var m vegeta.Metrics
	var res result
	start := time.Now()
	for r := range a.Attack(vegeta.NewStaticTargeter(targets...), vegeta.ConstantPacer{Freq: rate, Per: time.Second}, d, "bench") {
		if r.Code != 0 && ok(r.Code) {
			res.requests++
			m.Add(r)
		} else {
			if res.errors == 0 {
				res.firstErr = fmt.Sprintf("%d %s %s", r.Code, r.Error, r.Body)
			}
			res.errors++
		}
	}
	m.Close()
	res.rate = float64(res.requests) / time.Since(start).Seconds()
	res.p50, res.p99 = m.Latencies.P50, m.Latencies.P99
	return res
}

func status200(code uint16) bool { return code == http.StatusOK }

// Kinds of login of a storm.
type loginKind int

const (
	loginKnown   loginKind = iota // the user's email and password: 200
	loginWrong                    // the user's email, a wrong password: 401
	loginUnknown                  // an email nobody has: 401
)

// loginTargets are logins of kind, one per user.
func loginTargets(base string, users []user, kind loginKind) []vegeta.Target {
	var ts []vegeta.Target
	h := http.Header{"Content-Type": {"application/json"}}
	for i, u := range users {
		body := loginBody(u.email)
		switch kind {
		case loginWrong:
			body["password"] = benchPassword + "-wrong"
		case loginUnknown:
			body["email"] = fmt.Sprintf("nobody-%s-%d@example.com", randomHex(4), i)
		}
		b, _ := json.Marshal(body)
		ts = append(ts, vegeta.Target{Method: http.MethodPost, URL: base + "/api/v1/users/login", Header: h, Body: b})
	}
	return ts
}

// Series of usersvc's password hash time.
const (
	hashSum   = "usersvc_password_hash_duration_seconds_sum"
	hashCount = "usersvc_password_hash_duration_seconds_count"
)

// storm is a login storm.
type storm struct {
	result
	peak int64 // the largest resident set sampled during it
	// busy is the part of the storm's time the service's hashing slots
	// (one per core) spent hashing, by its own hash duration metric: 1
	// when nothing but the hash bounds the logins, whatever CPU the
	// machine gives the process.
	busy float64
	hash time.Duration // the service's mean hash time during it
}

// loginStorm logs in closed-loop with clients for d while sampling the
// resident set of p.
func loginStorm(ctx context.Context, p *proc, targets []vegeta.Target, kind loginKind, clients int, d time.Duration) (storm, error) {
	before, err := p.metrics(ctx, hashSum, hashCount)
	if err != nil {
		return storm{}, err
	}
	start := time.Now()
	r, peak := loginRun(p, targets, kind, clients, d)
	wall := time.Since(start)
	after, err := p.metrics(ctx, hashSum, hashCount)
	if err != nil {
		return storm{}, err
	}
	spent := after[hashSum] - before[hashSum]
	n := max(after[hashCount]-before[hashCount], 1)
	return storm{result: r, peak: peak, busy: spent / (wall.Seconds() * float64(runtime.NumCPU())),
		hash: time.Duration(spent / n * float64(time.Second))}, nil
}

func loginRun(p *proc, targets []vegeta.Target, kind loginKind, clients int, d time.Duration) (result, int64) {
	want := uint16(http.StatusOK)
	if kind != loginKnown {
		want = http.StatusUnauthorized
	}
	stop := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var top int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			top = max(top, p.memory().rss)
			select {
			case <-stop:
				peak <- top
				return
			case <-t.C:
			}
		}
	}()
	r := attack(targets, 0, clients, d, func(code uint16) bool { return code == want })
	close(stop)
	return r, <-peak
}

// saveProfile fetches path from p's admin listener into file.
func saveProfile(ctx context.Context, p *proc, path, file string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.admin+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", path, resp.StatusCode)
	}
	return os.WriteFile(file, b.Bytes(), 0o600)
}
