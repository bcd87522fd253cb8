package cache

import (
	"sync"
	"time"
)

// observation is what a miss saw of a key: when, and for the Redis cache
// the generation and the state of the key, which a store must find
// unchanged.
type observation struct {
	at       time.Time
	poisoned bool
	gen      string
	token    string
}

// observations holds the misses whose loads may still be stored, one per
// key, bounded in number.
type observations struct {
	window time.Duration
	max    int

	mu sync.Mutex
	m  map[string]observation
}

func newObservations(window time.Duration, max int) *observations {
	return &observations{window: window, max: max, m: make(map[string]observation)}
}

// miss records ob for key, unless an observation of key younger than the
// window is there: the oldest one stands for every load in flight.
func (o *observations) miss(key string, ob observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if old, ok := o.m[key]; ok && ob.at.Sub(old.at) < o.window {
		return
	}
	if len(o.m) >= o.max {
		for k, v := range o.m {
			if ob.at.Sub(v.at) >= o.window {
				delete(o.m, k)
			}
		}
		if len(o.m) >= o.max {
			// Dropping observations only makes stores be skipped.
			clear(o.m)
		}
	}
	o.m[key] = ob
}

// poison marks the observations of keys: what was loaded after them may
// predate a write.
func (o *observations) poison(keys ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range keys {
		if ob, ok := o.m[k]; ok {
			ob.poisoned = true
			o.m[k] = ob
		}
	}
}

// clear drops every observation: no load that missed before may store.
func (o *observations) clear() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.m)
}

// take removes the observation of key and returns it when a store may rely
// on it.
func (o *observations) take(key string, now time.Time) (observation, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ob, ok := o.m[key]
	if !ok {
		return observation{}, false
	}
	delete(o.m, key)
	if ob.poisoned || now.Sub(ob.at) > o.window {
		return observation{}, false
	}
	return ob, true
}
