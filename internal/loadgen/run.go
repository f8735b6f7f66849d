// Package loadgen generates open-model HTTP load: requests arrive on a planned
// schedule (stages of ramp, hold, spike and sine rates) whether or not earlier
// ones have been answered, and every latency is measured from the request's
// planned send time. A slow or stalled server therefore shows up in the
// percentiles instead of silently slowing the generator down (no coordinated
// omission). Results are a per-second timeline and a whole-run summary,
// written as CSV, JSON or text.
//
// It owns the load generator and its result files, and must not import the
// system it loads (cloud, autoscaler, demo) or tidepool packages other than
// atomicfile.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults applied by Run to zero Config fields.
const (
	DefaultMethod     = http.MethodGet
	DefaultTimeout    = 10 * time.Second
	DefaultMaxWorkers = 1000
	DefaultLateAfter  = 50 * time.Millisecond
)

// Config configures Run. The zero value of every optional field is usable.
type Config struct {
	// Target is the absolute http:// or https:// URL every request goes to.
	// Required.
	Target string
	// Method is the HTTP method; "" means GET. Requests have no body.
	Method string
	// Stages is the schedule, played in order from the start of the run.
	// Required (at least one stage); see Stage for each kind's fields.
	Stages []Stage
	// Timeout bounds one request from its send to the end of its body
	// (connect, TLS, answer and body); 0 means DefaultTimeout (10s).
	Timeout time.Duration
	// MaxWorkers bounds the requests in flight at once (one goroutine and at
	// most one connection each); 0 means DefaultMaxWorkers (1000). When all
	// are busy, the next planned request waits for one and is counted late if
	// it waits longer than LateAfter.
	MaxWorkers int
	// LateAfter is how far behind its planned time a request may be sent
	// before it is counted as late; 0 means DefaultLateAfter (50ms). After the
	// schedule ends, requests still waiting for a worker are given LateAfter
	// more, then counted as missed.
	LateAfter time.Duration
	// DisableKeepAlive opens a new connection for every request; the zero
	// value reuses idle connections (HTTP keep-alive, up to MaxWorkers idle).
	// Behind a layer-4 load balancer, kept-alive connections stay on the
	// members they were opened to, so members added during a run get
	// traffic only from new connections; disable keep-alive to spread every
	// request.
	DisableKeepAlive bool
	// Logger receives start, stop and worker-limit messages; nil discards.
	Logger *slog.Logger
}

// Summary is the result of a whole run. Counts follow Second's definitions
// summed over the timeline.
type Summary struct {
	Target string
	Method string
	// Stages is the schedule that was played.
	Stages []Stage
	// Started is the wall-clock start of the run.
	Started time.Time
	// Elapsed is the wall time from start until Run returned (including
	// waiting for the last answers).
	Elapsed time.Duration
	// Scheduled is the length of the schedule.
	Scheduled time.Duration
	// Stopped is the schedule offset at which planning stopped: Scheduled,
	// or less if the run was cancelled.
	Stopped time.Duration
	// Cancelled reports that ctx was cancelled during the run: the timeline
	// may stop early and requests in flight were aborted (ErrCanceled).
	Cancelled bool
	// Offered is the expected number of requests in [0, Stopped).
	Offered float64
	// Planned = Sent + Missed: requests planned in [0, Stopped).
	Planned, Sent, Missed, Answered, OK, Late int
	// Errors counts failed requests by kind (see ErrorKinds); nil if none.
	Errors map[string]int
	// Workers is the largest number of workers used at once.
	Workers int
	// Latency over all sent requests, from planned send time to the end of
	// the answer or error. Mean, Min and Max are exact; the percentiles come
	// from a log-linear histogram and are within 0.4% of the exact
	// nearest-rank value (exact below 256ns).
	Mean, Min, P50, P90, P95, P99, P999, Max time.Duration
}

