package main

// The soak (-soak DURATION): one steady open-loop mix of the service's
// ordinary traffic for a long time, on each service in turn, with the
// process's memory, goroutines and open descriptors sampled at a fixed
// period, to tell whether anything in the service grows while its load
// stays the same.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Shares of -soak-rate: the rest, less the logins and logouts, is reads.
const (
	soakWriteShare   = 0.05 // PATCH preferences, alternating a value
	soakDeviceShare  = 0.02 // a device registered, then deleted
	soakRefreshShare = 0.02 // a refresh of a session, with the successor kept
)

// The verdict: after the warm-up (the first soakWarmUp of the run), the
// medians of the last third of the samples against those of the first
// third.
const (
	soakWarmUp = 0.20
	soakGrowth = 1.10 // heap in use and RSS: last third's median ≤ soakGrowth × the first third's
	soakSlack  = 10   // goroutines and fds: last third's median ≤ the first third's largest + soakSlack
)

// Series of usersvc's /metrics that the soak samples.
const (
	heapInuse  = "go_memstats_heap_inuse_bytes"
	goroutines = "go_goroutines"
	openFDs    = "process_open_fds"
)

// soakKind is a kind of request of the soak.
type soakKind int

const (
	kindReadPrefs soakKind = iota
	kindReadUser
	kindWritePrefs
	kindDeviceAdd
	kindDeviceDelete
	kindDeviceList
	kindRefresh
	kindLogin
	kindLogout
	numKinds
)

var kindNames = [numKinds]string{
	"GET /users/{id}/preferences",
	"GET /users/{id}/",
	"PATCH /users/{id}/preferences",
	"PATCH /users/{id}/push_token (register a device)",
	"DELETE /users/{id}/push_tokens/{device}",
	"GET /users/{id}/push_tokens (all devices were busy)",
	"POST /users/refresh",
	"POST /users/login",
	"POST /users/logout",
}

// soakMix is the rate of each attacker, per second.
type soakMix struct{ reads, writes, devices, refresh, sessions int }

func (m soakMix) total() int { return m.reads + m.writes + m.devices + m.refresh + m.sessions }

// mixOf splits rate among the attackers; the sessions attacker logs in
// and out logins times a second each.
func mixOf(rate, logins int) (soakMix, error) {
	share := func(f float64) int { return max(1, int(math.Round(float64(rate)*f))) }
	m := soakMix{writes: share(soakWriteShare), devices: share(soakDeviceShare), refresh: share(soakRefreshShare), sessions: 2 * logins}
	m.reads = rate - m.writes - m.devices - m.refresh - m.sessions
	if m.reads < 1 {
		return m, fmt.Errorf("-soak-rate %d leaves no reads beside %d logins a second", rate, logins)
	}
	return m, nil
}

// Device states of a soak user: one device each, registered then deleted.
const (
	deviceAbsent int32 = iota
	deviceAdding
	devicePresent
	deviceRemoving
)

// soakUser is a user of the soak and the state of its requests.
type soakUser struct {
	id, email string
	auth      atomic.Pointer[string] // Authorization of the latest access token of the user's session
	refresh   string                 // the session's unspent refresh token, while the user is in the refresh pool
	pushes    atomic.Uint64          // preference writes so far: each sets push to the opposite of the one before
	device    atomic.Int32           // deviceAbsent …
}

// soakLoad makes the requests of the soak and follows what they change,
// so that each one is valid when it is sent: a device is deleted only once
// its registration was answered, a refresh token is presented once and
// its successor is presented next, a login's session is logged out.
type soakLoad struct {
	base                                    string
	users                                   []*soakUser
	byID                                    map[string]int
	nextRead, nextWrite, nextDevice, nextIn atomic.Uint64
	refreshPool                             chan int    // users whose refresh token is unspent and not in flight
	logouts                                 chan string // refresh tokens of the soak's logins, to log out
}

