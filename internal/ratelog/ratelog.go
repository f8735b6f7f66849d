// Package ratelog keeps a repeated event from flooding a log: a Limiter lets
// one occurrence through per interval and counts the ones it held back, so
// the next line that is logged can say how many were not.
package ratelog

import (
	"sync"
	"time"
)

// Limiter allows one event per interval. It is safe for concurrent use; the
// zero value allows every event.
type Limiter struct {
	every time.Duration

	mu         sync.Mutex
	next       time.Time // first time the next event may be logged
	suppressed uint64    // events held back since the last one allowed
}

// New returns a Limiter allowing one event per every.
func New(every time.Duration) *Limiter { return &Limiter{every: every} }

// Allow reports whether an event happening at now should be logged. When it
// should, suppressed is the number of events held back since the last one
// allowed (log it as an attribute, e.g. "suppressed").
func (l *Limiter) Allow(now time.Time) (ok bool, suppressed uint64) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	l.next = now.Add(l.every)
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
