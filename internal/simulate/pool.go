// The simulated pool: members' capacity, SLO, limits and timings, and the demand they meet.

package simulate

import (
	"errors"
	"fmt"
	"math"
	"time"

	"tidepool/internal/autoscaler/policy"
)

// Defaults of Pool's zero fields.
const (
	// DefaultCapacity is what one demo member serves at 100 % CPU: a 0.25
	// core quota at 20 ms of CPU per request.
	DefaultCapacity = 12.5
	// DefaultSLO is the utilisation up to which the SLO holds; demand is
	// the fewest members keeping the utilisation at or below it.
	DefaultSLO = 0.8
)

// Pool describes the simulated pool and its members. The zero value is a
// pool of DefaultCapacity members with the DefaultSLO, at least 1 member,
// no maximum, starting at the demand, with instant boot and drain and no
// queue.
type Pool struct {
	// Capacity is the requests per second one member serves at 100 % CPU;
	// 0 means DefaultCapacity.
	Capacity float64
	// SLO is the utilisation (0..1] at or below which requests are served
	// in time; 0 means DefaultSLO.
	SLO float64
	// Min and Max bound the pool; Min below 1 means 1, Max 0 means no
	// maximum. Every simulated policy gets these as its policy.Limits.
	Min, Max int
	// Initial is the size at the start; 0 means the demand at the start
	// (within Min and Max).
	Initial int
	// BootDelay is the time from the scale-up request to the new members
	// serving; the control loop waits for it (the pool is not running).
	BootDelay time.Duration
	// DrainDelay is the time a scale-in victim takes from leaving the load
	// balancer to being gone; victims are drained one after the other and
	// the control loop waits for all of them.
	DrainDelay time.Duration
	// Timeout is the longest a request waits in a member's queue before it
	// is dropped (the client gives up); 0 means no queue (work beyond the
	// capacity is dropped at once).
	Timeout time.Duration
}

func (p Pool) withDefaults() Pool {
	if p.Capacity == 0 {
		p.Capacity = DefaultCapacity
	}
	if p.SLO == 0 {
		p.SLO = DefaultSLO
	}
	p.Min = max(p.Min, 1)
	return p
}

// Validate reports an impossible pool.
func (p Pool) Validate() error {
	p = p.withDefaults()
	switch {
	case !(p.Capacity > 0) || math.IsInf(p.Capacity, 0):
		return fmt.Errorf("capacity %v req/s: must be positive", p.Capacity)
	case !(p.SLO > 0 && p.SLO <= 1):
		return fmt.Errorf("SLO utilisation %v: want 0 < slo <= 1", p.SLO)
	case p.Max < 0 || (p.Max > 0 && p.Max < p.Min):
		return fmt.Errorf("max %d: want 0 (none) or >= min %d", p.Max, p.Min)
	case p.Initial < 0 || (p.Max > 0 && p.Initial > p.Max):
		return fmt.Errorf("initial size %d: want 0 (the demand) or within [min, max]", p.Initial)
	case p.BootDelay < 0 || p.DrainDelay < 0 || p.Timeout < 0:
		return errors.New("boot delay, drain delay and timeout must not be negative")
	}
	return nil
}

// Limits are the policy limits of the pool.
func (p Pool) Limits() policy.Limits {
	p = p.withDefaults()
	return policy.Limits{Min: p.Min, Max: p.Max}
}

// Demand is the fewest members that keep the utilisation at or below the
// SLO at rate req/s, and never below Min: d = max(Min, ceil(rate /
// (Capacity × SLO))). It is not capped at Max.
func (p Pool) Demand(rate float64) int {
	p = p.withDefaults()
	return max(p.Min, int(math.Ceil(rate/(p.Capacity*p.SLO)-1e-9)))
}

// DemandSeries is the demand of every step of tr.
func (p Pool) DemandSeries(tr Trace) Series {
	var s Series
	for i, r := range tr.Rate {
		s.set(tr.Start[i], p.Demand(r))
	}
	return s
}

// Clamp returns n within the pool's bounds.
func (p Pool) Clamp(n int) int {
	p = p.withDefaults()
	n = max(n, p.Min)
	if p.Max > 0 {
		n = min(n, p.Max)
	}
	return n
}

func (p Pool) initial(tr Trace) int {
	if p.Initial > 0 {
		return p.Clamp(p.Initial)
	}
	return p.Clamp(p.Demand(tr.Rate[0]))
}
