package httpapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type testKey struct{}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestDeadlineContextAnswersAsTheTimedOne(t *testing.T) {
	parent := context.WithValue(context.Background(), testKey{}, "v")
	d := time.Now().Add(time.Hour)
	c, cancel := withDeadline(parent, d)
	defer cancel()
	if got, ok := c.Deadline(); !ok || !got.Equal(d) {
		t.Errorf("Deadline = %v, %v; want %v", got, ok, d)
	}
	if c.Value(testKey{}) != "v" || c.Err() != nil {
		t.Errorf("Value %v, Err %v", c.Value(testKey{}), c.Err())
	}
	if c.started.Load() {
		t.Error("Deadline, Value and Err made the timer")
	}
	// A parent with an earlier deadline keeps it.
	early, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	c2, cancel2 := withDeadline(early, d)
	defer cancel2()
	if got, _ := c2.Deadline(); !got.Before(d) {
		t.Errorf("Deadline under an earlier parent = %v", got)
	}
	if c.Value(testKey{}) != "v" || closed(c.Done()) || c.Value(testKey{}) != "v" {
		t.Error("after Done: the value is lost or Done is closed")
	}
}

func TestDeadlineContextExpires(t *testing.T) {
	// Nothing waits: Err still turns at the deadline, and Done is closed.
	c, cancel := withDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
	defer cancel()
	time.Sleep(30 * time.Millisecond)
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline = %v", err)
	}
	if !closed(c.Done()) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Errorf("Done closed %v, cause %v", closed(c.Done()), context.Cause(c))
	}
	// Something waits: Done closes at the deadline, and a child with it.
	c, cancel = withDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
	defer cancel()
	child, stop := context.WithCancel(c)
	defer stop()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a child of the context outlived its deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Errorf("Err %v, child's %v", c.Err(), child.Err())
	}
}

func TestDeadlineContextCancel(t *testing.T) {
	for _, waitFirst := range []bool{false, true} {
		c, cancel := withDeadline(context.Background(), time.Now().Add(time.Hour))
		var child context.Context
		if waitFirst {
			var stop func()
			child, stop = context.WithCancel(c)
			defer stop()
		}
		cancel()
		if !errors.Is(c.Err(), context.Canceled) || !closed(c.Done()) {
			t.Errorf("waited first %v: after cancel Err %v, Done closed %v", waitFirst, c.Err(), closed(c.Done()))
		}
		if child != nil && !closed(child.Done()) {
			t.Error("the child was not cancelled")
		}
		cancel() // twice is harmless
	}
	// The parent's cancellation, before and after anything waited.
	for _, waitFirst := range []bool{false, true} {
		parent, stop := context.WithCancel(context.Background())
		c, cancel := withDeadline(parent, time.Now().Add(time.Hour))
		if waitFirst {
			_ = c.Done()
		}
		stop()
		if waitFirst {
			<-c.Done()
		}
		if !errors.Is(c.Err(), context.Canceled) || !closed(c.Done()) {
			t.Errorf("waited first %v: after the parent's cancel Err %v, Done closed %v", waitFirst, c.Err(), closed(c.Done()))
		}
		cancel()
	}
}

// Many goroutines wait, ask and cancel at once: every one of them sees the
// same end, and nothing races (run with -race).
func TestDeadlineContextConcurrent(t *testing.T) {
	for round := range 20 {
		c, cancel := withDeadline(context.Background(), time.Now().Add(time.Duration(round%3)*time.Millisecond))
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				switch g % 4 {
				case 0:
					<-c.Done()
				case 1:
					for c.Err() == nil {
						time.Sleep(100 * time.Microsecond)
					}
				case 2:
					_ = c.Value(testKey{})
					ch, stop := context.WithCancel(c)
					<-ch.Done()
					stop()
				case 3:
					if round%2 == 0 {
						cancel()
					}
				}
			})
		}
		wg.Wait()
		if c.Err() == nil || !closed(c.Done()) {
			t.Fatalf("round %d: Err %v, Done closed %v", round, c.Err(), closed(c.Done()))
		}
		cancel()
	}
}

// A request that never waits costs the context and nothing more.
func TestDeadlineContextCostsNoTimerWhenNothingWaits(t *testing.T) {
	parent := context.WithValue(context.Background(), testKey{}, "v")
	allocs := testing.AllocsPerRun(1000, func() {
		c, cancel := withDeadline(parent, time.Now().Add(time.Second))
		_ = c.Value(testKey{})
		_ = c.Err()
		cancel()
	})
	timed := testing.AllocsPerRun(1000, func() {
		c, cancel := context.WithDeadline(parent, time.Now().Add(time.Second))
		_ = c.Value(testKey{})
		_ = c.Err()
		cancel()
	})
	if allocs > 1 || allocs >= timed {
		t.Errorf("%v allocations a request that never waits (context.WithDeadline: %v)", allocs, timed)
	}
}
