package client

import (
	"sync"
	"time"
)

// breaker is a circuit breaker: closed while attempts succeed, open for a
// cooldown after threshold consecutive failures, then half-open: one probe
// goes through and decides. A probe that never reports is given up after
// probeTTL.
type breaker struct {
	threshold int
	cooldown  time.Duration
	probeTTL  time.Duration // how long an unreported probe holds its place
	now       func() time.Time

	mu          sync.Mutex
	open        bool
	failures    int       // consecutive failures while closed
	openedAt    time.Time // when it last opened
	probing     bool      // a probe is in flight
	probeSeq    uint64    // identifies the probe in flight
	probeExpiry time.Time // when an unreported probe is given up
}

// ticket is a permission to make one attempt.
type ticket struct {
	probe uint64 // non-zero for a half-open probe
}

func newBreaker(threshold int, cooldown time.Duration) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, probeTTL: cooldown, now: time.Now}
}

// allow reports whether an attempt may be made now.
func (b *breaker) allow() (ticket, bool) {
	if b == nil {
		return ticket{}, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return ticket{}, true
	}
	now := b.now()
	if now.Sub(b.openedAt) < b.cooldown {
		return ticket{}, false
	}
	if b.probing && now.Before(b.probeExpiry) {
		return ticket{}, false
	}
	b.probing = true
	b.probeSeq++
	b.probeExpiry = now.Add(b.probeTTL)
	return ticket{probe: b.probeSeq}, true
}

// success records an attempt that got an answer the service could give.
func (b *breaker) success(t ticket) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		b.failures = 0
	case t.probe != 0 && t.probe == b.probeSeq && b.probing:
		b.open, b.probing, b.failures = false, false, 0
	}
}

// failure records an attempt that failed for the service's sake.
func (b *breaker) failure(t ticket) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		b.failures++
		if b.failures >= b.threshold {
			b.open, b.openedAt, b.probing = true, b.now(), false
		}
	case t.probe != 0 && t.probe == b.probeSeq && b.probing:
		b.openedAt, b.probing = b.now(), false
	}
}

// release records an attempt whose outcome says nothing about the service
// (the caller gave up): a probe's place goes to the next caller.
func (b *breaker) release(t ticket) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open && t.probe != 0 && t.probe == b.probeSeq {
		b.probing = false
	}
}
