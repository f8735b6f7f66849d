package loadgen

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Error kinds, the keys of Second.Errors and Summary.Errors. Every sent
// request ends either OK (2xx status, body read) or with exactly one kind, so
// Sent == OK + the sum of Errors.
const (
	// ErrTimeout: no complete answer within Config.Timeout of the send.
	ErrTimeout = "timeout"
	// ErrConnRefused: the connection was refused (nothing listening).
	ErrConnRefused = "conn_refused"
	// ErrConnReset: the connection was reset or closed before a complete
	// answer (ECONNRESET, EPIPE, unexpected EOF), e.g. a member killed mid-request.
	ErrConnReset = "conn_reset"
	// ErrHTTP5xx: the server answered with a 5xx status.
	ErrHTTP5xx = "http_5xx"
	// ErrHTTP4xx: the server answered with a 4xx status.
	ErrHTTP4xx = "http_4xx"
	// ErrCanceled: the run was cancelled (ctx) while the request was in flight.
	ErrCanceled = "canceled"
	// ErrOther: anything else: DNS, TLS, a 1xx/3xx status (redirects are not
	// followed), a malformed answer.
	ErrOther = "other"
)

// ErrorKinds lists every error kind in a fixed order (the CSV column order).
var ErrorKinds = append([]string(nil), kindNames[:]...)

// errKind indexes ErrorKinds; kindOK means no error.
type errKind int8

const (
	kindOK errKind = iota - 1
	kindTimeout
	kindConnRefused
	kindConnReset
	kind5xx
	kind4xx
	kindCanceled
	kindOther
)

// Second is the result for the requests *planned* in one second of the
// schedule, [Offset, Offset+1s): a request is counted in the second of its
// planned send time, however late it was sent or answered.
type Second struct {
	// Offset is the start of the second from the start of the run.
	Offset time.Duration
	// Offered is the expected number of requests the schedule plans in this
	// second (the integral of the rate), i.e. the mean planned rate in req/s.
	// The last second of a cancelled run covers only the part before the stop.
	Offered float64
	// Sent counts requests sent; Missed counts requests planned but never
	// sent (the run ended while they waited for a free worker). Sent+Missed
	// is the whole number of requests planned in the second.
	Sent, Missed int
	// Answered counts requests that got any HTTP response; OK those with a
	// 2xx status and a complete body.
	Answered, OK int
	// Late counts sent requests whose send started more than
	// Config.LateAfter after their planned time (all workers were busy or
	// the generator could not keep up). They are also in Sent.
	Late int
	// Errors counts failed requests by kind (see ErrorKinds); nil if none.
	Errors map[string]int
	// Latency percentiles (exact, nearest rank) over the sent requests of
	// the second, measured from the planned send time to the end of the
	// answer or the error. 0 if nothing was sent.
	P50, P95, P99, Max time.Duration
}

// bucket accumulates one second until it is complete.
type bucket struct {
	inflight int // handed to a worker, not yet recorded
	sent     int
	missed   int
	answered int
	ok       int
	late     int
	errs     [len(kindNames)]int
	lat      []time.Duration
}

var kindNames = [...]string{ErrTimeout, ErrConnRefused, ErrConnReset, ErrHTTP5xx, ErrHTTP4xx, ErrCanceled, ErrOther}

// outcome is what one request produced.
type outcome struct {
	planned  time.Duration // planned offset
	latency  time.Duration // planned offset -> end of answer or error
	late     bool
	answered bool
	kind     errKind
}

// recorder collects outcomes into per-second buckets. Workers call record,
// the dispatcher calls start/miss; the emitter takes completed seconds with
// takeReady. All methods are safe for concurrent use.
type recorder struct {
	mu      sync.Mutex
	head    int       // second index of open[0]
	open    []*bucket // seconds not yet emitted, open[i] is second head+i
	free    []*bucket // emitted buckets for reuse
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}, 1)}
}

// notify wakes the emitter without blocking.
func (r *recorder) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// bucketLocked returns the bucket of second sec (>= head), creating it.
func (r *recorder) bucketLocked(sec int) *bucket {
	i := sec - r.head
	for len(r.open) <= i {
		var b *bucket
		if n := len(r.free); n > 0 {
			b, r.free = r.free[n-1], r.free[:n-1]
		} else {
			b = &bucket{}
		}
		r.open = append(r.open, b)
	}
	return r.open[i]
}

