package policy

import (
	"math"
	"slices"
	"time"
)

// Load is the work offered to the pool as a metric pipeline records it: the
// pool's request arrival rate over time and what one request costs. It is
// what Predictive sizes the pool from; the zero value means unknown.
//
// The arrival rate leads the CPU: it is counted when requests arrive, so it
// keeps rising when the members are saturated and their CPU is stuck at
// 100 %.
type Load struct {
	// Rates is the pool's arrival rate in requests per second, oldest
	// first, one every Step, the last one at End; NaN marks a missing
	// value. Callers may share the slice: policies never modify it.
	Rates []float64
	// End is the time of the last rate.
	End time.Time
	// Step is the interval between rates; it must be positive when Rates
	// is set.
	Step time.Duration
	// Window is the span of arrivals each rate averages over (for a
	// Prometheus rate() over two scrapes, the scrape interval); 0 means
	// Step. It scales the spread of the rates to one second.
	Window time.Duration
	// CostPerRequest is the member-seconds of CPU one request costs: the
	// members' CPU utilisation summed over the pool, divided by the
	// answered requests per second (1/capacity of one member at 100 %
	// CPU); 0 means unknown.
	CostPerRequest float64
}

// Known reports whether l holds at least one rate.
func (l Load) Known() bool {
	return l.Step > 0 && slices.ContainsFunc(l.Rates, func(v float64) bool { return !math.IsNaN(v) })
}

// at returns the time of Rates[i].
func (l Load) at(i int) time.Time {
	return l.End.Add(-time.Duration(len(l.Rates)-1-i) * l.Step)
}

// index returns the index of the last rate at or before t (possibly -1 or
// past the end when t is outside the history).
func (l Load) index(t time.Time) int {
	d := l.End.Sub(t)
	if d < 0 {
		return len(l.Rates) - 1 + int((-d+l.Step-1)/l.Step)
	}
	return len(l.Rates) - 1 - int((d+l.Step-1)/l.Step)
}

// latest returns the last known rate and its time.
func (l Load) latest() (float64, time.Time, bool) {
	for i := len(l.Rates) - 1; i >= 0; i-- {
		if !math.IsNaN(l.Rates[i]) {
			return l.Rates[i], l.at(i), true
		}
	}
	return 0, time.Time{}, false
}

// peak returns the largest known rate from the last one at or before from
// to the last one at or before to.
func (l Load) peak(from, to time.Time) (float64, bool) {
	lo, hi := max(l.index(from), 0), min(l.index(to), len(l.Rates)-1)
	best, ok := 0.0, false
	for i := lo; i <= hi; i++ {
		if v := l.Rates[i]; !math.IsNaN(v) && (!ok || v > best) {
			best, ok = v, true
		}
	}
	return best, ok
}

// window returns l.Window, or Step when unset.
func (l Load) window() time.Duration {
	if l.Window > 0 {
		return l.Window
	}
	return l.Step
}

// Quantile factors of |X| for X normal with standard deviation 1: the 25th
// percentile of |X| is 0.3186.
const absNormalQ25 = 0.3186

// dispersion estimates how noisy the rates are: the variance of a rate
// around the load's level per request per second of that level (the index
// of dispersion of the arrivals over Window: 1/Window seconds for Poisson
// arrivals, 0 for a smooth load), so that the noise of a rate r is
// √(dispersion × r) at any level. It compares rates one Window apart (no
// shared arrivals) over the last span, each difference scaled by the square
// root of the rates' mean. Both first differences (robust to steps) and
// second differences (robust to ramps) are used, each through robustScale
// so that up to three quarters of them may be moves of the load rather than
// noise, and the smaller estimate wins: noise is at most what either a
// level or a linear model leaves unexplained. It is at most maxDispersion
// times Poisson's. Until there are 8 differences it assumes Poisson
// arrivals (1/Window).
func (l Load) dispersion(span time.Duration) float64 {
	if l.Step <= 0 {
		return 0
	}
	m := max(1, int((l.window()+l.Step-1)/l.Step)) // lag of non-overlapping windows
	n := min(len(l.Rates), int(span/l.Step)+1)
	x := l.Rates[len(l.Rates)-n:]
	var d1, d2 []float64
	for i := m; i < len(x); i++ {
		a, b := x[i], x[i-m]
		if math.IsNaN(a) || math.IsNaN(b) {
			continue
		}
		if mean := (a + b) / 2; mean > 0 {
			d1 = append(d1, math.Abs(a-b)/math.Sqrt(mean))
		}
		if i >= 2*m {
			if c := x[i-2*m]; !math.IsNaN(c) {
				if mean := (a + b + c) / 3; mean > 0 {
					d2 = append(d2, math.Abs(a-2*b+c)/math.Sqrt(mean))
				}
			}
		}
	}
	if len(d1) < 8 || len(d2) < 8 {
		return 1 / l.window().Seconds() // not known yet: Poisson
	}
	s := min(robustScale(d1)/math.Sqrt2, robustScale(d2)/math.Sqrt(6))
	return min(s*s, maxDispersion/l.window().Seconds())
}

