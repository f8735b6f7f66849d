package policy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Defaults of Predictive's zero fields and of the flags that set them.
const (
	// DefaultPredictiveTarget is the utilisation Predictive sizes the pool
	// for at the load it expects; below the 80 % the SLO allows, the rest
	// absorbs what the burst margin and the forecast miss.
	DefaultPredictiveTarget = 0.75
	// DefaultBurst is the burst margin in standard deviations of the
	// one-second arrival rate (about 2 % of seconds above it for normal
	// noise).
	DefaultBurst = 2.0
	// DefaultSeasons is how many past periods the seasonal forecast looks
	// at.
	DefaultSeasons = 2
	// PredictiveTick is the tick Predictive is meant to run at: the
	// Kubernetes HPA's 15 s sync period (the arrival rate is evaluated
	// every 15 s with the seed's monitoring).
	PredictiveTick = 15 * time.Second
	// spreadSpan is how much recent history the burst margin is estimated
	// from.
	spreadSpan = 10 * time.Minute
	// trendSpan is how much recent history a ramp is fitted on.
	trendSpan = 3 * time.Minute
)

// Reasons of Predictive decisions (besides those of TargetTracking:
// above-target, below-target, within-tolerance, stabilizing, no-metrics).
const (
	// ReasonForecast: the seasonal forecast asks for more members than the
	// current load within the lead time, so the pool grows (or holds)
	// before the load arrives.
	ReasonForecast Reason = "forecast"
)

// Predictive sizes the pool for the load it will have once new members
// serve, combining what the best autoscalers do separately:
//
//   - a load signal that leads CPU: the pool's request arrival rate
//     (Metrics.Load), counted when requests arrive, so it keeps growing
//     when a saturated CPU is stuck at 100 %;
//   - proportional scale-out to the needed size in one step, as the
//     Kubernetes HPA: desired = ceil(CostPerRequest × (rate + margin) /
//     Target);
//   - a burst margin of Burst standard deviations of the one-second arrival
//     rate, estimated from the recent rates (0 for a smooth load, about
//     √rate for Poisson arrivals);
//   - stabilised scale-in, as the HPA's scale-down window: the pool shrinks
//     only to the largest load-driven recommendation of the last
//     ScaleDownStabilization;
//   - a seasonal forecast, as AWS predictive scaling: when the arrival
//     history repeats itself with a period P (found in the history, see
//     Season), the pool is sized for the largest rate seen at the same
//     phase over the next Lead (and Settle, see there) in each of the last
//     Seasons periods, so capacity arrives one boot time before a periodic
//     rise. The forecast only adds members; it uses only rates at or
//     before Load.End (the past).
//
// Without a known arrival rate or cost per request, it falls back to
// target tracking on the CPU (TargetTracking's rule with Target and the
// same stabilisation). Limits apply as documented on Limits.Apply.
//
// Decide is pure: the history of recommendations is carried by the caller
// as for TargetTracking, and the arrival history comes in Metrics.Load.
type Predictive struct {
	Limits
	// Target is the utilisation the pool is sized for at the expected
	// load, 0 < Target <= 1; 0 means DefaultPredictiveTarget.
	Target float64
	// Burst is the margin added to the arrival rate, in standard
	// deviations of the one-second arrival rate; 0 means none.
	Burst float64
	// Lead is how far ahead the pool must be right: the time a new member
	// takes to serve plus one tick (a decision is revised one tick later
	// at the earliest). The forecast covers [now, now+Lead+Settle+2
	// steps], a ramp is extrapolated two leads ahead.
	Lead time.Duration
	// ScaleDownStabilization is the look-back window of the scale-in
	// (see above); 0 disables it.
	ScaleDownStabilization time.Duration
	// Seasons is how many past periods a rise must have come in for the
	// forecast to add members for it (it takes the smallest of their
	// peaks, as many as the history holds); 0 disables the forecast.
	Seasons int
	// MinPeriod and MaxPeriod bound the periods the forecast looks for; 0
	// means 2×Lead (at least 8 rates) and half the history.
	MinPeriod, MaxPeriod time.Duration
	// Settle is how long after a scale-out the arrival rate misses the new
	// members (until they have been scraped twice); 0 means twice the
	// rates' window and step. Meanwhile the rate from before the new
	// members served is a floor, and the forecast looks this much and two
	// rates further ahead than Lead, so that the dip a past scale-out left
	// right after a periodic rise does not hide the rise.
	Settle time.Duration
}

var _ Policy = Predictive{}