func newSoakLoad(base string, users []user) *soakLoad {
	l := &soakLoad{base: base, byID: map[string]int{}, refreshPool: make(chan int, len(users)), logouts: make(chan string, 1024)}
	for i, u := range users {
		su := &soakUser{id: u.id, email: u.email, refresh: u.refresh}
		auth := "Bearer " + u.access
		su.auth.Store(&auth)
		l.users = append(l.users, su)
		l.byID[u.id] = i
		l.refreshPool <- i
	}
	return l
}

func (l *soakLoad) user(n uint64) *soakUser { return l.users[n%uint64(len(l.users))] }

func (l *soakLoad) url(u *soakUser, path string) string {
	return l.base + "/api/v1/users/" + u.id + path
}

func (u *soakUser) header() http.Header {
	return http.Header{"Authorization": {*u.auth.Load()}, "Content-Type": {"application/json"}}
}

// read is each user's preferences and user in turn.
func (l *soakLoad) read(t *vegeta.Target) error {
	n := l.nextRead.Add(1)
	u := l.user(n / 2)
	path := "/preferences"
	if n%2 == 1 {
		path = "/"
	}
	*t = vegeta.Target{Method: http.MethodGet, URL: l.url(u, path), Header: u.header()}
	return nil
}

// write turns a user's push channel off, then on the next time.
func (l *soakLoad) write(t *vegeta.Target) error {
	u := l.user(l.nextWrite.Add(1))
	push := u.pushes.Add(1)%2 == 0
	*t = vegeta.Target{Method: http.MethodPatch, URL: l.url(u, "/preferences"), Header: u.header(),
		Body: fmt.Appendf(nil, `{"push": %t}`, push)}
	return nil
}

// device deletes a registered device if there is one, else registers
// one, so that the two alternate and the devices do not pile up.
func (l *soakLoad) device(t *vegeta.Target) error {
	start := l.nextDevice.Add(1)
	for _, step := range []struct{ from, to int32 }{{devicePresent, deviceRemoving}, {deviceAbsent, deviceAdding}} {
		for k := range uint64(len(l.users)) {
			u := l.user(start + k)
			if !u.device.CompareAndSwap(step.from, step.to) {
				continue
			}
			if step.to == deviceRemoving {
				*t = vegeta.Target{Method: http.MethodDelete, URL: l.url(u, "/push_tokens/soak"), Header: u.header()}
			} else {
				*t = vegeta.Target{Method: http.MethodPatch, URL: l.url(u, "/push_token"), Header: u.header(),
					Body: []byte(`{"push_token": "soak:` + u.id + `", "device_id": "soak", "device_type": "android"}`)}
			}
			return nil
		}
	}
	u := l.user(start)
	*t = vegeta.Target{Method: http.MethodGet, URL: l.url(u, "/push_tokens"), Header: u.header()}
	return nil
}

// refresh presents a session's refresh token; while every session's is in
// flight, it reads instead.
func (l *soakLoad) refresh(t *vegeta.Target) error {
	select {
	case i := <-l.refreshPool:
		b, _ := json.Marshal(map[string]string{"refresh": l.users[i].refresh})
		*t = vegeta.Target{Method: http.MethodPost, URL: l.base + "/api/v1/users/refresh",
			Header: http.Header{"Content-Type": {"application/json"}}, Body: b}
		return nil
	default:
		return l.read(t)
	}
}

// session logs out the session of an answered login if there is one,
// else logs in.
func (l *soakLoad) session(t *vegeta.Target) error {
	h := http.Header{"Content-Type": {"application/json"}}
	select {
	case tok := <-l.logouts:
		b, _ := json.Marshal(map[string]string{"refresh": tok})
		*t = vegeta.Target{Method: http.MethodPost, URL: l.base + "/api/v1/users/logout", Header: h, Body: b}
	default:
		b, _ := json.Marshal(loginBody(l.user(l.nextIn.Add(1)).email))
		*t = vegeta.Target{Method: http.MethodPost, URL: l.base + "/api/v1/users/login", Header: h, Body: b}
	}
	return nil
}

