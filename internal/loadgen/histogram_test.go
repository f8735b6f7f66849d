package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestHistogramAccuracy compares the histogram's quantiles with the exact
// nearest-rank quantiles of the same samples: the documented bound is 0.4%.
func TestHistogramAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() time.Duration
	}{
		{"log-uniform 1µs..100s", func() time.Duration {
			return time.Duration(math.Exp(rng.Float64()*math.Log(1e8)) * float64(time.Microsecond))
		}},
		{"narrow around 20ms", func() time.Duration {
			return 20*time.Millisecond + time.Duration(rng.NormFloat64()*float64(time.Millisecond))
		}},
		{"tiny, exact range", func() time.Duration { return time.Duration(rng.IntN(256)) }},
	}
	for _, tt := range tests {
		var h histogram
		samples := make([]time.Duration, 20000)
		for i := range samples {
			samples[i] = tt.gen()
			h.record(samples[i])
		}
		slices.Sort(samples)
		for _, q := range []float64{0.001, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
			want := Quantile(samples, q)
			got := h.quantile(q)
			if err := math.Abs(float64(got-want)) / float64(max(want, 1)); err > 1.0/256+1e-9 {
				t.Errorf("%s: quantile(%g) = %s; exact %s (error %.3f%% > 0.4%%)", tt.name, q, got, want, 100*err)
			}
		}
		if h.max != samples[len(samples)-1] || h.min != samples[0] {
			t.Errorf("%s: min, max = %s, %s; want %s, %s", tt.name, h.min, h.max, samples[0], samples[len(samples)-1])
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	var h histogram
	if got := h.quantile(0.5); got != 0 {
		t.Errorf("empty quantile = %s; want 0", got)
	}
	h.record(-time.Second) // clamped to 0
	h.record(time.Duration(math.MaxInt64))
	if got := h.quantile(1); got != time.Duration(math.MaxInt64) {
		t.Errorf("quantile(1) = %d; want MaxInt64", got)
	}
	if got := h.quantile(0.5); got != 0 {
		t.Errorf("quantile(0.5) = %s; want 0", got)
	}
	// Bucket indexes are contiguous and monotone across octave boundaries.
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1 << 20, 1<<20 + 1, math.MaxInt64} {
		i := histIndex(v)
		if i < prev || i >= len(h.counts) {
			t.Errorf("histIndex(%d) = %d after %d; want monotone and < %d", v, i, prev, len(h.counts))
		}
		if mid := histMid(i); math.Abs(float64(mid)-float64(v)) > float64(v)/256+0.5 {
			t.Errorf("histMid(histIndex(%d)) = %d; want within 0.4%%", v, mid)
		}
		prev = i
	}
}

func TestQuantile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.95, 95}, {0.99, 99}, {1, 100}, {0.001, 1}}
	for _, tt := range tests {
		if got := Quantile(s, tt.q); got != tt.want {
			t.Errorf("Quantile(1..100, %g) = %d; want %d", tt.q, got, tt.want)
		}
	}
	if got := Quantile([]time.Duration(nil), 0.5); got != 0 {
		t.Errorf("Quantile(nil) = %d; want 0", got)
	}
}
