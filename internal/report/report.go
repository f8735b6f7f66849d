// Package report turns the record of a `tidepool demo` run (per-second
// samples of load, pool size, CPU and latency, plus scaling events) into a
// human summary, a PNG image of stacked time-series panels and a
// self-contained HTML page (inline SVG charts, summary and events tables).
//
// Summarize is pure. WritePNG, WriteHTML and WriteFiles only render; they
// never change the Data they are given.
//
// It owns the demo report's summary and rendering, and must not import the
// components it reports on or anything that starts processes or touches the
// network.
package report

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Event kinds understood by the renderer. Other kinds are listed in the
// HTML events table but not drawn.
const (
	KindScaleOut = "scale-out"
	KindScaleIn  = "scale-in"
	// KindAlertUp is an alert that started firing, KindAlertDown one that
	// stopped firing (resolved); Reason names the alert.
	KindAlertUp   = "alert-up"
	KindAlertDown = "alert-down"
	KindLoadStart = "load-start"
	KindLoadEnd   = "load-end"
	// KindScaleHeld is a change the autoscaler decided but held (pool busy,
	// cooldown, warmup), KindScaleFailed one that failed; both are listed,
	// not drawn.
	KindScaleHeld   = "scale-held"
	KindScaleFailed = "scale-failed"
)

// DefaultLoadThreshold is the fraction of the peak offered load used to
// detect when the load rose and when it dropped (see Summary.LoadRise).
const DefaultLoadThreshold = 0.5

// Default CPU thresholds drawn on the CPU panel (fractions 0..1).
const (
	DefaultCPUHigh = 0.80
	DefaultCPULow  = 0.20
)

// Sample is one second (or one progress tick) of the demo.
type Sample struct {
	// T is the time since the demo started.
	T time.Duration
	// OfferedRPS is the planned arrival rate in requests per second.
	OfferedRPS float64
	// AnsweredRPS is the rate of answered requests in requests per second.
	AnsweredRPS float64
	// OK is the number of requests answered 2xx in this second.
	OK int
	// Errors is the number of failed requests (any kind) in this second.
	Errors int
	// Late is the number of requests that could not be sent on time.
	Late int
	// P50, P95 and P99 are latency percentiles measured from the planned
	// send time; 0 means no data for that second.
	P50, P95, P99 time.Duration
	// PoolSize is the number of pool members in any state per the cloud
	// API; negative means unknown (drawn as a gap).
	PoolSize int
	// RunningSize is the number of running members (draining ones
	// included); negative means unknown.
	RunningSize int
	// StartingSize is the number of members not running yet (booting);
	// negative means unknown.
	StartingSize int
	// DrainingSize is the number of running members that are draining: out
	// of the load balancer, finishing their requests before their eviction.
	// They are counted in RunningSize too. Negative means unknown.
	DrainingSize int
	// AvgCPU is the pool average CPU utilisation 0..1 from Prometheus;
	// NaN means unknown.
	AvgCPU float64
	// CPU is the per-instance utilisation 0..1 keyed by instance name or
	// IP; a missing key or a NaN value means unknown.
	CPU map[string]float64
	// Alerts is the state of each alerting rule at this second, keyed by
	// alert name: AlertInactive, AlertPending or AlertFiring. A missing key
	// or a nil map means unknown.
	Alerts map[string]string
}

// Alert states of Sample.Alerts, as Prometheus reports them.
const (
	AlertInactive = "inactive"
	AlertPending  = "pending"
	AlertFiring   = "firing"
)

// Event is something that happened at one instant of the demo.
type Event struct {
	// T is the time since the demo started.
	T time.Duration
	// Kind is one of the Kind* constants.
	Kind string
	// From and To are pool sizes (members) before and after a scaling event.
	From, To int
	// Reason is a human explanation, shown in the events table.
	Reason string
}

// Totals are whole-run figures measured exactly by the load generator.
type Totals struct {
	// Requests, OK, Failed and Late are counts over the whole run.
	Requests, OK, Failed, Late int
	// P50, P95 and P99 are exact latency percentiles over all requests.
	// When P95 is 0 the percentiles are estimated from the samples instead.
	P50, P95, P99 time.Duration
}

