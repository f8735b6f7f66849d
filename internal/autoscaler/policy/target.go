package policy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// DefaultTargetCPU is the average CPU utilisation TargetTracking aims at when
// its Target is 0. With the default 10 % tolerance the pool is resized only
// above 66 %, which leaves headroom below the 80 % at which the seed's
// scale-up alert fires while new members boot.
const DefaultTargetCPU = 0.6

// Reasons of TargetTracking decisions.
const (
	ReasonAboveTarget     Reason = "above-target"     // the CPU is above the target band: grow
	ReasonBelowTarget     Reason = "below-target"     // the CPU is below the target band: shrink
	ReasonWithinTolerance Reason = "within-tolerance" // the CPU is within the band (or the change is too small)
	ReasonNoMetrics       Reason = "no-metrics"       // the CPU is unknown: hold
	ReasonStabilizing     Reason = "stabilizing"      // a change is held by a stabilisation window
)

// Metrics is the measured load of the pool.
type Metrics struct {
	// CPU is the members' average CPU utilisation, 0..1 of their CPU quota.
	CPU float64
	// Members is how many members the average covers (those with data);
	// 0 means all of Pool.Size.
	Members int
	// Valid reports that CPU was measured; the zero Metrics means unknown.
	Valid bool
	// Load is the pool's arrival rate and cost per request, read by
	// Predictive; the zero value means unknown (independent of Valid).
	Load Load
}

// cpuKnown reports whether CPU holds a measured utilisation.
func (m Metrics) cpuKnown() bool {
	return m.Valid && !math.IsNaN(m.CPU) && !math.IsInf(m.CPU, 0) && m.CPU >= 0
}

// Recommendation is the size a target-tracking policy recommended at one
// decision, before stabilisation, step limits and Limits.
type Recommendation struct {
	At   time.Time `json:"at"`
	Size int       `json:"size"`
}

// TargetTracking keeps the pool's average CPU near Target, the way the
// Kubernetes horizontal pod autoscaler does (pkg/controller/podautoscaler):
//
//	desired = ceil(members with data × CPU / Target)
//
// No change is made while CPU/Target is within 1 ± Tolerance. Members that
// have no data yet (still booting, not scraped) count as idle when growing
// and as exactly on target when shrinking, so that new members are not
// double-counted; if that flips the direction, nothing changes.
//
// The raw recommendation is then stabilised: the pool grows to at most the
// smallest recommendation of the last ScaleUpStabilization and shrinks to at
// least the largest of the last ScaleDownStabilization (the windows include
// the current decision; 0 means the current recommendation alone). The
// change is limited to max(MaxStep, ceil(MaxStepPercent % of the size)) per
// decision (both 0: no limit), and Limits apply as documented on
// Limits.Apply.
//
// Decide is pure: the history is carried by the caller, who passes each
// Decision's Recommendations back in the next Observation. The zero value
// (with Limits) tracks DefaultTargetCPU with no tolerance, no step limit and
// no stabilisation.
type TargetTracking struct {
	Limits
	// Target is the wanted average CPU utilisation, 0 < Target <= 1; 0
	// means DefaultTargetCPU.
	Target float64
	// Tolerance is the relative dead band around Target, e.g. 0.1 for
	// ±10 %; 0 means none.
	Tolerance float64
	// MaxStep is the most members added or removed by one decision; with
	// MaxStepPercent, the larger of the two limits applies. Both 0 means no
	// limit.
	MaxStep int
	// MaxStepPercent is the most members added or removed by one decision as
	// a percentage of the current size (rounded up).
	MaxStepPercent float64
	// ScaleUpStabilization and ScaleDownStabilization are the look-back
	// windows of the recommendations (see above); 0 disables each.
	ScaleUpStabilization, ScaleDownStabilization time.Duration
}

var _ Policy = TargetTracking{}

// Validate reports parameters that make no sense, and invalid Limits.
func (p TargetTracking) Validate() error {
	switch {
	case math.IsNaN(p.Target) || p.Target < 0 || p.Target > 1:
		return fmt.Errorf("target CPU %v: want 0 < target <= 1", p.Target)
	case math.IsNaN(p.Tolerance) || p.Tolerance < 0 || p.Tolerance >= 1:
		return fmt.Errorf("tolerance %v: want 0 <= tolerance < 1", p.Tolerance)
	case p.MaxStep < 0:
		return fmt.Errorf("max step %d: must not be negative", p.MaxStep)
	case math.IsNaN(p.MaxStepPercent) || p.MaxStepPercent < 0:
		return fmt.Errorf("max step percent %v: must not be negative", p.MaxStepPercent)
	case p.ScaleUpStabilization < 0 || p.ScaleDownStabilization < 0:
		return errors.New("stabilisation windows must not be negative")
	}
	return p.Limits.Validate()
}

