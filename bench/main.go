// Command bench measures usersvc at the limit of the machine it runs on, in
// one run so that the noise of a shared machine cancels in the ratios:
//
//	go run ./bench                                  # SQLite, about 5 minutes
//	go run ./bench -postgres URL -redis URL         # and PostgreSQL + Redis
//	go run ./bench -short                           # a quick pass (CI)
//	go run ./bench -soak 10m                        # only a soak of 10 minutes
//
// It builds the service, starts it with its in-process cache on SQLite (and
// on PostgreSQL with Redis when their URLs are given: a fresh database it
// drops at the end, and an empty Redis database numbered 1 to 15 that it
// claims and empties at the end; database 0 is never touched), and a bare
// net/http server that answers each GET with the same bytes usersvc
// answered. Then, in rounds that alternate the systems, it drives the
// authenticated reads (GET /api/v1/users/{id}/preferences and
// GET /api/v1/users/{id}/, each user with its own bearer token)
// closed-loop to saturation (wrk -t2 -c32 when wrk is installed, else
// vegeta with as many workers), then open-loop at half of each system's
// own saturation (vegeta at a constant rate, so that a slow answer does not
// hold the next request back and hide the tail). Allocations per request
// are the difference of go_memstats_mallocs_total on the service's admin
// listener over a saturation run, divided by its requests; resident
// memory is VmRSS and VmHWM of /proc/PID/status.
//
// Logins are measured against the hash-bound limit: the argon2id hashes
// (the service's parameters) per second that this process computes with
// one goroutine per core, measured just before and just after the storms;
// on an idle machine that is the cores divided by one hash's time (also
// shown), on a shared one what the machine gives right then. A storm of logins with the right password, then
// one of unknown emails, each closed-loop with four clients per core, with
// the resident memory sampled during it, after it and after -idle.
//
// The soak (-soak DURATION, see soak.go) registers users on each service
// in turn and sends it an open-loop mix at -soak-rate for that long:
// reads, preference writes, devices registered and deleted, refreshes and
// a few logins a second, each logged out again. It samples the resident
// set, the heap in use, the goroutines and the open descriptors every
// -soak-every, and compares the last third of the samples after a warm-up
// with the first third. -short runs a soak of 5 s after its pass.
//
// The load generators: vegeta (github.com/tsenart/vegeta/v12) as a
// library, since it paces open-loop at a constant rate and reports
// latency quantiles; wrk for saturation where it is installed, since its
// C event loop takes less of the shared cores than a Go client does.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

type options struct {
	short         bool
	postgres      string
	redis         string
	rounds        int
	duration      time.Duration
	conns         int
	users         int
	loginDuration time.Duration
	idle          time.Duration
	pprofDir      string
	keep          bool
	env           envList
	pgEnv         envList
	soak          time.Duration // the soak's length; 0: none
	soakOnly      bool          // -soak was given: the soak is all the run does
	soakRate      int
	soakLogins    int
	soakEvery     time.Duration
}

// envList is the repeated -env flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return errors.New("want NAME=VALUE")
	}
	*e = append(*e, v)
	return nil
}