// Data is everything the report shows. The zero value renders as a "no data"
// report.
type Data struct {
	// Title heads the report; "" means "tidepool demo".
	Title string
	// Started is the wall-clock start of the demo; zero means unknown.
	Started time.Time
	// Profile names the load profile (for example "ramp").
	Profile string
	// Samples, in any order (they are sorted by T for rendering).
	Samples []Sample
	// Events, in any order.
	Events []Event
	// Notes are free-form lines shown in the HTML report.
	Notes []string
	// Totals, when non-nil, replace the request counts (and, if Totals.P95
	// is set, the latency percentiles) that would otherwise be derived from
	// the samples.
	Totals *Totals
	// LoadThreshold is the fraction (0..1, exclusive) of the peak offered
	// load that defines LoadRise and LoadDrop; outside (0, 1) means
	// DefaultLoadThreshold.
	LoadThreshold float64
	// CPUHigh and CPULow are the scale-out and scale-in CPU thresholds
	// (fractions 0..1) drawn on the CPU panel; 0 means DefaultCPUHigh and
	// DefaultCPULow, negative hides the line.
	CPUHigh, CPULow float64
}

// Summary holds the headline numbers of a run. Build it with Summarize.
type Summary struct {
	// Duration is the time of the last sample or event.
	Duration time.Duration
	// Samples is the number of samples.
	Samples int

	// PeakOfferedRPS and PeakAnsweredRPS are maxima in requests per second.
	PeakOfferedRPS, PeakAnsweredRPS float64
	// LoadLevel (req/s) is the threshold for LoadRise and LoadDrop:
	// Data.LoadThreshold times PeakOfferedRPS.
	LoadLevel float64
	// LoadRose reports whether the offered load ever exceeded LoadLevel;
	// LoadRise is then the time of the first sample above it.
	LoadRose bool
	LoadRise time.Duration
	// LoadDropped reports whether the offered load fell back to LoadLevel
	// or below after its last sample above it; LoadDrop is then the time of
	// the first sample at or below LoadLevel after that last one above it.
	LoadDropped bool
	LoadDrop    time.Duration

	// ScaleOutEvents are the scale-out events in time order, ScaleOuts the
	// delay of each from LoadRise (same index; negative if the event came
	// before the rise). ScaleOuts is nil when the load never rose.
	ScaleOutEvents []Event
	ScaleOuts      []time.Duration
	// ScaleInEvents and ScaleIns are the same for scale-in events, relative
	// to LoadDrop. ScaleIns is nil when the load never dropped.
	ScaleInEvents []Event
	ScaleIns      []time.Duration

	// PoolKnown reports whether any sample or scaling event gave a pool
	// size; without it the pool fields below are 0.
	PoolKnown bool
	// StartPool, PeakPool and FinalPool are pool sizes in members: from the
	// first and last samples with a known size, and the maximum over the
	// samples and the To of scaling events. With no known sample size,
	// FinalPool is the To of the last scaling event.
	StartPool, PeakPool, FinalPool int
	// RunningKnown reports whether any sample had a running count;
	// PeakRunning and FinalRunning are then as above for running members.
	RunningKnown              bool
	PeakRunning, FinalRunning int
	// PeakAvgCPU is the maximum pool average CPU (0..1); NaN if unknown.
	PeakAvgCPU float64

	// Requests (OK + Failed), OK, Failed and Late count requests over the
	// run: Data.Totals if set, otherwise sums over the samples.
	Requests, OK, Failed, Late int

	// P50, P95 and P99 are whole-run latency percentiles; 0 means no data.
	// With LatencyExact they come from Data.Totals. Otherwise they are
	// estimated from the per-second percentiles: each second's latency
	// distribution is approximated by linear interpolation through
	// (0 ms, 0 %), (p50, 50 %), (p95, 95 %), (p99, 99 %) and 100 % at p99;
	// the seconds are mixed, weighted by their request count (OK + Errors),
	// and the percentile of the mixture is returned (rounded to 1 µs).
	// This is not the maximum of the per-second p95, which overstates the
	// tail when a few slow seconds carry few requests.
	P50, P95, P99 time.Duration
	LatencyExact  bool
}

