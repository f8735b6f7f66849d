// Package simulate compares scaling policies on a simulated instance pool.
//
// Simulate is a discrete-event simulation of one pool under a demand trace
// (the offered request rate over time). Members take BootDelay to start
// serving and DrainDelay to leave; the work is a fluid model (see workload)
// so utilisation, queueing and dropped requests are exact between events.
// The policy sees the pool through the same pipeline as in production:
// per-member CPU counters scraped periodically, a rate window, rule
// evaluations and, for the seed policy, alert rules with a `for` duration and
// Alertmanager grouping, and it is asked at every autoscaler tick, with the
// control loop busy (ticks deferred, as a time.Ticker does) while a change
// is carried out. The policy code is the real one
// (tidepool/internal/autoscaler/policy), driven by an injected clock.
//
// Measure computes the elasticity metrics of the SPEC Research Group
// (Herbst et al.) from the demand and supply curves, and Compare runs several
// policies, including an oracle limited only by the boot delay, on one
// trace.
//
// It owns the simulation, its traces, metrics and results, and must not import
// anything that starts processes or touches the network (demo, cloud, promrun,
// supervise; validation lives in internal/simulate/validate).
package simulate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"tidepool/internal/autoscaler/policy"
)

// Pipeline is how CPU utilisation reaches the policy, modelled on
// Prometheus: every member's CPU counter is scraped every Scrape (at Offset,
// Offset+Scrape, ...), starting Discovery after the member serves and ending
// when it is gone; every Eval the utilisation of each member is its counter's
// increase between the first and last sample within [t-Window, t] (at least
// two samples) over their distance, and the pool's is the average over the
// members with a value. The policy reads the latest evaluation.
//
// With ArrivalWindow set, every evaluation also computes the pool's arrival
// rate the same way from each member's arrivals counter (see arrivals.go)
// and the policy gets the last History of those rates as
// Observation.Metrics.Load.
type Pipeline struct {
	Scrape, Offset, Window, Eval, Discovery time.Duration
	ArrivalWindow, History                  time.Duration
}

// Validate reports a pipeline that cannot produce values.
func (p Pipeline) Validate() error {
	switch {
	case p.Scrape <= 0 || p.Eval <= 0:
		return fmt.Errorf("pipeline: scrape %s and evaluation %s intervals must be positive", p.Scrape, p.Eval)
	case p.Window < p.Scrape:
		return fmt.Errorf("pipeline: window %s holds fewer than two scrapes %s apart", p.Window, p.Scrape)
	case p.Offset < 0 || p.Discovery < 0:
		return errors.New("pipeline: offset and discovery delay must not be negative")
	}
	return nil
}

// Alerts models the seed's alert path: a scale-up alert while the pool CPU
// is above UpAbove and a scale-down alert while it is below DownBelow, each
// firing once its condition has held at every evaluation for For;
// Alertmanager sends a firing alert GroupWait after its group appears, then
// every GroupInterval while it fires, and each send is one pending signal
// for the next autoscaler tick.
type Alerts struct {
	UpAbove, DownBelow       float64
	For                      time.Duration
	GroupWait, GroupInterval time.Duration
}

// Setup is one policy under test and how it is fed.
type Setup struct {
	// Name labels the policy in tables and charts.
	Name string
	// Policy is the decision code; nil means the oracle (see Oracle).
	Policy policy.Policy
	// Tick is the autoscaler's tick.
	Tick time.Duration
	// Metrics is the CPU pipeline; it feeds Observation.Metrics and Alerts.
	Metrics Pipeline
	// Alerts, if set, turns the CPU into scaling signals
	// (Observation.Pending); nil means no signals.
	Alerts *Alerts
}

// Action is a change the policy made.
type Action struct {
	T        time.Duration
	From, To int
	Reason   policy.Reason
}

// Run is the outcome of simulating one policy on one trace.
type Run struct {
	// Setup is the policy's name.
	Setup string
	// Supply is the number of members serving (in the load balancer).
	Supply Series
	// Size is the number of members in the pool (booting, serving or
	// draining): what is paid for.
	Size Series
	// CPU is the pool CPU utilisation as the policy saw it at each
	// evaluation (NaN: no value); nil for the oracle.
	CPU []Point
	// Actions are the changes made, in order.
	Actions []Action
	// Ticks is the number of decisions taken.
	Ticks int
	// Requests and Dropped count offered and dropped requests; Violated is
	// the time in seconds the utilisation exceeded the SLO.
	Requests, Dropped, Violated float64
	// End is the length of the run (the trace's).
	End time.Duration
}

