package ratelimit

import (
	"container/list"
	"sync"
	"time"
)

// local counts events in the process: per key the times of at most Max
// events, for at most maxKeys keys, least recently used dropped first.
type local struct {
	rule    Rule
	maxKeys int

	mu    sync.Mutex
	ll    *list.List // of *localKey, most recently used at the front
	items map[string]*list.Element
}

type localKey struct {
	key   string
	times []time.Time // ascending, within the window
}

func newLocal(rule Rule, maxKeys int) *local {
	return &local{rule: rule, maxKeys: maxKeys, ll: list.New(), items: make(map[string]*list.Element)}
}

// events returns the key's events within the window at now, or nil.
func (l *local) events(k string, now time.Time) *localKey {
	el, ok := l.items[k]
	if !ok {
		return nil
	}
	e := el.Value.(*localKey)
	cut := 0
	for cut < len(e.times) && !e.times[cut].After(now.Add(-l.rule.Window)) {
		cut++
	}
	e.times = e.times[cut:]
	if len(e.times) == 0 {
		l.ll.Remove(el)
		delete(l.items, k)
		return nil
	}
	l.ll.MoveToFront(el)
	return e
}

func (l *local) retryAfter(e *localKey, now time.Time) time.Duration {
	return max(e.times[0].Add(l.rule.Window).Sub(now), time.Millisecond)
}

func (l *local) blocked(k string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events(k, now)
	if e == nil || len(e.times) < l.rule.Max {
		return false, 0
	}
	return true, l.retryAfter(e, now)
}

func (l *local) allow(k string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.events(k, now); e != nil && len(e.times) >= l.rule.Max {
		return false, l.retryAfter(e, now)
	}
	l.addLocked(k, now)
	return true, 0
}

func (l *local) hit(k string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events(k, now)
	l.addLocked(k, now)
}

func (l *local) addLocked(k string, now time.Time) {
	el, ok := l.items[k]
	if !ok {
		for l.ll.Len() >= l.maxKeys {
			old := l.ll.Remove(l.ll.Back()).(*localKey)
			delete(l.items, old.key)
		}
		el = l.ll.PushFront(&localKey{key: k})
		l.items[k] = el
	}
	e := el.Value.(*localKey)
	e.times = append(e.times, now)
	if len(e.times) > l.rule.Max {
		e.times = append(e.times[:0], e.times[len(e.times)-l.rule.Max:]...)
	}
	l.ll.MoveToFront(el)
}

func (l *local) reset(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[k]; ok {
		l.ll.Remove(el)
		delete(l.items, k)
	}
}
