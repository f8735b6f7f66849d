package bench

import (
	"math"
	"slices"
	"time"
)

// arrivalStats is what the server saw of one generator run.
type arrivalStats struct {
	Arrivals int
	// Achieved is the arrival rate at the server: the arrivals within the
	// run's window, [start, start+duration) shifted by the smallest timing
	// error (the transfer time), divided by the duration. Requests that
	// never arrive, or late enough to miss the window, count against it.
	Achieved float64
	// ErrorPct is 100*(Achieved/requested - 1).
	ErrorPct float64
	// WorstSecondPct is the largest |deviation| in percent of the arrivals
	// in any whole second of that window from the requested rate.
	WorstSecondPct float64
	// Timing error: the i-th arrival minus the i-th planned send time
	// (both sorted), i.e. the generator's lateness plus the transfer to the
	// server and the server's own delay in reading the request. When
	// requests are missing the pairing shifts and overstates it.
	TimingP50, TimingP99, TimingMax time.Duration
}

// arrivalAccuracy compares the arrival times at the server (Unix ns, any
// order) with the planned send offsets (non-decreasing) of a run of the
// given duration started at started (Unix ns) at a constant requested rate.
func arrivalAccuracy(requested float64, duration time.Duration, started int64, planned []time.Duration, arrivals []int64) arrivalStats {
	a := slices.Clone(arrivals)
	slices.Sort(a)
	st := arrivalStats{Arrivals: len(a)}
	n := min(len(a), len(planned))
	errs := make([]time.Duration, n)
	for i := range n {
		errs[i] = time.Duration(a[i]-started) - planned[i]
	}
	slices.Sort(errs)
	st.TimingP50, st.TimingP99 = quantile(errs, 0.50), quantile(errs, 0.99)
	if n > 0 {
		st.TimingMax = errs[n-1]
	}
	if requested <= 0 || duration <= 0 {
		return st
	}

	var transfer time.Duration
	if n > 0 {
		transfer = max(errs[0], 0)
	}
	origin := started + int64(transfer)
	end := origin + int64(duration)
	seconds := int(duration / time.Second)
	counts := make([]int, seconds)
	inWindow := 0
	for _, t := range a {
		if t < origin || t >= end {
			continue
		}
		inWindow++
		if s := int((t - origin) / int64(time.Second)); s < seconds {
			counts[s]++
		}
	}
	st.Achieved = float64(inWindow) / duration.Seconds()
	st.ErrorPct = 100 * (st.Achieved/requested - 1)
	for _, c := range counts {
		st.WorstSecondPct = max(st.WorstSecondPct, math.Abs(100*(float64(c)/requested-1)))
	}
	return st
}

// quantile is the nearest-rank q-quantile of sorted values (0 if empty).
func quantile[T ~int64 | ~float64](sorted []T, q float64) T {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(n) - 1e-9))
	return sorted[max(1, min(rank, n))-1]
}

// stallQuantile is the latency quantile q expected when a server that
// otherwise answers in base stalls for stall during a run of length d at a
// constant rate, from a generator without coordinated omission: the requests
// planned during the stall (a fraction stall/d of all) wait for its end, so
// their latencies are spread evenly over (0, stall]. The fraction of
// requests slower than L is (stall-L)/d, hence L = stall - (1-q)*d, or base
// when that is smaller.
func stallQuantile(q float64, stall, d, base time.Duration) time.Duration {
	below := time.Duration(math.Round((1-q)*float64(d)/1e3)) * time.Microsecond
	return max(stall-below, base)
}

// median of vs (mean of the middle two for an even count; 0 if empty). It
// sorts a copy: vs is not changed.
func median[T ~int64 | ~float64](vs []T) T {
	n := len(vs)
	if n == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