// classify tells the kind of a request of the soak from its method and
// URL, and the user in its path (nil for the public routes).
func (l *soakLoad) classify(method, url string) (soakKind, *soakUser) {
	path := strings.TrimPrefix(url, l.base+"/api/v1/users/")
	id, rest, _ := strings.Cut(path, "/")
	var u *soakUser
	if i, ok := l.byID[id]; ok {
		u = l.users[i]
	}
	switch {
	case path == "refresh":
		return kindRefresh, nil
	case path == "login":
		return kindLogin, nil
	case path == "logout":
		return kindLogout, nil
	case method == http.MethodPatch && rest == "preferences":
		return kindWritePrefs, u
	case rest == "preferences":
		return kindReadPrefs, u
	case method == http.MethodPatch:
		return kindDeviceAdd, u
	case method == http.MethodDelete:
		return kindDeviceDelete, u
	case rest == "push_tokens":
		return kindDeviceList, u
	}
	return kindReadUser, u
}

// answered follows what an answer changed: the state of a device, the
// successor of a refresh token, the session of a login.
func (l *soakLoad) answered(kind soakKind, u *soakUser, r *vegeta.Result, ok bool) {
	if u == nil && (kind == kindDeviceAdd || kind == kindDeviceDelete) {
		return
	}
	switch kind {
	case kindDeviceAdd:
		if ok {
			u.device.Store(devicePresent)
		} else { // registering again is an update: no state to repair
			u.device.Store(deviceAbsent)
		}
	case kindDeviceDelete:
		u.device.Store(deviceAbsent)
	case kindRefresh:
		// A failed refresh leaves its session out of the pool (the token
		// may or may not be spent): the error is counted, and the other
		// sessions go on.
		var v struct {
			Data struct{ Access, Refresh string } `json:"data"`
		}
		if !ok || json.Unmarshal(r.Body, &v) != nil {
			return
		}
		i, found := l.byID[tokenSubject(v.Data.Access)]
		if !found || v.Data.Refresh == "" {
			return
		}
		su := l.users[i]
		su.refresh = v.Data.Refresh
		auth := "Bearer " + v.Data.Access
		su.auth.Store(&auth)
		l.refreshPool <- i
	case kindLogin:
		var v struct {
			Data struct{ Refresh string } `json:"data"`
		}
		if ok && json.Unmarshal(r.Body, &v) == nil && v.Data.Refresh != "" {
			select {
			case l.logouts <- v.Data.Refresh:
			default:
			}
		}
	}
}

// tokenSubject is the sub claim of a JWT, unverified (the harness only
// needs to know whose token the service answered with).
func tokenSubject(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct{ Sub string }
	_ = json.Unmarshal(b, &c)
	return c.Sub
}

// connCounter counts the soak's open connections to the service: each
// is a goroutine and a descriptor of the service's, which come and go with
// the bursts of a shared machine and are told apart from the rest.
type connCounter struct{ n atomic.Int64 }

func (c *connCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.n.Add(1)
	return &countedConn{Conn: conn, c: c}, nil
}

type countedConn struct {
	net.Conn
	c    *connCounter
	once sync.Once
}

func (cc *countedConn) Close() error {
	cc.once.Do(func() { cc.c.n.Add(-1) })
	return cc.Conn.Close()
}

// soakAttacker is an open-loop attacker of at most conns connections,
// counted by c, and its transport.
func soakAttacker(c *connCounter, workers, conns int) (*vegeta.Attacker, *http.Transport) {
	tr := &http.Transport{DialContext: c.dial, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	return vegeta.NewAttacker(vegeta.Client(&http.Client{Transport: tr}), vegeta.Timeout(10*time.Second),
		vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(2*conns)), vegeta.MaxBody(16<<10)), tr
}

// Each sample is the smallest of readings taken readingGap apart, so
// that what is there only for an instant (a password hash in flight holds
// 19 MiB, a request a goroutine) does not count as growth.
const (
	readings   = 5
	readingGap = 100 * time.Millisecond
)

// soakSample is one sample of the service, with the answers of the
// interval that ends there. -1: not read.
type soakSample struct {
	at                  time.Duration // since the load started
	rss                 int64
	heap, gor, fds      float64
	conns               float64 // the soak's connections to the service
	gorBeyond           float64 // goroutines beyond one per connection of the soak
	fdsBeyond           float64 // open fds beyond one per connection of the soak
	requests, errors    int
	interval            time.Duration
	p99                 time.Duration
	warmUp, first, last bool
}

