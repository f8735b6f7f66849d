package policy

import (
	"math"
	"slices"
	"time"
)

// Period detection. A load is seasonal with period P when it repeats itself
// P later: the mean squared difference of the rates P apart is small next
// to their variance. The search uses the cumulative mean normalised
// difference of the YIN pitch detector (de Cheveigné and Kawahara, 2002),
// which does not mistake a trend or a single step for a period (their
// difference only grows with the lag), and picks the shortest period that
// qualifies, not one of its multiples.
const (
	// seasonPoints bounds the series the search runs on: longer histories
	// are averaged into blocks first, then the period found is refined on
	// the full series around it.
	seasonPoints = 256
	// seasonDip is the largest normalised difference at a period.
	seasonDip = 0.25
	// seasonFit is the largest mean squared error of "the same as one
	// period ago" over the last period, relative to twice the variance of
	// the rates (0: perfect, 1: no better than unrelated values).
	seasonFit = 0.1
)

// Season is a period found in the load.
type Season struct {
	// Period is the time after which the load repeats.
	Period time.Duration
	// Fit is the mean squared error of "the same as one period ago" over
	// the last period, relative to twice the variance of the rates: 0 is a
	// perfect repetition; a Season is only returned below seasonFit.
	Fit float64
}

// season finds the shortest period between minP and maxP (0: half the
// history) in which the history repeats, looking at the whole history and,
// for short periods, at its last seasonPoints rates at full resolution. At
// least two periods of history are needed, counted from the first known
// rate, and the last period must be mostly known.
func (l Load) season(minP, maxP time.Duration) (Season, bool) {
	// The history starts at the first known rate (a range query returns
	// nothing for the time before the data).
	first := slices.IndexFunc(l.Rates, func(v float64) bool { return !math.IsNaN(v) })
	if l.Step <= 0 || first < 0 || len(l.Rates)-first < 8 {
		return Season{}, false
	}
	x := l.Rates[first:]
	if maxP <= 0 || maxP > time.Duration(len(x)/2)*l.Step {
		maxP = time.Duration(len(x)/2) * l.Step
	}
	if len(x) > seasonPoints {
		// Short periods at full resolution first.
		if s, ok := l.searchPeriod(x[len(x)-seasonPoints:], minP, maxP); ok {
			return s, true
		}
	}
	return l.searchPeriod(x, minP, maxP)
}

// searchPeriod runs the search on x (the last rates of l).
func (l Load) searchPeriod(x []float64, minP, maxP time.Duration) (Season, bool) {
	b := (len(x) + seasonPoints - 1) / seasonPoints
	y := blockMeans(x, b)
	n := len(y)
	bstep := time.Duration(b) * l.Step
	lo := max(1, int((minP+bstep-1)/bstep))
	hi := min(n/2, int(maxP/bstep))
	if hi < lo || hi < 2 {
		return Season{}, false
	}
	v := variance(y)
	if !(v > 1e-12) {
		return Season{}, false
	}
	// d'(τ) = d(τ) / mean(d(1..τ)), d(τ) the mean squared difference at lag τ.
	cum, best := 0.0, -1
	prev := math.Inf(1)
	for tau := 1; tau <= hi; tau++ {
		d := meanSqDiff(y, tau, n)
		cum += d
		dn := d * float64(tau) / cum
		if tau < lo {
			prev = dn
			continue
		}
		if best < 0 && dn < seasonDip {
			best = tau // the first dip: follow it down to its bottom
		}
		if best >= 0 {
			if dn > prev {
				best = tau - 1
				break
			}
			best = tau
		}
		prev = dn
	}
	if best < lo {
		return Season{}, false
	}
	// Refine on the full series around the block lag.
	vx := variance(x)
	if !(vx > 1e-12) {
		return Season{}, false
	}
	bestLag, bestFit := 0, math.Inf(1)
	for lag := max(1, (best-1)*b); lag <= min(len(x)/2, (best+1)*b); lag++ {
		// The last period (at most 4 × seasonPoints rates), compared with
		// the one before it; most of it must be known.
		n := min(len(x), lag, 4*seasonPoints)
		if knownPairs(x, lag, n) < n*3/4 {
			continue
		}
		fit := meanSqDiff(x, lag, n) / (2 * vx)
		if fit < bestFit {
			bestLag, bestFit = lag, fit
		}
	}
	if bestLag == 0 || bestFit > seasonFit || time.Duration(bestLag)*l.Step < minP {
		return Season{}, false
	}
	return Season{Period: time.Duration(bestLag) * l.Step, Fit: bestFit}, true
}

// meanSqDiff is the mean of (x[i] - x[i-lag])² over the last n values of
// x (pairs with a NaN skipped); +Inf when no pair is known.
func meanSqDiff(x []float64, lag, n int) float64 {
	sum, k := 0.0, 0
	for i := max(lag, len(x)-n); i < len(x); i++ {
		if a, b := x[i], x[i-lag]; !math.IsNaN(a) && !math.IsNaN(b) {
			sum += (a - b) * (a - b)
			k++
		}
	}
	if k == 0 {
		return math.Inf(1)
	}
	return sum / float64(k)
}

// knownPairs counts the pairs (x[i], x[i-lag]) over the last n values of x
// that are both known.
func knownPairs(x []float64, lag, n int) int {
	k := 0
	for i := max(lag, len(x)-n); i < len(x); i++ {
		if !math.IsNaN(x[i]) && !math.IsNaN(x[i-lag]) {
			k++
		}
	}
	return k
}

// blockMeans averages x in blocks of b (the last block may be shorter);
// a block without a known value takes the previous block's mean.
func blockMeans(x []float64, b int) []float64 {
	if b <= 1 {
		return x
	}
	out := make([]float64, 0, (len(x)+b-1)/b)
	last := math.NaN()
	for i := 0; i < len(x); i += b {
		sum, k := 0.0, 0
		for _, v := range x[i:min(i+b, len(x))] {
			if !math.IsNaN(v) {
				sum += v
				k++
			}
		}
		if k > 0 {
			last = sum / float64(k)
		}
		out = append(out, last)
	}
	return out
}

// variance is the population variance of the known values of x (0 with
// fewer than two).
func variance(x []float64) float64 {
	sum, sq, k := 0.0, 0.0, 0
	for _, v := range x {
		if !math.IsNaN(v) {
			sum += v
			sq += v * v
			k++
		}
	}
	if k < 2 {
		return 0
	}
	m := sum / float64(k)
	return math.Max(0, sq/float64(k)-m*m)
}