func main() {
	var o options
	bare := flag.String("bare", "", "internal: serve as the bare server with the bodies in this directory")
	flag.BoolVar(&o.short, "short", false, "a quick pass: one round of 2 s runs, 2 s login storms, 3 s idle")
	flag.StringVar(&o.postgres, "postgres", "", "PostgreSQL URL: also measure usersvc on PostgreSQL + Redis (needs -redis)")
	flag.StringVar(&o.redis, "redis", "", "Redis URL (redis://host:port): the server of the private database for -postgres")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of the read runs, alternating the systems")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "length of one read run")
	flag.IntVar(&o.conns, "conns", 32, "connections of the saturation runs")
	flag.IntVar(&o.users, "users", 64, "users registered on each service")
	flag.DurationVar(&o.loginDuration, "login-duration", 10*time.Second, "length of one login storm")
	flag.DurationVar(&o.idle, "idle", time.Minute, "idle time after the login storms before memory is read again")
	flag.StringVar(&o.pprofDir, "pprof", "", "save CPU and allocation profiles of each service's first saturation run here")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (binary, logs, data)")
	flag.Var(&o.env, "env", "NAME=VALUE for the usersvc processes (repeatable), e.g. -env GOMEMLIMIT=off")
	flag.Var(&o.pgEnv, "pg-env", "NAME=VALUE for the PostgreSQL + Redis process only (repeatable), e.g. -pg-env NEAR_CACHE=on")
	flag.DurationVar(&o.soak, "soak", 0, "run only a soak of this length on each service in turn (e.g. 10m); 0: none (-short runs one of 5 s after its pass)")
	flag.IntVar(&o.soakRate, "soak-rate", 2000, "requests per second of the soak, all kinds together")
	flag.IntVar(&o.soakLogins, "soak-logins", 3, "logins per second of the soak (each followed by a logout), within -soak-rate")
	flag.DurationVar(&o.soakEvery, "soak-every", 10*time.Second, "sampling period of the soak")
	flag.Parse()
	o.soakOnly = o.soak > 0
	if *bare != "" {
		if err := serveBare(*bare); err != nil {
			fmt.Fprintln(os.Stderr, "bench: bare:", err)
			os.Exit(1)
		}
		return
	}
	if o.short {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		short := map[string]func(){
			"rounds":         func() { o.rounds = 1 },
			"duration":       func() { o.duration = 2 * time.Second },
			"users":          func() { o.users = 8 },
			"login-duration": func() { o.loginDuration = 2 * time.Second },
			"idle":           func() { o.idle = 3 * time.Second },
			"soak":           func() { o.soak = 5 * time.Second },
			"soak-every":     func() { o.soakEvery = time.Second },
		}
		for name, f := range short {
			if !set[name] {
				f()
			}
		}
	}
	if o.soak < 0 || o.soakEvery <= 0 || o.soakRate < 1 || o.soakLogins < 0 {
		fmt.Fprintln(os.Stderr, "bench: -soak must not be negative, -soak-every and -soak-rate must be positive, -soak-logins not negative")
		os.Exit(2)
	}
	if (o.postgres == "") != (o.redis == "") {
		fmt.Fprintln(os.Stderr, "bench: -postgres and -redis go together")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// system is one server under load.
type system struct {
	name    string
	p       *proc
	targets []vegeta.Target
	users   []user
	sat     []result  // per round
	half    []result  // per round
	allocs  []float64 // per request, per round
	reads   memory    // after the read runs
	login   logins
}

type logins struct {
	hash             time.Duration // one argon2id hash, alone
	limit            float64       // hashes per second, one goroutine per core
	known, wrong     storm         // right and wrong passwords of existing users
	unknown          storm         // emails nobody has
	peak             int64         // largest resident set sampled during the storms
	after, afterIdle memory
}

func run(ctx context.Context, o options) error {
	if o.pprofDir != "" {
		// The profiles are written after the first round: a directory
		// that does not exist would fail the run only then.
		if err := os.MkdirAll(o.pprofDir, 0o755); err != nil {
			return fmt.Errorf("-pprof: %w", err)
		}
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "usersvc-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "bench: scratch directory", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := filepath.Join(dir, "usersvc")
	logf("building usersvc")
	if err := buildUsersvc(ctx, root, bin); err != nil {
		return err
	}
	common := []string{"SECRET_KEY=" + rand.Text() + rand.Text(), "UNSUBSCRIBE_KEY=" + rand.Text() + rand.Text(), "RATE_LIMIT_LOGIN_EMAIL=off", "RATE_LIMIT_LOGIN_ADDRESS=off",
		"RATE_LIMIT_REGISTER_EMAIL=off", "RATE_LIMIT_REGISTER_ADDRESS=off"}
	common = append(common, o.env...)
	var systems []*system
	defer func() {
		for _, s := range systems {
			s.p.stop()
		}
	}()
	sqliteEnv := append([]string{"DATA_DIR=" + filepath.Join(dir, "sqlite")}, common...)
	p, err := startUsersvc(ctx, "usersvc SQLite", bin, sqliteEnv, filepath.Join(dir, "sqlite.log"))
	if err != nil {
		return err
	}
	systems = append(systems, &system{name: p.name, p: p})
	if o.postgres != "" {
		dbURL, drop, err := privateDatabase(ctx, o.postgres)
		if err != nil {
			return err
		}
		defer drop()
		redisURL, release, err := privateRedisDB(ctx, o.redis)
		if err != nil {
			return err
		}
		defer release()
		env := append([]string{"DATA_DIR=" + filepath.Join(dir, "pg"), "DATABASE_URL=" + dbURL, "REDIS_URL=" + redisURL}, common...)
		env = append(env, o.pgEnv...)
		p, err := startUsersvc(ctx, "usersvc PostgreSQL+Redis", bin, env, filepath.Join(dir, "pg.log"))
		if err != nil {
			return err
		}
		systems = append(systems, &system{name: p.name, p: p})
	}
	if o.soakOnly {
		return soakAll(ctx, os.Stdout, systems, o)
	}
	for _, s := range systems {
		logf("registering %d users on %s", o.users, s.name)
		if s.users, err = registerUsers(ctx, s.p, o.users); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		s.targets = readTargets(s.p.base, s.users)
	}
	if err := saveBodies(ctx, systems[0].p, systems[0].users[0], dir); err != nil {
		return err
	}
	bp, err := startBare(ctx, dir)
	if err != nil {
		return err
	}
	bare := &system{name: "bare net/http", p: bp}
	bare.targets = readTargets(bp.base, systems[0].users)
	systems = append([]*system{bare}, systems...)

	_, wrkErr := exec.LookPath("wrk")
	useWrk := wrkErr == nil
	if !useWrk {
		logf("wrk is not installed: saturating with vegeta (%d workers)", o.conns)
	}
	for _, s := range systems { // warm the caches and connections
		attack(s.targets, 0, 4, time.Second, status200)
	}
	for r := range o.rounds {
		order := slices.Clone(systems)
		rotate(order, r)
		for _, s := range order {
			before, err := s.p.mallocs(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			stopProfile := func() error { return nil }
			if r == 0 && o.pprofDir != "" && s.p.admin != "" {
				stopProfile = profile(ctx, s, o.pprofDir, "", o.duration)
			}
			var res result
			if useWrk {
				res, err = saturateWrk(ctx, dir, s.p.base, s.targets, o.conns, o.duration)
			} else {
				res = attack(s.targets, 0, o.conns, o.duration, status200)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			if err := stopProfile(); err != nil {
				return fmt.Errorf("%s: profile: %w", s.name, err)
			}
			after, err := s.p.mallocs(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.sat = append(s.sat, res)
			s.allocs = append(s.allocs, (after-before)/float64(max(res.requests, 1)))
			logf("round %d: %s saturated at %.0f req/s (p99 %v, %d errors)", r+1, s.name, res.rate, res.p99, res.errors)
		}
		for _, s := range order {
			rate := int(s.sat[r].rate / 2)
			res := attack(s.targets, rate, o.conns, o.duration, status200)
			s.half = append(s.half, res)
			logf("round %d: %s at %d req/s: p50 %v p99 %v (%d errors)", r+1, s.name, rate, res.p50, res.p99, res.errors)
		}
	}
	for _, s := range systems {
		s.reads = s.p.memory()
	}
	services := systems[1:]
	for _, s := range services {
		if err := measureLogins(ctx, s, o); err != nil {
			return err
		}
	}
	if o.idle > 0 {
		logf("idle for %v", o.idle)
		select {
		case <-time.After(o.idle):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, s := range services {
		s.login.afterIdle = s.p.memory()
	}
	report(os.Stdout, systems, o)
	err = broken(systems)
	if o.soak > 0 {
		err = errors.Join(err, soakAll(ctx, os.Stdout, services, o))
	}
	return err
}

// broken reports a run that measured something other than what it meant
// to: a read run with no answers or more than 1% of them unexpected, a
// login storm with no login. Goals not met are not errors: on a shared
// machine they are the machine's as much as the service's.
func broken(systems []*system) error {
	var errs []error
	check := func(name string, r result) {
		if r.requests == 0 || r.errors*100 > r.requests {
			errs = append(errs, fmt.Errorf("%s: %d answers as expected, %d not (the first: %s)", name, r.requests, r.errors, r.firstErr))
		}
	}
	for _, s := range systems {
		for _, r := range append(slices.Clone(s.sat), s.half...) {
			check(s.name+" reads", r)
		}
		if s.p.admin != "" {
			check(s.name+" logins", s.login.known.result)
			check(s.name+" wrong-password logins", s.login.wrong.result)
			check(s.name+" unknown-email logins", s.login.unknown.result)
		}
	}
	return errors.Join(errs...)
}

// rotate turns s left by n places, so that each round starts with
// another system.
func rotate[T any](s []T, n int) {
	n %= len(s)
	slices.Reverse(s[:n])
	slices.Reverse(s[n:])
	slices.Reverse(s)
}

// profile fetches a CPU and an allocation profile of s over most of a run
// of d into dir (with kind in the names); the function it returns waits for
// them.
func profile(ctx context.Context, s *system, dir, kind string, d time.Duration) func() error {
	secs := max(int(d.Seconds())-1, 1)
	name := map[string]string{"usersvc SQLite": "sqlite", "usersvc PostgreSQL+Redis": "pg"}[s.name] + kind
	errc := make(chan error, 2)
	for prof, path := range map[string]string{"cpu": "/debug/pprof/profile", "allocs": "/debug/pprof/allocs"} {
		go func() {
			errc <- saveProfile(ctx, s.p, fmt.Sprintf("%s?seconds=%d", path, secs), filepath.Join(dir, name+"."+prof+".pprof"))
		}()
	}
	return func() error { return errors.Join(<-errc, <-errc) }
}

// measureLogins times one hash here, then runs the two login storms on s.
func measureLogins(ctx context.Context, s *system, o options) error {
	h, err := hashTime(ctx)
	if err != nil {
		return err
	}
	before, err := hashRate(ctx, o.loginDuration/2)
	if err != nil {
		return err
	}
	l := &s.login
	l.hash = h
	clients := 4 * runtime.NumCPU()
	stopProfile := func() error { return nil }
	if o.pprofDir != "" {
		stopProfile = profile(ctx, s, o.pprofDir, "-login", o.loginDuration)
	}
	if l.known, err = loginStorm(ctx, s.p, loginTargets(s.p.base, s.users, loginKnown), loginKnown, clients, o.loginDuration); err != nil {
		return err
	}
	if err := stopProfile(); err != nil {
		return fmt.Errorf("%s: profile: %w", s.name, err)
	}
	if l.wrong, err = loginStorm(ctx, s.p, loginTargets(s.p.base, s.users, loginWrong), loginWrong, clients, o.loginDuration); err != nil {
		return err
	}
	if l.unknown, err = loginStorm(ctx, s.p, loginTargets(s.p.base, s.users, loginUnknown), loginUnknown, clients, o.loginDuration); err != nil {
		return err
	}
	l.peak = max(l.known.peak, l.wrong.peak, l.unknown.peak)
	l.after = s.p.memory()
	after, err := hashRate(ctx, o.loginDuration/2)
	if err != nil {
		return err
	}
	l.limit = (before + after) / 2
	logf("%s: logins %.1f/s (unknown email %.1f/s), limit %.1f/s (one hash %v)", s.name, l.known.rate, l.unknown.rate, l.limit, h)
	for _, r := range []result{l.known.result, l.wrong.result, l.unknown.result} {
		if r.errors > 0 {
			logf("%s: %d logins failed, the first: %s", s.name, r.errors, r.firstErr)
		}
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