// Summarize computes the Summary of d. It is pure: d is not modified.
func Summarize(d Data) Summary {
	samples := sortedSamples(d.Samples)
	events := sortedEvents(d.Events)

	s := Summary{Samples: len(samples), PeakAvgCPU: math.NaN()}
	for _, smp := range samples {
		s.Duration = max(s.Duration, smp.T)
		if finite(smp.OfferedRPS) {
			s.PeakOfferedRPS = max(s.PeakOfferedRPS, smp.OfferedRPS)
		}
		if finite(smp.AnsweredRPS) {
			s.PeakAnsweredRPS = max(s.PeakAnsweredRPS, smp.AnsweredRPS)
		}
		if finite(smp.AvgCPU) && (math.IsNaN(s.PeakAvgCPU) || smp.AvgCPU > s.PeakAvgCPU) {
			s.PeakAvgCPU = smp.AvgCPU
		}
	}
	for _, ev := range events {
		s.Duration = max(s.Duration, ev.T)
	}

	s.summarizeLoad(samples, loadThreshold(d.LoadThreshold))
	s.summarizePool(samples, events)
	s.summarizeRequests(samples, d.Totals)
	return s
}

func (s *Summary) summarizeLoad(samples []Sample, threshold float64) {
	if s.PeakOfferedRPS <= 0 {
		return
	}
	s.LoadLevel = threshold * s.PeakOfferedRPS
	first, last := -1, -1
	for i, smp := range samples {
		if smp.OfferedRPS > s.LoadLevel { // false for NaN
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return
	}
	s.LoadRose, s.LoadRise = true, samples[first].T
	for _, smp := range samples[last+1:] {
		if smp.OfferedRPS <= s.LoadLevel { // a NaN sample is not a drop
			s.LoadDropped, s.LoadDrop = true, smp.T
			break
		}
	}
}

func (s *Summary) summarizePool(samples []Sample, events []Event) {
	for _, ev := range events {
		switch ev.Kind {
		case KindScaleOut:
			s.ScaleOutEvents = append(s.ScaleOutEvents, ev)
			if s.LoadRose {
				s.ScaleOuts = append(s.ScaleOuts, ev.T-s.LoadRise)
			}
		case KindScaleIn:
			s.ScaleInEvents = append(s.ScaleInEvents, ev)
			if s.LoadDropped {
				s.ScaleIns = append(s.ScaleIns, ev.T-s.LoadDrop)
			}
		default:
			continue
		}
		s.PeakPool = max(s.PeakPool, ev.To)
		s.FinalPool = ev.To
	}
	seenPool := false
	for _, smp := range samples {
		if smp.PoolSize >= 0 {
			if !seenPool {
				s.StartPool = smp.PoolSize
			}
			seenPool = true
			s.PeakPool = max(s.PeakPool, smp.PoolSize)
			s.FinalPool = smp.PoolSize
		}
		if smp.RunningSize >= 0 {
			s.RunningKnown = true
			s.PeakRunning = max(s.PeakRunning, smp.RunningSize)
			s.FinalRunning = smp.RunningSize
		}
	}
	s.PoolKnown = seenPool || len(s.ScaleOutEvents)+len(s.ScaleInEvents) > 0
	if !seenPool && s.PoolKnown {
		first := s.ScaleOutEvents
		if len(first) == 0 || (len(s.ScaleInEvents) > 0 && s.ScaleInEvents[0].T < first[0].T) {
			first = s.ScaleInEvents
		}
		s.StartPool = first[0].From
	}
}

func (s *Summary) summarizeRequests(samples []Sample, totals *Totals) {
	for _, smp := range samples {
		s.OK += smp.OK
		s.Failed += smp.Errors
		s.Late += smp.Late
	}
	s.Requests = s.OK + s.Failed
	if totals != nil {
		s.Requests, s.OK, s.Failed, s.Late = totals.Requests, totals.OK, totals.Failed, totals.Late
		if totals.P95 > 0 {
			s.P50, s.P95, s.P99, s.LatencyExact = totals.P50, totals.P95, totals.P99, true
			return
		}
	}
	s.P50 = mixtureQuantile(samples, 0.50)
	s.P95 = mixtureQuantile(samples, 0.95)
	s.P99 = mixtureQuantile(samples, 0.99)
}

func loadThreshold(f float64) float64 {
	if !(f > 0 && f < 1) {
		return DefaultLoadThreshold
	}
	return f
}

func sortedSamples(in []Sample) []Sample {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b Sample) int { return cmp.Compare(a.T, b.T) })
	return out
}

func sortedEvents(in []Event) []Event {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b Event) int { return cmp.Compare(a.T, b.T) })
	return out
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
