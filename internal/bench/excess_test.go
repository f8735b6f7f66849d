package bench

import (
	"math"
	"math/rand/v2"
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
		{"four rounds", 0, 0, 4, 0.5, 0.6, 0.8, GoalWithinNoise, -0.26, 0.001},
		{"five rounds", 0, 0, 5, 0.5, 0.6, 0.8, GoalMet, -0.26, 0.001},
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
			if again := excessOf(d, l, h); again != got {
				t.Errorf("second excessOf = %+v; want the same %+v (fixed seed)", again, got)
			}
		})
	}
}

func TestExcessOfShortInput(t *testing.T) {
	if got := excessOf(nil, []float64{1}, []float64{1}); got != (Excess{Verdict: GoalWithinNoise}) {
		t.Errorf("excessOf with no direct windows = %+v; want zero figures, %q", got, GoalWithinNoise)
	}
	// Rounds past the shortest slice are ignored: the outlier in nlb[2] has no round.
	got := excessOf([]float64{1, 1, 1, 1, 1}, []float64{1.1, 1.1, 1.1, 1.1, 1.1, 50}, []float64{1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5})
	if got.MS != round3(0.1-1.2*0.5) || got.Verdict != GoalMet {
		t.Errorf("excessOf with uneven slices = %+v; want ms %.3f, met", got, 0.1-1.2*0.5)
	}
}
