package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// rounds builds per-target window figures: every round shares a machine
// disturbance shift[i]; the targets add their own constant latency and
// independent jitter of up to ±jitter ms.
func rounds(n int, shift, jitter float64, direct, nlb, ha float64) (d, l, h []float64) {
	rng := rand.New(rand.NewPCG(7, 7))
	j := func() float64 { return (rng.Float64()*2 - 1) * jitter }
	for range n {
		s := rng.Float64() * shift
		d = append(d, direct+s+j())
		l = append(l, nlb+s+j())
		h = append(h, ha+s+j())
	}
	return d, l, h
}

func TestExcessOf(t *testing.T) {
	tests := []struct {
		name       string
		shift, jit float64
		n          int
		d, nlb, ha float64
		want       string
		wantMS     float64 // checked to ±tol
		tol        float64
	}{
		// NLB adds 0.1 ms, HAProxy 0.3: excess 0.1 - 1.2*0.3 = -0.26.
		{"clearly within", 0, 0.01, 10, 0.5, 0.6, 0.8, GoalMet, -0.26, 0.02},
		// A shared disturbance of up to 5 ms per round cancels out: rounds are resampled whole.
		{"within under shared noise", 5, 0.01, 10, 0.5, 0.6, 0.8, GoalMet, -0.26, 0.02},
		// NLB adds 1 ms, HAProxy 0.2: excess +0.76.
		{"clearly over", 0, 0.01, 10, 0.5, 1.5, 0.7, GoalNotMet, 0.76, 0.02},
		// Jitter of ±2 ms per window swamps a difference of 0.1 ms.
		{"noise", 0, 2, 10, 1, 1.2, 1.2, GoalWithinNoise, math.NaN(), 0},
		// HAProxy added nothing, so the NLB may not either.
		{"haproxy added nothing", 0, 0.001, 10, 0.5, 0.55, 0.45, GoalNotMet, 0.05, 0.005},
		// Too few rounds to know the noise, however clear they look.
		{"nine rounds", 0, 0, 9, 0.5, 0.6, 0.8, GoalWithinNoise, -0.26, 0.001},
		{"ten rounds", 0, 0, 10, 0.5, 0.6, 0.8, GoalMet, -0.26, 0.001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, l, h := rounds(tt.n, tt.shift, tt.jit, tt.d, tt.nlb, tt.ha)
			got := excessOf(d, l, h)
			if got.Verdict != tt.want {
				t.Errorf("excessOf = %+v; want verdict %q", got, tt.want)
			}
			if !(got.LowMS <= got.MS+0.001 && got.MS <= got.HighMS+0.001) {
				t.Errorf("excessOf = %+v; want low <= ms <= high", got)
			}
			if !math.IsNaN(tt.wantMS) && math.Abs(got.MS-tt.wantMS) > tt.tol {
				t.Errorf("excessOf ms = %.3f; want %.3f ± %.3f", got.MS, tt.wantMS, tt.tol)
			}
			if got.Rounds != tt.n {
				t.Errorf("excessOf rounds = %d; want %d", got.Rounds, tt.n)
			}
			if again := excessOf(d, l, h); again != got {
				t.Errorf("second excessOf = %+v; want the same %+v (fixed seed)", again, got)
			}
		})
	}
}

// TestExcessOfVerdictByInterval: the verdict follows the interval, not the
// figure. Four of ten rounds have a fast NLB: the figure (from the medians)
// is over, but resamples with five or more of those rounds are not, so the
// run cannot tell.
func TestExcessOfVerdictByInterval(t *testing.T) {
	direct := []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	ha := []float64{1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1}
	nlb := []float64{1.4, 0.2, 1.4, 1.4, 0.2, 1.4, 1.4, 0.2, 1.4, 0.2}
	got := excessOf(direct, nlb, ha)
	if got.MS != 0.28 || got.LowMS > 0 || got.HighMS != 0.28 || got.Verdict != GoalWithinNoise {
		t.Errorf("excessOf = %+v; want ms +0.28, interval from <= 0 to +0.28, within noise", got)
	}
	// Pinned for fixed windows: a change of ExcessLevel, the block length,
	// the resampling or the seed moves these bounds.
	d, l, h := rounds(10, 0, 2, 1, 1.2, 1.2)
	if got := excessOf(d, l, h); got.LowMS != -1.960 || got.HighMS != 0.588 {
		t.Errorf("excessOf(noisy rounds) interval %+.3f to %+.3f; want -1.960 to +0.588 (pinned)", got.LowMS, got.HighMS)
	}
}

func TestExcessOfShortInput(t *testing.T) {
	if got := excessOf(nil, []float64{1}, []float64{1}); got != (Excess{Verdict: GoalWithinNoise}) {
		t.Errorf("excessOf with no direct windows = %+v; want zero figures, %q", got, GoalWithinNoise)
	}
	// Rounds past the shortest slice are ignored: counted, nlb's median
	// would be 50.
	direct := slices.Repeat([]float64{1}, 10)
	nlb := append(slices.Repeat([]float64{1.1}, 10), slices.Repeat([]float64{50}, 11)...)
	ha := slices.Repeat([]float64{1.5}, 12)
	got := excessOf(direct, nlb, ha)
	if got.MS != round3(0.1-1.2*0.5) || got.Rounds != 10 || got.Verdict != GoalMet {
		t.Errorf("excessOf with uneven slices = %+v; want ms %.3f, 10 rounds, met", got, 0.1-1.2*0.5)
	}
}
