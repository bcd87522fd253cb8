package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/usersvc/usersvc/internal/password"
)

// hashTime is the median of five argon2id hashes with the service's
// default parameters, one at a time.
func hashTime(ctx context.Context) (time.Duration, error) {
	h, err := password.New(password.WithMaxConcurrent(1))
	if err != nil {
		return 0, err
	}
	var ds []time.Duration
	for range 5 {
		start := time.Now()
		if _, err := h.Hash(ctx, benchPassword); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	return median(ds), nil
}

// hashRate is how many argon2id hashes per second this process computes
// with one goroutine per core for d: the hash-bound limit as the machine
// gives it right now (on a shared machine, less than the cores divided by
// one hash's time).
func hashRate(ctx context.Context, d time.Duration) (float64, error) {
	h, err := password.New()
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range runtime.NumCPU() {
		g.Go(func() error {
			for time.Since(start) < d {
				if _, err := h.Hash(ctx, benchPassword); err != nil {
					return err
				}
				n.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

func median[T int | int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func each[T any](rs []result, f func(result) T) []T {
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// ratios returns, per round, s's saturation rate over bare's.
func ratios(s, bare *system) []float64 {
	out := make([]float64, len(s.sat))
	for i := range s.sat {
		out[i] = s.sat[i].rate / bare.sat[i].rate
	}
	return out
}

// report prints the tables (medians over the rounds) and the goals.
func report(w io.Writer, systems []*system, o options) {
	bare := systems[0]
	fmt.Fprintf(w, "\n### Reads (%d rounds of %v, median; saturation %d connections; half = open-loop at half of the system's own saturation)\n\n",
		o.rounds, o.duration, o.conns)
	fmt.Fprintln(w, "| system | saturation req/s | × bare | p50 | p99 | half rate req/s | p50 | p99 | allocs/req | RSS after reads (peak) | of it file pages | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range systems {
		errs := 0
		for _, r := range append(slices.Clone(s.sat), s.half...) {
			errs += r.errors
		}
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %s | %s | %.0f | %s | %s | %.1f | %s (%s) | %s | %d |\n", s.name,
			median(each(s.sat, func(r result) float64 { return r.rate })), median(ratios(s, bare)),
			ms(median(each(s.sat, func(r result) time.Duration { return r.p50 }))),
			ms(median(each(s.sat, func(r result) time.Duration { return r.p99 }))),
			median(each(s.half, func(r result) float64 { return r.rate })),
			ms(median(each(s.half, func(r result) time.Duration { return r.p50 }))),
			ms(median(each(s.half, func(r result) time.Duration { return r.p99 }))),
			median(s.allocs), mib(s.reads.rss), mib(s.reads.hwm), mib(s.reads.file), errs)
	}
	services := systems[1:]
	fmt.Fprintf(w, "\n### Logins (%v storms, 4 clients per core)\n\n", o.loginDuration)
	fmt.Fprint(w, "Limit A: argon2id hashes per second of one goroutine per core in the harness, before and after the storms "+
		"(on an idle machine, cores ÷ one hash). Limit B: cores ÷ the service's own mean hash time during the storm.\n\n")
	fmt.Fprintln(w, "| system | path | one hash alone | limit A/s | hash in storm | limit B/s | logins/s | × A | × B | RSS peak in storm | after | after idle |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	cores := float64(runtime.NumCPU())
	for _, s := range services {
		l := s.login
		for _, st := range []struct {
			path string
			storm
		}{{"known email", l.known}, {"wrong password", l.wrong}, {"unknown email", l.unknown}} {
			limitB := cores / st.hash.Seconds()
			fmt.Fprintf(w, "| %s | %s | %s | %.1f | %s | %.1f | %.1f | %.2f | %.2f | %s | %s | %s |\n", s.name, st.path, ms(l.hash), l.limit,
				ms(st.hash), limitB, st.rate, st.rate/l.limit, st.rate/limitB, mib(st.peak), mib(l.after.rss), mib(l.afterIdle.rss))
		}
	}
	fmt.Fprintf(w, "\n### Goals\n\n")
	const mb = 1 << 20
	for _, s := range services {
		want := 0.60
		if s.name != "usersvc SQLite" {
			want = 0.45
		}
		r := median(ratios(s, bare))
		goal(w, r >= want, "%s reads %.2f × bare (goal ≥ %.2f)", s.name, r, want)
		p99 := median(each(s.half, func(r result) time.Duration { return r.p99 }))
		goal(w, p99 < 2*time.Millisecond, "%s p99 at half saturation %s (goal < 2 ms)", s.name, ms(p99))
		goal(w, s.reads.rss < 40*mb, "%s RSS after reads %s, of it %s pages of files (goal < 40 MiB)", s.name, mib(s.reads.rss), mib(s.reads.file))
		l := s.login
		goal(w, l.known.rate >= 0.9*l.limit, "%s logins %.2f × the hash-bound limit A (%.2f × B) (goal ≥ 0.90)", s.name,
			l.known.rate/l.limit, l.known.rate*l.known.hash.Seconds()/cores)
		same := l.unknown.rate / l.wrong.rate
		goal(w, l.unknown.rate >= 0.9*l.limit && same >= 0.9 && same <= 1.1,
			"%s unknown-email logins %.2f × the limit A, %.2f × the rate of wrong passwords (goal ≥ 0.90, and 0.90 to 1.10)", s.name,
			l.unknown.rate/l.limit, same)
		goal(w, l.peak < 80*mb, "%s RSS during the login storms %s (goal < 80 MiB)", s.name, mib(l.peak))
		goal(w, l.afterIdle.rss < 48*mb, "%s RSS after %v idle %s (goal < 48 MiB)", s.name, o.idle, mib(l.afterIdle.rss))
	}
}

// goal prints one line of the goals: what was measured, and met or NOT MET.
func goal(w io.Writer, ok bool, format string, args ...any) {
	mark := "met"
	if !ok {
		mark = "NOT MET"
	}
	fmt.Fprintf(w, "- %s: %s\n", fmt.Sprintf(format, args...), mark)
}
