package loadgen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Schedule is the arrival schedule of an open workload: stages played one
// after the other, starting at offset 0. It is immutable and safe for
// concurrent use; every method is a pure function of the stages.
//
// Timing model: let H(t) be the expected number of requests in [0, t), the
// integral of the rate. Request k (k = 0, 1, ...) is planned at the earliest
// time at which H exceeds k, so at a constant 10 req/s the requests are planned
// at 0, 100ms, 200ms, ... and a schedule of length D holds every k < H(D)
// (rounded up, ignoring floating-point dust below 1e-6). Stretches at 0 req/s
// plan nothing.
type Schedule struct {
	stages []Stage
	start  []time.Duration // start offset of each stage
	cum    []float64       // cum[i] = H(start[i]); cum[len(stages)] = H(end)
	end    time.Duration
	n      uint64
}

// NewSchedule validates the stages and builds their schedule. It fails on an
// empty list or an invalid stage (the error names the stage's position).
func NewSchedule(stages []Stage) (*Schedule, error) {
	if len(stages) == 0 {
		return nil, errors.New("no stages")
	}
	s := &Schedule{
		stages: append([]Stage(nil), stages...),
		start:  make([]time.Duration, len(stages)),
		cum:    make([]float64, len(stages)+1),
	}
	for i, st := range stages {
		if err := st.Validate(); err != nil {
			return nil, fmt.Errorf("stage %d (%s): %w", i+1, st, err)
		}
		s.start[i] = s.end
		if s.end+st.Duration < s.end {
			return nil, fmt.Errorf("stage %d: total duration overflows", i+1)
		}
		s.end += st.Duration
		s.cum[i+1] = s.cum[i] + stageHits(st, st.Duration.Seconds())
	}
	if total := s.cum[len(stages)]; total > 1e15 {
		return nil, fmt.Errorf("schedule plans %g requests, too many", total)
	}
	if total := s.cum[len(stages)] - 1e-6; total > 0 {
		s.n = uint64(math.Ceil(total))
	}
	return s, nil
}

// Stages returns a copy of the stages.
func (s *Schedule) Stages() []Stage { return append([]Stage(nil), s.stages...) }

// Duration is the length of the schedule (the sum of the stage durations).
func (s *Schedule) Duration() time.Duration { return s.end }

// Requests is the number of requests the schedule plans.
func (s *Schedule) Requests() uint64 { return s.n }