// kindTotals are the answers of one kind over the whole soak.
type kindTotals struct {
	requests, errors int
	firstErr         string
	latencies        []time.Duration
}

// soakRun is the soak of one service.
type soakRun struct {
	name                string
	d, every            time.Duration
	mix                 soakMix
	users               int
	loadBefore, loadEnd string // /proc/loadavg
	samples             []soakSample
	kinds               [numKinds]kindTotals
	wall                time.Duration
}

func (r *soakRun) totals() (requests, errs int, p99 time.Duration) {
	var all []time.Duration
	for _, k := range r.kinds {
		requests += k.requests
		errs += k.errors
		all = append(all, k.latencies...)
	}
	return requests, errs, quantile(all, 0.99)
}

// collector gathers the answers of all the attackers: per interval and
// per kind.
type collector struct {
	mu       sync.Mutex
	requests int
	errors   int
	lat      []time.Duration
	kinds    *[numKinds]kindTotals
}

func (c *collector) add(kind soakKind, r *vegeta.Result, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := &c.kinds[kind]
	if ok {
		c.requests++
		k.requests++
		c.lat = append(c.lat, r.Latency)
		k.latencies = append(k.latencies, r.Latency)
		return
	}
	c.errors++
	k.errors++
	if k.firstErr == "" {
		body := string(r.Body)
		if len(body) > 200 {
			body = body[:200]
		}
		k.firstErr = strings.TrimSpace(fmt.Sprintf("%d %s %s", r.Code, r.Error, body))
	}
}

// take returns the interval's answers and starts the next interval.
func (c *collector) take() (requests, errs int, p99 time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	requests, errs, p99 = c.requests, c.errors, quantile(c.lat, 0.99)
	c.requests, c.errors, c.lat = 0, 0, c.lat[:0]
	return requests, errs, p99
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1)]
}

// soakAll registers users on each service and soaks it, one after the
// other, so that each has the machine's cores to itself; then prints the
// samples and the verdicts.
func soakAll(ctx context.Context, w io.Writer, services []*system, o options) error {
	mix, err := mixOf(o.soakRate, o.soakLogins)
	if err != nil {
		return err
	}
	var runs []*soakRun
	for _, s := range services {
		logf("soak: registering %d users on %s", o.users, s.name)
		users, err := registerUsers(ctx, s.p, o.users)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		logf("soak: %s for %v at %d req/s (reads %d, preference writes %d, devices %d, refreshes %d, logins and logouts %d)",
			s.name, o.soak, mix.total(), mix.reads, mix.writes, mix.devices, mix.refresh, mix.sessions)
		r, err := soak(ctx, s, users, mix, o.soak, o.soakEvery)
		if err != nil {
			return fmt.Errorf("%s: soak: %w", s.name, err)
		}
		runs = append(runs, r)
	}
	soakReport(w, runs)
	return soakBroken(runs)
}