func (p TargetTracking) target() float64 {
	if p.Target == 0 {
		return DefaultTargetCPU
	}
	return p.Target
}

// Decide implements Policy.
func (p TargetTracking) Decide(obs Observation, now time.Time) Decision {
	from, m, target := obs.Pool.Size, obs.Metrics, p.target()
	history := recent(obs.Recommendations, now, max(p.ScaleUpStabilization, p.ScaleDownStabilization))
	if !m.cpuKnown() {
		d := p.Apply(obs, now, Proposal{To: from, Reason: ReasonNoMetrics,
			Because: "the pool's CPU utilisation is unknown"})
		d.Recommendations = history
		return d
	}

	raw, calc := p.recommend(from, m, target)
	next := append(slices.Clip(history), Recommendation{At: now, Size: raw})

	// Stabilise: grow to the smallest recommendation of the scale-up window,
	// shrink to the largest of the scale-down window.
	up, down := raw, raw
	for _, r := range history {
		if r.At.After(now.Add(-p.ScaleUpStabilization)) {
			up = min(up, r.Size)
		}
		if r.At.After(now.Add(-p.ScaleDownStabilization)) {
			down = max(down, r.Size)
		}
	}
	to := from
	if to < up {
		to = up
	}
	if to > down {
		to = down
	}
	stable := to
	if limit := p.stepLimit(from); limit > 0 {
		to = min(max(to, from-limit), from+limit)
	}

	prop := Proposal{To: to, Because: calc}
	switch {
	case raw > from:
		prop.Requested = Up
	case raw < from:
		prop.Requested = Down
	}
	switch {
	case to > from:
		prop.Reason = ReasonAboveTarget
	case to < from:
		prop.Reason = ReasonBelowTarget
	case raw == from:
		prop.Reason = ReasonWithinTolerance
	default:
		prop.Reason = ReasonStabilizing
		window, which := p.ScaleDownStabilization, "largest"
		if raw > from {
			window, which = p.ScaleUpStabilization, "smallest"
		}
		prop.Because = fmt.Sprintf("%s, held at the %s recommendation of the last %s", calc, which, window)
	}
	if stable != to {
		prop.Because = fmt.Sprintf("%s (step limited from %d)", prop.Because, stable)
	}
	d := p.Apply(obs, now, prop)
	d.Recommendations = next
	return d
}

// recommend returns the raw recommended size and how it was computed.
func (p TargetTracking) recommend(from int, m Metrics, target float64) (int, string) {
	n := m.Members
	if n <= 0 || n > from {
		n = from
	}
	ratio := m.CPU / target
	head := fmt.Sprintf("CPU %.0f%% over %d of %d members vs target %.0f%%", m.CPU*100, n, from, target*100)
	if p.within(ratio) {
		return from, fmt.Sprintf("%s is within the %.0f%% tolerance", head, p.Tolerance*100)
	}
	usage, missing := ratio*float64(n), from-n
	if missing > 0 && from > 0 {
		// Members without data: idle when growing, on target when shrinking.
		adjusted := usage / float64(from)
		if ratio < 1 {
			adjusted = (usage + float64(missing)) / float64(from)
		}
		if p.within(adjusted) || (adjusted > 1) != (ratio > 1) {
			return from, fmt.Sprintf("%s; counting the %d members without data, the change is within tolerance", head, missing)
		}
		if ratio < 1 {
			usage += float64(missing)
		}
	}
	raw := ceil(usage)
	return raw, fmt.Sprintf("%s: %.2f members' worth of load recommends %d", head, usage, raw)
}

func (p TargetTracking) within(ratio float64) bool {
	return math.Abs(ratio-1) <= p.Tolerance+1e-9
}

// stepLimit is the largest change allowed in one decision; 0 means none.
func (p TargetTracking) stepLimit(from int) int {
	return max(p.MaxStep, ceil(float64(from)*p.MaxStepPercent/100))
}

// ceil rounds up, ignoring floating-point noise below 1e-9.
func ceil(x float64) int {
	return int(math.Ceil(x - 1e-9))
}

// recent returns the recommendations made after now-window and not after
// now, in a new slice.
func recent(rs []Recommendation, now time.Time, window time.Duration) []Recommendation {
	var out []Recommendation
	for _, r := range rs {
		if r.At.After(now.Add(-window)) && !r.At.After(now) {
			out = append(out, r)
		}
	}
	return out
}