// stageAt returns the index of the stage holding offset t (0 <= t < end).
func (s *Schedule) stageAt(t time.Duration) int {
	lo, hi := 0, len(s.stages)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if s.start[mid] <= t {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// RateAt is the planned rate in requests per second at offset t; 0 outside
// [0, Duration).
func (s *Schedule) RateAt(t time.Duration) float64 {
	if t < 0 || t >= s.end {
		return 0
	}
	i := s.stageAt(t)
	return stageRate(s.stages[i], (t - s.start[i]).Seconds())
}

// Expected is H(t): the expected (fractional) number of requests planned in
// [0, t). It is 0 for t <= 0 and the schedule total for t >= Duration.
func (s *Schedule) Expected(t time.Duration) float64 {
	switch {
	case t <= 0:
		return 0
	case t >= s.end:
		return s.cum[len(s.stages)]
	}
	i := s.stageAt(t)
	return s.cum[i] + stageHits(s.stages[i], (t-s.start[i]).Seconds())
}

// PlannedAt returns the planned send offset of request k (from the start of
// the run) and true, or false if the schedule plans fewer than k+1 requests.
// Offsets are non-decreasing in k and lie in [0, Duration). It does not
// allocate.
func (s *Schedule) PlannedAt(k uint64) (time.Duration, bool) {
	if k >= s.n {
		return 0, false
	}
	m := float64(k)
	// First stage whose cumulative end exceeds m. It exists because
	// k < n = ceil(total - 1e-6) implies m < total.
	lo, hi := 0, len(s.stages)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if s.cum[mid+1] > m {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	st := s.stages[lo]
	tau := stageInverse(st, m-s.cum[lo])
	d := time.Duration(math.Round(tau * 1e9))
	d = max(0, min(d, st.Duration-1))
	return s.start[lo] + d, true
}

// stageRate is the rate in req/s at tau seconds into st (0 <= tau < D).
func stageRate(st Stage, tau float64) float64 {
	switch st.Kind {
	case KindRamp:
		return st.From + (st.To-st.From)*tau/st.Duration.Seconds()
	case KindHold:
		return st.From
	case KindSpike:
		if tau < st.Period.Seconds() {
			return st.To
		}
		return st.From
	case KindSine:
		return st.From + st.Amplitude*math.Sin(2*math.Pi*tau/st.Period.Seconds())
	}
	return 0
}

// stageHits is the integral of stageRate over [0, tau] (0 <= tau <= D).
func stageHits(st Stage, tau float64) float64 {
	switch st.Kind {
	case KindRamp:
		return st.From*tau + (st.To-st.From)*tau*tau/(2*st.Duration.Seconds())
	case KindHold:
		return st.From * tau
	case KindSpike:
		w := st.Period.Seconds()
		if tau < w {
			return st.To * tau
		}
		return st.To*w + st.From*(tau-w)
	case KindSine:
		p := st.Period.Seconds()
		return st.From*tau + st.Amplitude*p/(2*math.Pi)*(1-math.Cos(2*math.Pi*tau/p))
	}
	return 0
}

// stageInverse returns the earliest tau (seconds into st) at which
// stageHits(st, tau) exceeds m, for 0 <= m < stageHits(st, D).
func stageInverse(st Stage, m float64) float64 {
	switch st.Kind {
	case KindRamp:
		// Solve a*tau² + b*tau = m with a = (To-From)/2D, b = From, in the
		// form that is stable for a -> 0 and for a < 0.
		a := (st.To - st.From) / (2 * st.Duration.Seconds())
		b := st.From
		if m <= 0 {
			return 0
		}
		return 2 * m / (b + math.Sqrt(max(0, b*b+4*a*m)))
	case KindHold:
		return m / st.From
	case KindSpike:
		w := st.Period.Seconds()
		if peak := st.To * w; m < peak {
			return m / st.To
		} else {
			return w + (m-peak)/st.From
		}
	case KindSine:
		return sineInverse(st, m)
	}
	return 0
}

// sineInverse solves stageHits(st, tau) = m for a sine stage with Newton's
// method, falling back to bisection whenever a step leaves the bracket (the
// rate can touch zero when Amplitude == From). It stops once a step or the
// bracket is below 0.1ns, or after 100 steps; typically 3 to 8 steps. Whole
// periods are taken off first (each holds exactly From*Period requests), so
// the search runs within one period whatever the stage length.
func sineInverse(st Stage, m float64) float64 {
	if m <= 0 {
		return 0
	}
	p := st.Period.Seconds()
	whole := math.Floor(m / (st.From * p))
	return whole*p + sinePeriodInverse(st, m-whole*st.From*p)
}

// sinePeriodInverse is sineInverse for 0 <= m < From*Period.
func sinePeriodInverse(st Stage, m float64) float64 {
	if m <= 0 {
		return 0
	}
	lo, hi := 0.0, st.Period.Seconds()
	tau := min(m/st.From, hi)
	for range 100 {
		f := stageHits(st, tau) - m
		if f > 0 {
			hi = tau
		} else {
			lo = tau
		}
		step := f / stageRate(st, tau)
		if math.Abs(step) < 1e-10 {
			return tau - step
		}
		next := tau - step
		if math.IsNaN(next) || next <= lo || next >= hi {
			if hi-lo < 1e-10 {
				return tau
			}
			next = (lo + hi) / 2
		}
		tau = next
	}
	return tau
}
