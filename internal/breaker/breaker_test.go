package breaker_test

import (
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/breaker"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newBreaker(t *testing.T) (*breaker.Breaker, *clock, *[]bool) {
	t.Helper()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	var changes []bool
	b := breaker.New(breaker.Options{Threshold: 3, Cooldown: 2 * time.Second, Now: clk.now,
		OnChange: func(open bool) { changes = append(changes, open) }})
	return b, clk, &changes
}

func TestOpensAfterThresholdConsecutiveFailures(t *testing.T) {
	b, _, changes := newBreaker(t)
	b.Failure()
	b.Failure()
	b.Success() // resets the count
	b.Failure()
	b.Failure()
	if !b.Allow() || b.Open() {
		t.Fatal("breaker opened before three consecutive failures")
	}
	b.Failure()
	if b.Allow() || !b.Open() {
		t.Fatal("breaker still closed after three consecutive failures")
	}
	if len(*changes) != 1 || !(*changes)[0] {
		t.Fatalf("OnChange calls = %v, want [true]", *changes)
	}
}

func TestProbesOnceAfterCooldown(t *testing.T) {
	b, clk, changes := newBreaker(t)
	for range 3 {
		b.Failure()
	}
	clk.add(1999 * time.Millisecond)
	if b.Allow() {
		t.Fatal("allowed during cooldown")
	}
	clk.add(time.Millisecond)
	if !b.Allow() {
		t.Fatal("no probe after cooldown")
	}
	if b.Allow() {
		t.Fatal("a second call allowed while the probe is out")
	}
	b.Failure()
	if b.Allow() {
		t.Fatal("allowed right after the probe failed")
	}
	clk.add(2 * time.Second)
	if !b.Allow() {
		t.Fatal("no second probe after another cooldown")
	}
	b.Success()
	first, second := b.Allow(), b.Allow()
	if !first || !second || b.Open() {
		t.Fatal("breaker not closed after a successful probe")
	}
	if got := *changes; len(got) != 2 || !got[0] || got[1] {
		t.Fatalf("OnChange calls = %v, want [true false]", got)
	}
}

func TestLostProbeIsGivenUp(t *testing.T) {
	b, clk, _ := newBreaker(t)
	for range 3 {
		b.Failure()
	}
	clk.add(2 * time.Second)
	if !b.Allow() {
		t.Fatal("no probe after cooldown")
	}
	// The probe's outcome is never reported.
	clk.add(time.Second)
	if b.Allow() {
		t.Fatal("second probe while the first is within its lease")
	}
	clk.add(time.Second)
	if !b.Allow() {
		t.Fatal("no new probe once the lost one's lease ended")
	}
}

func TestConcurrentUse(t *testing.T) {
	b := breaker.New(breaker.Options{Threshold: 5, Cooldown: time.Millisecond})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 1000 {
				if b.Allow() {
					if (i+j)%3 == 0 {
						b.Failure()
					} else {
						b.Success()
					}
				}
				_ = b.Open()
			}
		})
	}
	wg.Wait()
}

func TestOnRefuseCountsRefusedCalls(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	refused := 0
	b := breaker.New(breaker.Options{Threshold: 1, Cooldown: 2 * time.Second, Now: clk.now, OnRefuse: func() { refused++ }})
	if !b.Allow() {
		t.Fatal("a closed breaker refused")
	}
	b.Failure() // opens
	for range 3 {
		if b.Allow() {
			t.Fatal("an open breaker allowed a call before its cooldown")
		}
	}
	clk.add(2 * time.Second)
	if !b.Allow() { // the probe
		t.Fatal("no probe after the cooldown")
	}
	if b.Allow() { // refused while the probe is out
		t.Fatal("a second probe")
	}
	b.Success()
	if !b.Allow() {
		t.Fatal("closed again, yet refused")
	}
	if refused != 4 {
		t.Errorf("OnRefuse told of %d refusals, want 4", refused)
	}
}