// Validate reports parameters that make no sense, and invalid Limits.
func (p Predictive) Validate() error {
	switch {
	case math.IsNaN(p.Target) || p.Target < 0 || p.Target > 1:
		return fmt.Errorf("target utilisation %v: want 0 < target <= 1", p.Target)
	case math.IsNaN(p.Burst) || p.Burst < 0:
		return fmt.Errorf("burst margin %v: must not be negative", p.Burst)
	case p.Lead < 0 || p.ScaleDownStabilization < 0 || p.MinPeriod < 0 || p.MaxPeriod < 0 || p.Settle < 0:
		return errors.New("lead, stabilisation window and periods must not be negative")
	case p.Seasons < 0:
		return fmt.Errorf("seasons %d: must not be negative", p.Seasons)
	case p.MaxPeriod > 0 && p.MaxPeriod < p.MinPeriod:
		return fmt.Errorf("max period %s is below min period %s", p.MaxPeriod, p.MinPeriod)
	}
	return p.Limits.Validate()
}

func (p Predictive) target() float64 {
	if p.Target == 0 {
		return DefaultPredictiveTarget
	}
	return p.Target
}

// Decide implements Policy.
func (p Predictive) Decide(obs Observation, now time.Time) Decision {
	from, target := obs.Pool.Size, p.target()
	history := recent(obs.Recommendations, now, p.ScaleDownStabilization)
	m := obs.Metrics
	l := m.Load

	e, ok := p.loadSize(obs, now, target)
	raw, calc := e.size, e.calc
	if !ok {
		// No arrival rate or cost per request: track the CPU.
		if !m.cpuKnown() {
			d := p.Apply(obs, now, Proposal{To: from, Reason: ReasonNoMetrics,
				Because: "neither the arrival rate nor the CPU utilisation is known"})
			d.Recommendations = history
			return d
		}
		raw, calc = TargetTracking{Target: target}.recommend(from, m, target)
		calc = "no arrival rate: " + calc
	}
	next := append(slices.Clip(history), Recommendation{At: now, Size: raw})
	stable := raw
	for _, r := range history {
		stable = max(stable, r.Size)
	}

	fcSize, fcCalc := 0, ""
	if ok && p.Seasons > 0 && l.CostPerRequest > 0 {
		fcSize, fcCalc = p.forecastSize(l, e.disp, now, target)
	}
	to := max(stable, fcSize)
	if e.jumped {
		to = max(to, from)
	}

	prop := Proposal{To: to, Because: calc}
	switch {
	case raw > from || fcSize > from:
		prop.Requested = Up
	case raw < from:
		prop.Requested = Down
	}
	switch {
	case to > from && fcSize > stable:
		prop.Reason, prop.Because = ReasonForecast, calc+"; "+fcCalc
	case to > from:
		prop.Reason = ReasonAboveTarget
	case to < from:
		prop.Reason = ReasonBelowTarget
	case raw == from:
		prop.Reason = ReasonWithinTolerance
	case raw < from && e.jumped:
		prop.Reason = ReasonStabilizing
	case raw < from && fcSize >= from && fcSize > stable:
		prop.Reason, prop.Because = ReasonForecast, calc+"; "+fcCalc+", held"
	case raw < from:
		prop.Reason = ReasonStabilizing
		prop.Because = fmt.Sprintf("%s, held at the largest recommendation of the last %s", calc, p.ScaleDownStabilization)
	default:
		prop.Reason = ReasonWithinTolerance
	}
	d := p.Apply(obs, now, prop)
	d.Recommendations = next
	return d
}

// estimate is what the arrival rate asks for.
type estimate struct {
	size int
	calc string
	// jumped: the latest rate jumped up (see Load.jumped); the pool must
	// not shrink on it.
	jumped bool
	// disp is the rates' dispersion (see Load.dispersion).
	disp float64
}

// loadSize is the size the current arrival rate asks for; ok is false when
// the rate is unknown or stale (older than two steps and a window), or the
// cost per request is unknown while requests arrive.
func (p Predictive) loadSize(obs Observation, now time.Time, target float64) (estimate, bool) {
	l := obs.Metrics.Load
	raw, at, ok := l.latest()
	if !ok || l.Step <= 0 || now.Sub(at) > 2*l.Step+l.window() {
		return estimate{}, false
	}
	if !(l.CostPerRequest > 0) || math.IsInf(l.CostPerRequest, 0) {
		// Without answered requests there is no cost per request; without
		// arrivals none is needed.
		if raw == 0 && l.before() == 0 {
			return estimate{calc: "no request arrives"}, true
		}
		return estimate{}, false
	}
	var e estimate
	var notes []string
	r := p.recentLoad(obs, now)
	disp := r.dispersion(spreadSpan)
	rate, _, ok := r.latest()
	if !ok || raw > rate {
		rate = raw
	} else if rate > raw {
		notes = append(notes, fmt.Sprintf("new members are not counted yet (%.1f req/s), %.1f req/s before they served", raw, rate))
	}
	if prev, jumped := r.jumped(max(4*noise(disp, r.before()), 0.1*r.before())); jumped {
		notes = append(notes, fmt.Sprintf("the rate jumped from %.1f to %.1f req/s in the last window, waiting for a full one", prev, rate))
		rate, e.jumped = prev, true
	}
	if slope, level, linear := r.trend(trendSpan, noise(disp, rate)); linear && slope > 0 {
		// Capacity decided now serves from one boot on until the next
		// decision's members serve: about two leads ahead.
		ahead := 2*p.Lead + l.window()/2 + now.Sub(l.End)
		if v := level + slope*ahead.Seconds(); v > rate {
			notes = append(notes, fmt.Sprintf("rising %.2f req/s per minute, %.1f req/s in %s", slope*60, v, ahead.Round(time.Second)))
			rate = v
		}
	}
	margin := p.margin(l, disp, rate)
	e.disp = disp
	e.size = ceil(l.CostPerRequest * (rate + margin) / target)
	e.calc = fmt.Sprintf("arrivals %.1f req/s + %.1f burst margin at %.1f ms of CPU each need %d members at %.0f%%",
		rate, margin, l.CostPerRequest*1000, e.size, target*100)
	for _, s := range notes {
		e.calc += "; " + s
	}
	return e, true
}