// soak runs the mix against s for d, sampling every period.
func soak(ctx context.Context, s *system, users []user, mix soakMix, d, every time.Duration) (*soakRun, error) {
	run := &soakRun{name: s.name, d: d, every: every, mix: mix, users: len(users), loadBefore: loadAvg()}
	load := newSoakLoad(s.p.base, users)
	col := &collector{kinds: &run.kinds}
	attacks := []struct {
		rate, workers, conns int
		tr                   vegeta.Targeter
	}{
		{mix.reads, 8, 64, load.read},
		{mix.writes, 2, 16, load.write},
		{mix.devices, 2, 16, load.device},
		{mix.refresh, 2, 16, load.refresh},
		{mix.sessions, 2, 16, load.session},
	}
	conns := &connCounter{}
	sample := func(at time.Duration) soakSample {
		smp := soakSample{at: at, rss: -1, heap: -1, gor: -1, fds: -1, conns: -1, gorBeyond: -1, fdsBeyond: -1}
		least := func(v *float64, x float64) {
			if *v < 0 || x < *v {
				*v = x
			}
		}
		for i := range readings {
			if i > 0 {
				time.Sleep(readingGap)
			}
			before := conns.n.Load()
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			m, err := s.p.metrics(sctx, heapInuse, goroutines, openFDs)
			cancel()
			if rss := s.p.memory().rss; rss > 0 && (smp.rss < 0 || rss < smp.rss) {
				smp.rss = rss
			}
			if err != nil {
				logf("soak: %s: metrics at %v: %v", s.name, at.Round(time.Second), err)
				continue
			}
			c := float64(max(before, conns.n.Load()))
			least(&smp.heap, m[heapInuse])
			least(&smp.gor, m[goroutines])
			least(&smp.fds, m[openFDs])
			least(&smp.conns, c)
			least(&smp.gorBeyond, m[goroutines]-c)
			least(&smp.fdsBeyond, m[openFDs]-c)
		}
		return smp
	}
	run.samples = append(run.samples, sample(0))
	var attackers []*vegeta.Attacker
	var transports []*http.Transport
	defer func() {
		for _, tr := range transports {
			tr.CloseIdleConnections()
		}
	}()
	var wg sync.WaitGroup
	start := time.Now()
	for i, a := range attacks {
		if a.rate == 0 { // no logins: vegeta takes a rate of 0 as no pacing at all
			continue
		}
		atk, tr := soakAttacker(conns, a.workers, a.conns)
		attackers, transports = append(attackers, atk), append(transports, tr)
		results := atk.Attack(a.tr, vegeta.ConstantPacer{Freq: a.rate, Per: time.Second}, d, fmt.Sprintf("soak-%d", i))
		wg.Go(func() {
			for r := range results {
				kind, u := load.classify(r.Method, r.URL)
				ok := r.Code >= 200 && r.Code < 300
				load.answered(kind, u, r, ok)
				col.add(kind, r, ok)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	stop := func() {
		for _, a := range attackers {
			a.Stop()
		}
		<-done
	}
	last := time.Duration(0)
	for k := 1; time.Duration(k)*every < d; k++ {
		select {
		case <-time.After(time.Until(start.Add(time.Duration(k) * every))):
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		}
		at := time.Since(start)
		requests, errs, p99 := col.take()
		smp := sample(at)
		smp.requests, smp.errors, smp.p99 = requests, errs, p99
		smp.interval, last = at-last, at
		run.samples = append(run.samples, smp)
		logf("soak: %s %v: %d answers (%d errors, p99 %v), RSS %s, heap in use %s, %.0f goroutines, %.0f fds, %.0f connections",
			s.name, at.Round(time.Second), smp.requests, smp.errors, smp.p99.Round(10*time.Microsecond), mib(smp.rss),
			mib(int64(smp.heap)), smp.gor, smp.fds, smp.conns)
	}
	select {
	case <-done:
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	}
	run.wall = time.Since(start)
	requests, errs, p99 := col.take()
	smp := sample(run.wall)
	smp.requests, smp.errors, smp.p99 = requests, errs, p99
	smp.interval = run.wall - last
	run.samples = append(run.samples, smp)
	run.loadEnd = loadAvg()
	markThirds(run.samples, d)
	return run, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// markThirds marks the samples of the warm-up, and the first and last
// thirds of the samples after it.
func markThirds(ss []soakSample, d time.Duration) {
	var post []int
	for i := range ss {
		if ss[i].at < time.Duration(float64(d)*soakWarmUp) {
			ss[i].warmUp = true
		} else {
			post = append(post, i)
		}
	}
	n := max(len(post)/3, 1)
	if len(post) < 2 {
		return
	}
	for _, i := range post[:n] {
		ss[i].first = true
	}
	for _, i := range post[len(post)-n:] {
		ss[i].last = true
	}
}

// verdict compares the last third of the samples after the warm-up with
// the first third.
type verdict struct {
	heapFirst, heapLast  float64 // medians, bytes
	rssFirst, rssLast    float64
	gorFirstMax, gorLast float64 // beyond one per connection of the soak
	fdsFirstMax, fdsLast float64
	heapSlope, rssSlope  float64 // MiB per minute, least squares over the samples after the warm-up
	post                 int     // samples after the warm-up
}

func (r *soakRun) verdict() verdict {
	var first, last, post []soakSample
	for _, s := range r.samples {
		if s.first {
			first = append(first, s)
		}
		if s.last {
			last = append(last, s)
		}
		if !s.warmUp {
			post = append(post, s)
		}
	}
	vals := func(ss []soakSample, f func(soakSample) float64) []float64 {
		var out []float64
		for _, s := range ss {
			if v := f(s); v >= 0 {
				out = append(out, v)
			}
		}
		return out
	}
	heap := func(s soakSample) float64 { return s.heap }
	rss := func(s soakSample) float64 { return float64(s.rss) }
	gor := func(s soakSample) float64 { return s.gorBeyond }
	fds := func(s soakSample) float64 { return s.fdsBeyond }
	largest := func(xs []float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		return slices.Max(xs)
	}
	return verdict{
		heapFirst: median(vals(first, heap)), heapLast: median(vals(last, heap)),
		rssFirst: median(vals(first, rss)), rssLast: median(vals(last, rss)),
		gorFirstMax: largest(vals(first, gor)), gorLast: median(vals(last, gor)),
		fdsFirstMax: largest(vals(first, fds)), fdsLast: median(vals(last, fds)),
		heapSlope: slope(post, heap), rssSlope: slope(post, rss),
		post: len(post),
	}
}

// slope is the least-squares slope of f over the samples, in MiB per
// minute.
func slope(ss []soakSample, f func(soakSample) float64) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range ss {
		y := f(s)
		if y < 0 {
			continue
		}
		x := s.at.Minutes()
		y /= 1 << 20
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	den := n*sxx - sx*sx
	if n < 2 || den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

func soakReport(w io.Writer, runs []*soakRun) {
	if len(runs) == 0 {
		return
	}
	r0 := runs[0]
	fmt.Fprintf(w, "\n### Soak (%v on each service in turn, open-loop at %d req/s, %d users; samples every %v; warm-up: the first %.0f%%)\n",
		r0.d, r0.mix.total(), r0.users, r0.every, soakWarmUp*100)
	fmt.Fprintf(w, "\nPer second: %d reads (preferences and user in turn), %d preference writes, %d device registrations and deletions, "+
		"%d refreshes, %d logins and logouts (half each). RSS, heap in use, goroutines and fds: the smallest of %d readings %v apart; "+
		"conns: the soak's connections to the service, each one goroutine and one fd of it; beyond: goroutines and fds less conns.\n",
		r0.mix.reads, r0.mix.writes, r0.mix.devices, r0.mix.refresh, r0.mix.sessions, readings, readingGap)
	for _, r := range runs {
		fmt.Fprintf(w, "\n#### %s (load average %s at the start, %s at the end)\n\n", r.name, r.loadBefore, r.loadEnd)
		fmt.Fprintln(w, "| t | part | answers | req/s | errors | p99 | RSS | heap in use | goroutines | open fds | conns | goroutines beyond | fds beyond |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, s := range r.samples {
			part := ""
			switch {
			case s.warmUp:
				part = "warm-up"
			case s.first:
				part = "first third"
			case s.last:
				part = "last third"
			}
			if s.at == 0 {
				part = "start"
			}
			load := "| | | |"
			if s.interval > 0 {
				load = fmt.Sprintf("%d | %.0f | %d | %s |", s.requests, float64(s.requests)/s.interval.Seconds(), s.errors, ms(s.p99))
			}
			fmt.Fprintf(w, "| %v | %s | %s %s | %s | %s | %s | %s | %s | %s |\n", s.at.Round(time.Second), part, load, mibOr(s.rss),
				mibOr(int64(s.heap)), countOr(s.gor), countOr(s.fds), countOr(s.conns), countOr(s.gorBeyond), countOr(s.fdsBeyond))
		}
		fmt.Fprintf(w, "\n| request | answers | errors | p50 | p99 | the first error |\n|---|---|---|---|---|---|\n")
		for k, t := range r.kinds {
			if t.requests+t.errors == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s |\n", kindNames[k], t.requests, t.errors, ms(quantile(t.latencies, 0.5)),
				ms(quantile(t.latencies, 0.99)), strings.ReplaceAll(t.firstErr, "|", "\\|"))
		}
	}
	fmt.Fprintf(w, "\n#### Summary (medians of the last third of the samples after the warm-up against the first third's; "+
		"goroutines and fds beyond the soak's connections: against the first third's largest)\n\n")
	fmt.Fprintln(w, "| system | length | asked req/s | answered req/s | unexpected errors | p99 | heap in use | RSS | goroutines beyond | fds beyond | heap slope | RSS slope |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range runs {
		v := r.verdict()
		n, errs, p99 := r.totals()
		fmt.Fprintf(w, "| %s | %v | %d | %.0f | %d | %s | %s → %s | %s → %s | %.0f → %.0f | %.0f → %.0f | %+.3f MiB/min | %+.3f MiB/min |\n",
			r.name, r.d, r.mix.total(), float64(n)/r.wall.Seconds(), errs, ms(p99), mib(int64(v.heapFirst)), mib(int64(v.heapLast)),
			mib(int64(v.rssFirst)), mib(int64(v.rssLast)), v.gorFirstMax, v.gorLast, v.fdsFirstMax, v.fdsLast, v.heapSlope, v.rssSlope)
	}
	fmt.Fprintf(w, "\n### Soak goals\n\n")
	for _, r := range runs {
		v := r.verdict()
		n, errs, _ := r.totals()
		goal(w, v.heapLast <= soakGrowth*v.heapFirst, "%s soak: heap in use %s in the last third, %.2f × the first third (goal ≤ %.2f)",
			r.name, mib(int64(v.heapLast)), v.heapLast/v.heapFirst, soakGrowth)
		goal(w, v.rssLast <= soakGrowth*v.rssFirst, "%s soak: RSS %s in the last third, %.2f × the first third (goal ≤ %.2f)",
			r.name, mib(int64(v.rssLast)), v.rssLast/v.rssFirst, soakGrowth)
		goal(w, v.gorLast <= v.gorFirstMax+soakSlack,
			"%s soak: %.0f goroutines beyond the soak's connections in the last third, %.0f at most in the first (goal ≤ %.0f + %d)",
			r.name, v.gorLast, v.gorFirstMax, v.gorFirstMax, soakSlack)
		goal(w, v.fdsLast <= v.fdsFirstMax+soakSlack,
			"%s soak: %.0f open fds beyond the soak's connections in the last third, %.0f at most in the first (goal ≤ %.0f + %d)",
			r.name, v.fdsLast, v.fdsFirstMax, v.fdsFirstMax, soakSlack)
		goal(w, errs == 0 && n > 0, "%s soak: %d unexpected answers of %d (goal 0)", r.name, errs, n+errs)
		fmt.Fprintf(w, "- %s soak: heap in use %+.3f MiB per minute after the warm-up (least squares over %d samples)\n", r.name, v.heapSlope, v.post)
		if rate := float64(n) / r.wall.Seconds(); rate < 0.95*float64(r.mix.total()) {
			fmt.Fprintf(w, "- %s soak: answered %.0f req/s of the %d asked: past its saturation the samples count its queue of "+
				"requests as much as anything it keeps; a lower -soak-rate soaks it below saturation\n", r.name, rate, r.mix.total())
		}
	}
}

func mibOr(b int64) string {
	if b < 0 {
		return "–"
	}
	return mib(b)
}

func countOr(v float64) string {
	if v < 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", v)
}

// soakBroken reports a soak that measured something other than what it
// meant to: no answers, or more than 1% of them unexpected.
func soakBroken(runs []*soakRun) error {
	var errs []error
	for _, r := range runs {
		n, bad, _ := r.totals()
		if n == 0 || bad*100 > n {
			first := ""
			for _, k := range r.kinds {
				if k.firstErr != "" {
					first = k.firstErr
					break
				}
			}
			errs = append(errs, fmt.Errorf("%s soak: %d answers as expected, %d not (the first: %s)", r.name, n, bad, first))
		}
	}
	return errors.Join(errs...)
}
