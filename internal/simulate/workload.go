package simulate

import "time"

// workload integrates the fluid model of the pool's work between events:
// requests arrive at rate, each needing perReq instance-seconds of CPU; n
// serving members share it equally (round robin) and each serves at most one
// instance-second per second. Work beyond that queues (the backlog, in
// instance-seconds) while it would wait at most timeout, and is dropped
// beyond. Everything is exact for a rate and n constant over the interval.
type workload struct {
	perReq  float64 // instance-seconds of CPU per request
	slo     float64 // utilisation above which the SLO is violated
	timeout float64 // longest queueing wait, seconds; 0 means no queue

	rate    float64       // current request rate, req/s
	t       time.Duration // integrated up to t
	backlog float64       // queued work, instance-seconds

	// busy is the integral of the utilisation of one serving member (the
	// same for all): a member that served over [a, b] has a CPU counter
	// of busy(b) - busy(a).
	busy float64
	// violated is the time (s) the members' utilisation was above slo,
	// with no member serving while requests arrived counted as violated.
	violated float64
	// requests and dropped count offered and dropped requests.
	requests, dropped float64
	// arrived is the integral of the arrival rate at one serving member
	// (the same for all, round robin): a member that served over [a, b]
	// has an arrivals counter of arrived(b) - arrived(a).
	arrived float64
}

// advance integrates up to to with n members serving.
func (w *workload) advance(to time.Duration, n int) {
	dt := (to - w.t).Seconds()
	if dt <= 0 {
		return
	}
	w.t = to
	a := w.rate * w.perReq // work arriving per second
	w.requests += w.rate * dt
	if n <= 0 {
		if a > 0 {
			w.violated += dt
			w.dropped += w.rate * dt
		}
		w.dropBacklog(0)
		return
	}
	nf := float64(n)
	w.arrived += w.rate / nf * dt
	capacity := w.timeout * nf
	w.dropBacklog(capacity)
	if a >= nf {
		// Saturated: every member busy, the queue grows up to its limit.
		w.busy += dt
		w.violated += dt
		grow := (a - nf) * dt
		if room := capacity - w.backlog; grow > room {
			w.dropped += (grow - room) / w.perReq
			w.backlog = capacity
		} else {
			w.backlog += grow
		}
		return
	}
	if w.backlog > 0 {
		clear := w.backlog / (nf - a)
		if clear >= dt {
			w.backlog -= (nf - a) * dt
			w.busy += dt
			w.violated += dt
			return
		}
		w.backlog = 0
		w.busy += clear
		w.violated += clear
		dt -= clear
	}
	u := a / nf
	w.busy += u * dt
	if u > w.slo+1e-12 {
		w.violated += dt
	}
}

// dropBacklog drops queued work above limit (after members left).
func (w *workload) dropBacklog(limit float64) {
	if w.backlog > limit {
		w.dropped += (w.backlog - limit) / w.perReq
		w.backlog = limit
	}
}