// margin is the burst margin at rate r: Burst standard deviations of the
// one-second arrival rate, the noise of the rates (dispersion) scaled from
// their Window to one second as for independent arrivals (Poisson: √r).
func (p Predictive) margin(l Load, disp, r float64) float64 {
	return p.Burst * noise(disp, r) * math.Sqrt(l.window().Seconds())
}

// settle returns Settle, or its default for l.
func (p Predictive) settle(l Load) time.Duration {
	if p.Settle > 0 {
		return p.Settle
	}
	return 2 * (l.window() + l.Step)
}

// recentLoad returns the last spreadSpan of the arrival rates (a copy),
// without those that miss new members: until members added by a
// scale-out are scraped twice their arrivals are missing from the pool's
// rate, which dips for settle after the scale-out completed. A scale-out
// is recognised by a member created within two leads before
// obs.LastScale (the control loop records the change once the new members
// run).
func (p Predictive) recentLoad(obs Observation, now time.Time) Load {
	l := obs.Metrics.Load
	n := min(len(l.Rates), int(max(spreadSpan, trendSpan)/l.Step)+1)
	r := l
	r.Rates = slices.Clone(l.Rates[len(l.Rates)-n:])
	if obs.LastScale.IsZero() || now.Sub(obs.LastScale) > p.settle(l)+max(spreadSpan, trendSpan) {
		return r
	}
	grew := false
	for _, m := range obs.Pool.Members {
		if !m.CreatedAt.IsZero() && !m.CreatedAt.After(obs.LastScale) && obs.LastScale.Sub(m.CreatedAt) <= 2*p.Lead {
			grew = true
		}
	}
	if !grew {
		return r
	}
	for i := max(r.index(obs.LastScale)+1, 0); i < len(r.Rates) && !r.at(i).After(obs.LastScale.Add(p.settle(l))); i++ {
		r.Rates[i] = math.NaN()
	}
	return r
}

// forecastSize is the size the seasonal forecast asks for over [now,
// now+Lead+Settle+2 steps] (0 when there is no season or not enough
// history), and how it was computed.
func (p Predictive) forecastSize(l Load, disp float64, now time.Time, target float64) (int, string) {
	minP := p.MinPeriod
	if minP == 0 {
		minP = max(2*p.Lead, 8*l.Step, p.Lead+p.settle(l)+3*l.Step)
	}
	s, ok := l.season(minP, p.MaxPeriod)
	if !ok {
		return 0, ""
	}
	// The rise must have come in each of the last Seasons periods in the
	// history: the smallest of their peaks over the same phase. Only the
	// past: every window must end by the last rate.
	ahead := p.Lead + p.settle(l) + 2*l.Step
	if now.Add(ahead - s.Period).After(l.End) {
		return 0, ""
	}
	peak, seen := math.Inf(1), 0
	for k := 1; k <= p.Seasons; k++ {
		back := time.Duration(k) * s.Period
		if l.index(now.Add(-l.Step-back)) < 0 {
			break
		}
		v, ok := l.peak(now.Add(-l.Step-back), now.Add(ahead-back))
		if !ok {
			break
		}
		peak, seen = min(peak, v), seen+1
	}
	if seen == 0 {
		return 0, ""
	}
	margin := p.margin(l, disp, peak)
	n := ceil(l.CostPerRequest * (peak + margin) / target)
	return n, fmt.Sprintf("the load repeats every %s (fit %.2f) and reached %.1f req/s within %s of this phase in each of the last %d periods: %d members",
		s.Period, s.Fit, peak, ahead, seen, n)
}
