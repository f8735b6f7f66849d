// Connection limits shared by both data paths: the idle timeout, the cap on
// open connections per service with eviction of the longest-idle one, and
// the process-wide descriptor budget.

package nlb

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied to zero Config fields.
const (
	// DefaultIdleTimeout is AWS Network Load Balancer's TCP idle timeout:
	// long enough for any keep-alive client, short enough that connections
	// a client forgot do not pile up.
	DefaultIdleTimeout = 350 * time.Second
	// DefaultMaxConns bounds a service's open client connections. Each
	// costs the process two descriptors and its member a connection; 4,096
	// (8,192 descriptors) fits a default descriptor limit of 20,000 with
	// room for health checks, the API and a few other services.
	DefaultMaxConns = 4096
)

// When a service is at its cap (or the process at its descriptor budget), a
// new connection closes an idle one to make room: the oldest that has
// carried no byte at all for evictSilentAfter (an attacker's connection
// opened and left silent, typically), or that has carried bytes but none
// for evictIdleAfter (a keep-alive connection between requests). A
// connection in the middle of an exchange is never closed for another.
const (
	evictSilentAfter = 100 * time.Millisecond
	evictIdleAfter   = time.Second
	// evictWalk bounds how many connections one eviction looks at, from
	// the oldest: the ones it passes over go to the back of the queue.
	evictWalk = 64
	// evictBackoff is how long a loop that found nothing to evict refuses
	// new connections at the cap without looking again.
	evictBackoff = 10 * time.Millisecond
)

// evictable reports whether a connection idle since last, that has (moved)
// or has not carried bytes since it was accepted, may be closed at now to
// make room for a new one.
func (s *Service) evictable(now, last time.Time, moved bool) bool {
	if moved {
		return now.Sub(last) >= s.evictIdleAfter
	}
	return now.Sub(last) >= s.evictSilentAfter
}

// evictState is what an eviction walk makes of a connection.
type evictState int

const (
	evictGone evictState = iota // already closed: drop it from the queue
	evictKeep                   // not idle enough: to the back of the queue
	evictTake                   // close it
)

// evictQueue holds a data path's connections (one loop's, or the portable
// path's) in the order they were accepted, for eviction. The zero value is
// empty and ready; it is not safe for concurrent use.
type evictQueue[C any] struct {
	items []C
	head  int
}

// push adds a newly accepted connection at the back. live is how many
// connections are open; when the queue holds many more (closed ones not yet
// walked past), those gone are dropped first, so the queue stays within
// about twice the open connections at an amortized constant cost.
func (q *evictQueue[C]) push(c C, live int, gone func(C) bool) {
	if len(q.items)-q.head > 2*live+evictWalk {
		q.drop(gone)
	}
	q.items = append(q.items, c)
}

// pick walks at most evictWalk connections from the front and returns the
// first that state says to take; those gone are dropped, those to keep are
// moved to the back.
func (q *evictQueue[C]) pick(state func(C) evictState) (C, bool) {
	var zero C
	for range evictWalk {
		if q.head == len(q.items) {
			break
		}
		c := q.items[q.head]
		q.items[q.head] = zero
		q.head++
		switch state(c) {
		case evictTake:
			q.compact()
			return c, true
		case evictKeep:
			q.items = append(q.items, c)
		}
	}
	q.compact()
	return zero, false
}

// compact drops the consumed front once it is most of the slice.
func (q *evictQueue[C]) compact() {
	if q.head > 0 && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
}

// drop forgets every connection gone says is closed.
func (q *evictQueue[C]) drop(gone func(C) bool) {
	kept := q.items[:0]
	for _, c := range q.items[q.head:] {
		if !gone(c) {
			kept = append(kept, c)
		}
	}
	clear(q.items[len(kept):])
	q.items, q.head = kept, 0
}

// warnEvery bounds how often each kind of data path warning (failed
// connects, refused connections, accept failures, skipped probes) is
// logged; the next line says how many were held back.
const warnEvery = 5 * time.Second

// admit counts a new client connection against the service's cap and the
// process's descriptor budget (two descriptors: client and member). It
// reports false, counting nothing, when either is reached.
func (s *Service) admit() bool {
	if n := s.open.Add(1); s.maxConns > 0 && n > s.maxConns {
		s.open.Add(-1)
		return false
	}
	if !takeFDs(descriptorsPerConn) {
		s.open.Add(-1)
		return false
	}
	return true
}

// release undoes admit when the connection has been closed.
func (s *Service) release() {
	s.open.Add(-1)
	giveFDs(descriptorsPerConn)
}

// refuse counts and logs (rate-limited) a client connection closed because
// the service is at its cap or the process at its descriptor budget, and no
// open connection had been idle long enough to make room.
func (s *Service) refuse() {
	s.refused.Add(1)
	if ok, suppressed := s.refuseLog.Allow(time.Now()); ok {
		s.log.Warn("connection refused: limit reached and no connection idle to close",
			"open", s.open.Load(), "max_conns", s.maxConns, "descriptor_budget", fdBudget(),
			"descriptors_in_use", sockets.Load(), "suppressed", suppressed)
	}
}

// descriptorsPerConn is what one proxied connection holds: the client's
// socket and the member's.
const descriptorsPerConn = 2

// sockets counts the descriptors the data paths of every Service of this
// process hold or have reserved for connections.
var sockets atomic.Int64

// fdBudget is how many descriptors the data paths may hold together: the
// process's descriptor limit (raised to its maximum first, see
// raiseFileLimit) minus a reserve kept for everything else the process
// does: health checks above all (a probe that cannot get a descriptor would
// mark a healthy member down), the API server, member processes' pipes.
var fdBudget = sync.OnceValue(func() int64 {
	limit := raiseFileLimit()
	return int64(limit - fdReserve(limit))
})

// RaiseFileLimit raises this process's descriptor limit (RLIMIT_NOFILE) to
// the most the kernel allows, once, and logs the change to log (nil:
// nowhere); it returns the number of descriptors the load balancers of the
// process may hold together. New calls it; a program that runs load
// balancers calls it at start, so that everything it opens meanwhile (API
// connections, member processes) already has the raised limit. Safe for
// concurrent use; later calls only return the budget.
func RaiseFileLimit(log *slog.Logger) int64 {
	fileLimitLog.Lock()
	if fileLimitLog.log == nil {
		fileLimitLog.log = log
	}
	fileLimitLog.Unlock()
	return fdBudget()
}

// fdReserve is the part of a descriptor limit the data paths leave alone:
// a tenth, at least 64, at most 1,024.
func fdReserve(limit uint64) uint64 {
	return min(max(limit/10, 64), 1024)
}

// takeFDs reserves n descriptors from the budget; false when that would
// exceed it.
func takeFDs(n int64) bool {
	if sockets.Add(n) > fdBudget() {
		sockets.Add(-n)
		return false
	}
	return true
}

// giveFDs returns n descriptors to the budget.
func giveFDs(n int64) { sockets.Add(-n) }

// warnDial logs (rate-limited) a failed connect to t.
func (s *Service) warnDial(t *target, err error) {
	if ok, suppressed := s.dialLog.Allow(time.Now()); ok {
		s.log.Warn("backend dial failed", "backend", t.m.id, "addr", t.addr, "err", err, "suppressed", suppressed)
	}
}

// warnAccept logs (rate-limited) a failed accept, retried after retry.
func (s *Service) warnAccept(err error, retry time.Duration) {
	if ok, suppressed := s.acceptLog.Allow(time.Now()); ok {
		s.log.Warn("accept failed", "err", err, "retry_in", retry, "suppressed", suppressed)
	}
}