// epoch is the wall-clock time of offset 0 given to policies.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const never = time.Duration(math.MaxInt64)

// Event kinds, in the order events at the same instant are handled.
const (
	evTrace = iota
	evBoot
	evDrain
	evScrape
	evEval
	evFlushUp
	evFlushDown
	evTick
	evFree
	numEvents
)

type member struct {
	seq                         int
	id                          string
	created, ready, leave, gone time.Duration
	busyReady, busyLeave        float64 // workload.busy when it started serving / left
	arrReady, arrLeave          float64 // workload.arrived when it started serving / left
}

type boot struct {
	at          time.Duration
	first, last int // member seqs
}

type drain struct {
	at   time.Duration
	seq  int
	gone bool // false: leaves the load balancer; true: gone
}

type alertState struct {
	active, firing bool
	since          time.Duration
}

// sim is the state of one simulation.
type sim struct {
	pool  Pool
	setup Setup
	trace Trace
	next  [numEvents]time.Duration

	w        workload
	traceIdx int
	members  []member // in the pool, by seq
	departed []member // gone, possibly still in the rate window
	seq      int
	serving  int
	boots    []boot
	drains   []drain

	scrapeK  int       // index of the next scrape
	ring     []float64 // workload.busy at scrape k is ring[k%len(ring)]
	metric   policy.Metrics
	alerts   [2]alertState // up, down
	pending  policy.Pending
	busy     bool
	waiting  bool // a tick arrived while busy
	last     time.Time
	recs     []policy.Recommendation
	arrivals arrivalSignal
	view     []policy.Member
	run      Run
	tickSeen int
}

// Simulate runs setup on the pool under trace and returns what happened.
// It is deterministic. An oracle setup (nil Policy) is computed by Oracle.
func Simulate(tr Trace, pool Pool, setup Setup) (Run, error) {
	if err := tr.Validate(); err != nil {
		return Run{}, err
	}
	if err := pool.Validate(); err != nil {
		return Run{}, err
	}
	pool = pool.withDefaults()
	if setup.Policy == nil {
		return Oracle(tr, pool, setup.Name), nil
	}
	if setup.Tick <= 0 {
		return Run{}, fmt.Errorf("setup %s: tick %s must be positive", setup.Name, setup.Tick)
	}
	if err := setup.Metrics.Validate(); err != nil {
		return Run{}, fmt.Errorf("setup %s: %w", setup.Name, err)
	}
	if v, ok := setup.Policy.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return Run{}, fmt.Errorf("setup %s: policy: %w", setup.Name, err)
		}
	}
	s := &sim{pool: pool, setup: setup, trace: tr}
	s.w = workload{perReq: 1 / pool.Capacity, slo: pool.SLO, timeout: pool.Timeout.Seconds()}
	s.run = Run{Setup: setup.Name, End: tr.End}
	p := setup.Metrics
	s.ring = make([]float64, int(p.Window/p.Scrape)+3)
	s.arrivals.init(p)
	for i := range s.next {
		s.next[i] = never
	}
	s.next[evTrace] = 0
	s.next[evScrape] = p.Offset
	s.next[evEval] = p.Eval
	s.next[evTick] = setup.Tick

	n := pool.initial(tr)
	s.addMembers(0, n, 0)
	s.startServing(0, s.members)
	s.run.Size.set(0, len(s.members))

	for {
		ev, t := 0, never
		for k, at := range s.next {
			if at < t {
				ev, t = k, at
			}
		}
		if t >= tr.End {
			break
		}
		s.w.advance(t, s.serving)
		s.handle(ev, t)
	}
	s.w.advance(tr.End, s.serving)
	s.run.Requests, s.run.Dropped, s.run.Violated = s.w.requests, s.w.dropped, s.w.violated
	return s.run, nil
}

