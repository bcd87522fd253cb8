package httpapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineContext is its parent with a deadline, whose timer is made only
// when something waits for the context: the first Done (which every
// database driver, the Redis client and context.WithCancel or WithTimeout
// of a child call) makes a context.WithDeadline of the parent and hands
// out its channel from then on. A request answered from the cache never
// waits, and so costs no timer and no child in its parent's list; that
// was 4% of the read path's CPU. Deadline and Err answer as the timed
// context would at every moment.
type deadlineContext struct {
	parent   context.Context
	deadline time.Time

	mu      sync.Mutex  // orders start and cancel
	started atomic.Bool // inner is set (and never changes again)
	inner   context.Context
	stop    context.CancelFunc
	ended   atomic.Bool // cancel was called
}

// withDeadline returns parent with deadline d, and the function that
// releases it (as context.WithDeadline's cancel; call it when the request
// ends).
func withDeadline(parent context.Context, d time.Time) (*deadlineContext, func()) {
	c := &deadlineContext{parent: parent, deadline: d}
	return c, c.cancel
}

// start makes the timed context once and returns it; made after cancel,
// it is cancelled at once.
func (c *deadlineContext) start() context.Context {
	if c.started.Load() {
		return c.inner
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started.Load() {
		c.inner, c.stop = context.WithDeadline(c.parent, c.deadline)
		if c.ended.Load() {
			c.stop()
		}
		c.started.Store(true)
	}
	return c.inner
}

func (c *deadlineContext) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended.Store(true)
	if c.started.Load() {
		c.stop()
	}
}

func (c *deadlineContext) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *deadlineContext) Done() <-chan struct{} { return c.start().Done() }

func (c *deadlineContext) Err() error {
	if c.started.Load() {
		return c.inner.Err()
	}
	if c.ended.Load() || c.parent.Err() != nil || !time.Now().Before(c.deadline) {
		// Ended, cancelled or past its deadline: the timed context knows
		// which, and its Done is closed from now on.
		return c.start().Err()
	}
	return nil
}

func (c *deadlineContext) Value(key any) any {
	if c.started.Load() {
		// The timed context's own values (how context.Cause and the
		// children of this context find it), then the parent's.
		return c.inner.Value(key)
	}
	return c.parent.Value(key)
}

func (c *deadlineContext) String() string { return "httpapi.withDeadline" }
