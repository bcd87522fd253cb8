// Package breaker stops calls to a failing dependency for a while, so that a
// dependency that is down or unreachable costs each request no more than a
// check of a flag.
//
// A Breaker is closed while calls succeed. After Threshold consecutive
// failures it opens and refuses calls for Cooldown. Then it lets one call
// through as a probe (half-open): if the probe succeeds the breaker closes,
// if it fails the breaker opens for another Cooldown. A probe whose outcome
// is never reported is given up after Cooldown and another one is allowed.
//
// Every caller that is allowed a call must report its outcome with Success
// or Failure.
package breaker

import (
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultThreshold = 3
	DefaultCooldown  = 2 * time.Second
)

// Options configure a Breaker. Zero values mean the defaults.
type Options struct {
	// Threshold is the number of consecutive failures that opens the breaker.
	Threshold int
	// Cooldown is how long an open breaker refuses calls before it probes.
	Cooldown time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnChange is told when the breaker opens (true) and when it closes
	// again (false). It is called without the breaker's lock held.
	OnChange func(open bool)
	// OnRefuse is told of each call Allow refuses, for example to count
	// the calls that bypass the dependency. It is called without the
	// breaker's lock held, so it must be cheap: it runs on every refused call.
	OnRefuse func()
}

type state int32

const (
	closed state = iota
	open
)

// Breaker is a circuit breaker. It is safe for concurrent use.
type Breaker struct {
	threshold int32
	cooldown  time.Duration
	now       func() time.Time
	onChange  func(open bool)
	onRefuse  func()

	state    atomic.Int32 // closed or open; read without the lock on the hot path
	failures atomic.Int32 // consecutive failures while closed

	mu         sync.Mutex
	retryAt    time.Time // when open: the earliest time of the next probe
	probing    bool      // a probe is out
	probeUntil time.Time // when the outstanding probe is given up
}

// New returns a closed Breaker.
func New(opts Options) *Breaker {
	b := &Breaker{
		threshold: int32(opts.Threshold),
		cooldown:  opts.Cooldown,
		now:       opts.Now,
		onChange:  opts.OnChange,
		onRefuse:  opts.OnRefuse,
	}
	if b.threshold <= 0 {
		b.threshold = DefaultThreshold
	}
	if b.cooldown <= 0 {
		b.cooldown = DefaultCooldown
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// Allow reports whether a call may be made now. A true answer obliges the
// caller to report the call's outcome.
func (b *Breaker) Allow() bool {
	if state(b.state.Load()) == closed {
		return true
	}
	if b.allowOpen() {
		return true
	}
	if b.onRefuse != nil {
		b.onRefuse()
	}
	return false
}

// allowOpen is Allow for a breaker that was open when Allow looked: it
// lets one probe through once the cooldown has passed.
func (b *Breaker) allowOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if state(b.state.Load()) == closed {
		return true
	}
	now := b.now()
	if now.Before(b.retryAt) {
		return false
	}
	if b.probing && now.Before(b.probeUntil) {
		return false
	}
	b.probing = true
	b.probeUntil = now.Add(b.cooldown)
	return true
}

// Success reports a call that worked. It closes an open breaker.
func (b *Breaker) Success() {
	if state(b.state.Load()) == closed {
		if b.failures.Load() != 0 {
			b.failures.Store(0)
		}
		return
	}
	b.mu.Lock()
	changed := state(b.state.Load()) == open
	b.state.Store(int32(closed))
	b.failures.Store(0)
	b.probing = false
	b.mu.Unlock()
	if changed && b.onChange != nil {
		b.onChange(false)
	}
}

// Failure reports a call that failed because the dependency did not answer
// (a timeout, a refused or broken connection).
func (b *Breaker) Failure() {
	if state(b.state.Load()) == closed {
		if b.failures.Add(1) < b.threshold {
			return
		}
	}
	b.mu.Lock()
	changed := state(b.state.Load()) == closed
	if !changed && !b.probing {
		// A call allowed before the breaker opened has failed late; the
		// breaker is open already and its cooldown runs.
		b.mu.Unlock()
		return
	}
	b.state.Store(int32(open))
	b.probing = false
	b.retryAt = b.now().Add(b.cooldown)
	b.mu.Unlock()
	if changed && b.onChange != nil {
		b.onChange(true)
	}
}

// Open reports whether the breaker is refusing calls (open, or half-open
// with a probe out).
func (b *Breaker) Open() bool { return state(b.state.Load()) != closed }