func (s *sim) handle(ev int, t time.Duration) {
	switch ev {
	case evTrace:
		s.w.rate = s.trace.Rate[s.traceIdx]
		s.traceIdx++
		s.next[evTrace] = never
		if s.traceIdx < len(s.trace.Start) {
			s.next[evTrace] = s.trace.Start[s.traceIdx]
		}
	case evBoot:
		b := s.boots[0]
		s.boots = s.boots[1:]
		lo, _ := slices.BinarySearchFunc(s.members, b.first, func(m member, seq int) int { return m.seq - seq })
		hi := lo
		for hi < len(s.members) && s.members[hi].seq <= b.last {
			hi++
		}
		s.startServing(t, s.members[lo:hi])
		s.next[evBoot] = never
		if len(s.boots) > 0 {
			s.next[evBoot] = s.boots[0].at
		}
	case evDrain:
		d := s.drains[0]
		s.drains = s.drains[1:]
		s.drainStep(t, d)
		s.next[evDrain] = never
		if len(s.drains) > 0 {
			s.next[evDrain] = s.drains[0].at
		}
	case evScrape:
		s.ring[s.scrapeK%len(s.ring)] = s.w.busy
		s.arrivals.scrape(s.scrapeK, s.w.arrived)
		s.scrapeK++
		s.next[evScrape] = s.setup.Metrics.Offset + time.Duration(s.scrapeK)*s.setup.Metrics.Scrape
	case evEval:
		s.evaluate(t)
		s.next[evEval] = t + s.setup.Metrics.Eval
	case evFlushUp, evFlushDown:
		dir := ev - evFlushUp
		if s.alerts[dir].firing {
			if dir == 0 {
				s.pending.Up++
			} else {
				s.pending.Down++
			}
			s.next[ev] = t + s.setup.Alerts.GroupInterval
		} else {
			s.next[ev] = never // the group is empty and goes away
		}
	case evTick:
		s.tickSeen++
		s.next[evTick] = time.Duration(s.tickSeen+1) * s.setup.Tick
		if s.busy {
			s.waiting = true
			return
		}
		s.tick(t)
	case evFree:
		s.next[evFree] = never
		s.busy = false
		s.last = epoch.Add(t)
		if s.waiting {
			s.waiting = false
			s.tick(t)
		}
	}
}

// addMembers adds n members created at t that serve from ready.
func (s *sim) addMembers(t time.Duration, n int, ready time.Duration) {
	for range n {
		s.seq++
		s.members = append(s.members, member{seq: s.seq, id: memberID(s.seq), created: t, ready: ready, leave: never, gone: never})
	}
}

func memberID(seq int) string {
	id := strconv.Itoa(seq)
	if len(id) < 7 {
		id = "0000000"[len(id):] + id
	}
	return "m" + id
}

func (s *sim) startServing(t time.Duration, ms []member) {
	for i := range ms {
		ms[i].busyReady, ms[i].arrReady = s.w.busy, s.w.arrived
	}
	s.serving += len(ms)
	s.run.Supply.set(t, s.serving)
}

func (s *sim) drainStep(t time.Duration, d drain) {
	i, found := slices.BinarySearchFunc(s.members, d.seq, func(m member, seq int) int { return m.seq - seq })
	if !found {
		return
	}
	if !d.gone {
		s.members[i].busyLeave, s.members[i].arrLeave = s.w.busy, s.w.arrived
		s.serving--
		s.run.Supply.set(t, s.serving)
		return
	}
	s.departed = append(s.departed, s.members[i])
	s.members = slices.Delete(s.members, i, i+1)
	s.run.Size.set(t, len(s.members))
}

// tick asks the policy and starts carrying out its decision.
func (s *sim) tick(t time.Duration) {
	s.view = s.view[:0]
	for _, m := range s.members {
		s.view = append(s.view, policy.Member{ID: m.id, CreatedAt: epoch.Add(m.created)})
	}
	obs := policy.Observation{
		Pending:         s.pending,
		Pool:            policy.Pool{Size: len(s.members), State: policy.StateRunning, Members: s.view},
		LastScale:       s.last,
		Metrics:         s.metric,
		Recommendations: s.recs,
	}
	obs.Metrics.Load = s.load()
	s.pending = policy.Pending{}
	d := s.setup.Policy.Decide(obs, epoch.Add(t))
	s.recs = d.Recommendations
	s.run.Ticks++
	switch d.Action {
	case policy.ActionScaleUp:
		ready := t + s.pool.BootDelay
		first := s.seq + 1
		s.addMembers(t, d.To-d.From, ready)
		s.boots = append(s.boots, boot{at: ready, first: first, last: s.seq})
		s.next[evBoot] = s.boots[0].at
		s.run.Size.set(t, len(s.members))
		s.startChange(ready)
	case policy.ActionScaleDown:
		at := t
		for _, id := range d.Victims {
			seq, err := strconv.Atoi(id[1:])
			if err != nil {
				panic(fmt.Sprintf("simulate: policy named unknown member %q", id))
			}
			s.drains = append(s.drains, drain{at: at, seq: seq}, drain{at: at + s.pool.DrainDelay, seq: seq, gone: true})
			if i, ok := slices.BinarySearchFunc(s.members, seq, func(m member, seq int) int { return m.seq - seq }); ok {
				s.members[i].leave, s.members[i].gone = at, at+s.pool.DrainDelay
			}
			at += s.pool.DrainDelay
		}
		s.next[evDrain] = s.drains[0].at
		s.startChange(at)
	default:
		return
	}
	s.run.Actions = append(s.run.Actions, Action{T: t, From: d.From, To: d.To, Reason: d.Reason})
}