// withDefaults validates cfg and fills in the defaults.
func (cfg Config) withDefaults() (Config, error) {
	u, err := url.Parse(cfg.Target)
	switch {
	case cfg.Target == "":
		return cfg, errors.New("no target URL")
	case err != nil:
		return cfg, fmt.Errorf("target: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return cfg, fmt.Errorf("target %q: scheme must be http or https", cfg.Target)
	case u.Host == "":
		return cfg, fmt.Errorf("target %q: no host", cfg.Target)
	case cfg.Timeout < 0:
		return cfg, fmt.Errorf("timeout %s must not be negative", cfg.Timeout)
	case cfg.MaxWorkers < 0:
		return cfg, fmt.Errorf("max workers %d must not be negative", cfg.MaxWorkers)
	case cfg.LateAfter < 0:
		return cfg, fmt.Errorf("late-after %s must not be negative", cfg.LateAfter)
	}
	if cfg.Method == "" {
		cfg.Method = DefaultMethod
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxWorkers == 0 {
		cfg.MaxWorkers = DefaultMaxWorkers
	}
	if cfg.LateAfter == 0 {
		cfg.LateAfter = DefaultLateAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// Run plays the schedule of cfg against cfg.Target and returns the summary
// and the per-second timeline. It blocks until the schedule has ended and
// every sent request has been answered or has timed out, or until ctx is
// cancelled: then nothing more is sent, requests in flight are aborted
// (counted as ErrCanceled), and the partial timeline up to the cancellation
// is returned with Summary.Cancelled set. The error is non-nil only for an
// invalid cfg, before anything is sent.
//
// onSecond, if not nil, is called once per second of the schedule, in order,
// from the goroutine that called Run, as soon as that second is complete: its
// time has passed and every request planned in it has an outcome. A stall
// therefore delays the call by up to Timeout.
//
// Why not vegeta's Attacker (github.com/tsenart/vegeta, not a dependency):
// vegeta.Attacker stamps each result when a worker picks the hit up and
// measures latency from there, and when all its workers are busy its pacing
// loop blocks and then sends the backlog in a burst; those requests look fast
// although they were held back, which is coordinated omission. Its results
// also carry errors as strings only. Run therefore has its own dispatcher: it
// computes each request's planned time from the Schedule, waits until then,
// hands the request to an idle worker (starting one, up to MaxWorkers), and
// every worker measures from the planned time and classifies errors by type.
//
// Accuracy: latencies include the generator's own delay in waking up at the
// planned time (Go timers on Linux: typically under 1ms, more on a loaded
// machine); a delay beyond LateAfter is visible as Late.
func Run(ctx context.Context, cfg Config, onSecond func(Second)) (Summary, []Second, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Summary{}, nil, err
	}
	sched, err := NewSchedule(cfg.Stages)
	if err != nil {
		return Summary{}, nil, err
	}
	base, err := http.NewRequest(cfg.Method, cfg.Target, nil)
	if err != nil {
		return Summary{}, nil, fmt.Errorf("build request: %w", err)
	}
	transport := &http.Transport{
		Proxy:               nil, // a load generator talks to its target directly
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.MaxWorkers,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: cfg.Timeout,
		DisableKeepAlives:   cfg.DisableKeepAlive,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	var raw *rawClient
	if base.URL.Scheme == "http" {
		if raw, err = newRawClient(base, cfg.Timeout, !cfg.DisableKeepAlive); err != nil {
			return Summary{}, nil, err
		}
	}
	r := &runner{
		cfg:   cfg,
		sched: sched,
		base:  base,
		raw:   raw,
		client: &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		rec:  newRecorder(),
		jobs: make(chan job),
		done: make(chan struct{}),
	}
	cfg.Logger.Info("load started", "target", cfg.Target, "method", cfg.Method,
		"stages", len(cfg.Stages), "duration", sched.Duration(), "requests", sched.Requests(),
		"max_workers", cfg.MaxWorkers, "timeout", cfg.Timeout)

	r.started = time.Now()
	r.frontier.Store(0)
	r.wg.Add(1)
	go r.dispatch(ctx)
	tl, tot := r.emit(onSecond)
	r.wg.Wait()

	s := r.summary(&tot)
	s.Cancelled = ctx.Err() != nil
	cfg.Logger.Info("load finished", "cancelled", s.Cancelled, "elapsed", s.Elapsed,
		"planned", s.Planned, "sent", s.Sent, "ok", s.OK, "late", s.Late, "missed", s.Missed,
		"p99", s.P99, "max", s.Max)
	return s, tl, nil
}

// job is one request handed to a worker.
type job struct {
	planned time.Duration // offset from started
}

type runner struct {
	cfg     Config
	sched   *Schedule
	base    *http.Request
	client  *http.Client // https targets
	raw     *rawClient   // http targets; nil for https
	rec     *recorder
	started time.Time

	jobs chan job // dispatcher -> idle workers; closed by the dispatcher
	wg   sync.WaitGroup

	// frontier is the planned offset of the next request the dispatcher has
	// not yet handed off or counted as missed: every second ending at or
	// before it has all its requests accounted for.
	frontier atomic.Int64
	done     chan struct{} // closed when the dispatcher has finished
	// stopped is written by the dispatcher before done is closed.
	stopped time.Duration

	workers int // owned by the dispatcher
	peak    atomic.Int64
}

func (r *runner) since() time.Duration { return time.Since(r.started) }

// dispatch sends every planned request at its time. It owns r.workers,
// starts the workers, closes r.jobs and then r.done.
func (r *runner) dispatch(ctx context.Context) {
	defer r.wg.Done()
	defer close(r.done)
	defer close(r.jobs)

	end := r.sched.Duration()
	stopAt := end + r.cfg.LateAfter
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	warned := false
	lastSec := -1
	for k := uint64(0); ; k++ {
		planned, ok := r.sched.PlannedAt(k)
		if !ok {
			// Nothing more to send, but the schedule (e.g. a trailing
			// hold:0) lasts until its end: keep the timeline in real time.
			r.frontier.Store(int64(end))
			r.rec.notify()
			if wait := end - r.since(); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					r.finish(min(r.since(), end))
					return
				case <-timer.C:
				}
			}
			r.finish(end)
			return
		}
		r.frontier.Store(int64(planned))
		if sec := secondOf(planned); sec != lastSec {
			lastSec = sec
			r.rec.notify()
		}
		if wait := planned - r.since(); wait > preciseWait {
			// A Go timer may fire up to ~1ms late (the runtime rounds a
			// sub-millisecond poll timeout up to 1ms when it is idle): wake
			// early, then sleep the rest precisely.
			timer.Reset(wait - preciseWait)
			select {
			case <-ctx.Done():
				r.cancelFrom(k)
				return
			case <-timer.C:
			}
		}
		sleepUntil(r.started, planned)
		if ctx.Err() != nil {
			r.cancelFrom(k)
			return
		}
		if r.since() > stopAt {
			// Far behind after the end of the schedule: give up on the rest.
			r.missFrom(k, end)
			r.finish(end)
			return
		}
		j := job{planned: planned}
		r.rec.start(planned)
		select {
		case r.jobs <- j:
			continue
		default:
		}
		if r.workers < r.cfg.MaxWorkers {
			r.workers++
			r.peak.Store(int64(r.workers))
			r.wg.Add(1)
			go r.worker(ctx, j)
			continue
		}
		if !warned {
			warned = true
			r.cfg.Logger.Warn("worker limit reached, requests wait and may be late",
				"max_workers", r.cfg.MaxWorkers, "offset", planned)
		}
		timer.Reset(max(stopAt-r.since(), 0))
		select {
		case r.jobs <- j:
		case <-ctx.Done():
			r.rec.unstart(planned)
			r.cancelFrom(k + 1)
			return
		case <-timer.C:
			r.rec.unstart(planned)
			r.missFrom(k+1, end)
			r.finish(end)
			return
		}
	}
}

// preciseWait is the part of a wait for a planned send time that the
// dispatcher sleeps with sleepUntil instead of a Go timer.
const preciseWait = 1500 * time.Microsecond

// sleepUntil blocks the calling goroutine (and its OS thread) until
// started+offset with nanosleep(2), which wakes within tens of microseconds,
// where a Go timer can be up to a millisecond late. It is meant for short
// waits (up to preciseWait): it does not watch a context.
func sleepUntil(started time.Time, offset time.Duration) {
	for {
		rest := offset - time.Since(started)
		if rest <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(int64(rest))
		// EINTR (a signal, e.g. the Go runtime's preemption) ends the
		// sleep early; the loop sleeps what is left.
		_ = syscall.Nanosleep(&ts, nil)
	}
}

// cancelFrom ends dispatching because ctx was cancelled: requests k and later
// planned before now are missed.
func (r *runner) cancelFrom(k uint64) {
	stop := min(r.since(), r.sched.Duration())
	r.missFrom(k, stop)
	r.finish(stop)
}

// missFrom counts requests k, k+1, ... planned before stop as missed.
func (r *runner) missFrom(k uint64, stop time.Duration) {
	for ; ; k++ {
		planned, ok := r.sched.PlannedAt(k)
		if !ok || planned >= stop {
			return
		}
		r.rec.miss(planned)
	}
}

// finish records where planning stopped. Seconds ending at or before stop
// are then complete once their requests are.
func (r *runner) finish(stop time.Duration) {
	r.stopped = stop
	r.frontier.Store(int64(stop))
}

// worker serves jobs until r.jobs is closed. For an http:// target it owns
// one connection (kept alive unless DisableKeepAlive), closed when it exits;
// cancelling ctx aborts its I/O at once.
func (r *runner) worker(ctx context.Context, first job) {
	defer r.wg.Done()
	var wc *workerConn
	if r.raw != nil {
		wc = newWorkerConn()
		stop := context.AfterFunc(ctx, wc.abort)
		defer stop()
		defer wc.close()
	}
	r.do(ctx, first, wc)
	for j := range r.jobs {
		r.do(ctx, j, wc)
	}
}

// do sends one request and records its outcome.
func (r *runner) do(ctx context.Context, j job, wc *workerConn) {
	o := outcome{planned: j.planned}
	o.late = r.since()-j.planned > r.cfg.LateAfter
	var status int
	var err error
	if r.raw != nil {
		status, err = r.raw.do(ctx, wc)
	} else {
		status, err = r.send(ctx)
	}
	o.latency = r.since() - j.planned
	o.answered = status != 0
	o.kind = classify(status, err, ctx.Err() != nil)
	r.rec.record(o)
}

// send performs one request with net/http (https targets) within the
// timeout and reads the whole body, so the connection can be reused. It
// returns the status (0 if no answer).
func (r *runner) send(ctx context.Context) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	resp, err := r.client.Do(r.base.WithContext(rctx))
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return resp.StatusCode, err
}

// classify maps a request's result to its error kind (kindOK for success).
// aborted reports that the run was cancelled, which explains any error.
func classify(status int, err error, aborted bool) errKind {
	if err != nil {
		var ne net.Error
		switch {
		case aborted:
			return kindCanceled
		case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
			return kindTimeout
		case errors.Is(err, syscall.ECONNREFUSED):
			return kindConnRefused
		case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
			errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return kindConnReset
		}
		return kindOther
	}
	switch status / 100 {
	case 2:
		return kindOK
	case 4:
		return kind4xx
	case 5:
		return kind5xx
	}
	return kindOther
}

// emit runs on Run's goroutine: it turns seconds into Seconds as soon as
// they are complete, calls onSecond, and returns once the dispatcher has
// finished and every second up to the stop has been emitted.
func (r *runner) emit(onSecond func(Second)) ([]Second, totals) {
	var (
		tl  []Second
		tot totals
	)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := r.done // set to nil once observed, so the select below blocks
	finished := false
	next := 0 // next second to emit
	for {
		for {
			start, boundary := time.Duration(next)*time.Second, time.Duration(next+1)*time.Second
			offeredEnd := boundary
			if finished {
				if start >= r.stopped {
					return tl, tot
				}
				offeredEnd = min(boundary, r.stopped)
			} else if time.Duration(r.frontier.Load()) < boundary || r.since() < boundary {
				// More requests may still be planned in this second.
				break
			}
			sec, b, ok := r.rec.takeReady()
			if !ok {
				break // requests in flight
			}
			s := b.second(sec, r.sched.Expected(offeredEnd)-r.sched.Expected(start), &tot)
			r.rec.recycle(b)
			tl = append(tl, s)
			next++
			if onSecond != nil {
				onSecond(s)
			}
		}
		select {
		case <-r.rec.changed:
		case <-tick.C:
		case <-done:
			done, finished = nil, true
		}
	}
}

func (r *runner) summary(tot *totals) Summary {
	s := Summary{
		Target:    r.cfg.Target,
		Method:    r.cfg.Method,
		Stages:    r.sched.Stages(),
		Started:   r.started,
		Elapsed:   r.since(),
		Scheduled: r.sched.Duration(),
		Stopped:   r.stopped,
		Offered:   r.sched.Expected(r.stopped),
		Sent:      tot.sent,
		Missed:    tot.missed,
		Answered:  tot.answered,
		OK:        tot.ok,
		Late:      tot.late,
		Workers:   int(r.peak.Load()),
		Mean:      tot.hist.mean(),
		Min:       tot.hist.min,
		P50:       tot.hist.quantile(0.50),
		P90:       tot.hist.quantile(0.90),
		P95:       tot.hist.quantile(0.95),
		P99:       tot.hist.quantile(0.99),
		P999:      tot.hist.quantile(0.999),
		Max:       tot.hist.max,
	}
	s.Planned = s.Sent + s.Missed
	for i, n := range tot.errs {
		if n > 0 {
			if s.Errors == nil {
				s.Errors = make(map[string]int)
			}
			s.Errors[kindNames[i]] = n
		}
	}
	return s
}