func secondOf(planned time.Duration) int { return int(planned / time.Second) }

// start marks a request planned at planned as handed to a worker. It must be
// called before the hand-off so the second cannot complete in between.
func (r *recorder) start(planned time.Duration) {
	r.mu.Lock()
	r.bucketLocked(secondOf(planned)).inflight++
	r.mu.Unlock()
}

// unstart turns a start that could not be handed off into a miss.
func (r *recorder) unstart(planned time.Duration) {
	r.mu.Lock()
	b := r.bucketLocked(secondOf(planned))
	b.inflight--
	b.missed++
	r.mu.Unlock()
	r.notify()
}

// miss counts a request that was planned but will never be sent.
func (r *recorder) miss(planned time.Duration) {
	r.mu.Lock()
	r.bucketLocked(secondOf(planned)).missed++
	r.mu.Unlock()
}

// record adds the outcome of a started request.
func (r *recorder) record(o outcome) {
	r.mu.Lock()
	b := r.bucketLocked(secondOf(o.planned))
	b.inflight--
	b.sent++
	if o.answered {
		b.answered++
	}
	if o.late {
		b.late++
	}
	if o.kind == kindOK {
		b.ok++
	} else {
		b.errs[o.kind]++
	}
	b.lat = append(b.lat, o.latency)
	done := b.inflight == 0
	r.mu.Unlock()
	if done {
		r.notify()
	}
}

// takeReady removes and returns the head second if nothing is in flight in
// it; the caller has checked that no more requests can be planned in it.
func (r *recorder) takeReady() (sec int, b *bucket, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.open) == 0 {
		// Nothing was planned in this second at all.
		sec = r.head
		r.head++
		return sec, nil, true
	}
	if r.open[0].inflight > 0 {
		return 0, nil, false
	}
	b = r.open[0]
	r.open[0] = nil
	r.open = r.open[1:]
	sec = r.head
	r.head++
	return sec, b, true
}

// recycle returns an emitted bucket for reuse.
func (r *recorder) recycle(b *bucket) {
	if b == nil {
		return
	}
	lat := b.lat[:0]
	*b = bucket{lat: lat}
	r.mu.Lock()
	r.free = append(r.free, b)
	r.mu.Unlock()
}

// second turns a completed bucket into a Second and adds it to tot. b may be
// nil (nothing planned). It sorts b.lat in place.
func (b *bucket) second(sec int, offered float64, tot *totals) Second {
	s := Second{Offset: time.Duration(sec) * time.Second, Offered: offered}
	if b == nil {
		return s
	}
	s.Sent, s.Missed, s.Answered, s.OK, s.Late = b.sent, b.missed, b.answered, b.ok, b.late
	for i, n := range b.errs {
		if n > 0 {
			if s.Errors == nil {
				s.Errors = make(map[string]int)
			}
			s.Errors[kindNames[i]] = n
		}
	}
	slices.Sort(b.lat)
	s.P50, s.P95, s.P99 = Quantile(b.lat, 0.50), Quantile(b.lat, 0.95), Quantile(b.lat, 0.99)
	if n := len(b.lat); n > 0 {
		s.Max = b.lat[n-1]
	}
	tot.add(b)
	return s
}

// Quantile is the nearest-rank q-quantile (0 < q <= 1) of values sorted in
// ascending order: the smallest value with at least q of all values at or
// below it. It returns 0 for no values. It is the one quantile of exact
// samples in tidepool (the histogram's approximates it).
func Quantile[T ~int64 | ~float64](sorted []T, q float64) T {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(n) - 1e-9))
	return sorted[max(1, min(rank, n))-1]
}

// totals accumulates the whole run.
type totals struct {
	sent, missed, answered, ok, late int
	errs                             [len(kindNames)]int
	hist                             histogram
}

func (t *totals) add(b *bucket) {
	t.sent += b.sent
	t.missed += b.missed
	t.answered += b.answered
	t.ok += b.ok
	t.late += b.late
	for i, n := range b.errs {
		t.errs[i] += n
	}
	for _, d := range b.lat {
		t.hist.record(d)
	}
}