// maxDispersion caps the dispersion at twice that of Poisson arrivals. The
// rates cannot tell noise from a load that moves faster than their window
// (a square wave of a minute looks like noise), but what they see is
// covered by the largest recommendation of the stabilisation window and by
// the forecast; the burst margin is for what they cannot see, the
// arrivals' burstiness within a window, and more than twice Poisson's is
// taken for such a move.
const maxDispersion = 2.0

// robustScale estimates the standard deviation of normal values from their
// absolute values ds, of which some may be outliers: a first estimate from
// their 25th percentile, then the root mean square of the values within 4
// first estimates (a periodic load's regular jumps can be half of the
// values; they are far out and dropped, and the root mean square of the
// rest is the most precise estimate). It reorders ds.
func robustScale(ds []float64) float64 {
	s := quantile(ds, 0.25) / absNormalQ25
	sum, k := 0.0, 0
	for _, d := range ds {
		if d <= 4*s {
			sum += d * d
			k++
		}
	}
	if k < 8 {
		return s
	}
	return math.Sqrt(sum / float64(k))
}

// noise is the standard deviation of a rate of r around the load's level,
// for the dispersion d.
func noise(d, r float64) float64 {
	return math.Sqrt(d * max(r, 0))
}

// quantile returns the q-quantile of xs (nearest rank below); it sorts xs.
func quantile(xs []float64, q float64) float64 {
	slices.Sort(xs)
	return xs[int(q*float64(len(xs)-1))]
}

// jumped reports whether the latest rate rose from the one before by more
// than tol while the one before had not moved by more than tol: a step in
// the load that the latest rate window straddles (it shows only part of
// the new level) or a burst as short as one window. The one before is
// returned.
func (l Load) jumped(tol float64) (float64, bool) {
	n := len(l.Rates)
	if n < 3 {
		return 0, false
	}
	a, b, c := l.Rates[n-3], l.Rates[n-2], l.Rates[n-1]
	if math.IsNaN(a) || math.IsNaN(b) || math.IsNaN(c) {
		return 0, false
	}
	return b, c-b > tol && math.Abs(b-a) <= tol
}

// before is the rate before the latest (0 if unknown).
func (l Load) before() float64 {
	if n := len(l.Rates); n >= 2 && !math.IsNaN(l.Rates[n-2]) {
		return l.Rates[n-2]
	}
	return 0
}

// trend returns the rate's slope in requests per second per second over the
// last span (Theil-Sen: the median of the slopes of all pairs) and its
// fitted value at End, when the rates of the span lie on that line: three
// quarters of them are within 2 noise (the rates' spread) plus 2 % of the
// level, so that a ramp qualifies but not a step or a square wave.
// ok is false otherwise or with fewer than 6 rates.
func (l Load) trend(span time.Duration, noise float64) (slope, level float64, ok bool) {
	if l.Step <= 0 {
		return 0, 0, false
	}
	n := min(len(l.Rates), int(span/l.Step)+1)
	x := l.Rates[len(l.Rates)-n:]
	var slopes []float64
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			if !math.IsNaN(x[i]) && !math.IsNaN(x[j]) {
				slopes = append(slopes, (x[j]-x[i])/(float64(j-i)*l.Step.Seconds()))
			}
		}
	}
	if len(slopes) < 15 { // 6 rates
		return 0, 0, false
	}
	slope = quantile(slopes, 0.5)
	// Intercept at End: the median of x[i] + slope × (time to End).
	var at, res []float64
	for i, v := range x {
		if !math.IsNaN(v) {
			at = append(at, v+slope*float64(len(x)-1-i)*l.Step.Seconds())
		}
	}
	level = quantile(slices.Clone(at), 0.5)
	for _, v := range at {
		res = append(res, math.Abs(v-level))
	}
	tol := 2*noise + 0.02*math.Abs(level)
	return slope, level, quantile(res, 0.75) <= tol
}
