package policy

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

const step = 15 * time.Second

// loadOf returns a Load of rates ending at t0, one every 15 s, each
// averaging 15 s of arrivals, at 80 ms of CPU per request.
func loadOf(rates ...float64) Load {
	return Load{Rates: rates, End: t0, Step: step, Window: step, CostPerRequest: 0.08}
}

// series returns n rates f(i) for i = 0..n-1.
func series(n int, f func(i int) float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// poissonRates returns n rates of mean f(i) with Poisson noise over a
// 15 s window (normal approximation), from a fixed seed.
func poissonRates(n int, seed uint64, f func(i int) float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	return series(n, func(i int) float64 {
		m := f(i) * step.Seconds()
		return math.Max(0, m+math.Sqrt(m)*rng.NormFloat64()) / step.Seconds()
	})
}

func square(period, high int, hi, lo float64) func(int) float64 {
	return func(i int) float64 {
		if i%period < high {
			return hi
		}
		return lo
	}
}

func TestDispersion(t *testing.T) {
	poisson := 1 / step.Seconds()
	tests := []struct {
		name   string
		rates  []float64
		lo, hi float64 // accepted range of the estimate
	}{
		{"smooth level", series(40, func(int) float64 { return 100 }), 0, 0},
		{"smooth ramp", series(40, func(i int) float64 { return 20 + 2*float64(i) }), 0, 1e-12},
		{"smooth square wave", series(40, square(8, 4, 115, 35)), 0, 0},
		{"poisson", poissonRates(40, 1, func(int) float64 { return 100 }), 0.6 * poisson, 1.5 * poisson},
		{"poisson ramp", poissonRates(40, 2, func(i int) float64 { return 50 + 2*float64(i) }), 0.6 * poisson, 1.5 * poisson},
		{"poisson square wave", poissonRates(40, 3, square(8, 4, 115, 35)), 0.6 * poisson, 1.6 * poisson},
		{"too few: assume poisson", series(5, func(int) float64 { return 100 }), poisson, poisson},
		{"gaps are skipped", append(series(40, func(int) float64 { return 100 }), math.NaN()), 0, 0},
	}
	for _, tt := range tests {
		if got := loadOf(tt.rates...).dispersion(10 * time.Minute); got < tt.lo || got > tt.hi {
			t.Errorf("%s: dispersion = %v, want %v..%v", tt.name, got, tt.lo, tt.hi)
		}
	}
}

func TestSeason(t *testing.T) {
	tests := []struct {
		name   string
		rates  []float64
		want   time.Duration // 0: none
		minP   time.Duration
		maxFit float64
	}{
		{"square wave of 10 minutes", series(200, square(40, 20, 125, 25)), 10 * time.Minute, 2 * time.Minute, 0},
		{"noisy square wave", poissonRates(200, 4, square(40, 20, 125, 25)), 10 * time.Minute, 2 * time.Minute, seasonFit},
		{"sine of 30 minutes", series(400, func(i int) float64 { return 100 + 60*math.Sin(2*math.Pi*float64(i)/120) }), 30 * time.Minute, 2 * time.Minute, 0.01},
		{"long history, period of 2 hours", series(2000, square(480, 200, 90, 20)), 2 * time.Hour, 2 * time.Minute, 0},
		{"only one period and a half", series(60, square(40, 20, 125, 25)), 0, 2 * time.Minute, 0},
		{"one period and a half after a long unknown past", append(series(400, func(int) float64 { return math.NaN() }), series(60, square(40, 20, 125, 25))...), 0, 2 * time.Minute, 0},
		{"a period with gaps", func() []float64 {
			x := series(200, square(40, 20, 125, 25))
			for i := 0; i < len(x); i += 11 {
				x[i] = math.NaN()
			}
			return x
		}(), 10 * time.Minute, 2 * time.Minute, 0},
		{"a ramp is not a period", series(200, func(i int) float64 { return float64(i) }), 0, 2 * time.Minute, 0},
		{"a step is not a period", series(200, func(i int) float64 { return map[bool]float64{true: 25, false: 145}[i < 80] }), 0, 2 * time.Minute, 0},
		{"noise is not a period", poissonRates(200, 5, func(int) float64 { return 100 }), 0, 2 * time.Minute, 0},
		{"a multiple of a short period", series(200, square(8, 4, 115, 35)), 6 * time.Minute, 5 * time.Minute, 0},
	}
	for _, tt := range tests {
		s, ok := loadOf(tt.rates...).season(tt.minP, 0)
		switch {
		case tt.want == 0 && ok:
			t.Errorf("%s: season %+v, want none", tt.name, s)
		case tt.want != 0 && (!ok || s.Period != tt.want || s.Fit > tt.maxFit):
			t.Errorf("%s: season %+v (%v), want period %s with fit at most %v", tt.name, s, ok, tt.want, tt.maxFit)
		}
	}
}

func TestTrend(t *testing.T) {
	tests := []struct {
		name      string
		rates     []float64
		wantOK    bool
		wantSlope float64 // req/s per second
	}{
		{"ramp", series(20, func(i int) float64 { return 20 + 3*float64(i) }), true, 0.2},
		{"noisy ramp", poissonRates(20, 6, func(i int) float64 { return 60 + 3*float64(i) }), true, 0.2},
		{"level", series(20, func(int) float64 { return 50 }), true, 0},
		{"step", series(20, func(i int) float64 { return map[bool]float64{true: 25, false: 145}[i < 12] }), false, 0},
		{"square wave", series(20, square(8, 4, 115, 35)), false, 0},
		{"too short", series(5, func(i int) float64 { return float64(i) }), false, 0},
	}
	for _, tt := range tests {
		l := loadOf(tt.rates...)
		slope, _, ok := l.trend(3*time.Minute, noise(l.dispersion(10*time.Minute), 100))
		if ok != tt.wantOK || (ok && math.Abs(slope-tt.wantSlope) > 0.03) {
			t.Errorf("%s: trend = %v (%v), want %v (%v)", tt.name, slope, ok, tt.wantSlope, tt.wantOK)
		}
	}
}

func TestLoadIndex(t *testing.T) {
	l := loadOf(1, 2, 3, 4)
	for _, tt := range []struct {
		at   time.Time
		want int
	}{
		{t0, 3}, {t0.Add(-step), 2}, {t0.Add(-time.Second), 2}, {t0.Add(-4 * step), -1}, {t0.Add(time.Second), 4},
	} {
		if got := l.index(tt.at); got != tt.want {
			t.Errorf("index(%s) = %d, want %d", tt.at.Sub(t0), got, tt.want)
		}
	}
	if v, ok := l.peak(t0.Add(-2*step), t0.Add(time.Hour)); !ok || v != 4 {
		t.Errorf("peak = %v, %v; want 4", v, ok)
	}
	if _, ok := l.peak(t0.Add(time.Minute), t0.Add(time.Hour)); ok {
		t.Error("peak after the history: found, want none")
	}
}