// startChange makes the control loop busy until done.
func (s *sim) startChange(done time.Duration) {
	s.busy = true
	s.next[evFree] = done
}

// evaluate computes the pool CPU the way the recording rules do, then the
// alert rules.
func (s *sim) evaluate(t time.Duration) {
	p := s.setup.Metrics
	lo := t - p.Window
	// Departed members without samples in the window are forgotten.
	keep := s.departed[:0]
	for _, m := range s.departed {
		if m.gone >= lo {
			keep = append(keep, m)
		}
	}
	s.departed = keep

	total, n := 0.0, 0
	var lastKey [3]time.Duration
	haveLast, lastU, lastOK := false, 0.0, false
	measure := func(m *member) {
		// Members started and stopped together (neighbours in seq
		// order) have the same counter: compute it once.
		if key := [3]time.Duration{m.ready, m.leave, m.gone}; !haveLast || key != lastKey {
			lastU, lastOK = s.memberCPU(m, lo, t)
			lastKey, haveLast = key, true
		}
		if lastOK {
			total += lastU
			n++
		}
	}
	for i := range s.departed {
		measure(&s.departed[i])
	}
	for i := range s.members {
		measure(&s.members[i])
	}
	if n > 0 {
		s.metric = policy.Metrics{CPU: total / float64(n), Members: n, Valid: true}
	} else {
		s.metric = policy.Metrics{}
	}
	cpu := math.NaN()
	if s.metric.Valid {
		cpu = s.metric.CPU
	}
	s.run.CPU = append(s.run.CPU, Point{T: t, V: cpu})
	s.evaluateArrivals(t)

	a := s.setup.Alerts
	if a == nil {
		return
	}
	conds := [2]bool{s.metric.Valid && s.metric.CPU > a.UpAbove, s.metric.Valid && s.metric.CPU < a.DownBelow}
	for dir, cond := range conds {
		st := &s.alerts[dir]
		if !cond {
			*st = alertState{}
			continue
		}
		if !st.active {
			st.active, st.since = true, t
		}
		if !st.firing && t-st.since >= a.For {
			st.firing = true
			if s.next[evFlushUp+dir] == never {
				s.next[evFlushUp+dir] = t + a.GroupWait
			}
		}
	}
}

// memberCPU is m's utilisation over its first and last samples within
// [lo, t]; ok is false with fewer than two samples.
func (s *sim) memberCPU(m *member, lo, t time.Duration) (float64, bool) {
	p := s.setup.Metrics
	if m.ready == never || m.ready > t {
		return 0, false
	}
	from := max(lo, m.ready+p.Discovery)
	to := t
	if m.gone != never {
		to = min(to, m.gone-1) // no scrape once the member is gone
	}
	if to < from {
		return 0, false
	}
	// Scrape k is at Offset + k*Scrape; k < scrapeK have happened.
	k1 := ceilDiv(from-p.Offset, p.Scrape)
	k2 := min(floorDiv(to-p.Offset, p.Scrape), s.scrapeK-1)
	k1 = max(k1, 0, s.scrapeK-len(s.ring))
	if k2 <= k1 {
		return 0, false
	}
	g1, g2 := p.Offset+time.Duration(k1)*p.Scrape, p.Offset+time.Duration(k2)*p.Scrape
	c1, c2 := s.counter(m, k1, g1), s.counter(m, k2, g2)
	return (c2 - c1) / (g2 - g1).Seconds(), true
}

// counter is m's CPU counter at scrape k (at time g).
func (s *sim) counter(m *member, k int, g time.Duration) float64 {
	if g >= m.leave {
		return m.busyLeave - m.busyReady
	}
	return s.ring[k%len(s.ring)] - m.busyReady
}

func ceilDiv(a, b time.Duration) int {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return int(q)
}

func floorDiv(a, b time.Duration) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return int(q)
}
