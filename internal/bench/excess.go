package bench

import (
	"math"
	"math/rand/v2"
	"slices"

	"tidepool/internal/loadgen"
)

// Excess checks the overhead goal at one rate and percentile: how far the
// NLB's added latency is over GoalOverheadRatio times HAProxy's, in ms, so
// that the goal holds when it is at most 0. MS is the run's figure,
// computed from the medians of the windows' percentiles like the table;
// LowMS and HighMS bound its ExcessLevel bootstrap interval over Rounds
// rounds. Verdict is GoalMet when the whole interval is at or below 0,
// GoalNotMet when it is above 0, and GoalWithinNoise when it spans 0 or
// there are fewer than ExcessMinRounds rounds: the run cannot tell.
type Excess struct {
	MS      float64 `json:"ms"`
	LowMS   float64 `json:"low_ms"`
	HighMS  float64 `json:"high_ms"`
	Rounds  int     `json:"rounds"`
	Verdict string  `json:"verdict"`
}

// Bootstrap parameters of excessOf.
const (
	// ExcessLevel is the confidence level of Excess's interval.
	ExcessLevel = 0.95
	// ExcessMinRounds: with fewer rounds the bootstrap interval is too
	// narrow (a check whose true excess is 0 comes out met or not met in
	// more runs than the nominal 5 %), so the verdict stays
	// GoalWithinNoise. The defaults give 10 rounds.
	ExcessMinRounds = 10
	// excessResamples is the number of bootstrap resamples.
	excessResamples = 2000
)

// excessOf computes the goal check from one percentile of every window:
// direct[i], nlb[i] and ha[i] are round i, measured one after the other
// (see runner.compare). The interval is a circular block bootstrap: each
// resample strings together blocks of consecutive whole rounds, picked with
// replacement, and recomputes the figure from the resample's medians.
// Whole rounds keep what the three targets shared (the machine's load
// then); blocks of about the cube root of the round count keep what
// neighbouring rounds share (a window's p50 follows the last one's). The
// resamples come from a fixed seed, so the same windows always give the
// same result. Rounds beyond the shortest slice are ignored; none give a
// zero Excess.
func excessOf(direct, nlb, ha []float64) Excess {
	n := min(len(direct), len(nlb), len(ha))
	if n == 0 {
		return Excess{Verdict: GoalWithinNoise}
	}
	direct, nlb, ha = direct[:n], nlb[:n], ha[:n]
	block := max(1, int(math.Round(math.Cbrt(float64(n)))))

	rng := rand.New(rand.NewPCG(1, 2))
	d, l, h := make([]float64, n), make([]float64, n), make([]float64, n)
	samples := make([]float64, excessResamples)
	for s := range samples {
		for i := 0; i < n; {
			start := rng.IntN(n)
			for b := 0; b < block && i < n; b, i = b+1, i+1 {
				k := (start + b) % n
				d[i], l[i], h[i] = direct[k], nlb[k], ha[k]
			}
		}
		samples[s] = excessFrom(median(d), median(l), median(h))
	}
	slices.Sort(samples)
	tail := (1 - ExcessLevel) / 2
	low, high := loadgen.Quantile(samples, tail), loadgen.Quantile(samples, 1-tail)
	e := Excess{MS: round3(excessFrom(median(direct), median(nlb), median(ha))), LowMS: round3(low), HighMS: round3(high), Rounds: n}
	switch {
	case n < ExcessMinRounds:
		e.Verdict = GoalWithinNoise
	case high <= 0:
		e.Verdict = GoalMet
	case low > 0:
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
