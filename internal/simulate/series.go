package simulate

import (
	"slices"
	"time"
)

// Series is a step function of time with integer values (instances): V[i]
// holds from T[i] until T[i+1], the last value until the end of the run.
// T strictly increases and consecutive values differ.
type Series struct {
	T []time.Duration
	V []int
}

// set records that the value is v from t on; t must not be before the last
// change. A change at the time of the last one replaces it.
func (s *Series) set(t time.Duration, v int) {
	n := len(s.T)
	switch {
	case n > 0 && s.T[n-1] == t:
		s.V[n-1] = v
		if n > 1 && s.V[n-2] == v {
			s.T, s.V = s.T[:n-1], s.V[:n-1]
		}
	case n > 0 && s.V[n-1] == v:
	default:
		s.T = append(s.T, t)
		s.V = append(s.V, v)
	}
}

// At returns the value at t (the first value before T[0]).
func (s Series) At(t time.Duration) int {
	if len(s.T) == 0 {
		return 0
	}
	i, found := slices.BinarySearch(s.T, t)
	if !found {
		i--
	}
	return s.V[max(i, 0)]
}

// Max returns the largest value.
func (s Series) Max() int {
	m := 0
	for _, v := range s.V {
		m = max(m, v)
	}
	return m
}

// Changes is the number of value changes after the first value.
func (s Series) Changes() int { return max(len(s.T)-1, 0) }

// Integral returns the integral of s over [0, end) in value-seconds.
func (s Series) Integral(end time.Duration) float64 {
	total := 0.0
	for i := range s.T {
		next := end
		if i+1 < len(s.T) {
			next = min(s.T[i+1], end)
		}
		if next > s.T[i] {
			total += float64(s.V[i]) * (next - s.T[i]).Seconds()
		}
	}
	return total
}

// Floats returns V as float64s (for charts), a new slice of len(V).
func (s Series) Floats() []float64 {
	out := make([]float64, len(s.V))
	for i, v := range s.V {
		out[i] = float64(v)
	}
	return out
}

// Point is one value of a real-valued time series.
type Point struct {
	T time.Duration
	V float64
}
