package bench

import (
	"math/rand/v2"
	"slices"
)

// Excess checks the overhead goal at one rate and percentile: how far the
// NLB's added latency is over GoalOverheadRatio times HAProxy's, in ms, so
// that the goal holds when it is at most 0. MS is the run's figure,
// computed from the medians of the windows' percentiles like the table;
// LowMS and HighMS bound its ExcessLevel bootstrap interval. Verdict is
// GoalMet when the whole interval is at or below 0, GoalNotMet when it is
// above 0, and GoalWithinNoise when it spans 0: the run cannot tell.
type Excess struct {
	MS      float64 `json:"ms"`
	LowMS   float64 `json:"low_ms"`
	HighMS  float64 `json:"high_ms"`
	Verdict string  `json:"verdict"`
}

// Bootstrap parameters of excessOf.
const (
	// ExcessLevel is the confidence level of Excess's interval.
	ExcessLevel = 0.95
	// excessResamples is the number of bootstrap resamples.
	excessResamples = 2000
	// excessMinRounds: with fewer rounds a bootstrap says little about the
	// machine's noise, so the verdict stays GoalWithinNoise.
	excessMinRounds = 5
)

// excessOf computes the goal check from one percentile of every window:
// direct[i], nlb[i] and ha[i] are round i, measured one after the other
// (see runner.compare), so they share whatever else the machine was doing
// then. The interval resamples whole rounds with replacement (keeping that
// pairing) and recomputes the figure from each resample's medians; the
// resamples come from a fixed seed, so the same windows always give the
// same result. Rounds beyond the shortest slice are ignored; fewer than
// excessMinRounds rounds give GoalWithinNoise whatever the interval (none: a
// zero Excess).
func excessOf(direct, nlb, ha []float64) Excess {
	n := min(len(direct), len(nlb), len(ha))
	if n == 0 {
		return Excess{Verdict: GoalWithinNoise}
	}
	direct, nlb, ha = direct[:n], nlb[:n], ha[:n]
	e := Excess{MS: round3(excessFrom(median(direct), median(nlb), median(ha)))}

	rng := rand.New(rand.NewPCG(1, 2))
	d, l, h := make([]float64, n), make([]float64, n), make([]float64, n)
	samples := make([]float64, excessResamples)
	for s := range samples {
		for i := range n {
			k := rng.IntN(n)
			d[i], l[i], h[i] = direct[k], nlb[k], ha[k]
		}
		samples[s] = excessFrom(median(d), median(l), median(h))
	}
	slices.Sort(samples)
	tail := (1 - ExcessLevel) / 2
	e.LowMS = round3(samples[int(tail*float64(len(samples)-1))])
	e.HighMS = round3(samples[int((1-tail)*float64(len(samples)-1)+0.5)])
	switch {
	case n < excessMinRounds:
		e.Verdict = GoalWithinNoise
	case e.HighMS <= 0:
		e.Verdict = GoalMet
	case e.LowMS > 0:
		e.Verdict = GoalNotMet
	default:
		e.Verdict = GoalWithinNoise
	}
	return e
}

// excessFrom is NLB added - GoalOverheadRatio x HAProxy added, HAProxy's
// taken as 0 when it added nothing (then the NLB may add nothing either).
func excessFrom(direct, nlb, ha float64) float64 {
	return (nlb - direct) - GoalOverheadRatio*max(ha-direct, 0)
}
